"""Human output of the command line, from the JSON documents that ``operations`` answers.

Plain one-line formats (``invocation_line``) are shared with ``fwsched run``'s
output; tables and panels use rich, which writes colour only to a terminal and
honours ``NO_COLOR``. ``--json`` output does not come through here at all.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from fwsched.layout import Column, Grid

OUTCOME_STYLES = {
    "ok": "green",
    "error": "red",
    "timeout": "yellow",
    "crashed": "bold red",
    "load-error": "red",
    "interrupted": "yellow",
}
PREVIEW = 48  # characters of a data preview in a table
PIPE_WIDTH = 160  # columns when the output is not a terminal (rich would assume 80)


def make_console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr): colour and width only when it is a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not _isatty(stream) and "COLUMNS" not in os.environ:
        width = PIPE_WIDTH
    # soft_wrap: a line of output stays one line (for grep); tables still fit the width.
    return Console(stderr=stderr, highlight=False, width=width, soft_wrap=True)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# -- small formats ------------------------------------------------------------------------


def duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def preview(value: Any, width: int = PREVIEW) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def repeat_text(repeat: Mapping[str, Any] | None) -> str:
    if not repeat:
        return "-"
    zone = repeat.get("timezone") or "UTC"
    frequency, unit = repeat.get("frequency"), str(repeat.get("time_unit"))
    text = f"every {frequency} {unit[:-1] if frequency == 1 else unit}"
    return text if zone == "UTC" else f"{text} ({zone})"


def first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def last_line(text: str | None) -> str:
    for line in reversed((text or "").splitlines()):
        if line.strip():
            return line.strip()
    return ""


def schedule_label(invocation: Mapping[str, Any]) -> str:
    """What ran: a schedule's name, or the event or function with what started it."""
    name, source = invocation.get("schedule"), invocation.get("source")
    if name is not None:
        return f"{name} (trigger)" if source == "trigger" else str(name)
    if source in ("event", "install", "uninstall", "function"):
        return f"{invocation.get('event')} ({source})"
    return "(payload)"


def invocation_summary(invocation: Mapping[str, Any], *, tail: bool = False) -> str:
    """What an invocation said: its error if it failed, else the first (or last) log line."""
    if invocation.get("outcome") != "ok" and invocation.get("error"):
        return str(invocation["error"])
    render = invocation.get("render")
    if render and render.get("status") != 200:  # a function or setup event answered an error
        return f"render_data error {render.get('status')}: {render.get('message')}"
    log = invocation.get("log")
    return last_line(log) if tail else first_line(log)


TIME_WIDTH = len("2026-01-05T09:00:00Z")
TIME_WIDTH_MS = len("2026-01-05T09:00:00.000Z")


def time_width(invocations: Iterable[Mapping[str, Any]]) -> int:
    """The width of the fire-time field that keeps a batch of lines aligned (milliseconds
    appear only when there are some)."""
    return max((len(str(i["fire_at"])) for i in invocations), default=TIME_WIDTH)


def invocation_line(invocation: Mapping[str, Any], *, times: int = TIME_WIDTH) -> str:
    """``#ID  FIRE_AT  SCHEDULE  OUTCOME  DURATION  first log line`` (or the error).

    ``times`` is the width of the fire-time field (``time_width`` of the batch)."""
    return invocation_text(invocation, times=times).plain


def invocation_text(invocation: Mapping[str, Any], *, times: int = TIME_WIDTH) -> Text:
    """``invocation_line`` with the outcome coloured."""
    outcome = str(invocation["outcome"])
    text = Text(
        f"#{invocation['id']:<4} {invocation['fire_at']:<{times}}  "
        f"{schedule_label(invocation):<20}  "
    )
    text.append(f"{outcome:<11}", style=OUTCOME_STYLES.get(outcome, ""))
    text.append(f" {duration(invocation.get('duration_ms')):>8}  {invocation_summary(invocation)}")
    text.rstrip()
    return text


def outcome_counts(invocations: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for invocation in invocations:
        outcome = str(invocation["outcome"])
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def advance_summary(document: Mapping[str, Any]) -> str:
    invocations = document["invocations"]
    if not invocations:
        fired = "no invocations"
    else:
        counts = ", ".join(f"{n} {o}" for o, n in outcome_counts(invocations).items())
        noun = "invocation" if len(invocations) == 1 else "invocations"
        fired = f"{len(invocations)} {noun} ({counts})"
    return f"Advanced from {document['from']} to {document['to']}: {fired}"


# -- tables and panels --------------------------------------------------------------------


def schedules_table(schedules: Sequence[Mapping[str, Any]]) -> Grid:
    """Name, kind, next fire time and repeat stay whole; the data preview shrinks first."""
    grid = Grid(
        [
            Column("name", fold=True),
            Column("kind"),
            Column("next fire"),
            Column("repeat", shrink=2),
            Column("data", shrink=1),
        ]
    )
    for schedule in schedules:
        grid.add_row(
            str(schedule["name"]),
            str(schedule["kind"]),
            str(schedule["next_fire_at"]),
            repeat_text(schedule.get("repeat")),
            preview(schedule.get("data")),
        )
    return grid


def history_table(invocations: Sequence[Mapping[str, Any]]) -> Grid:
    """id, time, schedule, outcome and duration stay whole (``fwsched show ID`` needs the id);
    the log column, the last line of the output as the dashboard shows it, shrinks."""
    grid = Grid(
        [
            Column("id", justify="right"),
            Column("fire time"),
            Column("schedule", fold=True),
            Column("outcome"),
            Column("duration", justify="right"),
            Column("log", shrink=1),
        ]
    )
    for invocation in invocations:
        outcome = str(invocation["outcome"])
        grid.add_row(
            str(invocation["id"]),
            str(invocation["fire_at"]),
            schedule_label(invocation),
            (outcome, OUTCOME_STYLES.get(outcome, "")),
            duration(invocation.get("duration_ms")),
            invocation_summary(invocation, tail=True),
        )
    return grid


def print_grid(console: Console, grid: Grid) -> None:
    """A grid at the console's width; without colour, as plain text (fast for long histories)."""
    if console.no_color or console.color_system is None:
        console.file.write(grid.plain(console.width) + "\n")
        console.file.flush()
    else:
        console.print(grid)


def print_invocation(console: Console, invocation: Mapping[str, Any]) -> None:
    """``fwsched show``: one invocation in full."""
    outcome = str(invocation["outcome"])
    header = Text(f"Invocation {invocation['id']}  {schedule_label(invocation)}  ", style="bold")
    header.append(outcome, style=OUTCOME_STYLES.get(outcome, ""))
    console.print(header)
    started_at = invocation.get("started_at")
    fields = [
        ("fire_at", invocation.get("fire_at")),
        ("timestamp", _timestamp_text(invocation.get("timestamp"))),
        ("source", invocation.get("source")),
        ("event", invocation.get("event")),
        # The only wall-clock time here; every other time is simulated.
        ("started_at", f"{started_at} (real time)" if started_at else None),
        ("duration", precise_duration(invocation.get("duration_ms"))),
        ("error", invocation.get("error")),
        ("return_value", json.dumps(invocation.get("return_value"), ensure_ascii=False)),
    ]
    if invocation.get("render") is not None:
        fields.append(("render", json.dumps(invocation["render"], ensure_ascii=False)))
    for label, value in fields:
        if value is not None:
            # Not markup: an error or a value may hold brackets ("[[request.stubs]]").
            console.print(f"  {label:<13} {value}", markup=False)
    _section(
        console, "payload", json.dumps(invocation.get("payload"), indent=2, ensure_ascii=False)
    )
    if invocation.get("requests"):
        lines = "\n".join(request_line(request) for request in invocation["requests"])
        _section(console, "requests", lines)
    _section(console, "output", invocation.get("log") or "(none)")
    if invocation.get("traceback"):
        _section(console, "traceback", str(invocation["traceback"]))


def request_line(request: Mapping[str, Any]) -> str:
    """One request of ``show`` (SPEC §10): ``METHOD URL STATUS (answered by ..., ...)``.

    The URL is the recorded one, secure iparams already masked."""
    attempts = int(request.get("attempts") or 0)
    details = [
        f"answered by {request.get('answered_by')}",
        f"{attempts} attempt{'' if attempts == 1 else 's'}",
        duration(request.get("duration_ms")),
    ]
    if request.get("template"):
        details.append(f"template {request['template']}")
    method, url = request.get("method") or "?", request.get("url") or "(no URL)"
    return f"{method} {url}  {request.get('status')}  ({', '.join(details)})"


def precise_duration(ms: float | None) -> str:
    """``show``'s duration: to 0.1 ms, however long (tables round; this one does not)."""
    return "-" if ms is None else f"{ms:.1f} ms"


def _timestamp_text(timestamp: Any) -> str | None:
    """The payload's epoch milliseconds, and the instant they name."""
    if timestamp is None:
        return None
    from datetime import UTC, datetime

    from fwsched.durations import format_instant

    try:
        instant = datetime.fromtimestamp(int(timestamp) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(timestamp)
    return f"{timestamp} ({format_instant(instant)})"


def _section(console: Console, title: str, body: str) -> None:
    console.print(Text(title, style="bold"))
    for line in body.rstrip("\n").splitlines() or [""]:
        console.print(Text("  " + line))


def running_text(running: Mapping[str, Any]) -> str:
    """``#12 digest for 5.0 s``: the invocation a live runner's handler is running for."""
    import time

    started = running.get("started_at")
    elapsed = "" if started is None else f" for {duration((time.time() - float(started)) * 1000)}"
    return f"#{running['id']} {schedule_label(running)}{elapsed}"


def print_status(console: Console, status: Mapping[str, Any]) -> None:
    runner = status.get("runner") or {}
    if status.get("live"):
        pace = "paused" if runner.get("paused") else f"speed {runner.get('speed', 1):g}x"
        live = f"yes (pid {runner.get('pid')}, {pace})"
        running = runner.get("running")
        if running:
            live += f"; running {running_text(running)}"
    else:
        live = "no"
    mode = (
        "relaxed (platform limits off until fwsched reset)" if status.get("relaxed") else "strict"
    )
    next_fire = status.get("next_fire_at")
    schedules = str(status["schedules"]) + (f" (next fires {next_fire})" if next_fire else "")
    rows = [
        ("app", status["app"]),
        ("live runner", live),
        ("simulated now", status["now"]),
        ("schedules", schedules),
        ("invocations", status["invocations"]),
        ("installed", "yes" if status.get("installed") else "no (fwsched install)"),
        ("state file", status["state_file"]),
        ("mode", mode),
    ]
    for label, value in rows:
        console.print(Text(f"{label:<14} {value}"))


# -- the progress of a long advance -------------------------------------------------------


class AdvanceProgress:
    """A progress bar on stderr that appears only once an advance has run for ``delay`` s.

    ``update`` receives the ``progress`` documents of ``operations``; they come from
    the thread running the advance (or reading the socket), the bar's appearance
    from a timer thread, hence the lock.
    """

    def __init__(self, *, enabled: bool, delay: float = 1.0) -> None:
        self._enabled = enabled
        self._delay = delay
        self._lock = threading.Lock()
        self._fraction = 0.0
        self._label = "advancing"
        self._progress: Progress | None = None
        self._task: Any = None
        self._timer: threading.Timer | None = None

    def __enter__(self) -> AdvanceProgress:
        if self._enabled:
            self._timer = threading.Timer(self._delay, self._show)
            self._timer.daemon = True
            self._timer.start()
        return self

    def update(self, fields: Mapping[str, Any]) -> None:
        with self._lock:
            self._fraction = float(fields.get("fraction") or 0.0)
            self._label = f"{fields.get('fired', 0)} fired, at {fields.get('at', '')}"
            if self._progress is not None:
                self._progress.update(
                    self._task, completed=self._fraction * 1000, description=self._label
                )

    def _show(self) -> None:
        with self._lock:
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                console=make_console(stderr=True),
                transient=True,
            )
            self._task = progress.add_task(
                self._label, total=1000, completed=int(self._fraction * 1000)
            )
            progress.start()
            self._progress = progress

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join(5.0)
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
