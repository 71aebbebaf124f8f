"""The ``Simulator``: the one place where simulated time moves and occurrences fire.

Firing an occurrence is two writes around the handler run:

1. *begin* (one transaction): move the clock to the occurrence, take the
   occurrence off the schedule (delete a one-time schedule, move a recurring
   one to its next occurrence) and insert the invocation record as ``running``
   (its fire time is where a reopened state resumes: the clock is saved at the end);
2. run the handler in the sandbox (its ``schedule.*`` calls come back as RPCs
   and are applied at once, so they see and change the live state);
3. *finish*: write the outcome. During an advance this joins the next
   occurrence's *begin* transaction, so a long advance costs one commit each.

A kill -9 between 1 and 3 leaves the record ``running``; the next owner marks
it ``interrupted`` and never fires it again. A kill before 1 leaves the
occurrence due. So every occurrence is recorded once or still due, never both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fwsched import rules, runrecord
from fwsched.app import MAX_TIMEOUT, SCHEDULED_EVENT, AppSpec, app_secrets, load_app, redact
from fwsched.clock import SimClock
from fwsched.durations import parse_duration, parse_instant, to_epoch_ms
from fwsched.errors import AppError
from fwsched.lifecycle import AppLifecycle
from fwsched.outcome import Outcome
from fwsched.platform.db import DbService
from fwsched.records import Invocation, Source
from fwsched.recurrence import next_occurrence
from fwsched.runrecord import Started
from fwsched.sandbox import Isolation, Sandbox
from fwsched.sandbox.result import RunResult, naming_limits
from fwsched.schedule_api import ScheduleAPI
from fwsched.sdk import DbError, RequestError, ScheduleError
from fwsched.services import StoredDb, call_arguments
from fwsched.statelock import StateLock
from fwsched.store import Entry, StateQueries, Store

if TYPE_CHECKING:
    from fwsched.platform.requests import HttpService

DEFAULT_TIMEOUT = 20.0


def _as_instant(value: datetime | str) -> datetime:
    if isinstance(value, str):
        return parse_instant(value)
    if value.tzinfo is None:
        raise ValueError(f"expected an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _as_duration(value: timedelta | str) -> timedelta:
    delta = parse_duration(value) if isinstance(value, str) else value
    if delta <= timedelta(0):
        raise ValueError(f"advance needs a positive duration, got {delta}")
    return delta


class Simulator(AppLifecycle, StateQueries):
    """A simulated Freshworks platform for one app: schedules, a clock and a sandbox.

    ``state=None`` keeps everything in memory; ``state=PATH`` uses (and locks)
    that SQLite file, so a later Simulator or CLI command continues from it.
    Constructor arguments override the app's fwsched.toml, which overrides the
    defaults. ``start`` only applies to a fresh state.
    """

    def __init__(
        self,
        app: str | Path,
        *,
        start: datetime | str | None = None,
        timeout: float | None = None,
        isolation: Isolation | str = Isolation.WARM,
        strict: bool = True,
        iparams: Mapping[str, Any] | None = None,
        account: Mapping[str, Any] | None = None,
        state: str | Path | None = None,
        memory_limit_mb: int = 512,
        network: str = "offline",
        record: str | Path | None = None,
    ) -> None:
        if network not in ("offline", "live"):
            raise ValueError(f"network must be 'offline' or 'live', got {network!r}")
        self._overrides = {"iparams": iparams, "account": account}
        self.spec = self._load_spec(app)
        self.timeout = float(
            timeout if timeout is not None else self.spec.timeout or DEFAULT_TIMEOUT
        )
        if not 0 < self.timeout <= MAX_TIMEOUT:  # also refuses NaN and infinity
            raise ValueError(
                f"timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, "
                f"got {self.timeout}"
            )
        self.isolation = Isolation(isolation)
        self.memory_limit_mb = memory_limit_mb

        self._lock = StateLock(Path(state)) if state is not None else None
        try:
            self.store = Store.open(state, kept=self._lock is not None and self._lock.existed)
        except BaseException:
            self._release_lock()
            raise
        try:
            initial = self._open_state(strict, start)
        except BaseException:  # e.g. a bad start: nothing was written, let go of the file
            self.store.close()
            self._release_lock()
            raise
        # Paused: only advance() moves library time; the live runner sets a rate.
        self.clock = SimClock(initial, rate=0.0)
        self._handler_now: datetime | None = None  # the occurrence a handler is running for
        self._running: Started | None = None  # the invocation a handler is running for
        self._unrecorded: Invocation | None = None  # the last run, its outcome not yet written
        # _payload_spec's: (install iparams as stored, the spec they override, the result).
        self._installed_spec: tuple[str, AppSpec, AppSpec] | None = None
        # An advance's look-ahead: its target, and (schedules version, next due entry)
        # read while the worker ran the previous occurrence.
        self._ahead_until: datetime | None = None
        self._ahead: tuple[int, Entry | None] | None = None
        self.schedule = ScheduleAPI(self.store, self._api_context)
        self.db = StoredDb(self.store, DbService(self.store.kv(), self._service_now))
        self.network = network
        self.record = Path(record) if record is not None else None
        self._http: HttpService | None = None  # made on first use: it loads httpx
        self._saved_admissions = 0  # the http rate window as last written to the state
        self._sandbox: Sandbox | None = None

    # -- set-up --------------------------------------------------------------------------

    def _open_state(self, strict: bool, start: datetime | str | None) -> datetime:
        """Recover from an owner that died mid-run; the simulated time to start at."""
        store = self.store
        if store.read_only:  # the commands that only read work; the first write says why not
            initial = store.get_now()
            if initial is None or not (strict or store.relaxed):
                store.set_now(self._initial_time(start))  # raises the read-only StateError
            assert initial is not None
            return initial
        with store.transaction():
            store.interrupt_running()  # left by an owner that died mid-run
            if not strict:
                store.set_relaxed()
            initial = store.get_now()
            if initial is None:
                initial = self._initial_time(start)
                store.set_now(initial)
        return initial

    def _load_spec(self, app: str | Path) -> AppSpec:
        spec = load_app(app).with_overrides(**self._overrides)
        if spec.errors:
            raise AppError("; ".join(str(problem) for problem in spec.errors))
        return spec

    def _initial_time(self, start: datetime | str | None) -> datetime:
        if start is not None and start != "now":
            return _as_instant(start)
        if start is None and self.spec.start is not None:
            return self.spec.start
        return datetime.now(UTC).replace(microsecond=0)

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(
                self.spec.root,
                self.spec.scheduled_handler,
                timeout=self.timeout,
                isolation=self.isolation,
                memory_limit_mb=self.memory_limit_mb,
                # The platform services a handler calls, by name (SPEC §8-§10).
                services={
                    "schedule": self.schedule.call,
                    "db": self._db_rpc,
                    "request": self._request_rpc,
                },
            )
        return self._sandbox

    def runs_in_sandbox(self, pid: int) -> bool:
        """Whether process ``pid`` belongs to the sandbox: its worker, or what a handler
        started (the live runner refuses such control connections; any thread)."""
        sandbox = self._sandbox
        return sandbox is not None and sandbox.owns(pid)

    def reload(self) -> None:
        """Pick up changed app files: re-read manifest and settings, restart the sandbox.

        A manifest that no longer loads raises ``AppError`` and the previous one stays
        in force; a broken server.py is not an error here (invocations end ``load-error``).
        """
        try:
            spec = self._load_spec(self.spec.root)
        finally:
            if self._sandbox is not None:
                self._sandbox.close()
                self._sandbox = None
        self.spec = spec
        if self._http is not None:
            self._http.reconfigure(config=spec.requests, stubs=spec.stubs)

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        if self._http is not None:
            self._http.close()
            self._http = None
        self.store.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The simulated time (aware UTC)."""
        return self.clock.now()

    def relax(self) -> None:
        """Lift the platform limits (``--relaxed``); remembered in the state until reset."""
        with self.store.transaction():
            self.store.set_relaxed()
        if self._http is not None:
            self._http.reconfigure(strict=False)

    def secret_values(self) -> tuple[str, ...]:
        """The values ``redact`` masks: secure iparams of fwsched.toml and of the installation."""
        return app_secrets(self.spec, self.store.install_iparams())

    def redact(self, value: Any) -> Any:
        """``value`` as fwsched shows it: every secret replaced by ``****`` (``app.redact``)."""
        return redact(value, self.secret_values())

    # -- the platform services' context ----------------------------------------------------

    def _service_now(self) -> datetime:
        """ "Now" for a service call: the occurrence's time inside a handler, else the clock."""
        return self._handler_now if self._handler_now is not None else self.now

    @property
    def http(self) -> HttpService:
        """``sim.http``: ``stub(...)`` and ``requests``; the request service handlers call."""
        if self._http is None:
            from fwsched.platform.requests import HttpService

            spec = self._payload_spec()
            self._http = HttpService(
                self.spec.requests,
                iparams=spec.iparams,
                secure_iparams=spec.secure_iparams,
                stubs=self.spec.stubs,
                network="live" if self.network == "live" else "offline",
                record=self.record,
                strict=self.strict,
                now=self._service_now,
            )
            # The rate limit counts this app's requests whichever process made them.
            self._http.restore_rate_window(self.store.request_window())
            self._saved_admissions = self._http.admissions
        return self._http

    def _db_rpc(self, call: str, request: dict[str, Any]) -> dict[str, Any]:
        """A handler's ``db.<call>(*args, **kwargs)``."""
        args, kwargs = call_arguments(request, DbError, f"db.{call}")
        return self.db.call(call, args, kwargs)

    def _request_rpc(self, call: str, request: dict[str, Any]) -> dict[str, Any]:
        """A handler's ``request.<call>(*args, **kwargs)``, recorded on its invocation."""
        args, kwargs = call_arguments(request, RequestError, f"request.{call}")
        running = self._running
        http = self.http
        if running is not None and running.spec is not None:
            # The iparams this run got (the installation's, or fwsched.toml's).
            http.reconfigure(iparams=running.spec.iparams)
        return http.call(call, args, kwargs, invocation=None if running is None else running.id)

    def _api_context(self) -> rules.Context:
        in_handler = self._handler_now is not None
        return rules.Context(
            now=self._handler_now if self._handler_now is not None else self.now,
            has_handler=self.spec.scheduled_handler is not None,
            strict=self.strict,
            in_handler=in_handler,
        )

    # -- moving time -----------------------------------------------------------------------

    def advance(self, duration: timedelta | str) -> list[Invocation]:
        """Move the clock forward by ``duration`` (``"1h30m"``, ``"PT1H"`` or a timedelta)."""
        delta = _as_duration(duration)
        try:
            target = self.now + delta
        except OverflowError:
            raise ValueError(
                f"advancing {delta} from {self.now.isoformat()} goes past the year 9999"
            ) from None
        return self.advance_to(target)

    def advance_to(
        self, target: datetime | str, *, on_fired: Callable[[Invocation], None] | None = None
    ) -> list[Invocation]:
        """Fire every occurrence due at or before ``target``, in order, then stop the clock there.

        ``on_fired`` is called after each invocation (for progress displays).
        """
        target = _as_instant(target)
        if target < self.now:
            raise ValueError(
                f"time can't go backwards: {target.isoformat()} is before {self.now.isoformat()}"
            )
        fired = []
        self._ahead_until = target
        try:
            while (entry := self._next_due(target)) is not None:
                # Its outcome is written with the next occurrence's begin: one commit each.
                fired.append(invocation := self._fire(entry))
                if on_fired is not None:
                    on_fired(invocation)
            self._move_clock(target)
        finally:
            self._ahead_until = self._ahead = None
            self._record_outcome()
        return fired

    def _look_ahead(self) -> None:
        """While the worker runs an advance's occurrence: read the next due entry, which
        stays the one as long as the schedules do not change (``Store.schedules_version``:
        a handler's schedule call, ``on_fired``'s code, a rollback)."""
        until = self._ahead_until
        if until is None:
            return
        try:
            self._ahead = (self.store.schedules_version, self.store.next_due(until))
        except Exception:  # _next_due reads it again, and says what is wrong
            self._ahead = None

    def _next_due(self, until: datetime) -> Entry | None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == self.store.schedules_version:
            return ahead[1]
        return self.store.next_due(until)

    def set_speed(self, rate: float) -> None:
        """Let the clock run at ``rate`` times real time (0 pauses it)."""
        self.clock.set_rate(rate)

    def save_clock(self) -> None:
        """Persist the running clock, so a restart resumes at the same simulated time."""
        with self.store.transaction():
            self._record_outcome()
            self.store.set_now(self.now)

    def fire_next(self, until: datetime) -> Invocation | None:
        """Fire the earliest occurrence due at or before ``until``; None if there is none."""
        entry = self.store.next_due(until)
        if entry is None:
            return None
        invocation = self._fire(entry)
        self._record_outcome()
        return invocation

    def _move_clock(self, t: datetime) -> None:
        # A running clock (the live runner's) may already be past t.
        if t > self.now:
            self.clock.advance_to(t)
        self.save_clock()

    def _fire(self, entry: Entry) -> Invocation:
        due = entry.next_fire_at
        # An overdue occurrence (a one-time schedule created in the past in relaxed
        # mode, or one due before a live runner started) runs now; its timestamp stays
        # due. A live runner holds its clock at each due time, so it never falls behind.
        fire_at = max(due, self.now)
        spec = entry.spec
        with self.store.transaction():
            self._record_outcome()
            if fire_at > self.now:
                self.clock.advance_to(fire_at)
            # The clock itself is saved at the end; until then the invocation's fire time
            # is where a state reopened after a kill resumes (Store.get_now).
            following = None
            if spec.repeat is not None:
                with contextlib.suppress(OverflowError):  # past the year 9999: no more
                    following = next_occurrence(spec.at, spec.repeat, due)
            if following is None:  # a one-time schedule, or the last occurrence of a series
                self.store.delete(spec.name)
            else:
                self.store.set_next_fire(spec.name, following)
            started = self._begin(spec.name, "schedule", spec.data, due, fire_at, owned=True)
        return self._run(started)

    # -- running handlers ------------------------------------------------------------------

    def trigger(self, name: str, data: Mapping[str, Any] | None = None) -> Invocation:
        """Run the named schedule's handler now, leaving the schedule as it is."""
        entry = self.store.get(name)
        if entry is None:
            raise ScheduleError(404, "Schedule does not exist")
        payload_data = dict(entry.spec.data) if data is None else rules.check_data(data)
        self._require_handler()
        with self.store.transaction():
            started = self._begin(name, "trigger", payload_data, self.now, self.now)
        return self._run_once(started)

    def trigger_payload(self, payload: Mapping[str, Any]) -> Invocation:
        """Fire onScheduledEvent with an ad-hoc ``data`` object, like the product's test page.

        A full payload (SPEC §8: ``data`` and one of ``account_id``, ``domain``,
        ``event``, ``region``, ``timestamp``), such as an FDK test_data file, is used whole.
        """
        self._require_handler()
        return self._fire_event(SCHEDULED_EVENT, payload, "payload")

    def _require_handler(self) -> None:
        if self.spec.scheduled_handler is None:
            raise AppError(f"No {SCHEDULED_EVENT} handler is registered in manifest.json")

    # -- recording and running ---------------------------------------------------------------

    def _begin(
        self,
        name: str | None,
        source: Source,
        data: dict[str, Any],
        due: datetime,
        fire_at: datetime,
        *,
        owned: bool = False,
    ) -> Started:
        """Record that a scheduled-event invocation starts (inside the caller's transaction).

        ``owned``: ``data`` was read from the state for this occurrence and nothing else
        holds it, so the payload takes it without a copy.
        """
        timestamp_ms = to_epoch_ms(due)
        spec = self._payload_spec()
        payload = spec.base_payload(data, timestamp_ms, copied=not owned)
        return self._start(name, source, SCHEDULED_EVENT, payload, timestamp_ms, fire_at, spec=spec)

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
    ) -> Started:
        """Record that an invocation starts; called inside the caller's *begin* transaction."""
        spec = spec or self.spec
        shown = runrecord.shown_payload(payload, spec, self.spec)
        started_at = datetime.now(UTC)
        invocation_id = self.store.begin_invocation(
            schedule=name,
            source=source,
            event=event,
            fire_at=fire_at,
            timestamp_ms=timestamp_ms,
            payload=shown,
            started_at=started_at,
        )
        return Started(
            invocation_id,
            name,
            source,
            fire_at,
            timestamp_ms,
            payload,
            shown,
            started_at,
            event=event,
            handler=handler,
            spec=spec,
        )

    def _run_once(self, started: Started, timeout: float | None = None) -> Invocation:
        """Run an invocation that no advance is waiting on, and write its outcome at once."""
        invocation = self._run(started, timeout)
        self._record_outcome()
        return invocation

    def _run(self, started: Started, timeout: float | None = None) -> Invocation:
        """Run the handler (its schedule calls see the committed *begin*).

        The outcome is kept in ``_unrecorded`` until ``_record_outcome`` writes it,
        which an advance does in the next occurrence's *begin* transaction, so a
        long advance costs one commit per occurrence. Until then the record says
        ``running``: a crash in between records it ``interrupted``, never twice.
        """
        self._handler_now = started.fire_at
        self._running = started
        try:
            result = self.sandbox.invoke(
                started.payload,
                fire_at=started.fire_at,
                handler=started.handler,
                timeout=timeout,
                on_sent=self._look_ahead if self._ahead_until is not None else None,
            )
            function = started.event if started.source == "function" else None
            result = naming_limits(result, memory_limit_mb=self.memory_limit_mb, function=function)
        except BaseException:
            # Ctrl-C (or a bug of ours) cut the run short: it has no outcome, and it has
            # fired, so it must not fire again.
            with self.store.transaction():
                self._record_outcome()
                self.store.interrupt_running()
            raise
        finally:
            self._handler_now = None
            self._running = None
        requests = [] if self._http is None else self._http.requests_for(started.id)
        try:
            invocation = runrecord.finished(started, result, self.spec, requests)
        except Exception as exc:  # a result we cannot record must still end the record
            detail = " ".join(str(exc).split())[:200]
            invocation = runrecord.finished(
                started,
                RunResult(
                    Outcome.ERROR,
                    f"fwsched could not record the handler's result ({type(exc).__name__}: "
                    f"{detail})",
                    None,
                    "",
                    None,
                    result.duration_ms,
                ),
                self.spec,
                requests,
            )
        self._unrecorded = invocation
        return invocation

    def _record_outcome(self) -> None:
        """Write the outcome of the last run, if it is not written yet."""
        invocation, self._unrecorded = self._unrecorded, None
        if invocation is None:
            return
        with self.store.transaction():
            self.store.finish_invocation(
                invocation.id,
                outcome=invocation.outcome,
                duration_ms=invocation.duration_ms,
                error=invocation.error,
                traceback=invocation.traceback,
                log=invocation.log,
                return_value=invocation.return_value,
                render=invocation.render,
                requests=invocation.requests,
            )
            http = self._http
            if http is not None and http.admissions != self._saved_admissions:
                # With the run that made them, so the next command counts them too.
                self.store.set_request_window(http.rate_window)
                self._saved_admissions = http.admissions
