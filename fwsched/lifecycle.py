"""The app around the handler (SPEC §8): firing any registered event, calling a server
function, installing and uninstalling the app, and the installation's iparams that the
app's handlers then see.

``AppLifecycle`` is part of ``engine.Simulator``: each of these runs an invocation through
the Simulator's own recording and running (``_start``, ``_run_once``), as an occurrence
does; the platform's rules for them are ``platform.events``'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fwsched import jsonsafe, rules
from fwsched.app import SCHEDULED_EVENT, AppSpec
from fwsched.durations import to_epoch_ms
from fwsched.errors import FwschedError
from fwsched.platform import events
from fwsched.records import Invocation, Source

if TYPE_CHECKING:
    from datetime import datetime

    from fwsched.runrecord import Started
    from fwsched.sandbox import Sandbox
    from fwsched.store import Store


class AppLifecycle:
    """``Simulator``'s operations on the app around the handler."""

    spec: AppSpec
    store: Store
    _installed_spec: tuple[str, AppSpec, AppSpec] | None

    if TYPE_CHECKING:  # what the Simulator provides

        @property
        def sandbox(self) -> Sandbox: ...

        @property
        def now(self) -> datetime: ...

        @property
        def installed(self) -> bool: ...

        def _start(
            self,
            name: str | None,
            source: Source,
            event: str,
            payload: dict[str, Any],
            timestamp_ms: int,
            fire_at: datetime,
            *,
            handler: str | None = None,
            spec: AppSpec | None = None,
        ) -> Started: ...

        def _run_once(self, started: Started, timeout: float | None = None) -> Invocation: ...

    def fire(self, event: str, payload: Mapping[str, Any] | None = None) -> Invocation:
        """Run the handler registered for ``event`` now, at the simulated time.

        The payload comes from the app's ``test_data/<event>.json`` if there is one;
        ``payload`` replaces it (a full payload) or becomes its ``data``.
        """
        events.event_handler(self.spec, event)
        return self._fire_event(event, payload, "event")

    def invoke(self, function: str, params: Mapping[str, Any] | None = None) -> Invocation:
        """Call the server function ``function`` with ``params``, as a button in the product does.

        What it passed to ``render_data`` is the invocation's ``render``.
        """
        bounded(params, "the function's params")
        payload = events.function_payload(self._payload_spec(), params)
        report = self.sandbox.inspect()
        events.check_function(self.spec, function, report.exports if report.ok else None)
        timestamp_ms = to_epoch_ms(self.now)
        with self.store.transaction():
            started = self._start(
                None, "function", function, payload, timestamp_ms, self.now, handler=function
            )
        return self._run_once(started, timeout=events.function_timeout(self.spec, function))

    @property
    def ever_installed(self) -> bool:
        """False on a state where the app was never installed (``run`` installs it then)."""
        return self.store.install_state() is not None

    def install(self, iparams: Mapping[str, Any] | None = None) -> Invocation | None:
        """Install the app: fire onAppInstall (if registered) and mark it installed.

        ``iparams`` are the installation's (else fwsched.toml's): later events get them
        until uninstall. An install handler that renders an error, fails, or does not
        call render_data leaves the app not installed (``events.install_failure`` says
        why); what it did meanwhile stays. None when the app has no onAppInstall.
        """
        if self.installed:
            raise FwschedError(events.ALREADY_INSTALLED)
        values = None
        bounded(iparams, "the iparams")
        if iparams is not None:
            values = dict(self.spec.with_overrides(iparams=iparams).iparams)  # checks them
        invocation = None
        if events.INSTALL_EVENT in self.spec.events:
            # The handler sees the installation's iparams, as on the platform.
            invocation = self._fire_event(events.INSTALL_EVENT, None, "install", iparams=values)
        if events.install_failure(invocation) is None:
            with self.store.transaction():
                self.store.set_installed(values)
        return invocation

    def uninstall(self, keep_data: bool = False) -> Invocation | None:
        """Fire onAppUninstall (if registered), then delete the app's schedules and mark it
        not installed; ``keep_data`` keeps the schedules. Returns the invocation (None
        without onAppUninstall).

        As on the platform, an uninstall cannot be refused: it completes whatever the
        handler did.
        """
        if not self.installed:
            raise FwschedError(events.NOT_INSTALLED)
        invocation = None
        if events.UNINSTALL_EVENT in self.spec.events:
            invocation = self._fire_event(events.UNINSTALL_EVENT, None, "uninstall")
        with self.store.transaction():
            if not keep_data:
                self.store.delete_schedules()
                self.store.delete_kv()
            self.store.set_uninstalled()
        return invocation

    def _payload_spec(self, iparams: Mapping[str, Any] | None = None) -> AppSpec:
        """The app as its handlers see it: the installation's iparams win over fwsched.toml.

        Made once per installation and spec, not per occurrence (checking the values and
        finding their secrets is most of an occurrence's bookkeeping otherwise).
        """
        if iparams is not None:
            return self.spec.with_overrides(iparams=iparams)
        text = self.store.install_iparams_text()
        if text is None:
            return self.spec
        made = self._installed_spec
        if made is None or made[0] != text or made[1] is not self.spec:
            values = self.store.install_iparams()
            assert values is not None
            made = self._installed_spec = (
                text,
                self.spec,
                self.spec.with_overrides(iparams=values),
            )
        return made[2]

    def _fire_event(
        self,
        event: str,
        given: Mapping[str, Any] | None,
        source: Source,
        iparams: Mapping[str, Any] | None = None,
    ) -> Invocation:
        bounded(given, "the payload")
        spec = self._payload_spec(iparams)
        if event == SCHEDULED_EVENT and given is not None and not isinstance(given, Mapping):
            rules.check_data(given)  # a schedule's data rules: rule 4's message
        payload, timestamp_ms = events.event_payload(spec, event, to_epoch_ms(self.now), given)
        if event == SCHEDULED_EVENT:
            payload["data"] = rules.check_data(payload.get("data"))  # a schedule's data rules
        with self.store.transaction():
            started = self._start(
                None, source, event, payload, timestamp_ms, self.now,
                handler=self.spec.events[event], spec=spec,
            )  # fmt: skip
        return self._run_once(started)


def bounded(value: Any, what: str) -> None:
    """A value given to a handler nests at most ``jsonsafe.MAX_DEPTH`` levels, as data must."""
    if jsonsafe.too_deep(value):
        raise FwschedError(
            f"{what} is nested deeper than {jsonsafe.MAX_DEPTH} levels, which fwsched refuses"
        )
