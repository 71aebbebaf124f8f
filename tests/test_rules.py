"""SPEC §2: every row of the validation table, in order, through the schedule API over a store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwsched import rules
from fwsched.schedule_api import ScheduleAPI
from fwsched.sdk import ScheduleError
from fwsched.store import Store

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
IN_1H = "2026-01-05T10:00:00Z"
HOURLY = {"time_unit": "hours", "frequency": 1}


class Harness:
    """An in-memory store with the API on top, and a way to see the whole state."""

    def __init__(self, *, strict: bool = True, has_handler: bool = True) -> None:
        self.store = Store.open(None)
        self.strict = strict
        self.has_handler = has_handler
        self.api = ScheduleAPI(
            self.store, lambda: rules.Context(NOW, self.has_handler, self.strict)
        )

    def state(self) -> list[tuple[Any, ...]]:
        return [(e.public(), e.seq) for e in self.store.entries()]

    def fails(self, op: str, request: dict[str, Any]) -> ScheduleError:
        before = self.state()
        with pytest.raises(ScheduleError) as info:
            self.api.call(op, request)
        assert self.state() == before, "a failed call must change nothing"
        return info.value


@pytest.fixture
def api() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.store.close()


def one_time(name: str = "r", **extra: Any) -> dict[str, Any]:
    return {"name": name, "data": {"task_id": 1}, "schedule_at": IN_1H, **extra}


# (rule, request, status, message) for create; setup-dependent rules are tested below.
CREATE_FAILURES = [
    (1, {}, 400, "The following mandatory keys are missing - name,data,schedule_at"),
    (1, {"name": "r", "data": {}}, 400, "The following mandatory keys are missing - schedule_at"),
    (1, {"name": "r", "schedule_at": IN_1H}, 400, "The following mandatory keys are missing - data"),
    (1, one_time(repeat={}), 400, "The following mandatory keys are missing - time_unit,frequency"),
    (1, {"data": {}, "repeat": {"time_unit": "hours"}}, 400,
     "The following mandatory keys are missing - name,schedule_at,frequency"),
    # A truthy repeat that is not a dict has neither key (JavaScript's {} and [] are truthy).
    (1, one_time(repeat="hourly"), 400, "The following mandatory keys are missing - time_unit,frequency"),
    (1, one_time(repeat=[]), 400, "The following mandatory keys are missing - time_unit,frequency"),
    (1, {"name": "r", "repeat": 5}, 400,
     "The following mandatory keys are missing - data,schedule_at,time_unit,frequency"),
    # A key present with None is not missing: its own rule decides.
    (2, one_time(name=None), 400, "Name must be of type string"),
    (4, one_time(data=None), 400, "The 'data' value must be of type JSON"),
    (6, one_time(schedule_at=None), 400, "The 'schedule_at' value must be an ISO string"),
    (7, one_time(repeat={"time_unit": None, "frequency": 1}), 400,
     "Time unit must either be days, minutes or hours"),
    (9, one_time(repeat={"time_unit": "hours", "frequency": None}), 400,
     "The 'frequency' value must be of type Number"),
    (2, one_time(name=7), 400, "Name must be of type string"),
    (2, one_time(name=["r"]), 400, "Name must be of type string"),
    (3, one_time(name=""), 400, "Name must not be empty"),
    (3, one_time(name="x" * 31), 400, "Name length must not be greater than 30"),
    (3, one_time(name="\U0001f600" * 15 + "x"), 400, "Name length must not be greater than 30"),
    (4, one_time(data=[1, 2]), 400, "The 'data' value must be of type JSON"),
    (4, one_time(data="{}"), 400, "The 'data' value must be of type JSON"),
    (4, one_time(data={"s": {1, 2}}), 400, "The 'data' value must be of type JSON"),
    (4, one_time(data={"x": float("nan")}), 400, "The 'data' value must be of type JSON"),
    (5, one_time(data={"x": "a" * 4090}), 400, "The size of the 'data' payload must not exceed 4Kb"),
    (5, one_time(data={"x": "é" * 2046}), 400, "The size of the 'data' payload must not exceed 4Kb"),
    (6, one_time(schedule_at="tomorrow"), 400, "The 'schedule_at' value must be an ISO string"),
    (6, one_time(schedule_at=1767261600000), 400, "The 'schedule_at' value must be an ISO string"),
    (6, one_time(schedule_at="2026-13-01T10:00:00Z"), 400,
     "The 'schedule_at' value must be an ISO string"),
    (6, one_time(schedule_at="2026-01-05t10:00:00z"), 400,
     "The 'schedule_at' value must be an ISO string"),
    (6, one_time(schedule_at="2026-01-05T10:00:00Z "), 400,
     "The 'schedule_at' value must be an ISO string"),
    (6, one_time(schedule_at="2026-01-05T10:00:00+14:30"), 400,
     "The 'schedule_at' value must be an ISO string"),
    # A valid form naming a year that can never fire: refused for a series.
    (6, one_time(schedule_at="+012026-01-05T10:00:00Z", repeat=HOURLY), 400,
     "The 'schedule_at' value must be an ISO string"),
    (7, one_time(repeat={"time_unit": "weeks", "frequency": 1}), 400,
     "Time unit must either be days, minutes or hours"),
    (7, one_time(repeat={"time_unit": "Hours", "frequency": 1}), 400,
     "Time unit must either be days, minutes or hours"),
    (8, one_time(repeat={**HOURLY, "timezone": "Mars/Olympus"}), 400, "Invalid timezone"),
    (8, one_time(repeat={**HOURLY, "timezone": "../../etc/passwd"}), 400, "Invalid timezone"),
    (8, one_time(repeat={**HOURLY, "timezone": 5}), 400, "Invalid timezone"),
    (8, one_time(repeat={**HOURLY, "timezone": True}), 400, "Invalid timezone"),
    (8, one_time(repeat={**HOURLY, "timezone": "posix/Europe/Berlin"}), 400, "Invalid timezone"),
    (8, one_time(repeat={**HOURLY, "timezone": "right/UTC"}), 400, "Invalid timezone"),
    (8, one_time(repeat={**HOURLY, "timezone": "Factory"}), 400, "Invalid timezone"),
    (9, one_time(repeat={"time_unit": "hours", "frequency": "1"}), 400,
     "The 'frequency' value must be of type Number"),
    (9, one_time(repeat={"time_unit": "hours", "frequency": True}), 400,
     "The 'frequency' value must be of type Number"),
    (9, one_time(repeat={"time_unit": "hours", "frequency": 1.5}), 400,
     "The 'frequency' value must be of type Number"),
    (10, one_time(repeat={"time_unit": "hours", "frequency": 0}), 400,
     "The 'frequency' value must be greater than 0"),
    (10, one_time(repeat={"time_unit": "days", "frequency": -3}), 400,
     "The 'frequency' value must be greater than 0"),
    (10, one_time(repeat={"time_unit": "days", "frequency": -0.0}), 400,
     "The 'frequency' value must be greater than 0"),
    (11, one_time(repeat={"time_unit": "minutes", "frequency": 61}), 400,
     "The maximum frequency value for the 'minutes' parameter is 60"),
    (11, one_time(repeat={"time_unit": "hours", "frequency": 25}), 400,
     "The maximum frequency value for the 'hours' parameter is 24"),
    (11, one_time(repeat={"time_unit": "days", "frequency": 31}), 400,
     "The maximum frequency value for the 'days' parameter is 30"),
    (12, one_time(schedule_at="2026-01-05T09:04:59Z"), 400,
     "The 'schedule_at' value must be at least 5 minutes in the future"),
    (12, one_time(schedule_at="2026-01-01T00:00:00Z"), 400,
     "The 'schedule_at' value must be at least 5 minutes in the future"),
    (13, one_time(schedule_at="2027-01-05T09:00:01Z"), 400,
     "The 'schedule_at' value must not be greater than a year"),
    # Years outside 1-9999 are valid forms: long past or far ahead.
    (12, one_time(schedule_at="-002026-01-05T10:00:00Z"), 400,
     "The 'schedule_at' value must be at least 5 minutes in the future"),
    (13, one_time(schedule_at="+012026-01-05T10:00:00Z"), 400,
     "The 'schedule_at' value must not be greater than a year"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "request_", "status", "message"), CREATE_FAILURES)
def test_create_rejects(
    api: Harness, rule: int, request_: dict[str, Any], status: int, message: str
) -> None:
    error = api.fails("create", request_)
    assert (error.status, error.message, str(error)) == (status, message, message)


@pytest.mark.parametrize(("rule", "request_", "status", "message"), CREATE_FAILURES)
def test_update_checks_the_same_rules(
    api: Harness, rule: int, request_: dict[str, Any], status: int, message: str
) -> None:
    api.api.create(one_time("r"))
    assert api.fails("update", request_).message == message


def test_the_first_failing_rule_wins(api: Harness) -> None:
    # Bad name (2), bad data (4), bad time (6) and bad unit (7) at once: rule 2 wins.
    request = {
        "name": 1,
        "data": [],
        "schedule_at": "x",
        "repeat": {"time_unit": "y", "frequency": 0},
    }
    assert api.fails("create", request).message == "Name must be of type string"
    request["name"] = "ok"
    assert api.fails("create", request).message == "The 'data' value must be of type JSON"


def test_boundaries_that_pass(api: Harness) -> None:
    assert api.api.create(one_time("x" * 30))["status"] == 200
    assert api.api.create(one_time("min", schedule_at="2026-01-05T09:05:00Z"))["status"] == 200
    assert api.api.create(one_time("max", schedule_at="2027-01-05T09:00:00Z"))["status"] == 200
    assert api.api.create(one_time("big", data={"x": "a" * 4088}))["status"] == 200  # 4096 bytes
    assert api.api.create(one_time("utf", data={"é": "ü" * 2043}))["status"] == 200


def test_rule_14_no_handler() -> None:
    harness = Harness(has_handler=False)
    error = harness.fails("create", one_time())
    assert (error.status, error.message) == (400, "The app has not registered an onScheduledEvent")


def test_rule_15_name_exists(api: Harness) -> None:
    api.api.create(one_time("r"))
    error = api.fails("create", one_time("r", data={"other": True}))
    assert (error.status, error.message) == (400, "This Schedule name already exists")


@pytest.mark.parametrize("op", ["fetch", "update", "delete"])
def test_rule_16_does_not_exist(api: Harness, op: str) -> None:
    api.api.create(one_time("other"))
    error = api.fails(op, one_time("missing"))
    assert (error.status, error.message) == (404, "Schedule does not exist")


@pytest.mark.parametrize("op", ["fetch", "delete"])
def test_fetch_and_delete_check_only_rules_1_to_3_and_16(api: Harness, op: str) -> None:
    assert api.fails(op, {}).message == "The following mandatory keys are missing - name"
    assert api.fails(op, {"name": 3}).message == "Name must be of type string"
    # No length check: a 31-character or empty name is simply not found.
    for name in ("y" * 31, ""):
        error = api.fails(op, {"name": name})
        assert (error.status, error.message) == (404, "Schedule does not exist")
    api.api.create(one_time("r"))
    # Nonsense in the other keys is ignored by fetch and delete.
    assert api.api.call(op, {"name": "r", "data": "junk", "repeat": 5}) is not None


def test_rule_17_one_time_limit(api: Harness) -> None:
    for i in range(rules.MAX_ONE_TIME):
        api.api.create(one_time(f"t{i}"))
    error = api.fails("create", one_time("t-extra"))
    assert (error.status, error.message) == (
        400,
        "The maximum number of one-time schedules is 1000",
    )
    # Updating one of the thousand stays at a thousand.
    assert api.api.update(one_time("t0", data={"v": 2}))["status"] == 200
    # Turning the recurring one into a one-time would make 1001.
    api.api.create(one_time("rec", repeat=HOURLY))
    assert api.fails("update", one_time("rec")).message == (
        "The maximum number of one-time schedules is 1000"
    )


def test_rule_18_one_recurring(api: Harness) -> None:
    api.api.create(one_time("rec", repeat=HOURLY))
    error = api.fails("create", one_time("rec2", repeat=HOURLY))
    assert (error.status, error.message) == (400, "The maximum number of recurring schedules is 1")
    api.api.create(one_time("once"))
    assert api.fails("update", one_time("once", repeat=HOURLY)).message == (
        "The maximum number of recurring schedules is 1"
    )
    assert api.api.update(one_time("rec", repeat={"time_unit": "days", "frequency": 2}))


def test_relaxed_lifts_only_the_platform_limits() -> None:
    harness = Harness(strict=False)
    api = harness.api
    assert api.create(one_time("past", schedule_at="2025-06-01T00:00:00Z"))["status"] == 200
    assert api.create(one_time("far", schedule_at="2030-01-01T00:00:00Z"))["status"] == 200
    assert api.create(one_time("rec1", repeat=HOURLY))["status"] == 200
    assert api.create(one_time("rec2", repeat=HOURLY))["status"] == 200
    for i in range(rules.MAX_ONE_TIME):
        api.create(one_time(f"t{i}"))
    # Everything else still holds.
    assert harness.fails("create", one_time("x" * 31)).message.startswith("Name length")
    assert harness.fails("create", one_time("rec1")).message == "This Schedule name already exists"


def test_success_responses_and_fetch_returns_what_was_stored(api: Harness) -> None:
    created = api.api.create(
        name="r",
        data={"task_id": 1, "nested": {"a": [1, 2]}},
        schedule_at="2026-01-05T10:00:00.860Z",
    )
    assert created == {"status": 200, "message": "Schedule created"}
    assert api.api.fetch(name="r") == {
        "name": "r",
        "data": {"task_id": 1, "nested": {"a": [1, 2]}},
        "schedule_at": "2026-01-05T10:00:00.860Z",
    }
    updated = api.api.update(
        {
            "name": "r",
            "data": {"v": 2},
            "schedule_at": "2026-01-06T09:00:00+05:30",
            "repeat": HOURLY,
        }
    )
    assert updated == {"status": 200, "message": "Schedule updated"}
    assert api.api.fetch({"name": "r"}) == {
        "name": "r",
        "data": {"v": 2},
        "schedule_at": "2026-01-06T09:00:00+05:30",
        "repeat": {"time_unit": "hours", "frequency": 1, "timezone": "UTC"},
    }
    assert api.api.delete(name="r") == {"status": 200, "message": "Schedule deleted"}
    assert api.store.entries() == []


def test_update_keeps_creation_order(api: Harness) -> None:
    api.api.create(one_time("a"))
    api.api.create(one_time("b"))
    api.api.update(one_time("a", data={"v": 2}))
    assert [e.spec.name for e in api.store.entries()] == ["a", "b"]


def test_naive_schedule_at_means_utc(api: Harness) -> None:
    api.api.create(one_time("n", schedule_at="2026-01-05T10:00:00"))
    entry = api.store.get("n")
    assert entry is not None
    assert entry.next_fire_at == datetime(2026, 1, 5, 10, tzinfo=UTC)


def test_recurring_in_the_past_starts_at_the_next_aligned_occurrence(api: Harness) -> None:
    api.api.create(
        name="rec",
        data={},
        schedule_at="2026-01-01T00:10:00Z",
        repeat={"time_unit": "minutes", "frequency": 15},
    )
    entry = api.store.get("rec")
    assert entry is not None
    assert entry.next_fire_at == datetime(2026, 1, 5, 9, 10, tzinfo=UTC)


# -- property: arbitrary malformed requests never escape as anything but ScheduleError -------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
odd_iso = st.sampled_from(
    [
        "2026-01-05T10:00:00Z",
        "2026-01-05T10:00:00.123456+05:30",
        "2026-01-05T10:00",
        "2026-01-05",
        "2026-02-30T10:00:00Z",
        "2026-01-05T25:00:00Z",
        "10:00",
        "",
        "2026-01-05T10:00:00+99:00",
        "\uff12\uff10\uff12\uff16-01-05T10:00:00Z"  # full-width digits,
        "2026-W02-1T10:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
    ]
)
repeats = (
    st.none()
    | json_values
    | st.fixed_dictionaries(
        {},
        optional={
            "time_unit": st.sampled_from(["minutes", "hours", "days", "weeks", ""]) | json_values,
            "frequency": st.integers(-5, 100) | json_values,
            "timezone": st.sampled_from(["UTC", "Europe/Berlin", "Nowhere/City", "", "/", "."])
            | json_values,
        },
    )
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=40) | json_values,
        "data": json_values
        | st.dictionaries(st.text(max_size=5), st.text(max_size=2000), max_size=4),
        "schedule_at": odd_iso | st.text(max_size=30) | json_values,
        "repeat": repeats,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(["create", "update", "fetch", "delete"]), request=requests)
def test_malformed_requests_are_accepted_or_rejected_cleanly(
    op: str, request: dict[str, Any]
) -> None:
    harness = Harness(strict=bool(len(str(request)) % 2))
    try:
        harness.api.create(one_time("existing"))
        before = harness.state()
        try:
            answer = harness.api.call(op, request)
        except ScheduleError as error:
            assert error.status in (400, 404)
            assert harness.state() == before
        else:
            assert isinstance(answer, dict)
    finally:
        harness.store.close()


def test_schedule_error_exposes_status_and_message() -> None:
    error = ScheduleError(404, "Schedule does not exist")
    assert (error.status, error.message, str(error)) == (
        404,
        "Schedule does not exist",
        error.message,
    )
    assert error.to_dict() == {"status": 404, "message": "Schedule does not exist"}


def test_a_series_whose_wall_time_leaves_the_years_1_to_9999_is_refused(api: Harness) -> None:
    request = one_time(
        schedule_at="0001-01-01T00:00:00Z",
        repeat={"time_unit": "days", "frequency": 1, "timezone": "America/New_York"},
    )
    error = api.fails("create", request)
    assert (error.status, error.message) == (400, rules.NOT_ISO)


def test_fetch_returns_the_timezone_as_given_and_fires_in_its_zone(api: Harness) -> None:
    daily = {"time_unit": "days", "frequency": 1, "timezone": "europe/BERLIN"}
    api.api.create(one_time("d", schedule_at="2026-01-05T10:00:00", repeat=daily))
    assert api.api.fetch(name="d")["repeat"]["timezone"] == "europe/BERLIN"
    assert api.store.get("d").spec.repeat.zone.key == "Europe/Berlin"  # type: ignore[union-attr]


@pytest.mark.parametrize("falsy", [None, False, 0, 0.0, ""])
def test_a_falsy_repeat_is_one_time_and_a_falsy_timezone_is_utc(api: Harness, falsy: Any) -> None:
    api.api.create(one_time("once", repeat=falsy))
    assert "repeat" not in api.api.fetch(name="once")
    hourly = {**HOURLY, "timezone": falsy}
    api.api.create(one_time("series", repeat=hourly))
    assert api.api.fetch(name="series")["repeat"]["timezone"] == "UTC"


def test_an_integral_float_frequency_is_a_number(api: Harness) -> None:
    api.api.create(one_time("s", repeat={"time_unit": "hours", "frequency": 2.0}))
    assert api.api.fetch(name="s")["repeat"]["frequency"] == 2


def test_schedule_at_is_truncated_to_milliseconds(api: Harness) -> None:
    api.api.create(one_time("ms", schedule_at="2026-01-05T10:00:00.123999Z"))
    (entry,) = api.store.entries()
    assert entry.next_fire_at == datetime(2026, 1, 5, 10, 0, 0, 123000, tzinfo=UTC)
