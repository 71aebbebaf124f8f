"""SPEC §9 end to end: ``db`` through a handler, the library (``sim.db``) and ``fwsched db``.

The rows of §9's table are tests/test_db.py's (``ROWS`` and ``FIRST_ROW_WINS``, written as
calls on a service): each is turned into data once (method, args, kwargs) and runs through
all three doors, which must give the same status and message and change nothing. Then the
life of the data: ``ttl`` in simulated time (``sim.advance``, ``fwsched advance``), a restart
on the same state file, ``uninstall`` (and ``keep_data``) and ``fwsched reset``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import MANIFEST
from test_db import FIRST_ROW_WINS, NOT_FOUND, PRESENT, ROWS

from fwsched import DbError, Simulator
from fwsched.cli.root import cli

START = "2026-01-05T09:00:00Z"

# -- the table as data --------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    status: int
    message: str
    call: Callable[[Any], object]  # the row as test_db wrote it: a call on any db object

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "args": list(self.args), "kwargs": self.kwargs}


class _Recorder:
    """Stands in for a db service: a call answers what it was called with."""

    def __getattr__(
        self, method: str
    ) -> Callable[..., tuple[str, tuple[Any, ...], dict[str, Any]]]:
        return lambda *args, **kwargs: (method, args, kwargs)


def _rows() -> list[Row]:
    rows = []
    for name, call, status, message in [*ROWS, *FIRST_ROW_WINS]:
        recorded = call(_Recorder())
        assert isinstance(recorded, tuple), name
        method, args, kwargs = recorded
        rows.append(Row(name, method, args, kwargs, status, message, call))
    return rows


TABLE = _rows()


def _json_able(value: Any) -> bool:
    """Whether ``value`` crosses to the parent as it is (NaN and infinities do, lenient)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


# Python values a handler can pass but JSON cannot carry (a set, an object()): the sandbox
# refuses those arguments as a whole (400, "db.set: arguments must be JSON values ..."), so these
# rows are the library's only; the platform's JavaScript has no such values.
HANDLER_ROWS = [row for row in TABLE if _json_able([row.args, row.kwargs])]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cli_options(options: dict[str, Any]) -> list[str] | None:
    """--ttl/--set-if for a set's options, or None when the shell cannot say them."""
    out: list[str] = []
    for key, value in options.items():
        if key == "ttl" and _is_number(value):
            out += ["--ttl", repr(float(value))]
        elif key in ("setIf", "set_if") and isinstance(value, str):
            out += ["--set-if", value]
        else:
            return None
    return out


def cli_args(row: Row) -> list[str] | None:
    """``fwsched db ...`` arguments that make the row's call, or None if none can."""
    args, kwargs = row.args, row.kwargs
    if not args or not isinstance(args[0], str) or not _json_able([args, kwargs]):
        return None
    key = args[0]
    if row.method in ("get", "delete"):
        return [row.method, key] if len(args) == 1 and not kwargs else None
    if row.method == "update":
        if len(args) != 3 or kwargs or not isinstance(args[1], str):
            return None
        return ["update", key, args[1], json.dumps(args[2])]
    if row.method == "set":
        if len(args) not in (2, 3):
            return None
        options: dict[str, Any] = {}
        if len(args) == 3:
            if not isinstance(args[2], dict):
                return None
            options.update(args[2])
        options.update(kwargs)
        if len(options) > 2:
            return None
        flags = _cli_options(options)
        if flags is None:
            return None
        return ["set", key, json.dumps(args[1]), *flags]
    return None


CLI_ROWS = [(row, args) for row in TABLE if (args := cli_args(row)) is not None]


def test_the_table_is_all_there() -> None:
    # Every row of test_db runs through the library; the other doors take what they can say.
    assert len(TABLE) == len(ROWS) + len(FIRST_ROW_WINS) >= 100
    assert len(HANDLER_ROWS) >= len(TABLE) - 3
    assert len(CLI_ROWS) >= 60
    said = {row.message for row, _ in CLI_ROWS}
    # Unknown options and a missing action cannot be spelled on the command line; the rest can.
    unsayable = ("Invalid option", "Invalid action null")
    every_message = {row.message for row in TABLE if not row.message.startswith(unsayable)}
    assert every_message - said == set()


# -- the apps -----------------------------------------------------------------------------

# Runs the case named by the payload's data from cases.json and returns its answer.
CASE_SERVER = """
import json

def run_case(payload):
    with open("cases.json") as cases:
        case = json.load(cases)[payload["data"]["case"]]
    method = getattr(db, case["method"])
    try:
        return {"ok": method(*case["args"], **case["kwargs"])}
    except DbError as err:
        return {"status": err.status, "message": err.message, "str": str(err),
                "type": type(err).__name__}

exports = {"onScheduledEventHandler": run_case}
"""


def _write_app(root: Path, server: str, manifest: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps(manifest or MANIFEST))
    (root / "server.py").write_text(server)
    (root / "fwsched.toml").write_text(f'[simulator]\nstart = "{START}"\n')
    return root


def snapshot(sim: Simulator) -> dict[str, Any]:
    """Every live key with its value and expiry, read through the library."""
    return {entry.key: (sim.db.get(entry.key), entry.expires_at) for entry in sim.db.entries()}


def reset_db(sim: Simulator) -> dict[str, Any]:
    """Only ``present`` = test_db's PRESENT, as test_db's rows expect; the snapshot."""
    for entry in sim.db.entries():
        sim.db.delete(entry.key)
    sim.db.set("present", PRESENT)
    return snapshot(sim)


@pytest.fixture(scope="module")
def case_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    app = _write_app(tmp_path_factory.mktemp("cases") / "app", CASE_SERVER)
    cases = {row.id: row.to_json() for row in HANDLER_ROWS}
    cases["example"] = {"method": "get", "args": ["present"], "kwargs": {}}
    # NaN and Infinity stay what the row passed (Python's json reads them back).
    (app / "cases.json").write_text(json.dumps(cases))
    with Simulator(app, timeout=10) as sim:
        yield sim


@pytest.fixture(scope="module")
def lib_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    app = _write_app(tmp_path_factory.mktemp("lib") / "app", CASE_SERVER)
    with Simulator(app) as sim:
        yield sim


# -- every row, three doors ---------------------------------------------------------------


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_row_through_the_library(lib_sim: Simulator, row: Row) -> None:
    before = reset_db(lib_sim)
    with pytest.raises(DbError) as info:
        row.call(lib_sim.db)
    assert (info.value.status, info.value.message, str(info.value)) == (
        row.status,
        row.message,
        row.message,
    )
    assert snapshot(lib_sim) == before  # a failed call changes nothing


@pytest.mark.parametrize("row", HANDLER_ROWS, ids=[row.id for row in HANDLER_ROWS])
def test_row_through_a_handler(case_sim: Simulator, row: Row) -> None:
    before = reset_db(case_sim)
    run = case_sim.trigger_payload({"case": row.id})
    assert run.outcome == "ok", (run.error, run.traceback)
    assert run.return_value == {
        "status": row.status,
        "message": row.message,
        "str": row.message,
        "type": "DbError",
    }
    assert snapshot(case_sim) == before


def test_a_handler_reads_what_the_library_wrote(case_sim: Simulator) -> None:
    reset_db(case_sim)
    run = case_sim.trigger_payload({"case": "example"})
    assert run.return_value == {"ok": PRESENT}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No FWSCHED_APP, no live runner registry of the user's, a neutral cwd."""
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    monkeypatch.delenv("FWSCHED_DEBUG", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return tmp_path


def fw(*args: Any, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], input=input)


def ok(*args: Any) -> Result:
    result = fw(*args)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result


def answer(*args: Any) -> Any:
    """The JSON answer of a command that succeeds."""
    return json.loads(ok(*args, "--json").stdout)


def refusal(*args: Any) -> Any:
    """The ``{"status", "message"}`` of a db command that fails: exit 1, JSON on stdout."""
    result = fw(*args, "--json")
    assert result.exit_code == 1, (args, result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert set(document) == {"status", "message"}
    assert result.stderr.strip() == f"Error: {document['message']} (status {document['status']})"
    return document


def test_every_expressible_row_through_the_command_line(isolated: Path) -> None:
    app = _write_app(isolated / "app", CASE_SERVER)
    ok("db", "set", "present", json.dumps(PRESENT), "--app", app)
    listed = answer("db", "ls", "--app", app)
    assert [entry["key"] for entry in listed] == ["present"]
    mismatches = []
    for row, args in CLI_ROWS:
        result = fw("db", *args, "--json", "--app", app)
        got: Any = (result.exit_code, result.stdout)
        try:
            document = json.loads(result.stdout)
        except ValueError:
            document = None
        expected = {"status": row.status, "message": row.message}
        if result.exit_code == 1 and document == expected:
            got = None
        elif result.exit_code == 0:  # it changed the data: put it back for the next rows
            ok("db", "set", "present", json.dumps(PRESENT), "--app", app)
        if got is not None:
            mismatches.append(f"{row.id}: fwsched db {' '.join(args)} -> {got!r}")
        elif answer("db", "ls", "--app", app) != listed:
            mismatches.append(f"{row.id}: a failed call changed the data")
    assert mismatches == []
    assert answer("db", "get", "present", "--app", app) == PRESENT


def test_one_refusal_in_full_on_the_command_line(isolated: Path) -> None:
    app = _write_app(isolated / "app", CASE_SERVER)
    assert refusal("db", "get", "nothing", "--app", app) == {"status": 404, "message": NOT_FOUND}
    assert refusal("db", "set", "k", "[1, 2]", "--app", app) == {
        "status": 422,
        "message": "The value cannot be blank and should be of type JSON",
    }
    # without --json the same answer is printed, and the same exit code
    plain = fw("db", "update", "k", "multiply", '{"a": 1}', "--app", app)
    assert plain.exit_code == 1
    assert json.loads(plain.stdout) == {
        "status": 400,
        "message": "Invalid action multiply for update",
    }
    # a VALUE that is not JSON at all is a usage error (2), not an API answer
    bad = fw("db", "set", "k", "{nope", "--app", app)
    assert bad.exit_code == 2 and "VALUE" in bad.stderr


# -- the SPEC's example, three doors -----------------------------------------------------

EXAMPLE_SERVER = """
def example(payload):
    out = [db.set("cursor", {"last_id": 42})]
    out.append(db.set("lock", {"by": "sync"}, ttl=60, set_if="not_exist"))
    out.append(db.set("lock2", {"by": "sync"}, {"ttl": 60, "setIf": "not_exist"}))
    out.append(db.get("cursor"))
    out.append(db.update("cursor", "increment", {"runs": 1}))
    out.append(db.update("cursor", "set", {"page": {"next": 2}}))
    out.append(db.update("cursor", "set", {"page.next": 3}))
    out.append(db.update("cursor", "append", {"seen": ["a"]}))
    out.append(db.get("cursor"))
    out.append(db.delete("cursor"))
    try:
        db.get("cursor")
    except DbError as err:
        out.append([err.status, err.message])
    return out

exports = {"onScheduledEventHandler": example}
"""
CURSOR = {"last_id": 42, "runs": 1, "page": {"next": 3}, "seen": ["a"]}
EXAMPLE_ANSWERS: list[Any] = [
    {"Created": True},
    {"Created": True},
    {"Created": True},
    {"last_id": 42},
    {"Updated": True},
    {"Updated": True},
    {"Updated": True},
    {"Updated": True},
    CURSOR,
    {"Deleted": True},
    [404, NOT_FOUND],
]


def test_the_spec_example_through_a_handler(tmp_path: Path) -> None:
    app = _write_app(tmp_path / "app", EXAMPLE_SERVER)
    with Simulator(app) as sim:
        run = sim.trigger_payload({})
        assert run.outcome == "ok", run.traceback
        assert run.return_value == EXAMPLE_ANSWERS
        assert sim.db.keys() == ["lock", "lock2"]
        # the data is the app's: the library sees what the handler left, and its lock holds
        with pytest.raises(DbError) as info:
            sim.db.set("lock", {"by": "lib"}, ttl=60, set_if="not_exist")
        assert (info.value.status, info.value.message) == (
            400,
            "The setIf conditional request failed",
        )


def test_a_handler_passing_a_value_json_cannot_carry_is_told_which(tmp_path: Path) -> None:
    server = (
        "import datetime\n"
        "def handle(payload):\n"
        "    try:\n"
        "        db.set('when', {'at': datetime.date(2026, 1, 5)})\n"
        "    except DbError as err:\n"
        "        return [err.status, err.message]\n"
        "exports = {'onScheduledEventHandler': handle}\n"
    )
    app = _write_app(tmp_path / "app", server)
    with Simulator(app) as sim:
        run = sim.trigger_payload({})
        assert run.outcome == "ok", run.traceback
        assert run.return_value == [
            400,
            "db.set: arguments must be JSON values (dict, list, str, int, float, bool, None), "
            "not ['when', {'at': datetime.date(2026, 1, 5)}]",
        ]
        assert sim.db.keys() == []


def test_the_spec_example_through_the_library(tmp_path: Path) -> None:
    app = _write_app(tmp_path / "app", EXAMPLE_SERVER)
    with Simulator(app) as sim:
        db = sim.db
        answers: list[Any] = [db.set("cursor", {"last_id": 42})]
        answers.append(db.set("lock", {"by": "sync"}, ttl=60, set_if="not_exist"))
        answers.append(db.set("lock2", {"by": "sync"}, {"ttl": 60, "setIf": "not_exist"}))
        answers.append(db.get("cursor"))
        answers.append(db.update("cursor", "increment", {"runs": 1}))
        answers.append(db.update("cursor", "set", {"page": {"next": 2}}))
        answers.append(db.update("cursor", "set", {"page.next": 3}))
        answers.append(db.update("cursor", "append", {"seen": ["a"]}))
        answers.append(db.get("cursor"))
        answers.append(db.delete("cursor"))
        with pytest.raises(DbError) as info:
            db.get("cursor")
        answers.append([info.value.status, info.value.message])
        assert answers == EXAMPLE_ANSWERS
        assert db.keys() == ["lock", "lock2"]
        assert sim.history() == []  # the library's calls are no invocations


def test_the_spec_example_through_the_command_line(isolated: Path) -> None:
    app = _write_app(isolated / "app", EXAMPLE_SERVER)
    at = ("--app", app)
    answers: list[Any] = [answer("db", "set", "cursor", '{"last_id": 42}', *at)]
    answers.append(
        answer("db", "set", "lock", '{"by": "sync"}', "--ttl", "60", "--set-if", "not_exist", *at)
    )
    answers.append(answer("db", "set", "lock2", '{"by": "sync"}', "--ttl", "60", *at))
    answers.append(answer("db", "get", "cursor", *at))
    answers.append(answer("db", "update", "cursor", "increment", '{"runs": 1}', *at))
    answers.append(answer("db", "update", "cursor", "set", '{"page": {"next": 2}}', *at))
    answers.append(answer("db", "update", "cursor", "set", '{"page.next": 3}', *at))
    (isolated / "seen.json").write_text('{"seen": ["a"]}')
    answers.append(answer("db", "update", "cursor", "append", f"@{isolated / 'seen.json'}", *at))
    answers.append(answer("db", "get", "cursor", *at))
    answers.append(answer("db", "delete", "cursor", *at))
    document = refusal("db", "get", "cursor", *at)
    answers.append([document["status"], document["message"]])
    assert answers == EXAMPLE_ANSWERS
    assert [e["key"] for e in answer("db", "ls", *at)] == ["lock", "lock2"]
    assert refusal("db", "set", "lock", '{"by": "cli"}', "--set-if", "not_exist", *at) == {
        "status": 400,
        "message": "The setIf conditional request failed",
    }
    # the plain output is the answer's JSON too
    assert json.loads(ok("db", "get", "lock", *at).stdout) == {"by": "sync"}
    assert ok("db", "ls", *at).stdout.splitlines()[0].split()[:3] == ["lock", "13", "B"]


# -- ttl in simulated time ---------------------------------------------------------------

TTL_SERVER = """
def tick(payload):
    if payload["data"].get("take"):
        return db.set("lock", {"by": "tick"}, ttl=60, set_if="not_exist")
    try:
        return db.get(payload["data"]["read"])
    except DbError as err:
        return [err.status, err.message]

exports = {"onScheduledEventHandler": tick}
"""


def test_ttl_expires_when_the_simulator_advances(tmp_path: Path) -> None:
    app = _write_app(tmp_path / "app", TTL_SERVER)
    with Simulator(app) as sim:
        # a handler's ttl counts from its occurrence's time (10:00), not from the clock's
        sim.schedule.create(name="lock", data={"take": True}, schedule_at="2026-01-05T10:00:00Z")
        sim.db.set("lib", {"v": 1}, ttl=90)  # from 09:00
        [locked] = sim.advance("1h")
        assert locked.return_value == {"Created": True}
        assert sim.db.keys() == ["lock"]  # lib expired at 09:01:30
        [entry] = sim.db.entries()
        assert (
            entry.expires_at is not None
            and entry.expires_at.isoformat() == "2026-01-05T10:01:00+00:00"
        )
        sim.advance("59s")
        assert sim.db.get("lock") == {"by": "tick"}
        assert sim.trigger_payload({"read": "lock"}).return_value == {"by": "tick"}
        sim.advance("1s")  # exactly its ttl: gone
        with pytest.raises(DbError) as info:
            sim.db.get("lock")
        assert (info.value.status, info.value.message) == (404, NOT_FOUND)
        assert sim.trigger_payload({"read": "lock"}).return_value == [404, NOT_FOUND]
        assert sim.db.keys() == []
        # and set_if="not_exist" takes the expired lock again
        sim.schedule.create(name="again", data={"take": True}, schedule_at="2026-01-05T11:00:00Z")
        [again] = sim.advance("1h")
        assert again.return_value == {"Created": True}


def test_ttl_expires_when_fwsched_advances(isolated: Path) -> None:
    app = _write_app(isolated / "app", TTL_SERVER)
    at = ("--app", app)
    ok("db", "set", "k", '{"v": 1}', "--ttl", "90", *at)
    assert answer("db", "ls", *at) == [
        {"key": "k", "bytes": 7, "expires_at": "2026-01-05T09:01:30Z"}
    ]
    ok("advance", "1m", *at)
    assert answer("db", "get", "k", *at) == {"v": 1}
    ok("advance", "29s", *at)
    assert answer("db", "get", "k", *at) == {"v": 1}
    ok("advance", "1s", *at)
    assert refusal("db", "get", "k", *at) == {"status": 404, "message": NOT_FOUND}
    assert answer("db", "ls", *at) == []
    # a handler's lock, fired by `fwsched advance`, expires by `fwsched advance --to`
    at_eleven = ("--at", "2026-01-05T11:00:00Z")
    ok("schedule", "create", "--name", "lock", "--data", '{"take": true}', *at_eleven, *at)
    fired = answer("advance", "--to", "2026-01-05T11:00:00Z", *at)["invocations"]
    assert [i["return_value"] for i in fired] == [{"Created": True}]
    ok("advance", "--to", "2026-01-05T11:00:59Z", *at)
    assert answer("db", "get", "lock", *at) == {"by": "tick"}
    ok("advance", "--to", "2026-01-05T11:01:00Z", *at)
    assert refusal("db", "get", "lock", *at)["status"] == 404


# -- where the data lives ----------------------------------------------------------------

APP_SERVER = """
def on_install(payload):
    db.set("settings", {"installed_by": "onAppInstall"})
    render_data()

def on_uninstall(payload):
    # the data is still there while the uninstall handler runs
    print("had", sorted(db.get("settings")))
    render_data()

def sync(payload):
    db.update("cursor", "increment", {"runs": 1})
    return db.get("cursor")

def settings(payload):
    render_data(None, db.get("settings"))

exports = {"onScheduledEventHandler": sync, "onInstall": on_install,
           "onUninstall": on_uninstall, "settings": settings}
"""
APP_MANIFEST = {
    "events": {
        "onScheduledEvent": {"handler": "onScheduledEventHandler"},
        "onAppInstall": {"handler": "onInstall"},
        "onAppUninstall": {"handler": "onUninstall"},
    },
    "functions": {"settings": {}},
}


@pytest.fixture
def app(isolated: Path) -> Path:
    return _write_app(isolated / "app", APP_SERVER, APP_MANIFEST)


def test_every_handler_of_the_app_shares_the_data(app: Path) -> None:
    with Simulator(app) as sim:
        assert sim.install() is not None and sim.installed
        assert sim.invoke("settings").render == {
            "status": 200,
            "response": {"installed_by": "onAppInstall"},
        }
        assert sim.trigger_payload({}).return_value == {"runs": 1}
        sim.db.update("cursor", "increment", {"runs": 10})
        assert sim.trigger_payload({}).return_value == {"runs": 12}


def test_the_data_survives_a_restart(app: Path, isolated: Path) -> None:
    state = isolated / "state.db"
    with Simulator(app, state=state) as sim:
        sim.trigger_payload({})
        sim.db.set("kept", {"v": "é"}, ttl=3600)
    with Simulator(app, state=state) as sim:
        assert sim.db.get("cursor") == {"runs": 1}
        [kept] = [e for e in sim.db.entries() if e.key == "kept"]
        assert (
            kept.expires_at is not None
            and kept.expires_at.isoformat() == "2026-01-05T10:00:00+00:00"
        )
        assert sim.trigger_payload({}).return_value == {"runs": 2}
    # the command line on the CLI's own state file continues the library's
    cli_state = app / ".fwsched" / "state.db"
    with Simulator(app, state=cli_state) as sim:
        sim.db.set("from_library", {"v": 1})
    assert answer("db", "get", "from_library", "--app", app) == {"v": 1}
    ok("db", "update", "from_library", "increment", '{"v": 1}', "--app", app)
    with Simulator(app, state=cli_state) as sim:
        assert sim.db.get("from_library") == {"v": 2}
    # it is in the state file itself (a table of it), not beside it
    with sqlite3.connect(cli_state) as conn:
        assert [row[0] for row in conn.execute("SELECT key FROM kv")] == ["from_library"]


def test_uninstall_removes_the_data_and_keep_data_keeps_it(app: Path) -> None:
    with Simulator(app) as sim:
        sim.install()
        sim.trigger_payload({})
        gone = sim.uninstall()
        assert gone is not None and gone.outcome == "ok"
        assert "had ['installed_by']" in gone.log
        assert sim.db.keys() == []
        with pytest.raises(DbError):
            sim.db.get("cursor")
        sim.install()
        sim.trigger_payload({})
        sim.uninstall(keep_data=True)
        assert sim.db.keys() == ["cursor", "settings"]
        assert sim.trigger_payload({}).return_value == {"runs": 2}


def test_uninstall_and_reset_on_the_command_line(app: Path) -> None:
    at = ("--app", app)
    ok("install", *at)
    ok("trigger", "--payload", "{}", *at)
    ok("db", "set", "extra", '{"v": 1}', *at)
    assert (
        ok("uninstall", *at).stdout.splitlines()[-1]
        == "uninstalled; removed 0 schedules, 3 db keys"
    )
    assert answer("db", "ls", *at) == []
    ok("install", *at)
    assert ok("uninstall", "--keep-data", *at).stdout.splitlines()[-1] == (
        "uninstalled; kept the app's data (--keep-data)"
    )
    assert [e["key"] for e in answer("db", "ls", *at)] == ["settings"]
    assert ok("reset", "--yes", *at).exit_code == 0
    assert answer("db", "ls", *at) == []
    assert refusal("db", "get", "settings", *at)["status"] == 404


def test_values_round_trip_through_every_door(app: Path) -> None:
    """Nulling (empty strings, NaN, infinities) is the same for a handler and the shell."""
    value = {"empty": "", "nan": math.nan, "inf": -math.inf, "text": "é \u2028", "n": 1.5}
    nulled = {"empty": None, "nan": None, "inf": None, "text": "é \u2028", "n": 1.5}
    ok("db", "set", "k", json.dumps(value), "--app", app)
    assert answer("db", "get", "k", "--app", app) == nulled
    with Simulator(app, state=app / ".fwsched" / "state.db") as sim:
        assert sim.db.get("k") == nulled


def test_a_bad_json_argument_says_how_to_quote_the_value_itself(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fwsched.cli.root import cli

    app = tmp_path / "app"
    app.mkdir()
    (app / "manifest.json").write_text('{"events": {}}')
    (app / "server.py").write_text("exports = {}\n")
    result = CliRunner().invoke(cli, ["db", "set", "k", "{bad", "--app", str(app)])
    assert result.exit_code == 2
    assert "VALUE: invalid JSON at line 1 column 2" in result.stderr
    assert "e.g. '{" in result.stderr and "e.g. VALUE" not in result.stderr
