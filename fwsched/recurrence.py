"""When a schedule fires (SPEC §3): pure functions, aware datetimes in, UTC datetimes out.

A recurring series is occurrence 0 = ``schedule_at`` and then, for k >= 1:

- minutes/hours: ``schedule_at + k * frequency * unit``, exact elapsed time;
- days: the wall-clock time of ``schedule_at`` in ``repeat.timezone`` on the local date
  ``k * frequency`` days later, resolved like cron: a wall time that falls in a daylight-saving
  gap fires at the transition (the first instant after it), an ambiguous one at its first instant.

Equivalently, a day occurrence is the earliest instant whose local time is >= the wanted wall time
that day. The index of the occurrence nearest to an instant is computed, never iterated to, so a
``schedule_at`` years in the past costs the same as one from yesterday.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TIME_UNITS = ("minutes", "hours", "days")
_STEP = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1)}
_US = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.cache
def _zone_names() -> dict[str, str]:
    """IANA zone names by their case-folded spelling, as the platform matches them."""
    # "localtime" is the machine's own setting and "Factory" a placeholder: neither is a zone a
    # schedule could travel with. available_timezones() already leaves out posix/ and right/.
    names = zoneinfo.available_timezones() - {"Factory", "localtime"}
    return {name.casefold(): name for name in names}


def canonical_timezone(name: object) -> str | None:
    """The IANA spelling of ``name`` (matched case-insensitively), or None if it is no zone."""
    if not isinstance(name, str):
        return None
    return _zone_names().get(name.casefold())


def known_timezone(name: object) -> bool:
    """True if ``name`` is an IANA zone name, in any letter case."""
    return canonical_timezone(name) is not None


@dataclass(frozen=True)
class Repeat:
    """The ``repeat`` of a recurring schedule; validated here so every instance is usable.

    The platform's limits (frequency maxima) are rules of the API and live in rules.py.
    """

    time_unit: str
    frequency: int
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be minutes, hours or days, not {self.time_unit!r}")
        if not isinstance(self.frequency, int) or isinstance(self.frequency, bool):
            raise ValueError(f"frequency must be an integer, not {self.frequency!r}")
        if self.frequency < 1:
            raise ValueError(f"frequency must be at least 1, not {self.frequency}")
        if not known_timezone(self.timezone):
            raise ValueError(f"unknown time zone {self.timezone!r}")

    @property
    def zone(self) -> ZoneInfo:
        # ``timezone`` is kept as given (fetch returns it so); the zone is its IANA spelling.
        name = canonical_timezone(self.timezone)
        assert name is not None  # __post_init__ checked it
        return ZoneInfo(name)  # ZoneInfo caches instances by key

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Repeat:
        """From ``{"time_unit", "frequency", "timezone"?}``; a missing or null timezone is UTC."""
        missing = [key for key in ("time_unit", "frequency") if key not in d]
        if missing:
            raise ValueError(f"repeat is missing {', '.join(missing)}")
        return cls(d["time_unit"], d["frequency"], d.get("timezone") or "UTC")

    def to_dict(self) -> dict[str, Any]:
        return {"time_unit": self.time_unit, "frequency": self.frequency, "timezone": self.timezone}


def first_occurrence(schedule_at: datetime, repeat: Repeat | None, now: datetime) -> datetime:
    """One-time: ``schedule_at`` even if past (the caller decides). Recurring: first >= ``now``."""
    start = _utc(schedule_at)
    if repeat is None:
        return start
    return _occurrence(start, repeat, _first_index(start, repeat, _utc(now), strict=False))


def next_occurrence(schedule_at: datetime, repeat: Repeat, after: datetime) -> datetime:
    """The first occurrence of the series strictly after ``after``."""
    start = _utc(schedule_at)
    return _occurrence(start, repeat, _first_index(start, repeat, _utc(after), strict=True))


def occurrences(
    schedule_at: datetime, repeat: Repeat | None, start: datetime, end: datetime
) -> Iterator[datetime]:
    """Every occurrence in [start, end], in order; stops quietly at the end of datetime's range."""
    first, lo, hi = _utc(schedule_at), _utc(start), _utc(end)
    if repeat is None:
        if lo <= first <= hi:
            yield first
        return
    k = _first_index(first, repeat, lo, strict=False)
    while True:
        try:
            fire_at = _occurrence(first, repeat, k)
        except OverflowError:
            return
        if fire_at > hi:
            return
        yield fire_at
        k += 1


def _utc(dt: datetime) -> datetime:
    if not isinstance(dt, datetime) or dt.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got {dt!r}")
    return dt.astimezone(UTC)


def _first_index(start: datetime, repeat: Repeat, t: datetime, *, strict: bool) -> int:
    """The smallest k >= 0 with occurrence k >= t (> t when ``strict``)."""
    if start > t or (start == t and not strict):
        return 0
    if repeat.time_unit != "days":
        step = (_STEP[repeat.time_unit] * repeat.frequency) // _US
        elapsed = (t - start) // _US
        return elapsed // step + 1 if strict else -(-elapsed // step)
    # Days: the local-date difference gives k to within one; then settle it exactly.
    zone = repeat.zone
    days = (t.astimezone(zone).date() - start.astimezone(zone).date()).days
    k = max(days // repeat.frequency, 0)

    def reached(i: int) -> bool:
        fire_at = _occurrence(start, repeat, i)
        return fire_at > t if strict else fire_at >= t

    while not reached(k):
        k += 1
    while k > 0 and reached(k - 1):
        k -= 1
    return k


def _occurrence(start: datetime, repeat: Repeat, k: int) -> datetime:
    if k == 0:
        # schedule_at itself, even when it is the second instant of an ambiguous wall time.
        return start
    if repeat.time_unit != "days":
        return start + _STEP[repeat.time_unit] * (repeat.frequency * k)
    zone = repeat.zone
    local = start.astimezone(zone)
    day = local.date() + timedelta(days=repeat.frequency * k)
    return _wall_to_utc(day, local.time(), zone)


def _wall_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The earliest instant whose local time in ``zone`` is >= ``day`` at ``wall``."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)  # the earlier one if ambiguous
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # A gap: fold=0 and fold=1 read the wall time with the offsets before and after the
    # transition, which lies between them; find it (transitions fall on whole seconds).
    other = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo = _floor_second(min(first, other))  # local time here is still before the gap
    hi = _ceil_second(max(first, other))  # and here already after it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (_EPOCH + mid * _SECOND).astimezone(zone).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return _EPOCH + hi * _SECOND


def _floor_second(dt: datetime) -> int:
    return (dt - _EPOCH) // _SECOND


def _ceil_second(dt: datetime) -> int:
    return -(-(dt - _EPOCH) // _SECOND)
