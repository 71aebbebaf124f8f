"""DURATION and ISO instant parsing and formatting (fwsched.durations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fwsched.durations import (
    DurationError,
    format_instant,
    from_epoch_us,
    parse_duration,
    parse_instant,
    parse_when,
    to_epoch_ms,
    to_epoch_us,
)

FORMS = (
    "use <integer><unit> with units s, m, h, d, w (90s, 1h30m, 2d, 1w) or ISO 8601 (PT1H30M, P1D)"
)
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("1s", timedelta(seconds=1)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("30m1h", timedelta(hours=1, minutes=30)),
        ("1H30M", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("  2d\n", timedelta(days=2)),
        ("0h5m", timedelta(minutes=5)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P1D", timedelta(days=1)),
        ("P1W", timedelta(weeks=1)),
        ("PT90S", timedelta(seconds=90)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT15M", timedelta(minutes=15)),
        ("pt1h", timedelta(hours=1)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT1,25S", timedelta(seconds=1, milliseconds=250)),
        ("P2W3DT4H5M6S", timedelta(weeks=2, days=3, hours=4, minutes=5, seconds=6)),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["1x", "", "  ", "5", "m", "h1", "1.5h", "1h30", "+5m", "1h-30m", "1hh", "P", "PT", "P1DT",
     "PT5", "P1H", "T1H", "1h30mxx", "xx1h", "٣h", "1h\x00", "P1D1W", "1 foo", "hour"],
)  # fmt: skip
def test_parse_duration_rejects_garbage_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    message = str(info.value)
    assert message == f"invalid duration {text!r}: {FORMS}"
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "suggested"),
    [("1 hour", "1h"), ("1 h", "1h"), ("1h,30m", "1h30m"), ("2 days, 3 hours", "2d3h"),
     ("1 hour and 5 mins", "1h5m"), ("90 minutes", "90m"), ("1 Week", "1w")],
)  # fmt: skip
def test_a_duration_in_words_gets_its_short_form_suggested(text: str, suggested: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == f"invalid duration {text!r} (did you mean {suggested}?): {FORMS}"


def test_duration_error_is_a_value_error() -> None:
    assert issubclass(DurationError, ValueError)


@pytest.mark.parametrize("text", ["0s", "0m", "0h0m", "PT0S", "P0D", "P0W"])
def test_zero_duration(text: str) -> None:
    with pytest.raises(DurationError, match=r"^duration must be greater than zero: ") as info:
        parse_duration(text)
    assert str(info.value) == f"duration must be greater than zero: {text!r}; {FORMS}"


@pytest.mark.parametrize("text", ["-5m", "-1h30m", "-PT1H"])
def test_negative_duration(text: str) -> None:
    with pytest.raises(DurationError, match=r"^duration must be greater than zero: "):
        parse_duration(text)


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P1Y2M3D", "P2MT1H"])
def test_years_and_months_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(DurationError, match="years and months have no fixed length") as info:
        parse_duration(text)
    assert FORMS in str(info.value)


def test_repeated_unit_is_refused() -> None:
    with pytest.raises(DurationError, match="unit 'h' repeated"):
        parse_duration("1h2h")


def test_huge_duration_is_a_duration_error() -> None:
    with pytest.raises(DurationError, match="too large"):
        parse_duration("99999999999999999w")


def test_non_string_duration() -> None:
    with pytest.raises(DurationError):
        parse_duration(5)  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.text())
def test_parse_duration_only_raises_duration_error(text: str) -> None:
    try:
        value = parse_duration(text)
    except DurationError as exc:
        assert "\n" not in str(exc)
    else:
        assert value > timedelta(0)


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from("smhdw")), min_size=1, max_size=5))
def test_compact_form_sums_its_parts(parts: list[tuple[int, str]]) -> None:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    unique = dict((u, n) for n, u in parts)  # one number per unit: repeated units are refused
    text = "".join(f"{n}{u}" for u, n in unique.items())
    total = sum(n * units[u] for u, n in unique.items())
    if total == 0:
        with pytest.raises(DurationError, match="greater than zero"):
            parse_duration(text)
    else:
        assert parse_duration(text) == timedelta(seconds=total)


# -- instants -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05T09:00:00Z", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T09:00:00.860Z", datetime(2026, 1, 5, 9, 0, 0, 860000, tzinfo=UTC)),
        # Truncated to milliseconds, as the platform reads schedule_at.
        ("2026-01-05T09:00:00.123456789Z", datetime(2026, 1, 5, 9, 0, 0, 123000, tzinfo=UTC)),
        ("2026-01-05T09:00:59.9999999Z", datetime(2026, 1, 5, 9, 0, 59, 999000, tzinfo=UTC)),
        ("2026-01-05T09:00:00,5Z", datetime(2026, 1, 5, 9, 0, 0, 500000, tzinfo=UTC)),
        ("2026-01-05T14:30:00+05:30", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T14:30:00+0530", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T04:00:00-05:00", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T11:00:00+02", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T09:00:00+00:00", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05 09:00:00Z", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T09:00:00", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T09:00", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T09:00Z", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        # The platform's other forms: a date alone, an hour alone, basic, week, 24:00.
        ("2026-01-05", datetime(2026, 1, 5, tzinfo=UTC)),
        ("2026-01-05T09", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("20260105T090000Z", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-W02-1T09:00Z", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-04T24:00:00Z", datetime(2026, 1, 5, tzinfo=UTC)),
        ("  2026-01-05T09:00:00Z\n", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-01T00:30:00+01:00", datetime(2025, 12, 31, 23, 30, tzinfo=UTC)),
    ],
)
def test_parse_instant_accepts(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    ["", "now", "2026-01-05T", "2026-01-05T9:00", "26-01-05T09:00", "2026-01-05t09:00:00z",
     "2026-13-01T00:00Z", "2026-02-30T00:00Z", "2026-01-05T24:00:01Z", "2026-01-05T09:60Z",
     "2026-01-05T09:00:60Z", "2026-01-05T09:00:00+24:00", "2026-01-05T09:00:00+05:60",
     "2026-01-05T09:00:00+5", "2026-01-05T09:00:00.Z", "2026-01-05T09:00:00ZZ",
     "2026-01-05T09:00:00+14:30", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-01:00",
     "0000-01-01T00:00Z", "2026-01-05T09:00:00 UTC", "\u0662026-01-05T09:00Z"],
)  # fmt: skip
def test_parse_instant_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="2026-01-05T09:00:00Z") as info:
        parse_instant(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [None, 5, 1.5, b"2026-01-05T09:00:00Z", NOW, ["x"]])
def test_parse_instant_non_string_is_a_value_error(value: object) -> None:
    with pytest.raises(ValueError, match="expected a string"):
        parse_instant(value)  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.text())
def test_parse_instant_only_raises_value_error(text: str) -> None:
    try:
        parsed = parse_instant(text)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert parsed.tzinfo is UTC


@settings(deadline=None)
@given(
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
        r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?\Z"
    )
)
def test_parse_instant_near_misses_only_raise_value_error(text: str) -> None:
    try:
        parsed = parse_instant(text)
    except ValueError:
        return
    assert parsed.tzinfo is UTC


@settings(deadline=None)
@given(
    st.datetimes(
        timezones=st.just(UTC), min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)
    )
)
def test_format_then_parse_round_trips_to_the_millisecond(dt: datetime) -> None:
    assert parse_instant(format_instant(dt)) == dt.replace(
        microsecond=dt.microsecond // 1000 * 1000
    )


# -- formatting and epoch ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (datetime(2026, 1, 5, 9, tzinfo=UTC), "2026-01-05T09:00:00Z"),
        (datetime(2026, 1, 5, 9, 0, 0, 860000, tzinfo=UTC), "2026-01-05T09:00:00.860Z"),
        (datetime(2026, 1, 5, 9, 0, 0, 860999, tzinfo=UTC), "2026-01-05T09:00:00.860Z"),
        (datetime(2026, 1, 5, 9, 0, 0, 1000, tzinfo=UTC), "2026-01-05T09:00:00.001Z"),
        (datetime(2026, 1, 5, 9, 0, 0, 999, tzinfo=UTC), "2026-01-05T09:00:00Z"),
        (datetime(2026, 1, 5, 14, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
         "2026-01-05T09:00:00Z"),
        (datetime(5, 1, 1, tzinfo=UTC), "0005-01-01T00:00:00Z"),
    ],
)  # fmt: skip
def test_format_instant(dt: datetime, text: str) -> None:
    assert format_instant(dt) == text


def test_format_instant_refuses_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_instant(datetime(2026, 1, 5, 9))


def test_epoch_values() -> None:
    dt = datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert to_epoch_us(dt) == 1767261600123456
    assert to_epoch_ms(dt) == 1767261600123
    assert from_epoch_us(1767261600123456) == dt
    assert from_epoch_us(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert from_epoch_us(0).tzinfo is UTC
    assert to_epoch_ms(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1
    assert to_epoch_us(
        datetime(2026, 1, 1, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    ) == (1767261600000000)


def test_epoch_refuses_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        to_epoch_us(datetime(2026, 1, 1))


@settings(deadline=None)
@given(st.datetimes(timezones=st.just(UTC)))
def test_epoch_round_trip_is_exact(dt: datetime) -> None:
    us = to_epoch_us(dt)
    assert from_epoch_us(us) == dt
    assert to_epoch_ms(dt) == us // 1000


@settings(deadline=None)
@given(st.integers(min_value=-62135596800 * 10**6, max_value=253402300799 * 10**6))
def test_epoch_from_integers_is_exact(us: int) -> None:
    assert to_epoch_us(from_epoch_us(us)) == us


# -- parse_when ---------------------------------------------------------------------------------


def test_parse_when_now() -> None:
    assert parse_when("now", NOW) == NOW
    assert parse_when(" NOW ", NOW) == NOW


def test_parse_when_relative() -> None:
    assert parse_when("+1h30m", NOW) == NOW + timedelta(hours=1, minutes=30)
    assert parse_when("+PT5M", NOW) == NOW + timedelta(minutes=5)


def test_parse_when_instant() -> None:
    assert parse_when("2026-02-01T10:00:00+01:00", NOW) == datetime(2026, 2, 1, 9, tzinfo=UTC)


def test_parse_when_converts_now_to_utc() -> None:
    now = datetime(2026, 1, 5, 14, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    result = parse_when("now", now)
    assert result == NOW
    assert result.tzinfo is UTC


def test_parse_when_bad_relative_duration() -> None:
    with pytest.raises(DurationError, match="invalid duration '1x'"):
        parse_when("+1x", NOW)
    with pytest.raises(DurationError, match="greater than zero"):
        parse_when("+0s", NOW)


@pytest.mark.parametrize("text", ["tomorrow", "2026-01-05T", "5m", ""])
def test_parse_when_rejects_with_all_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"use now, \+DURATION .* 2026-01-05T09:00:00Z"):
        parse_when(text, NOW)


def test_parse_when_overflow_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_when("+5200w", datetime(9990, 1, 1, tzinfo=UTC))
