"""``fwsched run``: the live runner that owns an app's engine while it runs.

The driver loop runs on the main thread and is the only code that touches the
engine (which is not thread-safe). Everything else reaches it through the
``Mailbox``: the control server's connection threads post ``Request``s, the
reloader thread posts ``Reload``s, and a signal posts a wake-up. Between those,
the driver sleeps until the next occurrence falls due on the running clock,
never longer than a bound, and never spins.

The clock runs no further than the next occurrence until the driver has fired it
(and stands still while a command or handler runs), so every occurrence fires at
exactly its due time, however late the driver wakes (SPEC §5). Only one already
overdue when the runner started fires at the current time.

The driver is busy for as long as a handler runs (up to its timeout) or a command
fires. Meanwhile read-only commands are answered on the control server's threads
from a ``StateReader`` (a read-only view of the committed state), the others wait
in the mailbox, and the monitor thread refreshes the display from the same view
(the running handler with its elapsed time, schedules fired by a long advance).

Stopping (Ctrl-C, SIGTERM, ``stop()``): the handler that is running finishes,
the clock is saved, the socket and the registry entry are removed. A second
Ctrl-C interrupts the running handler (recorded ``interrupted``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, cast

from fwsched import control
from fwsched.app import Redacting
from fwsched.dashboard import RECENT, SHOWN_SCHEDULES, Display, Snapshot
from fwsched.durations import format_instant
from fwsched.engine import DEFAULT_TIMEOUT, Simulator
from fwsched.errors import AppError, FwschedError
from fwsched.operations import Document, StateView, execute, is_read_only
from fwsched.platform import events
from fwsched.reader import StateReader
from fwsched.reloader import Reloader
from fwsched.session import state_of

IDLE_WAIT = 5.0  # seconds the driver sleeps at most when nothing is due
SAVE_INTERVAL = 2.0  # seconds between saves of a running clock
MIN_WAIT = 0.001  # the clock's µs rounding can leave a due time a hair ahead: don't spin
REFRESH_INTERVAL = 0.2  # seconds between display refreshes while firing a burst
MONITOR_INTERVAL = 0.25  # seconds between the monitor's looks at a busy driver
JOIN_BOUND = 5.0


@dataclass(frozen=True)
class Reload:
    """Files of the app changed."""

    changes: frozenset[Path]


class Mailbox:
    """What the driver thread must handle, plus a pipe that ends its wait early."""

    def __init__(self) -> None:
        self._items: deque[control.Request | Reload] = deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def put(self, item: control.Request | Reload) -> None:
        self._items.append(item)  # deque.append is atomic: no lock needed
        self.wake()

    def wake(self) -> None:
        """Also safe in a signal handler: one non-blocking write."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")  # a full pipe is already a wake-up

    def wait(self, timeout: float) -> None:
        if self._items:
            return
        select.select([self._wake_r], [], [], timeout)
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_r, 4096):
                pass

    def take(self) -> list[control.Request | Reload]:
        items = []
        while self._items:
            items.append(self._items.popleft())
        return items

    def close(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


class LiveRunner:
    """Runs ``sim`` in real time at ``speed`` until stopped; serves the control socket."""

    def __init__(
        self,
        sim: Simulator,
        display: Display,
        *,
        speed: float = 1.0,
        paused: bool = False,
        reload: bool = True,
        fixed_timeout: bool = False,
        handle_signals: bool = True,
        install: bool = False,
    ) -> None:
        self.sim = sim
        # Everything shown goes through app.redact, with the secrets as of the last refresh.
        self._secrets = sim.secret_values()
        self.display = cast(Display, Redacting(display, lambda: self._secrets))
        self.speed = speed
        self.paused = paused
        self.reload = reload
        self.fixed_timeout = fixed_timeout  # --timeout given: a reload keeps it
        self.handle_signals = handle_signals
        self.install = install  # install an app that was never installed, first (SPEC §8)
        self.socket = control.socket_path(sim.spec.root)
        self._mailbox = Mailbox()
        self._stopping = False
        self._cleaning = False
        self._load_errors: list[str] = []
        self._manifest_error: str | None = None
        self._last_id = 0
        self._previous_handlers: dict[int, Any] = {}
        self._reader: StateReader | None = None
        # What the driver is doing, and since when (monotonic); None while it waits.
        # Written by the driver only; the monitor and the control threads read it.
        self._busy: tuple[str, float] | None = None
        self._signal: str | None = None  # the signal that asked to stop
        self._done = threading.Event()  # ends the monitor

    # -- control from outside ---------------------------------------------------------

    def stop(self) -> None:
        """Stop after the running handler (thread-safe)."""
        self._stopping = True
        self._mailbox.wake()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._cleaning:
            return
        if self._stopping:
            raise KeyboardInterrupt  # the second Ctrl-C: interrupt the running handler
        # No display call here: this interrupts the driver, which may hold the display's
        # lock. The monitor thread says what happens next.
        self._signal = signal.Signals(signum).name
        self.stop()

    # -- the run ----------------------------------------------------------------------

    def run(self) -> None:
        sim = self.sim
        self._install_signals()
        sim.clock.hold(sim.now)  # until the loop runs: start-up must not make anything overdue
        sim.set_speed(0.0 if self.paused else self.speed)
        latest = sim.history(limit=1)
        self._last_id = latest[-1].id if latest else 0
        if sim.store.label != ":memory:":
            self._reader = StateReader.open(Path(sim.store.label), sim.clock, sim.spec)
        server = control.ControlServer(
            self.socket, self._submit, busy=self._busy_text, refuse=sim.runs_in_sandbox
        )
        reloader = Reloader(sim.spec.root) if self.reload else None
        watcher: threading.Thread | None = None
        monitor = threading.Thread(target=self._monitor, name="fwsched-monitor", daemon=True)
        entry: Path | None = None
        try:
            if reloader is not None:
                reloader.start()  # before the socket answers: no edit after that is missed
            server.start()
            entry = control.register(sim.spec.root, self.socket)
            if reloader is not None:
                watcher = threading.Thread(
                    target=self._watch, args=(reloader,), name="fwsched-reload", daemon=True
                )
                watcher.start()
            self.display.start(self._snapshot())
            monitor.start()
            self._check_app()
            if self.install:
                self._first_install()
            self._refresh()
            self._loop()
        except KeyboardInterrupt:
            # Only a second signal gets here: the engine recorded the handler interrupted.
            self.display.notice("the running handler was interrupted", error=True)
        finally:
            self._cleaning = True
            self._busy = None
            self._done.set()
            if monitor.is_alive():
                monitor.join(JOIN_BOUND)
            if entry is not None:
                control.unregister(entry)
            server.close()
            pending = [item for item in self._mailbox.take() if isinstance(item, control.Request)]
            control.reject_pending(pending)
            server.join()
            if reloader is not None:
                reloader.stop()
            if watcher is not None:
                watcher.join(JOIN_BOUND)
            if reloader is not None:
                reloader.close()  # also when the watcher never started iterating
            sim.set_speed(0.0)
            sim.clock.hold(None)
            sim.save_clock()
            self.display.notice(self._stop_line())
            self._refresh()
            self.display.stop()
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self._mailbox.close()
            self._restore_signals()

    def _stop_line(self) -> str:
        cause = f" ({self._signal})" if self._signal else ""
        # Short enough for the dashboard's last screen at 80 columns.
        return f"stopped{cause}; the clock is saved at {format_instant(self.sim.now)}"

    def _loop(self) -> None:
        sim, clock = self.sim, self.sim.clock
        last_save = last_refresh = time.monotonic()
        dirty = False
        while not self._stopping:
            # Stand still while commands run, so what they schedule is not already passed.
            clock.hold(clock.now())
            if self._serve_mailbox():
                dirty = True
            if self._stopping:
                break
            # Run on to the next occurrence and no further: it fires at its due time.
            clock.hold(sim.next_fire_time())
            with self._doing("handler"):
                fired = sim.fire_next(sim.now)
            if fired is not None:
                dirty = True
                if time.monotonic() - last_refresh < REFRESH_INTERVAL:
                    continue  # more may be due: fire them before showing anything
            if dirty:
                self._refresh()
                dirty, last_refresh = False, time.monotonic()
                continue
            self._mailbox.wait(self._wait_time())
            if not sim.clock.paused and time.monotonic() - last_save >= SAVE_INTERVAL:
                sim.save_clock()
                last_save = time.monotonic()

    def _wait_time(self) -> float:
        """Until the next occurrence on the running clock, within bounds."""
        bound = SAVE_INTERVAL if not self.sim.clock.paused else IDLE_WAIT
        next_fire = self.sim.next_fire_time()
        if next_fire is None:
            return bound
        until = self.sim.clock.seconds_until(next_fire)
        if until is None:  # paused: only a command moves the clock
            return bound
        return min(bound, max(until, MIN_WAIT))

    @contextlib.contextmanager
    def _doing(self, what: str) -> Iterator[None]:
        self._busy = (what, time.monotonic())
        try:
            yield
        finally:
            self._busy = None

    # -- requests ---------------------------------------------------------------------

    def _submit(self, request: control.Request) -> None:
        """On a control server thread: answer a read-only command from the state at once,
        queue the others for the driver (which may be running a handler for a while)."""
        reader = self._reader
        if reader is None or not is_read_only(request.op, request.args):
            self._mailbox.put(request)
            return
        try:
            with reader.read() as view:
                state = state_of(view)
                document = execute(view, request.op, request.args)
                if request.op == "status":
                    self._live_status(document, view)
        except Exception as exc:
            request.fail(exc)
            return
        request.answer(document, state)

    def _busy_text(self) -> str | None:
        """What keeps a queued command waiting (sent in its heartbeats)."""
        busy = self._busy
        if busy is None:
            return None
        reader = self._reader
        if reader is not None:
            with reader.read():
                running = reader.running()
            if running is not None:
                return "the running handler"
        if busy[0] == "handler":
            return "the running handler"
        if busy[0] == "reload":
            return "the app to reload"
        return f"another command ({busy[0]})"

    def _live_status(self, document: Document, view: StateView | None) -> None:
        document["live"] = True
        runner: dict[str, Any] = {
            "pid": os.getpid(),
            "speed": self.speed,
            "paused": self.paused,
            "socket": str(self.socket),
        }
        running = view.running() if isinstance(view, StateReader) else None
        if running is not None:
            runner["running"] = _running_json(running)
        document["runner"] = runner

    def _serve_mailbox(self) -> bool:
        items = self._mailbox.take()
        reloads = [item for item in items if isinstance(item, Reload)]
        if reloads:
            self._reload(frozenset().union(*(item.changes for item in reloads)))
        for item in items:
            if isinstance(item, control.Request):
                self._execute(item)
        return bool(items)

    def _execute(self, request: control.Request) -> None:
        if request.cancelled.is_set():
            return  # its client went away before it started
        request.started.set()

        def progress(fields: Document) -> None:
            request.progress(fields)
            if self._stopping:  # end a long advance between two invocations
                raise FwschedError(
                    f"the live runner was stopped during the command, after "
                    f"{fields.get('fired')} invocation(s), at {fields.get('at')}"
                )
            if request.cancelled.is_set():  # its client went away (Ctrl-C): stop here too
                raise FwschedError(
                    f"cancelled by its client after {fields.get('fired')} invocation(s), "
                    f"at {fields.get('at')}"
                )

        try:
            with self._doing(request.op):
                document = execute(self.sim, request.op, request.args, progress)
        except KeyboardInterrupt:
            request.fail(FwschedError("the live runner was stopped during the command"))
            raise
        except Exception as exc:
            request.fail(exc, state_of(self.sim))
            return
        if request.op == "status":
            self._live_status(document, None)
        request.answer(document, state_of(self.sim))

    # -- reloading --------------------------------------------------------------------

    def _watch(self, reloader: Reloader) -> None:
        for changes in reloader:
            self._mailbox.put(Reload(frozenset(changes)))

    def _reload(self, changes: frozenset[Path]) -> None:
        sim = self.sim
        root = sim.spec.root
        names = ", ".join(sorted(str(path.relative_to(root)) for path in changes))
        with self._doing("reload"):
            try:
                sim.reload()
            except AppError as exc:
                self._manifest_error = str(exc)
            else:
                self._manifest_error = None
            if not self.fixed_timeout:
                sim.timeout = float(sim.spec.timeout or DEFAULT_TIMEOUT)
            self._check_app()
        if self._load_errors:  # the errors themselves are shown in red
            self.display.notice(f"reload failed: {names} changed; the app has errors", error=True)
        else:
            self.display.notice(f"reloaded: {names} changed")

    def _check_app(self) -> None:
        """Load server.py now (warming the sandbox) and collect what is wrong with the app."""
        sim = self.sim
        errors = []
        if self._manifest_error is not None:
            errors.append(f"{self._manifest_error} (the last good settings stay in force)")
        report = sim.sandbox.inspect()
        if not report.ok:
            errors.append(f"server.py: {report.error}")
        else:
            errors += [str(problem) for problem in sim.spec.check_exports(report.exports)]
        if sim.spec.scheduled_handler is None:
            errors.append("No onScheduledEvent handler is registered in manifest.json")
        self._load_errors = errors

    def _first_install(self) -> None:
        """Install an app that was never installed, so one that creates its schedules in
        onAppInstall starts by itself. A failure is one line and the runner carries on;
        the next start (or `fwsched install`) tries again."""
        sim = self.sim
        if sim.ever_installed:
            return
        try:
            invocation = sim.install()
        except FwschedError as exc:  # e.g. a broken test_data file; not installed either way
            reason: str | None = str(exc)
        else:
            reason = events.install_failure(invocation)
        if reason is None:
            fired = "" if invocation is None else " (fired onAppInstall)"
            self.display.notice(f"installed the app{fired}")
        else:
            self.display.notice(
                f"{reason}; running on, not installed (fwsched install tries again)", error=True
            )

    # -- display ----------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        """What the display shows; from the reader when there is one (any thread may ask)."""
        reader = self._reader
        if reader is None:
            return self._snapshot_of(self.sim, None)
        with reader.read() as view:
            return self._snapshot_of(view, view.running())

    def _snapshot_of(self, view: StateView, running: dict[str, Any] | None) -> Snapshot:
        schedules = view.schedules()
        return Snapshot(
            app=str(view.spec.root),
            speed=self.speed,
            paused=self.paused,  # the runner's setting: stopping pauses the clock itself
            reload=self.reload,
            socket=str(self.socket),
            relaxed=not view.strict,
            installed=view.installed,
            schedules=[schedule.to_json() for schedule in schedules[:SHOWN_SCHEDULES]],
            schedule_count=len(schedules),
            recent=[invocation.to_json() for invocation in view.history(limit=RECENT)],
            load_errors=list(self._load_errors),
            running=None if running is None else _running_json(running),
        )

    def _refresh(self) -> None:
        self._secrets = self.sim.secret_values()  # an install may have brought new ones
        if getattr(self.display, "each_invocation", True):
            for invocation in self.sim.history(after_id=self._last_id):
                self.display.invocation(invocation.to_json())
                self._last_id = invocation.id
        else:  # the snapshot's recent ones show them: a long advance is not read back whole
            latest = self.sim.history(limit=1)
            if latest:
                self._last_id = max(self._last_id, latest[-1].id)
        self.display.update(self._snapshot())

    # -- the monitor ------------------------------------------------------------------

    def _monitor(self) -> None:
        """While the driver is busy: keep the display current and say what a stop waits for.

        The driver cannot refresh the display while a handler runs or an advance fires;
        this thread does, from the reader, at least twice a second.
        """
        announced = False
        while not self._done.wait(MONITOR_INTERVAL):
            busy = self._busy
            if self._stopping and not announced and busy is not None:
                announced = True
                what = "handler" if self._busy_text() == "the running handler" else "command"
                self.display.notice(
                    f"stopping after the running {what} (Ctrl-C again to stop it now)"
                )
            # A reload is short, and its notice should come before the errors it found.
            if busy is None or busy[0] == "reload" or self._reader is None:
                continue
            try:
                snapshot = self._snapshot()
            except Exception:  # a display refresh must never end the runner
                continue
            if self._busy is not None:  # else the driver has refreshed (or will) itself
                self.display.update(snapshot)

    # -- signals ----------------------------------------------------------------------

    def _install_signals(self) -> None:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _restore_signals(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()


def _running_json(running: dict[str, Any]) -> dict[str, Any]:
    """``Store.running()`` as plain JSON values (``started_at`` in epoch seconds)."""
    started = running.get("started_at")
    return {
        **running,
        "fire_at": format_instant(running["fire_at"]),
        "started_at": None if started is None else started.timestamp(),
    }
