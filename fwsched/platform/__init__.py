"""The simulated Freshworks platform around a handler (SPEC §8).

``events``: the payload of any event (the FDK's test_data files, the full-payload
rule), the setup events, server functions and what ``render_data`` answers.
The schedule API lives in ``fwsched.rules`` and ``fwsched.schedule_api``; the app's
``db`` and ``request`` services (SPEC §9, §10) belong here next to ``events``.
"""
