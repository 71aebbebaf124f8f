"""Occurrences of schedules (fwsched.recurrence): SPEC §3, daylight saving included."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fwsched.recurrence import (
    Repeat,
    first_occurrence,
    known_timezone,
    next_occurrence,
    occurrences,
)

US = timedelta(microseconds=1)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def series(schedule_at: datetime, repeat: Repeat, start: datetime, end: datetime) -> list[datetime]:
    return list(occurrences(schedule_at, repeat, start, end))


# -- Repeat -------------------------------------------------------------------------------------


def test_repeat_defaults_to_utc_and_round_trips() -> None:
    repeat = Repeat("days", 2)
    assert repeat.timezone == "UTC"
    assert repeat.to_dict() == {"time_unit": "days", "frequency": 2, "timezone": "UTC"}
    assert Repeat.from_dict(repeat.to_dict()) == repeat
    assert Repeat.from_dict({"time_unit": "hours", "frequency": 3}) == Repeat("hours", 3, "UTC")
    assert (
        Repeat.from_dict({"time_unit": "hours", "frequency": 3, "timezone": None}).timezone == "UTC"
    )
    berlin = Repeat.from_dict({"time_unit": "days", "frequency": 1, "timezone": "Europe/Berlin"})
    assert berlin.zone == BERLIN


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_unit": "weeks", "frequency": 1}, "time_unit"),
        ({"time_unit": "Days", "frequency": 1}, "time_unit"),
        ({"time_unit": "days", "frequency": 0}, "at least 1"),
        ({"time_unit": "days", "frequency": -3}, "at least 1"),
        ({"time_unit": "days", "frequency": True}, "integer"),
        ({"time_unit": "days", "frequency": "2"}, "integer"),
        ({"time_unit": "days", "frequency": 1.0}, "integer"),
        ({"time_unit": "days", "frequency": 1, "timezone": "Mars/Olympus"}, "time zone"),
        ({"time_unit": "days", "frequency": 1, "timezone": "America"}, "time zone"),
        ({"time_unit": "days", "frequency": 1, "timezone": ""}, "time zone"),
        ({"time_unit": "days", "frequency": 1, "timezone": "../etc/passwd"}, "time zone"),
        ({"time_unit": "days", "frequency": 1, "timezone": "localtime"}, "time zone"),
    ],
)
def test_repeat_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Repeat(**kwargs)  # type: ignore[arg-type]


def test_repeat_from_dict_missing_keys() -> None:
    with pytest.raises(ValueError, match="time_unit, frequency"):
        Repeat.from_dict({})


@pytest.mark.parametrize(
    ("name", "known"),
    [("UTC", True), ("Europe/Berlin", True), ("Asia/Kolkata", True), ("utc", True),
     ("europe/BERLIN", True), ("Europe", False), ("", False), ("a\x00b", False), (None, False),
     (5, False), ("posix/Europe/Berlin", False), ("right/UTC", False), ("Factory", False),
     ("localtime", False)],
)  # fmt: skip
def test_known_timezone(name: object, known: bool) -> None:
    assert known_timezone(name) is known


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        first_occurrence(datetime(2026, 1, 1), None, utc(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        next_occurrence(utc(2026, 1, 1), Repeat("hours", 1), datetime(2026, 1, 1))


# -- one-time -----------------------------------------------------------------------------------


def test_one_time_is_schedule_at_even_in_the_past() -> None:
    at = datetime(2026, 1, 5, 14, 30, tzinfo=ZoneInfo("Asia/Kolkata"))
    result = first_occurrence(at, None, utc(2027, 1, 1))
    assert result == utc(2026, 1, 5, 9)
    assert result.tzinfo is UTC


def test_one_time_occurrences() -> None:
    at = utc(2026, 1, 5, 9)
    assert series(at, None, utc(2026, 1, 5), utc(2026, 1, 6)) == [at]  # type: ignore[arg-type]
    assert series(at, None, at, at) == [at]  # type: ignore[arg-type]
    assert series(at, None, at + US, utc(2026, 1, 6)) == []  # type: ignore[arg-type]


# -- days across daylight-saving changes ----------------------------------------------------------


def test_berlin_0900_daily_across_spring_forward() -> None:
    repeat = Repeat("days", 1, "Europe/Berlin")
    start = datetime(2026, 3, 27, 9, tzinfo=BERLIN)
    fired = series(start, repeat, utc(2026, 3, 27), utc(2026, 3, 31, 12))
    assert fired == [utc(2026, 3, 27, 8), utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7),
                     utc(2026, 3, 31, 7)]  # fmt: skip
    assert all(f.tzinfo is UTC for f in fired)
    assert {f.astimezone(BERLIN).strftime("%H:%M") for f in fired} == {"09:00"}


def test_berlin_0900_daily_across_fall_back() -> None:
    repeat = Repeat("days", 1, "Europe/Berlin")
    start = datetime(2026, 10, 23, 9, tzinfo=BERLIN)
    fired = series(start, repeat, utc(2026, 10, 23), utc(2026, 10, 27, 12))
    assert fired == [utc(2026, 10, 23, 7), utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8),
                     utc(2026, 10, 27, 8)]  # fmt: skip
    assert {f.astimezone(BERLIN).strftime("%H:%M") for f in fired} == {"09:00"}


def test_new_york_0900_daily_across_both_2026_changes() -> None:
    repeat = Repeat("days", 1, "America/New_York")
    start = datetime(2026, 3, 6, 9, tzinfo=NEW_YORK)
    spring = series(start, repeat, utc(2026, 3, 6), utc(2026, 3, 10, 23))
    assert spring == [utc(2026, 3, 6, 14), utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13),
                      utc(2026, 3, 10, 13)]  # fmt: skip
    autumn = series(start, repeat, utc(2026, 10, 30), utc(2026, 11, 3, 23))
    assert autumn == [utc(2026, 10, 30, 13), utc(2026, 10, 31, 13), utc(2026, 11, 1, 14),
                      utc(2026, 11, 2, 14), utc(2026, 11, 3, 14)]  # fmt: skip
    assert {f.astimezone(NEW_YORK).strftime("%H:%M") for f in spring + autumn} == {"09:00"}


def test_berlin_0230_fires_at_the_transition_on_the_spring_forward_day() -> None:
    repeat = Repeat("days", 1, "Europe/Berlin")
    start = datetime(2026, 3, 27, 2, 30, tzinfo=BERLIN)
    fired = series(start, repeat, utc(2026, 3, 27), utc(2026, 3, 31))
    assert fired == [utc(2026, 3, 27, 1, 30), utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0),
                     utc(2026, 3, 30, 0, 30)]  # fmt: skip
    local = [f.astimezone(BERLIN).strftime("%m-%d %H:%M") for f in fired]
    assert local == ["03-27 02:30", "03-28 02:30", "03-29 03:00", "03-30 02:30"]


def test_gap_keeps_seconds_only_on_existing_days() -> None:
    repeat = Repeat("days", 1, "Europe/Berlin")
    start = datetime(2026, 3, 28, 2, 30, 15, 250000, tzinfo=BERLIN)
    fired = series(start, repeat, start, utc(2026, 3, 31))
    assert fired == [start, utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30, 15, 250000)]


def test_new_york_0130_fires_once_at_the_first_instant_on_fall_back() -> None:
    repeat = Repeat("days", 1, "America/New_York")
    start = datetime(2026, 10, 30, 1, 30, tzinfo=NEW_YORK)
    fired = series(start, repeat, utc(2026, 10, 30), utc(2026, 11, 3))
    assert fired == [utc(2026, 10, 30, 5, 30), utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30),
                     utc(2026, 11, 2, 6, 30)]  # fmt: skip
    assert next_occurrence(start, repeat, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)


def test_schedule_at_on_the_second_instant_of_an_ambiguous_time_is_kept() -> None:
    repeat = Repeat("days", 1, "America/New_York")
    second = utc(2026, 11, 1, 6, 30)  # 01:30 EST, after the 01:30 EDT an hour earlier
    assert first_occurrence(second, repeat, utc(2026, 11, 1)) == second
    assert next_occurrence(second, repeat, second) == utc(2026, 11, 2, 6, 30)


def test_every_two_days() -> None:
    repeat = Repeat("days", 2, "Europe/Berlin")
    start = datetime(2026, 3, 27, 9, tzinfo=BERLIN)
    fired = series(start, repeat, utc(2026, 3, 1), utc(2026, 4, 4))
    assert fired == [
        utc(2026, 3, 27, 8),
        utc(2026, 3, 29, 7),
        utc(2026, 3, 31, 7),
        utc(2026, 4, 2, 7),
    ]
    assert first_occurrence(start, repeat, utc(2026, 3, 28)) == utc(2026, 3, 29, 7)
    assert first_occurrence(start, repeat, utc(2026, 3, 29, 7, 0, 0, 1)) == utc(2026, 3, 31, 7)


def test_days_in_utc_by_default() -> None:
    repeat = Repeat("days", 1)
    assert next_occurrence(utc(2026, 3, 28, 2, 30), repeat, utc(2026, 3, 28, 3)) == utc(
        2026, 3, 29, 2, 30
    )


# -- past schedule_at ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repeat", "now", "expected"),
    [
        (Repeat("minutes", 15), utc(2026, 1, 5, 9, 7), utc(2026, 1, 5, 9, 15, 10)),
        (Repeat("minutes", 15), utc(2026, 1, 5, 9, 15, 10), utc(2026, 1, 5, 9, 15, 10)),
        (Repeat("minutes", 15), utc(2026, 1, 5, 9, 15, 11), utc(2026, 1, 5, 9, 30, 10)),
        (Repeat("hours", 5), utc(2026, 1, 2, 0, 0), utc(2026, 1, 2, 1, 0, 10)),
        (Repeat("days", 3), utc(2026, 1, 5), utc(2026, 1, 7, 0, 0, 10)),
        (Repeat("days", 1, "Asia/Kolkata"), utc(2026, 1, 5, 12), utc(2026, 1, 6, 0, 0, 10)),
        (Repeat("minutes", 1), utc(2025, 12, 1), utc(2026, 1, 1, 0, 0, 10)),
    ],
)
def test_past_schedule_at_gives_the_first_aligned_occurrence_at_or_after_now(
    repeat: Repeat, now: datetime, expected: datetime
) -> None:
    assert first_occurrence(utc(2026, 1, 1, 0, 0, 10), repeat, now) == expected


def test_schedule_at_decades_in_the_past_is_computed_not_iterated() -> None:
    began = time.perf_counter()
    minute = first_occurrence(utc(1975, 1, 1, 0, 0, 30), Repeat("minutes", 1), utc(2035, 6, 1, 12))
    day = next_occurrence(
        utc(1975, 1, 1, 8), Repeat("days", 1, "Europe/Berlin"), utc(2035, 6, 1, 12)
    )
    assert time.perf_counter() - began < 1  # iterating would take tens of millions of steps
    assert minute == utc(2035, 6, 1, 12, 0, 30)
    assert day == utc(2035, 6, 2, 7)  # 09:00 CEST


def test_next_occurrence_is_strictly_after() -> None:
    repeat = Repeat("hours", 2)
    start = utc(2026, 1, 1, 10)
    assert next_occurrence(start, repeat, utc(2026, 1, 1)) == start
    assert next_occurrence(start, repeat, start - US) == start
    assert next_occurrence(start, repeat, start) == utc(2026, 1, 1, 12)
    assert next_occurrence(start, repeat, utc(2026, 1, 1, 12)) == utc(2026, 1, 1, 14)


def test_occurrences_bounds_are_inclusive() -> None:
    repeat = Repeat("minutes", 30)
    start = utc(2026, 1, 1, 10)
    assert series(start, repeat, utc(2026, 1, 1, 10, 30), utc(2026, 1, 1, 11, 30)) == [
        utc(2026, 1, 1, 10, 30),
        utc(2026, 1, 1, 11),
        utc(2026, 1, 1, 11, 30),
    ]
    assert series(start, repeat, utc(2026, 1, 1, 10, 31), utc(2026, 1, 1, 10, 59)) == []


def test_occurrences_stop_at_the_end_of_time() -> None:
    fired = series(
        utc(9999, 12, 31, 20), Repeat("hours", 1), utc(9999, 1, 1), datetime.max.replace(tzinfo=UTC)
    )
    assert fired == [utc(9999, 12, 31, h) for h in (20, 21, 22, 23)]


# -- properties ---------------------------------------------------------------------------------

TRICKY_ZONES = [
    "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia",
    "Pacific/Kwajalein", "America/Sao_Paulo", "America/Havana", "Asia/Beirut", "Europe/Dublin",
    "Africa/Casablanca", "Antarctica/Troll", "America/St_Johns", "Asia/Kathmandu", "Pacific/Chatham",
    "America/Sitka", "Europe/Moscow",
]  # fmt: skip
ZONES = st.one_of(
    st.sampled_from(TRICKY_ZONES),
    st.sampled_from(sorted(name for name in available_timezones() if known_timezone(name))),
)
INSTANTS = st.datetimes(
    min_value=datetime(1890, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
REPEATS = st.builds(
    Repeat,
    time_unit=st.sampled_from(["minutes", "hours", "days"]),
    frequency=st.integers(1, 60),
    timezone=ZONES,
)
STEP = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}


def period(repeat: Repeat) -> timedelta:
    return STEP[repeat.time_unit] * repeat.frequency


def assert_day_occurrence(fire_at: datetime, wanted: datetime, zone: ZoneInfo) -> None:
    """``fire_at`` is the earliest instant whose local time is >= the naive ``wanted``."""
    local = fire_at.astimezone(zone)
    if local.replace(tzinfo=None) == wanted:
        assert local.fold == 0  # the first instant of an ambiguous wall time
    else:  # a gap: fire_at is the transition that jumps over the wanted wall time
        before = (fire_at - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
        assert before < wanted < local.replace(tzinfo=None)


@settings(deadline=None)
@given(start=INSTANTS, repeat=REPEATS, count=st.integers(1, 40))
def test_series_from_its_start(start: datetime, repeat: Repeat, count: int) -> None:
    end = start + period(repeat) * count
    fired = series(start, repeat, start - timedelta(days=2), end)
    assert fired[0] == start
    assert all(a < b for a, b in pairwise(fired))
    assert all(f.tzinfo is UTC for f in fired)
    if repeat.time_unit == "days":
        assert abs(len(fired) - (count + 1)) <= 1  # the UTC offset may have moved by a day
        local = start.astimezone(repeat.zone)
        for k, fire_at in enumerate(fired[1:], start=1):
            day = local.date() + timedelta(days=k * repeat.frequency)
            assert_day_occurrence(fire_at, datetime.combine(day, local.time()), repeat.zone)
    else:
        assert fired == [start + period(repeat) * k for k in range(count + 1)]
    for a, b in pairwise(fired):
        assert next_occurrence(start, repeat, a) == b
        assert next_occurrence(start, repeat, b - US) == b
        assert first_occurrence(start, repeat, b) == b
        assert first_occurrence(start, repeat, a + US) == b


@settings(deadline=None)
@given(
    start=INSTANTS,
    repeat=REPEATS,
    offset=st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=60 * 366)),
)
def test_first_occurrence_far_from_the_start(
    start: datetime, repeat: Repeat, offset: timedelta
) -> None:
    now = start + offset
    first = first_occurrence(start, repeat, now)
    assert first >= now and first >= start
    assert series(start, repeat, now, first) == [first]  # nothing of the series in [now, first)
    assert next_occurrence(start, repeat, first - US) == first
    if first == start:
        return
    if repeat.time_unit != "days":
        assert (first - start) % period(repeat) == timedelta(0)
        assert first - period(repeat) < now
        return
    zone = repeat.zone
    local = start.astimezone(zone)
    for candidate in {
        first.astimezone(zone).date(),
        (first - timedelta(seconds=1)).astimezone(zone).date(),
    }:
        if (candidate - local.date()).days % repeat.frequency == 0:
            wanted = datetime.combine(candidate, local.time())
            try:
                assert_day_occurrence(first, wanted, zone)
            except AssertionError:
                continue
            return
    raise AssertionError(f"{first} is not an occurrence of the series")


@settings(deadline=None)
@given(
    start=INSTANTS,
    repeat=REPEATS,
    offset=st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=400)),
)
def test_next_occurrence_is_the_next_element_of_occurrences(
    start: datetime, repeat: Repeat, offset: timedelta
) -> None:
    after = start + offset
    following = next_occurrence(start, repeat, after)
    assert following > after
    window = list(islice(occurrences(start, repeat, after, following + period(repeat) * 3), 3))
    if window[0] == after:  # ``after`` is itself an occurrence: the next one comes right after it
        window = window[1:]
    assert window[0] == following


@settings(deadline=None)
@given(start=INSTANTS, unit=st.sampled_from(["minutes", "hours"]), frequency=st.integers(1, 60),
       timezone=ZONES, skip=st.integers(0, 10**6))  # fmt: skip
def test_minutes_and_hours_are_exact_elapsed_intervals_in_any_zone(
    start: datetime, unit: str, frequency: int, timezone: str, skip: int
) -> None:
    repeat = Repeat(unit, frequency, timezone)
    assume(start + period(repeat) * (skip + 3) < datetime(9999, 1, 1, tzinfo=UTC))
    begin = start + period(repeat) * skip
    fired = list(islice(occurrences(start, repeat, begin, begin + period(repeat) * 2), 5))
    assert fired == [begin, begin + period(repeat), begin + period(repeat) * 2]


def test_day_estimate_handles_a_skipped_day() -> None:
    # Samoa skipped 2011-12-30 entirely; a 09:00 daily series fires at the transition that day.
    apia = ZoneInfo("Pacific/Apia")
    repeat = Repeat("days", 1, "Pacific/Apia")
    start = datetime(2011, 12, 28, 9, tzinfo=apia)
    fired = series(start, repeat, start, datetime(2012, 1, 1, 12, tzinfo=apia))
    local = [f.astimezone(apia).strftime("%m-%d %H:%M") for f in fired]
    assert local == ["12-28 09:00", "12-29 09:00", "12-31 00:00", "12-31 09:00", "01-01 09:00"]
    assert date(2011, 12, 30) not in {f.astimezone(apia).date() for f in fired}
