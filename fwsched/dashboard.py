"""What ``fwsched run`` shows: a rich Live dashboard on a terminal, plain lines otherwise.

The driver thread owns the engine, so it builds a ``Snapshot`` of plain values
after every change and hands it over; the dashboard's refresh thread only reads
snapshots and the clock (which is thread-safe), so the simulated time ticks on
screen between changes without touching the engine.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from fwsched.render import (
    history_table,
    invocation_line,
    make_console,
    running_text,
    schedules_table,
)

RECENT = 8  # invocations shown (fewer on a short terminal)
SHOWN_SCHEDULES = 10
NOTICES = 4
REFRESH_PER_SECOND = 4


@dataclass(frozen=True)
class Snapshot:
    """The runner's state as plain values: safe to read from any thread."""

    app: str
    speed: float
    paused: bool
    reload: bool
    socket: str
    relaxed: bool
    schedules: list[dict[str, Any]] = field(default_factory=list)  # the soonest few
    schedule_count: int = 0
    recent: list[dict[str, Any]] = field(default_factory=list)  # newest last
    load_errors: list[str] = field(default_factory=list)
    installed: bool = True
    # The invocation a handler is running for: {"id", "schedule", "source", "event",
    # "fire_at" (ISO), "started_at" (epoch seconds, real time)}; None when idle.
    running: dict[str, Any] | None = None


class Display(Protocol):
    def start(self, snapshot: Snapshot) -> None: ...

    def update(self, snapshot: Snapshot) -> None: ...

    def invocation(self, invocation: Mapping[str, Any]) -> None: ...

    def notice(self, text: str, *, error: bool = False) -> None: ...

    def stop(self) -> None: ...


class PlainLog:
    """Without a terminal: one line per invocation on stdout, notices on stderr."""

    each_invocation = True  # the runner passes every new invocation to invocation()

    def __init__(self) -> None:
        self._errors: list[str] = []
        self._lock = threading.Lock()  # the runner's monitor thread updates too

    def start(self, snapshot: Snapshot) -> None:
        pace = "paused" if snapshot.paused else f"speed {snapshot.speed:g}x"
        self.notice(f"fwsched run: {snapshot.app} ({pace}); control socket {snapshot.socket}")
        self.update(snapshot)

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            if snapshot.load_errors == self._errors:
                return
            fixed = bool(self._errors) and not snapshot.load_errors
            self._errors = list(snapshot.load_errors)
        for error in snapshot.load_errors:
            self.notice(error, error=True)
        if fixed:  # a log reader must learn that the red lines above no longer hold
            self.notice("the app loads again: no load errors")

    def invocation(self, invocation: Mapping[str, Any]) -> None:
        # As wide as a time with milliseconds, so the lines of a runner stay aligned.
        _write(sys.stdout, invocation_line(invocation, times=TIME_FIELD))
        for request in invocation.get("requests") or ():
            _write(sys.stdout, f"    {request_text(request)}")

    def notice(self, text: str, *, error: bool = False) -> None:
        _write(sys.stderr, f"{'error: ' if error else ''}{text}")

    def stop(self) -> None:
        pass


TIME_FIELD = len("2026-01-05T09:00:00.000Z")


def _write(stream: Any, line: str) -> None:
    # Flushed line by line: a pipe would otherwise hold the lines back.
    stream.write(line + "\n")
    stream.flush()


class Dashboard:
    """On a terminal: clock and speed, the running handler, schedules, recent invocations,
    load errors in red, notices; as wide and as tall as the terminal."""

    each_invocation = False  # the snapshot's recent invocations are what it shows

    def __init__(self, now: Callable[[], datetime], console: Console | None = None) -> None:
        self._now = now
        self._console = console or make_console()
        # Lines longer than the panel wrap inside it (soft wrapping would cut them).
        self._console.soft_wrap = False
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._notices: deque[tuple[float, str, bool]] = deque(maxlen=NOTICES)
        self._live: Live | None = None
        self._echo = _QuietTerminal()
        self._stopped = False

    def start(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._echo.start()
        self._live = Live(
            _Renderable(self),
            console=self._console,
            refresh_per_second=REFRESH_PER_SECOND,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def invocation(self, invocation: Mapping[str, Any]) -> None:
        pass  # the snapshot's recent invocations show it

    def notice(self, text: str, *, error: bool = False) -> None:
        with self._lock:
            self._notices.append((time.time(), text, error))

    def stop(self) -> None:
        if self._live is not None:
            self._stopped = True
            self._live.refresh()  # the last screen shows the last snapshot and notices
            self._live.stop()
            self._live = None
        self._echo.stop()

    def render(self) -> RenderableType:
        with self._lock:
            snapshot = self._snapshot
            notices = list(self._notices)
        if snapshot is None:
            return Text("starting…")
        top: list[RenderableType] = [*self._header(snapshot)]
        if snapshot.running is not None:
            top.append(_running_line(snapshot.running))
        for error in snapshot.load_errors:
            top.append(Text(error, style="bold red"))
        requests = _requests_line(snapshot.recent)
        if requests is not None:
            top.append(requests)
        bottom = [_notice_line(*notice) for notice in notices]
        # Rows left for the two tables: the terminal's height less the panel's border, the
        # lines above and below, and each table's title and header.
        height = self._console.size.height
        spare = height - 2 - len(top) - len(bottom) - 4 - 1
        shown, recent = _share(spare, len(snapshot.schedules), len(snapshot.recent))
        parts = top + self._schedules(snapshot, shown) + self._recent(snapshot, recent) + bottom
        return Panel(
            Group(*parts),
            title=f"fwsched run · {_short_path(snapshot.app)}",
            title_align="left",
            subtitle="stopped" if self._stopped else "Ctrl-C to stop",
            subtitle_align="right",
        )

    def _header(self, snapshot: Snapshot) -> list[Text]:
        line = Text("simulated ", style="bold")
        # Whole seconds: a ticking clock that grows milliseconds now and then would jitter.
        line.append(f"{self._now():%Y-%m-%dT%H:%M:%S}Z", style="bold cyan")
        pace = (
            "paused (fwsched advance moves it)" if snapshot.paused else f"speed {snapshot.speed:g}x"
        )
        line.append(f"  {pace}")
        line.append(f"  reload {'on' if snapshot.reload else 'off'}", style="dim")
        flags = Text()
        if snapshot.relaxed:
            flags.append("relaxed (limits off until fwsched reset)", style="yellow")
        if not snapshot.installed:
            flags.append("  " if flags else "")
            flags.append("not installed (fwsched install)", style="yellow")
        return [line, flags] if flags else [line]

    def _schedules(self, snapshot: Snapshot, rows: int) -> list[RenderableType]:
        title = f"Schedules ({snapshot.schedule_count})"
        if not snapshot.schedules:
            return [Text(f"{title}: none yet (fwsched schedule create …)", style="dim")]
        shown = snapshot.schedules[:rows]
        parts: list[RenderableType] = [Text(title, style="bold"), schedules_table(shown)]
        hidden = snapshot.schedule_count - len(shown)
        if hidden > 0:
            parts.append(Text(f"… and {hidden} more (fwsched schedules)", style="dim"))
        return parts

    def _recent(self, snapshot: Snapshot, rows: int) -> list[RenderableType]:
        if not snapshot.recent:
            return [Text("Recent invocations: none yet", style="dim")]
        shown = snapshot.recent[len(snapshot.recent) - rows :] if rows > 0 else []
        parts: list[RenderableType] = [Text("Recent invocations", style="bold")]
        if shown:
            parts.append(history_table(shown))
        return parts


def _share(spare: int, schedules: int, recent: int) -> tuple[int, int]:
    """Rows for the schedules and the recent invocations when not all fit: half each, and
    what one table does not need goes to the other (at least one row each)."""
    if schedules + recent <= spare:
        return schedules, recent
    spare = max(spare, 2)
    shown = min(schedules, max(spare // 2, spare - recent, 1))
    return shown, max(min(recent, spare - shown), 1)


def request_text(request: Mapping[str, Any]) -> str:
    """``GET https://… 200 (stub)``: one request of an invocation (secure iparams masked)."""
    url = request.get("url") or f"template {request.get('template')}"
    return f"{request.get('method')} {url} {request.get('status')} ({request.get('answered_by')})"


def _requests_line(recent: Sequence[Mapping[str, Any]]) -> Text | None:
    """The newest invocation's requests (SPEC §10), in one line: the last one and a count."""
    for invocation in reversed(recent):
        requests = invocation.get("requests") or []
        if requests:
            line = Text(f"requests of #{invocation['id']}: ", style="bold")
            line.append(request_text(requests[-1]))
            if len(requests) > 1:
                line.append(f"  (+{len(requests) - 1} more: fwsched show {invocation['id']})")
            line.no_wrap, line.overflow = True, "ellipsis"
            return line
    return None


def _running_line(running: Mapping[str, Any]) -> Text:
    # Its fire time is the clock's: the clock stands still while a handler runs.
    line = Text("running ", style="bold yellow")
    line.append(running_text(running), style="bold")
    return line


def _notice_line(stamp: float, text: str, is_error: bool) -> Text:
    line = f"{time.strftime('%H:%M:%S', time.localtime(stamp))}  {text}"
    return Text(line, style="red" if is_error else "dim")


def _short_path(path: str) -> str:
    home = os.path.expanduser("~")
    if home not in ("", "/") and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home) :]
    return path


class _QuietTerminal:
    """No echo of typed keys (``^C`` included) while the dashboard is live.

    An echoed ``^C`` after the panel's last line moves the cursor down a line that the
    live display does not know of, and each redraw then leaves a copy of the panel's
    border in the scrollback. Ctrl-C still sends SIGINT (ISIG stays on).
    """

    def __init__(self) -> None:
        self._saved: list[Any] | None = None

    def start(self) -> None:
        try:
            import termios

            fd = sys.stdin.fileno()
            if not os.isatty(fd):
                return
            saved = termios.tcgetattr(fd)
            quiet = list(saved)
            quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
            self._saved = saved
        except (ImportError, OSError, ValueError, AttributeError):
            self._saved = None  # not a terminal we can quieten: nothing to restore

    def stop(self) -> None:
        if self._saved is None:
            return
        try:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, self._saved)
        except (ImportError, OSError, ValueError):
            pass
        self._saved = None


class _Renderable:
    """Rendered afresh on every refresh of the Live display."""

    def __init__(self, dashboard: Dashboard) -> None:
        self._dashboard = dashboard

    def __rich__(self) -> RenderableType:
        return self._dashboard.render()
