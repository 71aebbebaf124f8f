"""Issue 11, point 8, and the fuzzing of its "Done when": inputs that gave
``internal error`` now give a clean exit 1 or 2 with one line (or, where the platform
accepts them, work), and arbitrary JSON-like values (lone surrogates, deep nesting,
huge integers, NaN) fed to every schedule and db call and returned by handlers give
only documented errors, change nothing when refused, and leave the simulator working.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import MakeApp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwsched import Simulator
from fwsched.cli.root import cli
from fwsched.jsonsafe import MAX_DEPTH
from fwsched.platform import db as db_module
from fwsched.platform import db_update
from fwsched.sdk import DbError, RequestError, ScheduleError

START = "2026-01-05T09:00:00Z"
SERVER = r"""
import json

def nested(value, depth):
    for _ in range(depth):
        value = [value]
    return value

def handle(payload):
    data = payload["data"]
    if "value" in data:  # a value, wrapped deep and with a huge integer, as asked
        value = nested(json.loads(data["value"]), data.get("wrap", 0))
        if data.get("digits"):
            value = [value, 7 * 10 ** data["digits"]]
        return value
    if "call" in data:  # a platform call with what the test could not send as data
        service, method = data["call"]
        args = json.loads(data["args"])
        try:
            return {"ok": getattr(globals()[service], method)(*args)}
        except (ScheduleError, DbError) as err:
            return {"error": [type(err).__name__, err.status, err.message]}
        except RequestError as err:
            return {"error": ["RequestError", err.status, err.message, err.error_source]}
    return None

exports = {"onScheduledEventHandler": handle}
"""
TOML = f'[simulator]\nstart = "{START}"\ntimeout = 10\n'


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    monkeypatch.delenv("FWSCHED_DEBUG", raising=False)
    yield


@pytest.fixture
def app(make_app: MakeApp) -> Path:
    return make_app(SERVER, toml=TOML)


def fw(app: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--app", str(app)])


def clean_failure(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("relaxed:")]
    assert len(lines) == 1 and "internal error" not in lines[0], result.stderr
    return lines[0]


def state_json(app: Path) -> tuple[str, str, str]:
    return tuple(
        fw(app, command, "--json").stdout for command in ("status", "schedules", "history")
    )  # type: ignore[return-value]


def nested_json(depth: int) -> str:
    return '{"a": ' + "[" * depth + "]" * depth + "}"


# -- the inputs of point 8 -----------------------------------------------------------------

REFUSED: list[tuple[str, list[str], int, str]] = [
    ("payload nested 1200 deep", ["trigger", "--payload", nested_json(1200)], 2, "nested too deeply"),
    ("payload nested past the limit", ["trigger", "--payload", nested_json(MAX_DEPTH + 1)], 1, "nested deeper than"),
    ("event payload past the limit", ["trigger", "--event", "onScheduledEvent", "--payload", '{"data": {}, "x": ' + "[" * 70 + "]" * 70 + "}"], 1, "nested deeper than"),
    ("data nested past the limit", ["schedule", "create", "--name", "d", "--data", nested_json(MAX_DEPTH), "--at", "+1h"], 1, "must be of type JSON"),
    ("a 5000-digit integer", ["schedule", "create", "--name", "n", "--data", '{"a": ' + "9" * 5000 + "}", "--at", "+1h"], 2, "4300 digits"),
    ("show a huge id", ["show", "9" * 23], 1, "No invocation with id"),
    ("days from year 1 in New York", ["schedule", "create", "--name", "y1", "--data", "{}", "--at", "0001-01-01T00:00:00Z", "--every", "1d", "--timezone", "America/New_York"], 1, "must be an ISO string"),
    ("advance past 9999", ["advance", "--to", "9999-12-31T23:59:59Z", "--relaxed"], 0, ""),
    ("speed inf", ["run", "--speed", "inf"], 2, "--speed"),
    ("speed 1e400", ["run", "--speed", "1e400"], 2, "--speed"),
    ("speed nan", ["run", "--speed", "nan"], 2, "--speed"),
    ("timeout 1e400", ["run", "--timeout", "1e400"], 2, "--timeout"),
    ("trigger timeout nan", ["trigger", "--payload", "{}", "--timeout", "nan"], 2, "--timeout"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "command", "code", "says"), REFUSED, ids=[r[0] for r in REFUSED])
def test_an_input_that_broke_fwsched_is_a_clean_exit(
    app: Path, name: str, command: list[str], code: int, says: str
) -> None:
    before = state_json(app)
    result = fw(app, *command)
    if code == 0:
        assert result.exit_code == 0, result.stderr
        return
    line = clean_failure(result, code)
    assert says in line, line
    assert state_json(app) == before  # nothing changed


def test_data_from_a_binary_file_is_a_usage_error(app: Path, tmp_path: Path) -> None:
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)))
    line = clean_failure(fw(app, "schedule", "create", "--name", "b", "--data", f"@{binary}", "--at", "+1h"), 2)  # fmt: skip
    assert "not UTF-8" in line


def test_a_huge_history_limit_shows_all(app: Path) -> None:
    assert fw(app, "trigger", "--payload", "{}").exit_code == 0
    result = fw(app, "history", "--limit", "9" * 23, "--json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 1


def test_lone_surrogates_are_kept_as_the_platform_keeps_them(app: Path) -> None:
    """A lone surrogate is valid in JSON and in a JavaScript string: the schedule is
    created, it reads back the same, and every command prints it escaped."""
    data = {"a": "\ud800", "b\udfff": "\udc80\u00e9"}
    with Simulator(app, state=app / ".fwsched" / "state.db") as sim:
        sim.schedule.create(name="s\ud800", data=data, schedule_at="2026-01-05T10:00:00Z")
        assert sim.schedule.fetch(name="s\ud800")["data"] == data
    created = fw(app, "schedule", "create", "--name", "cli", "--data", '{"a": "\\ud800"}', "--at", "+1h")  # fmt: skip
    assert created.exit_code == 0, created.stderr
    for command in (
        ["schedules", "--json"],
        ["schedules"],
        ["advance", "2h", "--json"],
        ["history"],
    ):
        shown = subprocess.run(
            [sys.executable, "-m", "fwsched", *command, "--app", str(app)],
            capture_output=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert b"\\ud800" in shown.stdout, (command, shown.stdout)
    with Simulator(app, state=app / ".fwsched" / "state.db") as sim:
        first, second = sim.history()
    assert (first.schedule, first.payload["data"]) == ("s\ud800", data)
    assert second.payload["data"] == {"a": "\ud800"}


def test_a_series_that_reaches_the_year_9999_ends(app: Path) -> None:
    with Simulator(app, strict=False) as sim:
        sim.schedule.create(
            name="last",
            data={},
            schedule_at="9999-12-31T22:00:00Z",
            repeat={"time_unit": "hours", "frequency": 1},
        )
        fired = sim.advance_to("9999-12-31T23:59:59.999999Z")
        assert [i.fire_at.hour for i in fired] == [22, 23]
        assert sim.schedules() == []  # the next occurrence would be in the year 10000
        with pytest.raises(ValueError, match="past the year 9999"):
            sim.advance("1s")
        assert sim.trigger_payload({}).outcome == "ok"  # and it still works
        assert sim.now.year == 9999


def test_a_fast_clock_stops_at_the_end_of_time() -> None:
    from fwsched.clock import END_OF_TIME, SimClock

    real = [0.0]
    clock = SimClock(datetime(9999, 12, 31, tzinfo=UTC), rate=1e9, real_time=lambda: real[0])
    real[0] = 1e6
    assert clock.now() == END_OF_TIME
    with pytest.raises(ValueError, match="year 9999"):
        clock.advance(datetime.max - datetime.min)


def test_the_library_refuses_an_endless_timeout(app: Path) -> None:
    for timeout in (math.inf, math.nan, 1e400, 10**6):
        with pytest.raises(ValueError, match="timeout"):
            Simulator(app, timeout=timeout)


def test_fwsched_toml_refuses_an_endless_timeout(make_app: MakeApp) -> None:
    root = make_app(SERVER, toml="[simulator]\ntimeout = 1e10\n", name="slow")
    line = clean_failure(fw(root, "status"), 1)
    assert "fwsched.toml: [simulator] timeout must be at most 86400 seconds" in line


# -- fuzzing: arbitrary values to every call ----------------------------------------------

TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(["\ud800", "\udfff", "a\udc80b", "", "2026-01-05T10:00:00Z", "UTC"]),
)
TREE = st.recursive(
    LEAF,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(TEXT, children, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def values(draw: st.DrawFn) -> Any:
    """JSON-like values, sometimes nested very deep or holding a huge integer."""
    value = draw(TREE)
    depth = draw(st.sampled_from([0, 0, 0, MAX_DEPTH - 2, MAX_DEPTH + 1, 1500]))
    for _ in range(depth):
        value = [value]
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        value = {"big": 10**5000 if draw(st.booleans()) else -(10**400), "v": value}
    return value


SCHEDULE_FIELDS = ("name", "data", "schedule_at", "repeat")
REQUESTS = st.dictionaries(
    st.sampled_from(SCHEDULE_FIELDS),
    st.one_of(
        values(),
        st.just({"time_unit": "hours", "frequency": 1}),
        st.just("2026-01-05T10:00:00Z"),
        st.just("r"),
    ),
)
SCHEDULE_MESSAGES = [
    r"The following mandatory keys are missing - [a-z_,]+",
    r"Name must be of type string",
    r"Name must not be empty",
    r"Name length must not be greater than 30",
    r"The 'data' value must be of type JSON",
    r"The size of the 'data' payload must not exceed 4Kb",
    r"The 'schedule_at' value must be an ISO string",
    r"The 'schedule_at' value must be at least 5 minutes in the future",
    r"The 'schedule_at' value must not be greater than a year",
    r"The app has not registered an onScheduledEvent",
    r"Time unit must either be days, minutes or hours",
    r"Invalid timezone",
    r"The 'frequency' value must be of type Number",
    r"The 'frequency' value must be greater than 0",
    r"The maximum frequency value for the '\w+' parameter is \d+",
    r"This Schedule name already exists",
    r"Schedule does not exist",
    r"The maximum number of (one-time|recurring) schedules is \d+",
]
DB_MESSAGES = [
    re.escape(value).replace(r"\{\}", ".*")
    for module in (db_module, db_update)
    for name, value in vars(module).items()
    if name.isupper() and isinstance(value, str) and not value.lstrip().startswith("CREATE")
]


def documented(err: Exception) -> bool:
    if isinstance(err, RequestError):  # its messages name URLs and templates: its shape
        return (
            400 <= err.status <= 599
            and bool(err.message)
            and err.error_source in ("APP", "PLATFORM")
        )
    if isinstance(err, ScheduleError):
        patterns = SCHEDULE_MESSAGES
    elif isinstance(err, DbError):
        patterns = DB_MESSAGES
    else:
        return False
    return any(re.fullmatch(pattern, err.message, re.DOTALL) for pattern in patterns)


def snapshot(sim: Simulator) -> Any:
    return (
        [s.to_json() for s in sim.schedules()],
        [e.to_dict() for e in sim.db.entries()],
        len(sim.history()),
    )


def still_works(sim: Simulator) -> None:
    name = f"ok{len(sim.history())}"
    at = (sim.now + timedelta(hours=1)).isoformat()
    sim.schedule.create(name=name, data={"n": 1}, schedule_at=at)
    assert sim.schedule.fetch(name=name)["data"] == {"n": 1}
    sim.schedule.delete(name=name)
    sim.db.set("probe", {"n": 1})
    assert sim.db.get("probe") == {"n": 1}
    sim.db.delete("probe")


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "app"
    root.mkdir()
    (root / "manifest.json").write_text(
        json.dumps({"events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}}})
    )
    (root / "server.py").write_text(SERVER)
    (root / "fwsched.toml").write_text(TOML)
    return root


@pytest.fixture(scope="module")
def fuzz_sim(fuzz_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    state = tmp_path_factory.mktemp("fuzz-state") / "state.db"  # on disk: SQLite's text rules
    with Simulator(fuzz_app, state=state, timeout=10) as sim:
        sim.schedule.create(name="r", data={"keep": True}, schedule_at="2026-01-05T10:00:00Z")
        sim.db.set("k", {"keep": True})
        yield sim


@FUZZ
@given(op=st.sampled_from(["create", "update", "fetch", "delete"]), request=REQUESTS)
def test_any_schedule_call_answers_or_refuses_as_documented(
    fuzz_sim: Simulator, op: str, request: dict[str, Any]
) -> None:
    sim = fuzz_sim
    before = snapshot(sim)
    try:
        sim.schedule.call(op, request)
    except ScheduleError as err:
        assert documented(err), err
        assert snapshot(sim) == before
    for schedule in sim.schedules():
        if schedule.name != "r":
            sim.schedule.delete(name=schedule.name)
    still_works(sim)


DB_CALLS = st.one_of(
    st.tuples(st.just("get"), st.lists(values(), max_size=1)),
    st.tuples(st.just("delete"), st.lists(values(), max_size=1)),
    st.tuples(st.just("set"), st.lists(values(), max_size=3)),
    st.tuples(st.just("update"), st.lists(values(), max_size=4)),
)


@FUZZ
@given(call=DB_CALLS)
def test_any_db_call_answers_or_refuses_as_documented(
    fuzz_sim: Simulator, call: tuple[str, list[Any]]
) -> None:
    sim = fuzz_sim
    method, args = call
    before = snapshot(sim)
    try:
        sim.db.call(method, tuple(args))
    except DbError as err:
        assert documented(err), err
        assert snapshot(sim) == before
    stored = sim.db.keys()
    for key in stored:
        if key != "k":
            sim.db.delete(key)
    still_works(sim)


REQUEST_CALLS = st.tuples(
    st.sampled_from(["get", "post", "put", "patch", "delete", "invoke_template"]),
    st.lists(
        st.one_of(
            values(),
            st.sampled_from(
                ["https://api.example.com/x", "http://10.0.0.1/", "https://localhost/", "crm"]
            ),
        ),
        max_size=3,
    ),
)


@FUZZ
@given(call=REQUEST_CALLS)
def test_any_request_call_answers_or_refuses_as_documented(
    fuzz_sim: Simulator, call: tuple[str, list[Any]]
) -> None:
    """Offline, with no stub: every request is refused by the simulated platform (or
    its arguments are), never sent, and nothing else changes."""
    sim = fuzz_sim
    method, args = call
    before = snapshot(sim)
    try:
        sim.http.call(method, tuple(args))
    except RequestError as err:
        assert documented(err), err.to_dict()
    except TypeError:  # arguments Python itself refuses for the method's signature
        pass
    else:
        raise AssertionError("an offline request without a stub was answered")
    assert snapshot(sim) == before
    still_works(sim)


def _as_text(value: Any) -> str | None:
    """``value`` as JSON text for the handler to rebuild, or None if JSON cannot carry it."""
    try:
        return json.dumps(value)  # ASCII: lone surrogates travel as escapes
    except (ValueError, RecursionError):
        return None


@FUZZ
@given(
    value=TREE,
    wrap=st.sampled_from([0, MAX_DEPTH - 1, MAX_DEPTH, 3000]),
    digits=st.sampled_from([0, 0, 5000]),
)
def test_any_return_value_is_recorded_and_shown(
    fuzz_sim: Simulator, value: Any, wrap: int, digits: int
) -> None:
    text = _as_text(value)
    if text is None or len(text) > 3000:
        return
    sim = fuzz_sim
    run = sim.trigger_payload({"value": text, "wrap": wrap, "digits": digits})
    assert run.outcome == "ok", (run.outcome, run.error)
    [shown] = sim.history(limit=1)
    assert shown.id == run.id and shown.outcome == "ok"
    json.dumps(shown.to_json())  # every recorded value prints as JSON
    still_works(sim)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    call=st.one_of(
        st.tuples(st.just(("schedule", "create")), REQUESTS.map(lambda r: [r])),
        st.tuples(st.just(("db", "set")), st.lists(values(), max_size=3)),
        st.tuples(st.just(("db", "update")), st.lists(values(), max_size=4)),
        REQUEST_CALLS.map(lambda call: (("request", call[0]), call[1])),
    )
)
def test_any_call_from_a_handler_answers_or_refuses_as_documented(
    fuzz_sim: Simulator, call: tuple[tuple[str, str], list[Any]]
) -> None:
    (service, method), args = call
    text = _as_text(args)
    if text is None or len(text) > 3000:
        return
    sim = fuzz_sim
    before = snapshot(sim)
    run = sim.trigger_payload({"call": [service, method], "args": text})
    if run.outcome == "error":  # arguments a handler may not pass (a TypeError of Python's)
        assert run.error.startswith("TypeError: "), run.error
    else:
        assert run.outcome == "ok", (run.outcome, run.error)
        answer = run.return_value
        if "error" in answer:
            kind, status, message, *source = answer["error"]
            err: Exception
            if kind == "RequestError":
                err = RequestError(status, message, error_source=source[0])
            else:
                err = (ScheduleError if kind == "ScheduleError" else DbError)(status, message)
            assert documented(err), answer
            assert snapshot(sim)[:2] == before[:2]
    for schedule in sim.schedules():
        if schedule.name != "r":
            sim.schedule.delete(name=schedule.name)
    stored = sim.db.keys()
    for key in stored:
        if key != "k":
            sim.db.delete(key)
    still_works(sim)
