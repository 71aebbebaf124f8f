"""The platform's ISO 8601 parser for ``schedule_at`` (SPEC §2 rule 6), reproduced exactly.

The platform is JavaScript and reads ``schedule_at`` with moment.js's ``ISO_8601`` format in its
forgiving (non-strict) mode. Its answers, and so ours, come from two steps:

1. The whole string must match one of two anchored shapes (extended ``2026-03-15T10:30:00Z`` or
   basic ``20260315T103000Z``), with JavaScript's notion of whitespace before the date and the ``Z``.
2. The date part picks a format by the *first* of a list of unanchored patterns that occurs in
   it, and the fields are then read token by token, each token taking the first run of characters
   its pattern finds (skipping anything before it). That is why ``+002026-181`` means day 181 of
   the year 20: ``YYYY-DDD`` is picked and ``YYYY`` reads ``0020``.

Then fields out of range (month 13, 30 February, 10:60, week 54) are invalid, ``24:00`` is the
midnight that ends the day, the fraction is truncated to milliseconds, and the result must lie in
JavaScript's Date range. The offset must lie between -12:00 and +14:00 with minutes 0-59 (the
platform checks that on top of moment, which would carry ``+05:99`` into hours). No offset
means UTC.

The result is an epoch-millisecond integer, because valid instants reach far beyond the years
that ``datetime`` can hold (``-002026-...``); ``to_datetime`` says whether one fits.

The conformance corpus ``shared/conformance/schedule_at.jsonl`` is the detail; this module is
tested against every line of it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["InvalidInstant", "format_expanded", "parse", "to_datetime"]

# JavaScript's \s (ECMA-262 WhiteSpace and LineTerminator): Python's \s differs (it has \x1c-\x1f
# and \x85 and lacks \ufeff), and a string that JavaScript rejects must be rejected here.
_JS_SPACE = "[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_D = "[0-9]"  # not \d: that also matches other scripts' digits
_EXTENDED = re.compile(
    rf"{_JS_SPACE}*((?:[+-]{_D}{{6}}|{_D}{{4}})-(?:{_D}{{2}}-{_D}{{2}}|W{_D}{{2}}-{_D}|W{_D}{{2}}|{_D}{{3}}|{_D}{{2}}))"
    rf"(?:(T| )({_D}{{2}}(?::{_D}{{2}}(?::{_D}{{2}}(?:[.,]{_D}+)?)?)?)([+-]{_D}{{2}}(?::?{_D}{{2}})?|{_JS_SPACE}*Z)?)?"
)
_BASIC = re.compile(
    rf"{_JS_SPACE}*((?:[+-]{_D}{{6}}|{_D}{{4}})(?:{_D}{{4}}|W{_D}{{3}}|W{_D}{{2}}|{_D}{{3}}|{_D}{{2}}|))"
    rf"(?:(T| )({_D}{{2}}(?:{_D}{{2}}(?:{_D}{{2}}(?:[.,]{_D}+)?)?)?)([+-]{_D}{{2}}(?::?{_D}{{2}})?|{_JS_SPACE}*Z)?)?"
)

# (tokens, pattern searched in the date part, whether a time may follow), in moment's order.
_DATE_FORMATS: tuple[tuple[tuple[str, ...], re.Pattern[str], bool], ...] = tuple(
    (tokens, re.compile(pattern), time_allowed)
    for tokens, pattern, time_allowed in (
        (("YYYYYY", "-", "MM", "-", "DD"), rf"[+-]{_D}{{6}}-{_D}{{2}}-{_D}{{2}}", True),
        (("YYYY", "-", "MM", "-", "DD"), rf"{_D}{{4}}-{_D}{{2}}-{_D}{{2}}", True),
        (("GGGG", "-", "W", "WW", "-", "E"), rf"{_D}{{4}}-W{_D}{{2}}-{_D}", True),
        (("GGGG", "-", "W", "WW"), rf"{_D}{{4}}-W{_D}{{2}}", False),
        (("YYYY", "-", "DDD"), rf"{_D}{{4}}-{_D}{{3}}", True),
        (("YYYY", "-", "MM"), rf"{_D}{{4}}-{_D}{{2}}", False),
        (("YYYYYY", "MM", "DD"), rf"[+-]{_D}{{10}}", True),
        (("YYYY", "MM", "DD"), rf"{_D}{{8}}", True),
        (("GGGG", "W", "WW", "E"), rf"{_D}{{4}}W{_D}{{3}}", True),
        (("GGGG", "W", "WW"), rf"{_D}{{4}}W{_D}{{2}}", False),
        (("YYYY", "DDD"), rf"{_D}{{7}}", True),
        (("YYYY", "MM"), rf"{_D}{{6}}", False),
        (("YYYY",), rf"{_D}{{4}}", False),
    )
)
_TIME_FORMATS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (tokens, re.compile(pattern))
    for tokens, pattern in (
        (("HH", ":", "mm", ":", "ss", ".", "SSSS"), rf"{_D}{{2}}:{_D}{{2}}:{_D}{{2}}\.{_D}+"),
        (("HH", ":", "mm", ":", "ss", ",", "SSSS"), rf"{_D}{{2}}:{_D}{{2}}:{_D}{{2}},{_D}+"),
        (("HH", ":", "mm", ":", "ss"), rf"{_D}{{2}}:{_D}{{2}}:{_D}{{2}}"),
        (("HH", ":", "mm"), rf"{_D}{{2}}:{_D}{{2}}"),
        (("HH", "mm", "ss", ".", "SSSS"), rf"{_D}{{6}}\.{_D}+"),
        (("HH", "mm", "ss", ",", "SSSS"), rf"{_D}{{6}},{_D}+"),
        (("HH", "mm", "ss"), rf"{_D}{{6}}"),
        (("HH", "mm"), rf"{_D}{{4}}"),
        (("HH",), rf"{_D}{{2}}"),
    )
)
# What each token reads in forgiving mode (moment's match1to2, match1to4, ...).
_TOKEN_PATTERNS = {
    "YYYYYY": re.compile(rf"[+-]?{_D}{{1,6}}"),
    "YYYY": re.compile(rf"{_D}{{1,4}}"),
    "GGGG": re.compile(rf"{_D}{{1,4}}"),
    "MM": re.compile(rf"{_D}{_D}?"),
    "DD": re.compile(rf"{_D}{_D}?"),
    "DDD": re.compile(rf"{_D}{{1,3}}"),
    "WW": re.compile(rf"{_D}{_D}?"),
    "E": re.compile(_D),
    "HH": re.compile(rf"{_D}{_D}?"),
    "mm": re.compile(rf"{_D}{_D}?"),
    "ss": re.compile(rf"{_D}{_D}?"),
    "SSSS": re.compile(rf"{_D}+"),
    "Z": re.compile(rf"Z|[+-]{_D}{{2}}(?::?{_D}{{2}})?", re.IGNORECASE),
}

MIN_OFFSET_MINUTES = -12 * 60
MAX_OFFSET_MINUTES = 14 * 60
_MS_PER_DAY = 86_400_000
_MAX_JS_MS = 8_640_000_000_000_000  # JavaScript's Date range is +-1e8 days around the epoch
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATETIME_MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_DATETIME_MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // timedelta(
    milliseconds=1
)


class InvalidInstant(ValueError):
    """``schedule_at`` text the platform does not accept."""


def parse(text: str) -> int:
    """The instant ``text`` names, in epoch milliseconds; raises ``InvalidInstant``."""
    if not isinstance(text, str):
        raise InvalidInstant(f"not a string: {type(text).__name__}")
    match = _EXTENDED.fullmatch(text) or _BASIC.fullmatch(text)
    if match is None:
        raise InvalidInstant("not an ISO 8601 form the platform accepts")
    date_part, separator, time_part, zone_part = match.groups()
    date_format = next((f for f in _DATE_FORMATS if f[1].search(date_part)), None)
    if date_format is None:
        raise InvalidInstant("no date format fits")
    tokens = list(date_format[0])
    if time_part is not None:
        if not date_format[2]:
            raise InvalidInstant("this date form takes no time")
        time_format = next(f for f in _TIME_FORMATS if f[1].search(time_part))
        tokens += [separator, *time_format[0]]
    if zone_part is not None:
        tokens.append("Z")
    fields = _read_tokens(tokens, text)
    return _to_epoch_ms(fields)


def _read_tokens(tokens: list[str], text: str) -> dict[str, int]:
    """moment's forgiving reading: each token takes the first run its pattern finds, anywhere."""
    fields: dict[str, int] = {}
    rest = text
    for token in tokens:
        pattern = _TOKEN_PATTERNS.get(token)
        if pattern is None:  # a literal: consumed if it occurs, ignored if not
            at = rest.find(token)
            if at >= 0:
                rest = rest[at + len(token) :]
            continue
        found = pattern.search(rest)
        if found is None:
            continue  # an unused token: forgiving mode does not mind
        rest = rest[found.end() :]
        value = found.group()
        if token == "YYYY" and len(value) == 2:
            two = int(value)
            fields["year"] = two + (1900 if two > 68 else 2000)
        elif token in ("YYYY", "YYYYYY"):
            fields["year"] = int(value)
        elif token == "SSSS":
            fields["ms"] = int((value + "000")[:3])  # truncated, as moment's toInt(0.f * 1000)
        elif token == "Z":
            fields["offset"] = _offset_minutes(value)
        else:
            fields[token] = int(value)
    return fields


def _offset_minutes(text: str) -> int:
    if text.upper() == "Z":
        return 0
    digits = text[1:].replace(":", "")
    if int(digits[2:] or 0) > 59:  # moment would carry +05:99 into hours; the platform refuses it
        raise InvalidInstant("offset minutes out of range")
    minutes = int(digits[:2]) * 60 + int(digits[2:] or 0)
    return -minutes if text[0] == "-" else minutes


def _to_epoch_ms(fields: dict[str, int]) -> int:
    if "GGGG" in fields:
        day_number = _iso_week_day(fields["GGGG"], fields.get("WW", 1), fields.get("E", 1))
    elif "DDD" in fields:
        year, day_of_year = fields["year"], fields["DDD"]
        if not 1 <= day_of_year <= _days_in_year(year):
            raise InvalidInstant("day of year out of range")
        day_number = _days_from_civil(year, 1, 1) + day_of_year - 1
    else:
        year, month, day = fields["year"], fields.get("MM", 1), fields.get("DD", 1)
        if not 1 <= month <= 12:
            raise InvalidInstant("month out of range")
        if not 1 <= day <= _days_in_month(year, month):
            raise InvalidInstant("day out of range")
        day_number = _days_from_civil(year, month, day)
    hour, minute = fields.get("HH", 0), fields.get("mm", 0)
    second, ms = fields.get("ss", 0), fields.get("ms", 0)
    if hour > 24 or (hour == 24 and (minute or second or ms)):
        raise InvalidInstant("hour out of range")
    if minute > 59 or second > 59:
        raise InvalidInstant("minute or second out of range")
    offset = fields.get("offset", 0)
    if not MIN_OFFSET_MINUTES <= offset <= MAX_OFFSET_MINUTES:
        raise InvalidInstant("offset outside -12:00..+14:00")
    # moment's steps, each of which must stay a valid Date: the wall time (24:00 read as 00:00),
    # then the offset applied, then the day added for 24:00.
    next_day = hour == 24
    wall = day_number * _MS_PER_DAY + ((hour % 24 * 60 + minute) * 60 + second) * 1000 + ms
    instant = wall - offset * 60_000
    for step in (wall, instant, instant + next_day * _MS_PER_DAY):
        if abs(step) > _MAX_JS_MS:
            raise InvalidInstant("outside JavaScript's Date range")
    return instant + next_day * _MS_PER_DAY


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_year(year: int) -> int:
    return 366 if _is_leap(year) else 365


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, for any year (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _iso_week_day(week_year: int, week: int, weekday: int) -> int:
    """Days since the epoch of an ISO week date, refusing weeks and weekdays out of range."""

    def week_one_monday(year: int) -> int:
        jan4 = _days_from_civil(year, 1, 4)
        return jan4 - (jan4 + 3) % 7  # 1970-01-01 was a Thursday (index 3 from Monday)

    weeks = (week_one_monday(week_year + 1) - week_one_monday(week_year)) // 7
    if not 1 <= week <= weeks:
        raise InvalidInstant("week out of range")
    if not 1 <= weekday <= 7:
        raise InvalidInstant("weekday out of range")
    return week_one_monday(week_year) + 7 * (week - 1) + weekday - 1


def to_datetime(epoch_ms: int) -> datetime | None:
    """The aware UTC datetime of ``epoch_ms``, or None outside the years 0001-9999."""
    if not _DATETIME_MIN_MS <= epoch_ms <= _DATETIME_MAX_MS:
        return None
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def format_expanded(epoch_ms: int) -> str:
    """ISO 8601 with milliseconds and ``Z``, years outside 0000-9999 as ``±YYYYYY`` (as JS does)."""
    days, ms_of_day = divmod(epoch_ms, _MS_PER_DAY)
    year, month, day = _civil_from_days(days)
    seconds, ms = divmod(ms_of_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{'+' if year > 0 else '-'}{abs(year):06d}"
    return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{ms:03d}Z"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    mp = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return year_of_era + era * 400 + (month <= 2), month, day
