"""The platform's rules for the schedule API (SPEC §2), as pure functions.

Each ``check_*`` function takes the raw request, a read-only view of the
current schedules and the call's context (simulated now, handler registered,
strict or relaxed), and either returns what to store or raises
``ScheduleError``. Nothing here writes: the caller applies the result, so a
failed call changes nothing by construction.

The checks run in the platform's order, which is not the table's numbering (rules 1-6,
then 12-13 for a one-time schedule, then 14, then 7-11 for a recurring one, then 15-18), and
the first failure wins. JavaScript's view of values decides (``jsvalues``): a key is missing
only when absent, ``{}`` and ``[]`` are true, lengths count UTF-16 code units.
``tests/test_conformance.py`` checks every answer against the platform's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from fwsched import iso8601, jsonsafe, jsvalues
from fwsched.durations import to_epoch_us
from fwsched.records import ScheduleKind
from fwsched.recurrence import Repeat, known_timezone
from fwsched.sdk import ScheduleError

MAX_ONE_TIME = 1000
MAX_RECURRING = 1
MAX_NAME_LENGTH = 30
MAX_DATA_BYTES = 4096
MIN_LEAD = timedelta(minutes=5)
MAX_LEAD = timedelta(days=365)
_US = timedelta(microseconds=1)
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
    at: datetime  # schedule_at parsed, aware UTC, whole milliseconds
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


NOT_ISO = "The 'schedule_at' value must be an ISO string"
TOO_SOON = "The 'schedule_at' value must be at least 5 minutes in the future"
TOO_LATE = "The 'schedule_at' value must not be greater than a year"
_REPEAT_KEYS = ("time_unit", "frequency")


def _is_recurring(request: Mapping[str, Any]) -> bool:
    """``repeat`` absent or falsy means one-time; anything else asks for a recurring schedule."""
    return not jsvalues.falsy(request.get("repeat"))


def _check_required(request: Mapping[str, Any], keys: tuple[str, ...], recurring: bool) -> None:
    """Rule 1: a key is missing only when absent (``None`` is present and checked by its rule).

    A ``repeat`` that is not a dict (``"x"``, a list) has neither of its keys.
    """
    missing = [key for key in keys if key not in request]
    if recurring:
        repeat = request["repeat"]
        inner = repeat if isinstance(repeat, Mapping) else {}
        missing += [key for key in _REPEAT_KEYS if key not in inner]
    if missing:
        raise _bad("The following mandatory keys are missing - " + ",".join(missing))


def _check_name_type(name: object) -> str:
    """Rule 2."""
    if not isinstance(name, str):
        raise _bad("Name must be of type string")
    return name


def _check_name(value: object) -> str:
    """Rules 2 and 3."""
    name = _check_name_type(value)
    if not name:
        raise _bad("Name must not be empty")
    if jsvalues.utf16_length(name) > MAX_NAME_LENGTH:
        raise _bad(f"Name length must not be greater than {MAX_NAME_LENGTH}")
    return name


def check_data(data: Any) -> dict[str, Any]:
    """Rules 4 and 5; returns the data as it will read back (a JSON round trip)."""
    not_json = _bad("The 'data' value must be of type JSON")
    if not isinstance(data, dict):
        raise not_json
    if jsonsafe.too_deep(data):
        # What json.dumps says of data nested deeper than Python's recursion allows, said
        # at a fixed depth that every part of fwsched handles (see jsonsafe.MAX_DEPTH).
        raise not_json
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise not_json from None
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_DATA_BYTES:
        raise _bad("The size of the 'data' payload must not exceed 4Kb")
    stored: dict[str, Any] = json.loads(text)
    return stored


def _check_schedule_at(value: Any) -> int:
    """Rule 6: the platform's ISO 8601 forms (see ``iso8601``); returns epoch milliseconds."""
    try:
        return iso8601.parse(value)
    except iso8601.InvalidInstant:
        raise _bad(NOT_ISO) from None


def _is_integral_number(value: Any) -> bool:
    """JavaScript's ``Number.isInteger``: ``2`` and ``2.0`` are, ``2.5``, ``"2"`` and ``True`` not."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def _check_repeat(repeat: Mapping[str, Any]) -> Repeat:
    """Rules 7 to 11."""
    unit = repeat["time_unit"]
    if not isinstance(unit, str) or unit not in MAX_FREQUENCY:
        raise _bad("Time unit must either be days, minutes or hours")
    timezone = repeat.get("timezone")
    if jsvalues.falsy(timezone):
        timezone = "UTC"
    if not isinstance(timezone, str) or not known_timezone(timezone):
        raise _bad("Invalid timezone")
    frequency = repeat["frequency"]
    if not _is_integral_number(frequency):
        raise _bad("The 'frequency' value must be of type Number")
    if frequency <= 0:
        raise _bad("The 'frequency' value must be greater than 0")
    if frequency > MAX_FREQUENCY[unit]:
        raise _bad(
            f"The maximum frequency value for the '{unit}' parameter is {MAX_FREQUENCY[unit]}"
        )
    return Repeat(time_unit=unit, frequency=int(frequency), timezone=timezone)


def _check_window(at_ms: int, ctx: Context) -> None:
    """Rules 12 and 13, for one-time schedules (``at_ms`` may lie far outside datetime's years)."""
    now_us = to_epoch_us(ctx.now)
    if at_ms * 1000 < now_us + MIN_LEAD // _US:
        raise _bad(TOO_SOON)
    if at_ms * 1000 > now_us + MAX_LEAD // _US:
        raise _bad(TOO_LATE)


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
    """Create and update, in the platform's order: 1-6, 12-13 (one-time), 14, 7-11 (recurring)."""
    recurring = _is_recurring(request)
    _check_required(request, ("name", "data", "schedule_at"), recurring)
    name = _check_name(request["name"])
    data = check_data(request["data"])
    at_ms = _check_schedule_at(request["schedule_at"])
    if not recurring and ctx.strict:
        _check_window(at_ms, ctx)
    if not ctx.has_handler:
        raise _bad("The app has not registered an onScheduledEvent")
    repeat = _check_repeat(request["repeat"]) if recurring else None
    at = iso8601.to_datetime(at_ms)
    if at is None:
        # A valid form naming a year outside 1-9999: the window refuses it for a one-time
        # schedule; a series (or a relaxed one-time schedule) could never fire, so it is refused.
        raise _bad(NOT_ISO)
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
    """Validate a fetch or delete: rules 1, 2 and 16 only (any other name is simply not found)."""
    _check_required(request, ("name",), recurring=False)
    name = _check_name_type(request["name"])
    if snapshot.kind_of(name) is None:
        raise _bad("Schedule does not exist", status=404)
    return name
