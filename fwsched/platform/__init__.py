"""The simulated Freshworks platform around a handler (SPEC §8-§10).

``events``: the payload of any event (the FDK's test_data files, the full-payload
rule), the setup events, server functions and what ``render_data`` answers.
``db``: the app's data storage. ``templates``, ``outbound``, ``stubs`` and ``requests``:
calls to other services (the app's templates, building and checking a request, canned
answers, sending and recording); ``jsonfile`` reads their JSON files with positions.
The schedule API lives in ``fwsched.rules`` and ``fwsched.schedule_api``.
"""
