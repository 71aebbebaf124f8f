"""The two public records: a ``Schedule`` as stored and an ``Invocation`` as it happened.

Both are immutable and their fields match the keys of the ``--json`` documents
(SPEC §5), so ``to_json()`` is a plain mapping of the fields with times as ISO
strings in UTC with ``Z``. Times are instants here: the text a schedule was
created with is what ``schedule.fetch`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from fwsched.durations import format_instant
from fwsched.outcome import Outcome

ScheduleKind = Literal["one-time", "recurring"]
# What started an invocation (SPEC §8): a schedule's occurrence, `trigger NAME`,
# `trigger --payload`, `trigger --event`, install, uninstall or a server function.
Source = Literal["schedule", "trigger", "payload", "event", "install", "uninstall", "function"]


@dataclass(frozen=True)
class Schedule:
    name: str
    kind: ScheduleKind
    schedule_at: datetime  # the instant given at creation or the last update, aware UTC
    next_fire_at: datetime
    repeat: dict[str, Any] | None  # {"time_unit", "frequency", "timezone"} for recurring ones
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "schedule_at": format_instant(self.schedule_at),
            "next_fire_at": format_instant(self.next_fire_at),
            "repeat": self.repeat,
            "data": self.data,
        }


@dataclass(frozen=True)
class Invocation:
    id: int
    schedule: str | None  # None when no schedule started it (`trigger --payload`, events, ...)
    fire_at: datetime  # the simulated time the handler started at
    timestamp: int  # the payload's timestamp, epoch milliseconds
    outcome: Outcome
    duration_ms: float | None
    error: str | None  # one line; None for ok
    log: str
    return_value: Any
    payload: dict[str, Any]  # secure iparams masked
    traceback: str | None = None
    started_at: datetime | None = None  # real wall-clock time the run began
    source: Source = "schedule"
    event: str | None = None  # the event's or server function's name
    # What the handler rendered (SPEC §8): {"status": 200, "response": ...} or
    # {"status", "message", "errorSource": "APP"}; None if it did not call render_data.
    render: dict[str, Any] | None = None
    # The requests the handler made (SPEC §10), secure iparams masked: method, url, status, ...
    requests: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "schedule": self.schedule,
            "fire_at": format_instant(self.fire_at),
            "timestamp": self.timestamp,
            "outcome": str(self.outcome),
            "duration_ms": self.duration_ms,
            "error": self.error,
            "log": self.log,
            "return_value": self.return_value,
            "payload": self.payload,
            "traceback": self.traceback,
            "started_at": format_instant(self.started_at) if self.started_at else None,
            "source": self.source,
            "event": self.event,
            "render": self.render,
            "requests": self.requests,
        }

    def __repr__(self) -> str:
        # Short and to the point: pytest shows it where `assert run.outcome == "ok"` fails
        # (and cuts what is longer than 240 characters), so it says how the run ended.
        what = self.schedule if self.schedule is not None else f"{self.event} ({self.source})"
        ended = str(self.outcome) + (f": {_cut(self.error, 90)}" if self.error else "")
        tail = "\n".join(self.log.rstrip("\n").splitlines()[-3:])
        log = f"; log {_cut(tail, 80, keep='end')!r}" if tail else ""
        return f"<Invocation #{self.id} {what} at {format_instant(self.fire_at)}: {ended}{log}>"

    def check(self, outcome: str = "ok") -> Invocation:
        """This invocation if it ended ``outcome`` (``ok`` by default), else an
        ``AssertionError`` with its error, traceback and output: ``sim.trigger("r").check()``."""
        __tracebackhide__ = True  # pytest: the failure points at the test's call
        if self.outcome == outcome:
            return self
        raise AssertionError(self.explain(f"ended {self.outcome}, not {outcome}"))

    def explain(self, headline: str) -> str:
        """A failure's report: the headline, then the error, output and traceback in full
        (in that order: pytest shows only the first lines of a long explanation)."""
        what = self.schedule if self.schedule is not None else f"{self.event} ({self.source})"
        parts = [f"invocation #{self.id} ({what}, fired {format_instant(self.fire_at)}) {headline}"]
        if self.error:
            parts.append(f"error: {self.error}")
        parts.append("output:\n" + (self.log.rstrip("\n") or "(none)"))
        if self.traceback:
            parts.append("traceback:\n" + self.traceback.rstrip("\n"))
        return "\n".join(parts)


def _cut(text: str, width: int, keep: str = "start") -> str:
    if len(text) <= width:
        return text
    return text[: width - 1] + "…" if keep == "start" else "…" + text[-(width - 1) :]
