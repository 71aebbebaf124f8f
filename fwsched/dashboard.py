"""What ``fwsched run`` shows: a rich Live dashboard on a terminal, plain lines otherwise.

The driver thread owns the engine, so it builds a ``Snapshot`` of plain values
after every change and hands it over; the dashboard's refresh thread only reads
snapshots and the clock (which is thread-safe), so the simulated time ticks on
screen between changes without touching the engine.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from fwsched.render import history_table, invocation_line, make_console, schedules_table

RECENT = 8  # invocations shown
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


class Display(Protocol):
    def start(self, snapshot: Snapshot) -> None: ...

    def update(self, snapshot: Snapshot) -> None: ...

    def invocation(self, invocation: Mapping[str, Any]) -> None: ...

    def notice(self, text: str, *, error: bool = False) -> None: ...

    def stop(self) -> None: ...


class PlainLog:
    """Without a terminal: one line per invocation on stdout, notices on stderr."""

    def __init__(self) -> None:
        self._errors: list[str] = []

    def start(self, snapshot: Snapshot) -> None:
        pace = "paused" if snapshot.paused else f"speed {snapshot.speed:g}x"
        self.notice(f"fwsched run: {snapshot.app} ({pace}); control socket {snapshot.socket}")
        self.update(snapshot)

    def update(self, snapshot: Snapshot) -> None:
        if snapshot.load_errors != self._errors:
            self._errors = list(snapshot.load_errors)
            for error in self._errors:
                self.notice(error, error=True)

    def invocation(self, invocation: Mapping[str, Any]) -> None:
        _write(sys.stdout, invocation_line(invocation))

    def notice(self, text: str, *, error: bool = False) -> None:
        _write(sys.stderr, f"{'error: ' if error else ''}{text}")

    def stop(self) -> None:
        pass


def _write(stream: Any, line: str) -> None:
    # Flushed line by line: a pipe would otherwise hold the lines back.
    stream.write(line + "\n")
    stream.flush()


class Dashboard:
    """On a terminal: clock and speed, schedules, recent invocations, load errors in red."""

    def __init__(self, now: Callable[[], datetime], console: Console | None = None) -> None:
        self._now = now
        self._console = console or make_console()
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._notices: deque[tuple[float, str, bool]] = deque(maxlen=NOTICES)
        self._live: Live | None = None

    def start(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
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
            self._live.stop()
            self._live = None

    def render(self) -> RenderableType:
        with self._lock:
            snapshot = self._snapshot
            notices = list(self._notices)
        if snapshot is None:
            return Text("starting…")
        parts: list[RenderableType] = [self._header(snapshot)]
        for error in snapshot.load_errors:
            parts.append(Text(error, style="bold red"))
        title = f"Schedules ({snapshot.schedule_count})"
        if snapshot.schedules:
            parts.append(schedules_table(snapshot.schedules, title=title))
            hidden = snapshot.schedule_count - len(snapshot.schedules)
            if hidden > 0:
                parts.append(Text(f"… and {hidden} more (fwsched schedules)", style="dim"))
        else:
            parts.append(Text(f"{title}: none yet (fwsched schedule create …)", style="dim"))
        parts.append(Text("Recent invocations", style="bold"))
        if snapshot.recent:
            parts.append(history_table(snapshot.recent, tail=True))
        else:
            parts.append(Text("none yet", style="dim"))
        for stamp, text, is_error in notices:
            line = f"{time.strftime('%H:%M:%S', time.localtime(stamp))}  {text}"
            parts.append(Text(line, style="red" if is_error else "dim"))
        return Panel(
            Group(*parts),
            title=f"fwsched run · {snapshot.app}",
            title_align="left",
            subtitle="Ctrl-C to stop",
            subtitle_align="right",
        )

    def _header(self, snapshot: Snapshot) -> Text:
        text = Text("simulated time ", style="bold")
        # Whole seconds: a ticking clock that grows milliseconds now and then would jitter.
        text.append(f"{self._now():%Y-%m-%dT%H:%M:%S}Z", style="bold cyan")
        pace = "paused (fwsched advance moves it)" if snapshot.paused else f"{snapshot.speed:g}x"
        text.append(f"   speed {pace}")
        if snapshot.relaxed:
            text.append("   relaxed", style="yellow")
        if not snapshot.installed:
            text.append("   not installed", style="yellow")
        text.append(f"   reload {'on' if snapshot.reload else 'off'}", style="dim")
        return text


class _Renderable:
    """Rendered afresh on every refresh of the Live display."""

    def __init__(self, dashboard: Dashboard) -> None:
        self._dashboard = dashboard

    def __rich__(self) -> RenderableType:
        return self._dashboard.render()
