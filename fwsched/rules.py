"""The platform's rules for the schedule API (SPEC §2), as pure functions.

Each ``check_*`` function takes the raw request, a read-only view of the
current schedules and the call's context (simulated now, handler registered,
strict or relaxed), and either returns what to store or raises
``ScheduleError``. Nothing here writes: the caller applies the result, so a
failed call changes nothing by construction.

The checks run in the table's order and the first failure wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from fwsched.durations import parse_instant
from fwsched.records import ScheduleKind
from fwsched.recurrence import Repeat, known_timezone
from fwsched.sdk import ScheduleError

MAX_ONE_TIME = 1000
MAX_RECURRING = 1
MAX_NAME_LENGTH = 30
MAX_DATA_BYTES = 4096
MIN_LEAD = timedelta(minutes=5)
MAX_LEAD = timedelta(days=365)
MAX_FREQUENCY = {"minutes": 60, "hours": 24, "days": 30}

RESPONSES = {
    "create": {"status": 200, "message": "Schedule created"},
    "update": {"status": 200, "message": "Schedule updated"},
    "delete": {"status": 200, "message": "Schedule deleted"},
}


class Snapshot(Protocol):
    """What the rules need to know about the schedules that exist now (the store provides it)."""

    def kind_of(self, name: str) -> ScheduleKind | None: ...

    def count(self, kind: ScheduleKind) -> int: ...


@dataclass(frozen=True)
class Context:
    now: datetime  # simulated time of the call (in a handler: its occurrence's time)
    has_handler: bool  # the app registers onScheduledEvent
    strict: bool = True  # False (--relaxed) lifts rules 12, 13, 17 and 18
    # True for calls from a handler running the occurrence at ``now``: that occurrence has
    # fired, so a recurring series created or updated there starts strictly after it
    # (otherwise a handler that updates its own schedule would fire again forever).
    in_handler: bool = False


@dataclass(frozen=True)
class ScheduleSpec:
    """A validated create/update request: what the store keeps."""

    name: str
    data: dict[str, Any]
    schedule_at: str  # as given, so fetch returns it unchanged
    at: datetime  # schedule_at parsed, aware UTC
    repeat: Repeat | None

    @property
    def kind(self) -> ScheduleKind:
        return "one-time" if self.repeat is None else "recurring"

    def fetched(self) -> dict[str, Any]:
        """The ``fetch`` answer: repeat only for recurring schedules, timezone filled in."""
        answer: dict[str, Any] = {
            "name": self.name,
            "data": self.data,
            "schedule_at": self.schedule_at,
        }
        if self.repeat is not None:
            answer["repeat"] = self.repeat.to_dict()
        return answer


def _bad(message: str, status: int = 400) -> ScheduleError:
    return ScheduleError(status, message)


def _present(request: Mapping[str, Any], key: str) -> bool:
    # JSON null counts as missing, as an omitted key does in the platform's JS API.
    return request.get(key) is not None


def _check_required(request: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """Rule 1, including the keys inside ``repeat``."""
    missing = [key for key in keys if not _present(request, key)]
    repeat = request.get("repeat")
    if repeat is not None:
        if not isinstance(repeat, Mapping):
            raise _bad("The 'repeat' value must be of type JSON")
        missing += [key for key in ("time_unit", "frequency") if not _present(repeat, key)]
    if missing:
        raise _bad("The following mandatory keys are missing - " + ", ".join(missing))


def _check_name(request: Mapping[str, Any]) -> str:
    """Rules 2 and 3."""
    name = request["name"]
    if not isinstance(name, str):
        raise _bad("Name must be of type string")
    if not name:
        raise _bad("Name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise _bad(f"Name length must not be greater than {MAX_NAME_LENGTH}")
    return name


def check_data(data: Any) -> dict[str, Any]:
    """Rules 4 and 5; returns the data as it will read back (a JSON round trip)."""
    not_json = _bad("The 'data' value must be of type JSON")
    if not isinstance(data, dict):
        raise not_json
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise not_json from None
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_DATA_BYTES:
        raise _bad("The size of the 'data' payload must not exceed 4Kb")
    stored: dict[str, Any] = json.loads(text)
    return stored


def _check_schedule_at(value: Any) -> datetime:
    """Rule 6."""
    if not isinstance(value, str):
        raise _bad("The 'schedule_at' value must be an ISO string")
    try:
        return parse_instant(value)
    except ValueError:
        raise _bad("The 'schedule_at' value must be an ISO string") from None


def _check_repeat(repeat: Mapping[str, Any]) -> Repeat:
    """Rules 7 to 11."""
    unit = repeat["time_unit"]
    if not isinstance(unit, str) or unit not in MAX_FREQUENCY:
        raise _bad("Time unit must either be days, minutes or hours")
    timezone = repeat.get("timezone")
    if timezone is None:
        timezone = "UTC"
    if not known_timezone(timezone):
        raise _bad("Invalid timezone")
    frequency = repeat["frequency"]
    if not isinstance(frequency, int) or isinstance(frequency, bool):
        raise _bad("The 'frequency' value must be of type Number")
    if frequency <= 0:
        raise _bad("The 'frequency' value must be greater than 0")
    if frequency > MAX_FREQUENCY[unit]:
        raise _bad(
            f"The maximum frequency value for the '{unit}' parameter is {MAX_FREQUENCY[unit]}"
        )
    return Repeat(time_unit=unit, frequency=frequency, timezone=timezone)


def _check_window(at: datetime, ctx: Context) -> None:
    """Rules 12 and 13, for one-time schedules."""
    if at < ctx.now + MIN_LEAD:
        raise _bad("The 'schedule_at' value must be at least 5 minutes in the future")
    if at > ctx.now + MAX_LEAD:
        raise _bad("The 'schedule_at' value must not be greater than a year")


def _check_limits(kind: ScheduleKind, replaced: ScheduleKind | None, snapshot: Snapshot) -> None:
    """Rules 17 and 18: the counts after the call, where ``replaced`` is what an update replaces."""
    adds = kind != replaced
    if adds and kind == "one-time" and snapshot.count("one-time") + 1 > MAX_ONE_TIME:
        raise _bad(f"The maximum number of one-time schedules is {MAX_ONE_TIME}")
    if adds and kind == "recurring" and snapshot.count("recurring") + 1 > MAX_RECURRING:
        raise _bad(f"The maximum number of recurring schedules is {MAX_RECURRING}")


def _check_write(
    op: str, request: Mapping[str, Any], snapshot: Snapshot, ctx: Context
) -> ScheduleSpec:
    _check_required(request, ("name", "data", "schedule_at"))
    name = _check_name(request)
    data = check_data(request["data"])
    at = _check_schedule_at(request["schedule_at"])
    raw_repeat = request.get("repeat")
    repeat = _check_repeat(raw_repeat) if raw_repeat is not None else None
    if repeat is None and ctx.strict:
        _check_window(at, ctx)
    if not ctx.has_handler:
        raise _bad("The app has not registered an onScheduledEvent")
    existing = snapshot.kind_of(name)
    if op == "create" and existing is not None:
        raise _bad("This Schedule name already exists")
    if op == "update" and existing is None:
        raise _bad("Schedule does not exist", status=404)
    spec = ScheduleSpec(name, data, request["schedule_at"], at, repeat)
    if ctx.strict:
        _check_limits(spec.kind, existing, snapshot)
    return spec


def check_create(request: Mapping[str, Any], snapshot: Snapshot, ctx: Context) -> ScheduleSpec:
    """Validate a create; the caller stores the result and answers ``RESPONSES["create"]``."""
    return _check_write("create", request, snapshot, ctx)


def check_update(request: Mapping[str, Any], snapshot: Snapshot, ctx: Context) -> ScheduleSpec:
    """Validate an update; the caller replaces the schedule and answers ``RESPONSES["update"]``."""
    return _check_write("update", request, snapshot, ctx)


def check_existing(request: Mapping[str, Any], snapshot: Snapshot) -> str:
    """Validate a fetch or delete (rules 1-3 and 16); returns the schedule's name."""
    _check_required({"name": request.get("name")}, ("name",))
    name = _check_name(request)
    if snapshot.kind_of(name) is None:
        raise _bad("Schedule does not exist", status=404)
    return name
