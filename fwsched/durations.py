"""Parsing and formatting of DURATION values and ISO 8601 instants (SPEC §2 rule 6, §5 DURATION).

Every instant that leaves this module is an aware datetime in UTC; naive *text* means UTC, but
naive *datetime objects* are refused, since inside fwsched they are always a bug.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fwsched import iso8601

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

_FORMS = (
    "use <integer><unit> with units s, m, h, d, w (90s, 1h30m, 2d, 1w) or ISO 8601 (PT1H30M, P1D)"
)
_INSTANT_EXAMPLE = "e.g. 2026-01-05T09:00:00Z or 2026-01-05T14:30:00+05:30"

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# [0-9] rather than \d: \d also matches other scripts' digits, which int() would then accept.
_COMPACT = re.compile(r"(?:[0-9]+[smhdw]\s*)+", re.IGNORECASE)
_COMPACT_PART = re.compile(r"([0-9]+)([smhdw])", re.IGNORECASE)
# Years and months are matched only so that the error can say why they are refused.
_ISO_DURATION = re.compile(
    r"P(?:(?P<Y>[0-9]+)Y)?(?:(?P<M>[0-9]+)M)?(?:(?P<W>[0-9]+)W)?(?:(?P<D>[0-9]+)D)?"
    r"(?:T(?=[0-9])(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+)(?:[.,](?P<f>[0-9]+))?S)?)?",
    re.IGNORECASE,
)


# Units spelt out (`advance 1 hour`, `90 minutes`): only to suggest the short form.
_WORD_UNITS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
    "w": ("w", "wk", "wks", "week", "weeks"),
}
_WORD_TO_UNIT = {word: unit for unit, words in _WORD_UNITS.items() for word in words}
_SPELT_PART = re.compile(r"([0-9]+)\s*([a-z]+)\s*(?:,|and)?\s*", re.IGNORECASE)


def suggest_duration(text: str) -> str | None:
    """``1 hour`` -> ``1h``, ``1 hour 30 minutes`` -> ``1h30m``; None if it is not that."""
    parts = []
    position, stripped = 0, text.strip()
    for match in _SPELT_PART.finditer(stripped):
        unit = _WORD_TO_UNIT.get(match.group(2).lower())
        if match.start() != position or unit is None:
            return None
        parts.append(f"{int(match.group(1))}{unit}")
        position = match.end()
    return "".join(parts) if parts and position == len(stripped) else None


class DurationError(ValueError):
    """A DURATION that is unparseable, zero or negative; ``str(err)`` is one line for the user."""


def _shown(text: str) -> str:
    # repr() keeps the message on one line whatever the text holds; long input is cut.
    return repr(text if len(text) <= 60 else text[:57] + "...")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``1h30m``, ``2d``, ``1w`` or ISO 8601 ``PT1H30M``/``P1D``/``P1W``; always > 0."""
    if not isinstance(text, str):
        raise DurationError(f"invalid duration {text!r}: {_FORMS}")
    stripped = text.strip()
    try:
        value = _parse_compact(stripped)
        if value is None:
            value = _parse_iso_duration(stripped, text)
    except OverflowError:
        raise DurationError(f"duration too large: {_shown(text)}") from None
    if value is None:
        if stripped.startswith("-") and _is_valid(stripped[1:]):
            raise DurationError(f"duration must be greater than zero: {_shown(text)}; {_FORMS}")
        suggestion = suggest_duration(stripped)
        if suggestion is not None and _is_valid(suggestion):
            raise DurationError(
                f"invalid duration {_shown(text)} (did you mean {suggestion}?): {_FORMS}"
            )
        raise DurationError(f"invalid duration {_shown(text)}: {_FORMS}")
    if value <= timedelta(0):
        raise DurationError(f"duration must be greater than zero: {_shown(text)}; {_FORMS}")
    return value


def _is_valid(text: str) -> bool:
    try:
        parse_duration(text)
    except DurationError:
        return False
    return True


def _parse_compact(text: str) -> timedelta | None:
    if not _COMPACT.fullmatch(text):
        return None
    seen: set[str] = set()
    seconds = 0
    for number, unit in _COMPACT_PART.findall(text):
        unit = unit.lower()
        if unit in seen:  # "1h2h" is more likely a typo than a sum
            raise DurationError(
                f"invalid duration {_shown(text)}: unit '{unit}' repeated; {_FORMS}"
            )
        seen.add(unit)
        seconds += int(number) * _UNIT_SECONDS[unit]
    return timedelta(seconds=seconds)


def _parse_iso_duration(text: str, original: str) -> timedelta | None:
    match = _ISO_DURATION.fullmatch(text)
    if match is None or not any(match.group(g) for g in "YMWDhms"):
        return None
    if match.group("Y") or match.group("M"):
        raise DurationError(
            f"invalid duration {_shown(original)}: years and months have no fixed length; {_FORMS}"
        )
    parts = {g: int(match.group(g) or 0) for g in "WDhms"}
    fraction = match.group("f") or ""
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0  # truncated, exact
    return timedelta(
        weeks=parts["W"],
        days=parts["D"],
        hours=parts["h"],
        minutes=parts["m"],
        seconds=parts["s"],
        microseconds=micros,
    )


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant in any form the platform accepts for ``schedule_at`` (``iso8601``),
    surrounding whitespace ignored; naive means UTC. Returns an aware UTC datetime.

    Raises only ValueError, whatever the input.
    """
    if not isinstance(text, str):
        raise ValueError(f"invalid date-time {text!r}: expected a string, {_INSTANT_EXAMPLE}")
    try:
        epoch_ms = iso8601.parse(text.strip())
    except iso8601.InvalidInstant:
        raise ValueError(
            f"invalid date-time {_shown(text)}: use ISO 8601, {_INSTANT_EXAMPLE}"
        ) from None
    instant = iso8601.to_datetime(epoch_ms)
    if instant is None:
        raise ValueError(
            f"invalid date-time {_shown(text)}: the year must be 0001-9999, {_INSTANT_EXAMPLE}"
        )
    return instant


def _require_aware(dt: datetime) -> datetime:
    if not isinstance(dt, datetime) or dt.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got {dt!r}")
    return dt


def format_instant(dt: datetime) -> str:
    """ISO 8601 in UTC with ``Z``; milliseconds (truncated) only when there are some."""
    u = _require_aware(dt).astimezone(UTC)
    text = f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
    millis = u.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def to_epoch_us(dt: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (timedelta // timedelta is integer math)."""
    return (_require_aware(dt) - _EPOCH) // _US


def to_epoch_ms(dt: datetime) -> int:
    """Milliseconds since the Unix epoch (floored), as the payload's ``timestamp`` wants."""
    return to_epoch_us(dt) // 1000


def from_epoch_us(us: int) -> datetime:
    """The aware UTC datetime ``us`` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=us)


def parse_when(text: str, now: datetime) -> datetime:
    """``now``, ``+DURATION`` (from ``now``) or an ISO instant; for ``--at`` and ``--start``."""
    now = _require_aware(now).astimezone(UTC)
    if not isinstance(text, str):
        raise ValueError(f"invalid time {text!r}: expected a string")
    stripped = text.strip()
    if stripped.lower() == "now":
        return now
    if stripped.startswith("+"):
        delta = parse_duration(stripped[1:])
        try:
            return now + delta
        except OverflowError:
            raise DurationError(f"duration too large: {_shown(text)}") from None
    try:
        return parse_instant(stripped)
    except ValueError:
        raise ValueError(
            f"invalid time {_shown(text)}: use now, +DURATION (e.g. +1h30m) "
            f"or an ISO 8601 date-time ({_INSTANT_EXAMPLE})"
        ) from None
