"""The SQLite state: round trips, reopening, schema versions, corrupt files, the due-query order."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MakeApp

from fwsched.cli.root import cli
from fwsched.engine import Simulator
from fwsched.errors import StateError
from fwsched.outcome import Outcome
from fwsched.recurrence import Repeat
from fwsched.rules import ScheduleSpec
from fwsched.schema import PAGE_SIZE, SCHEMA_VERSION
from fwsched.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def spec(name: str, at: datetime = T0, repeat: Repeat | None = None) -> ScheduleSpec:
    return ScheduleSpec(name, {"n": name, "ü": [1, None]}, at.isoformat(), at, repeat)


def test_schedules_round_trip_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / ".fwsched" / "state.db"
    store = Store.open(path)
    hourly = Repeat("hours", 1, "Europe/Berlin")
    with store.transaction():
        store.put(spec("once"), T0 + timedelta(hours=1))
        store.put(spec("rec", repeat=hourly), T0)
        store.set_now(T0)
        store.set_relaxed()
    store.close()

    reopened = Store.open(path)
    assert reopened.get_now() == T0
    assert reopened.relaxed
    assert [e.spec for e in reopened.entries()] == [spec("rec", repeat=hourly), spec("once")]
    rec = reopened.get("rec")
    assert rec is not None
    assert rec.public().repeat == {
        "time_unit": "hours",
        "frequency": 1,
        "timezone": "Europe/Berlin",
    }
    assert rec.public().kind == "recurring"
    assert reopened.kind_of("once") == "one-time"
    assert reopened.kind_of("nope") is None
    assert (reopened.count("one-time"), reopened.count("recurring")) == (1, 1)
    reopened.close()


def test_fresh_state_has_no_clock_and_is_strict() -> None:
    store = Store.open(None)
    assert store.get_now() is None
    assert not store.relaxed
    assert store.next_fire_time() is None
    store.close()


def test_next_due_orders_by_time_then_creation() -> None:
    store = Store.open(None)
    with store.transaction():
        store.put(spec("late"), T0 + timedelta(minutes=10))
        store.put(spec("b"), T0)
        store.put(spec("a"), T0)  # same time, created after b
    assert store.next_due(T0 - timedelta(seconds=1)) is None
    first = store.next_due(T0)
    assert first is not None and first.spec.name == "b"
    store.delete("b")
    second = store.next_due(T0 + timedelta(hours=1))
    assert second is not None and second.spec.name == "a"
    store.set_next_fire("a", T0 + timedelta(hours=1))
    third = store.next_due(T0 + timedelta(hours=1))
    assert third is not None and third.spec.name == "late"
    assert store.next_fire_time() == T0 + timedelta(minutes=10)
    store.close()


def test_replacing_keeps_creation_order_and_recreating_goes_last() -> None:
    store = Store.open(None)
    for name in ("a", "b", "c"):
        store.put(spec(name), T0)
    store.put(spec("a"), T0)  # an update keeps its place
    assert [e.spec.name for e in store.entries()] == ["a", "b", "c"]
    store.delete("a")
    store.put(spec("a"), T0)  # a new schedule with an old name is the newest
    assert [e.spec.name for e in store.entries()] == ["b", "c", "a"]
    store.close()


def test_a_failed_transaction_writes_nothing() -> None:
    store = Store.open(None)
    with pytest.raises(RuntimeError), store.transaction():
        store.put(spec("a"), T0)
        raise RuntimeError("boom")
    assert store.entries() == []
    store.close()


def test_a_nested_transaction_joins_the_outer_one() -> None:
    store = Store.open(None)
    with pytest.raises(RuntimeError), store.transaction():
        with store.transaction():
            store.put(spec("inner"), T0)
        assert store.get("inner") is not None  # not committed on its own...
        raise RuntimeError("boom")
    assert store.entries() == []  # ...so the outer rollback undoes it
    with store.transaction(), store.transaction():
        store.put(spec("kept"), T0)
    assert [e.spec.name for e in store.entries()] == ["kept"]
    store.close()


def test_a_new_state_file_has_small_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    def page_size(path: Path) -> int:
        with sqlite3.connect(path) as conn:
            return int(conn.execute("PRAGMA page_size").fetchone()[0])

    new = tmp_path / "new.db"
    Store.open(new).close()
    assert page_size(new) == PAGE_SIZE

    old = tmp_path / "old.db"  # as fwsched wrote it before: SQLite's default 4 KiB pages
    Store.open(old).close()
    with sqlite3.connect(old, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA page_size=4096")
        conn.execute("VACUUM")
    conn.close()
    assert page_size(old) == 4096
    store = Store.open(old)
    # The WAL is checkpointed at 4 MiB whatever the page size.
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1024
    with store.transaction():
        store.put(spec("once"), T0)
    store.close()
    assert page_size(old) == 4096
    reopened = Store.open(old)
    assert [e.spec.name for e in reopened.entries()] == ["once"]
    reopened.close()


def test_the_request_window_round_trips_and_a_bad_one_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store.open(path)
    assert store.request_window() == []
    admitted = [T0, T0 + timedelta(seconds=30, microseconds=1)]
    with store.transaction():
        store.set_request_window(admitted)
    store.close()
    store = Store.open(path)
    assert store.request_window() == admitted
    with store.transaction():
        store._set_meta("request_window_us", '["soon"]')
    with pytest.raises(StateError, match=str(path)):
        store.request_window()
    store.close()


def test_invocations_round_trip_and_filters() -> None:
    store = Store.open(None)
    ids = []
    for i, outcome in enumerate([Outcome.OK, Outcome.ERROR, Outcome.OK]):
        inv_id = store.begin_invocation(
            schedule="r" if i != 1 else "s",
            source="schedule",
            fire_at=T0 + timedelta(minutes=i),
            timestamp_ms=1767603600000 + i * 60000,
            payload={"data": {"i": i}, "iparams": {"api_key": "****"}},
            started_at=T0,
        )
        store.finish_invocation(
            inv_id,
            outcome=outcome,
            duration_ms=1.5,
            error=None if outcome == "ok" else "ValueError: bad",
            traceback=None,
            log=f"line {i}\n",
            return_value={"i": i},
        )
        ids.append(inv_id)
    everything = store.invocations()
    assert [i.id for i in everything] == ids
    assert [i.fire_at for i in everything] == [
        T0,
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=2),
    ]
    assert [i.id for i in store.invocations(name="r")] == [ids[0], ids[2]]
    assert [i.id for i in store.invocations(outcome="error")] == [ids[1]]
    assert [i.id for i in store.invocations(limit=2)] == ids[1:]  # the newest two, oldest first
    one = store.invocation(ids[1])
    assert one is not None
    assert (one.outcome, one.error, one.log, one.return_value) == (
        Outcome.ERROR, "ValueError: bad", "line 1\n", {"i": 1}
    )  # fmt: skip
    assert one.payload["iparams"] == {"api_key": "****"}
    assert store.invocation(999) is None
    assert store.invocation_count() == 3
    store.close()


def test_running_invocations_become_interrupted_on_recovery(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store.open(path)
    inv_id = store.begin_invocation(
        schedule="r", source="schedule", fire_at=T0, timestamp_ms=0, payload={}, started_at=T0
    )
    assert store.invocation(inv_id) is None  # no outcome yet
    store.close()  # as if the process had died here

    again = Store.open(path)
    assert again.interrupt_running() == 1
    record = again.invocation(inv_id)
    assert record is not None and record.outcome == Outcome.INTERRUPTED
    assert again.interrupt_running() == 0
    again.close()


def test_a_corrupt_file_names_itself_and_reset(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError) as info:
        Store.open(path)
    message = str(info.value)
    assert str(path) in message and "fwsched reset" in message
    assert path.read_bytes() == b"this is not a database" * 100  # untouched


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="not a fwsched state file"):
        Store.open(path)


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with pytest.raises(StateError) as info:
        Store.open(path)
    assert "newer fwsched" in str(info.value) and "fwsched reset" in str(info.value)
    conn = sqlite3.connect(path)
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    conn.close()
    assert version == str(SCHEMA_VERSION + 1)


# -- a refused file is left byte for byte as it was ------------------------------------------


def newer_schema(path: Path, *, wal: bool = False, crashed: bool = False) -> None:
    """A state file as a later fwsched might write it; ``crashed`` leaves its -wal behind."""
    writer = path.with_name("writer.db")
    conn = sqlite3.connect(writer, isolation_level=None)
    if wal or crashed:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION + 1),))
    if crashed:  # copy the files while the writer is still open, as a kill -9 leaves them
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).write_bytes(
                writer.with_name(writer.name + suffix).read_bytes()
            )
    conn.close()
    if not crashed:
        writer.rename(path)
    for suffix in ("", "-wal", "-shm"):
        writer.with_name(writer.name + suffix).unlink(missing_ok=True)


def a_real_state(path: Path) -> bytes:
    """The bytes of a healthy state with some history, many pages long."""
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO invocations (source, fire_at_us, timestamp_ms, outcome, payload) "
        "VALUES ('schedule', 0, ?, 'ok', ?)",
        [(n, "x" * 500) for n in range(200)],
    )
    conn.commit()
    conn.close()
    return path.read_bytes()


def truncated(path: Path) -> None:
    path.write_bytes(a_real_state(path)[:16384])  # whole pages: the schema version still reads


def bad_header(path: Path) -> None:
    path.write_bytes(a_real_state(path)[:60])


def not_sqlite(path: Path) -> None:
    path.write_bytes(b"this is not a database" * 100)


def foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()


REFUSED: dict[str, Callable[[Path], None]] = {
    "newer": newer_schema,
    "newer-wal": lambda path: newer_schema(path, wal=True),
    "newer-crashed": lambda path: newer_schema(path, crashed=True),
    "truncated": truncated,
    "bad-header": bad_header,
    "not-sqlite": not_sqlite,
    "foreign": foreign,
}


def files(directory: Path) -> dict[str, bytes]:
    """Every file of the state, by name (the lock file beside it is not the state).

    Only the presence of a -shm counts: SQLite's index of the -wal, holding no state,
    which any reader of a -wal left by a killed writer rebuilds.
    """
    return {
        path.name: b"" if path.name.endswith("-shm") else path.read_bytes()
        for path in directory.iterdir()
        if path.is_file() and not path.name.endswith(".lock")
    }


def assert_refusal(message: str, path: Path) -> None:
    assert str(path) in message and "fwsched reset" in message, message


@pytest.mark.parametrize("kind", REFUSED)
def test_a_refused_file_is_left_byte_for_byte(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "state" / "state.db"
    path.parent.mkdir()
    REFUSED[kind](path)
    before = files(path.parent)
    for _ in range(2):
        with pytest.raises(StateError) as info:
            Store.open(path)
        assert_refusal(str(info.value), path)
        assert files(path.parent) == before


@pytest.mark.parametrize("kind", ["newer", "newer-wal", "truncated", "not-sqlite"])
def test_every_command_refuses_the_file_and_leaves_it_alone(
    make_app: MakeApp, kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    app = make_app(
        "exports = {'onScheduledEventHandler': lambda payload: None}\n",
        toml='[simulator]\nstart = "2026-01-05T09:00:00Z"\n',
    )
    path = app / ".fwsched" / "state.db"
    path.parent.mkdir()
    REFUSED[kind](path)
    before = files(path.parent)
    commands = [
        ["status"],
        ["schedules", "--json"],
        ["history"],
        ["advance", "1m"],
        ["advance", "--to", "2030-01-01T00:00:00Z", "--relaxed"],
        ["schedule", "create", "--name", "r", "--data", "{}", "--at", "+1h", "--json"],
        ["schedule", "fetch", "--name", "r"],
        ["trigger", "--payload", "{}"],
        ["show", "1"],
    ]
    for command in commands:
        result = CliRunner().invoke(cli, [*command, "--app", str(app)])
        assert result.exit_code == 1, (command, result.stdout, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert_refusal(line, path)
        assert files(path.parent) == before, command
    for options in ({}, {"strict": False}, {"start": "2026-01-05T09:00:00Z"}):
        with pytest.raises(StateError) as info:
            Simulator(app, state=path, **options)  # type: ignore[arg-type]
        assert_refusal(str(info.value), path)
        assert files(path.parent) == before, options
    run = subprocess.run(
        [sys.executable, "-m", "fwsched", "run", str(app), "--paused", "--no-reload"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1, run.stderr
    assert_refusal(run.stderr, path)
    assert files(path.parent) == before


def test_the_due_query_uses_the_index() -> None:
    store = Store.open(None)
    plan = store._conn.execute(
        "EXPLAIN QUERY PLAN SELECT name FROM schedules WHERE next_fire_us <= 5 "
        "ORDER BY next_fire_us, seq LIMIT 1"
    ).fetchall()
    store.close()
    assert any("schedules_due" in str(row) for row in plan), plan
