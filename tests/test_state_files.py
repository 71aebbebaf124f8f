"""Issue 11, points 3, 4, 6 and 7: whatever is on disk in ``.fwsched/``, fwsched answers
with one line that names the file and what to do, and changes nothing it refuses.

The hostile files are a table (``CASES``): each row makes the state (or a file
beside it) into something fwsched did not write, and says what the one line must
contain. Every row runs through the commands that read and the ones that write.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import MakeApp

from fwsched import Simulator
from fwsched.cli.root import cli
from fwsched.errors import StateError
from fwsched.store import Store

START = "2026-01-05T09:00:00Z"
SERVER = """
import os

def handle(payload):
    data = payload["data"]
    print("ran", data)
    if data.get("truncate"):
        with open(".fwsched/state.db", "r+b") as state:
            state.truncate(data["truncate"])
    if data.get("remove"):
        os.remove(".fwsched/state.db")
    return data

exports = {"onScheduledEventHandler": handle}
"""
TOML = f'[simulator]\nstart = "{START}"\ntimeout = 10\n'
AS_ROOT = os.geteuid() == 0

READS = [["status"], ["history"], ["schedules", "--json"], ["show", "1"]]
WRITES = [
    ["advance", "1h"],
    ["schedule", "create", "--name", "new", "--data", "{}", "--at", "+1h"],
    ["trigger", "--payload", "{}"],
]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    monkeypatch.delenv("FWSCHED_DEBUG", raising=False)
    yield


def fw(app: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--app", str(app)])


def one_line(result: Result) -> str:
    """The command failed with exactly one line on stderr, and not an internal error."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr, lines[0]
    return lines[0]


@pytest.fixture
def app(make_app: MakeApp) -> Path:
    """An app with a state: two schedules, a few invocations, a db key."""
    root = make_app(SERVER, toml=TOML)
    with Simulator(root, state=root / ".fwsched" / "state.db") as sim:
        sim.schedule.create(name="soon", data={"n": 1}, schedule_at="2026-01-05T09:30:00Z")
        sim.schedule.create(
            name="hourly",
            data={"n": 2},
            schedule_at="2026-01-05T10:00:00Z",
            repeat={"time_unit": "hours", "frequency": 1},
        )
        sim.db.set("counter", {"value": 1})
        sim.advance("3h")
    return root


def state_of(app: Path) -> Path:
    return app / ".fwsched" / "state.db"


def snapshot(directory: Path) -> dict[str, str]:
    """Every file of the folder by name, as a digest (links as their target)."""
    found = {}
    for path in sorted(directory.iterdir()):
        if path.is_symlink():
            found[path.name] = "-> " + os.readlink(path)
        elif path.is_file() and not path.name.endswith(".lock"):
            found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# -- the table of hostile files ------------------------------------------------------------


def _sql(statement: str) -> Callable[[Path], None]:
    def change(app: Path) -> None:
        conn = sqlite3.connect(state_of(app))
        conn.execute(statement)
        conn.commit()
        conn.close()

    return change


def _write(data: bytes) -> Callable[[Path], None]:
    def change(app: Path) -> None:
        state_of(app).write_bytes(data)

    return change


def _directory(app: Path) -> None:
    state = state_of(app)
    state.unlink()
    state.mkdir()


def _dangling_link(app: Path) -> None:
    state = state_of(app)
    state.unlink()
    state.symlink_to(app.parent / "nowhere.db")


def _removed(app: Path) -> None:
    state_of(app).unlink()


def _empty(app: Path) -> None:
    state_of(app).write_bytes(b"")


# (name, how the state is broken, what the one line says, whether every command finds it)
CASES: list[tuple[str, Callable[[Path], None], str, bool]] = [
    ("a directory", _directory, "is a directory", True),
    ("a dangling link", _dangling_link, "symbolic link", True),
    ("removed", _removed, "is missing", True),
    ("empty", _empty, "is empty", True),
    ("one byte", _write(b"S"), "no SQLite header", True),
    ("not sqlite", _write(b"not a database" * 300), "no SQLite header", True),
    ("a dropped table", _sql("DROP TABLE invocations"), "table invocations is missing", True),
    (
        "a dropped column",
        _sql("ALTER TABLE invocations DROP COLUMN requests"),
        "other columns",
        True,
    ),
    (
        "no schema version",
        _sql("DELETE FROM meta WHERE key='schema_version'"),
        "no schema",
        True,
    ),
    (
        "a huge schema version",
        _sql(f"UPDATE meta SET value='{'9' * 5000}' WHERE key='schema_version'"),
        "no schema version",
        True,
    ),
    (
        "the clock not a number",
        _sql("UPDATE meta SET value='soon' WHERE key='now_us'"),
        "does not read back",
        True,
    ),
    (
        "the clock past 9999",
        _sql(f"UPDATE meta SET value='{2**62}' WHERE key='now_us'"),
        "does not read back",
        True,
    ),
    (
        "data not JSON",
        _sql("UPDATE schedules SET data='{oops'"),
        "does not read back",
        False,
    ),
    ("data a list", _sql("UPDATE schedules SET data='[1]'"), "does not read back", False),
    (
        "a time as text",
        _sql("UPDATE schedules SET next_fire_us='tomorrow'"),
        "does not read back",
        False,
    ),
    (
        "a bad repeat",
        _sql('UPDATE schedules SET repeat=\'{"time_unit":"weeks"}\''),
        "does not read back",
        False,
    ),
    (
        "an unknown outcome",
        _sql("UPDATE invocations SET outcome='great'"),
        "does not read back",
        False,
    ),
    (
        "a duration as text",
        _sql("UPDATE invocations SET duration_ms='slow'"),
        "does not read back",
        False,
    ),
    (
        "a payload of bytes",
        _sql("UPDATE invocations SET payload=x'ff00'"),
        "codec can't decode",
        False,
    ),
    (
        "a deep return value",
        _sql("UPDATE invocations SET return_value='" + "[" * 900 + "]" * 900 + "'"),
        "does not read back",
        False,
    ),
    (
        "invalid UTF-8",
        _sql("UPDATE invocations SET error=CAST(x'c328' AS TEXT)"),
        "decode",
        False,
    ),
    (
        "a db value not JSON",
        _sql("UPDATE kv SET value='{'"),
        "db value does not read back",
        False,
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "expected", "everywhere"), CASES, ids=[case[0] for case in CASES]
)
def test_a_broken_state_is_one_line_naming_the_file(
    app: Path, name: str, change: Callable[[Path], None], expected: str, everywhere: bool
) -> None:
    change(app)
    failures = 0
    commands = [*READS, *WRITES, ["db", "get", "counter"]]
    for command in commands:
        before = snapshot(app / ".fwsched")
        result = fw(app, *command)
        if result.exit_code == 0:  # a command that never reads the broken part
            assert not everywhere, command
            continue
        failures += 1
        line = one_line(result)
        assert str(state_of(app)) in line, line
        assert expected in line, line
        assert "fwsched reset" in line or "remove it" in line, line
        assert snapshot(app / ".fwsched") == before, command  # a refusal changes nothing
    assert failures >= 1
    assert not (app / ".fwsched" / "state.db-shm").exists()


def test_a_bad_value_fails_the_command_that_reads_it_only(app: Path) -> None:
    _sql("UPDATE invocations SET payload='[' WHERE id=1")(app)
    assert "corrupt" in one_line(fw(app, "show", "1"))
    assert fw(app, "show", "2").exit_code == 0
    assert fw(app, "status").exit_code == 0
    assert fw(app, "advance", "1h").exit_code == 0  # the rest of the state still works


@pytest.mark.parametrize("seed", range(12))
def test_random_bytes_flipped_inside_never_give_an_internal_error(app: Path, seed: int) -> None:
    state = state_of(app)
    data = bytearray(state.read_bytes())
    rng = random.Random(seed)
    for _ in range(8):
        at = rng.randrange(100, len(data))  # past the header, which the header check covers
        data[at] ^= 1 << rng.randrange(8)
    state.write_bytes(bytes(data))
    for command in [*READS, *WRITES]:
        result = fw(app, *command)
        if result.exit_code != 0:  # a flip in text may go unnoticed: no checksum there
            line = one_line(result)
            assert str(state) in line and "fwsched reset" in line, line


def test_a_state_that_vanished_is_not_a_fresh_start_until_reset(app: Path) -> None:
    _removed(app)
    line = one_line(fw(app, "status"))
    assert "is missing" in line and "fwsched reset" in line
    assert not state_of(app).exists()  # nothing was created in its place
    assert fw(app, "reset", "--yes").exit_code == 0
    assert fw(app, "status").exit_code == 0  # now a fresh state, as reset said


def test_the_library_refuses_a_vanished_state_too(app: Path) -> None:
    _empty(app)
    with pytest.raises(StateError, match="is empty"):
        Simulator(app, state=state_of(app))
    assert state_of(app).read_bytes() == b""


def test_the_state_is_private(make_app: MakeApp) -> None:
    root = make_app(SERVER, toml=TOML)
    (root / ".fwsched").mkdir(mode=0o755)
    os.chmod(root / ".fwsched", 0o755)  # as an older fwsched made it
    with Simulator(root, state=state_of(root)) as sim:
        sim.schedule.create(name="r", data={}, schedule_at="2026-01-05T10:00:00Z")
    assert stat.S_IMODE((root / ".fwsched").stat().st_mode) == 0o700
    for path in (root / ".fwsched").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


# -- permissions ------------------------------------------------------------------------------


@pytest.fixture
def read_only(app: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The state file cannot be written (as root, which writes anything, it looks so)."""
    state = state_of(app)
    os.chmod(state, 0o400)
    if AS_ROOT:
        import fwsched.store

        real = os.access

        def access(path: object, mode: int, **kwargs: object) -> bool:
            if mode & os.W_OK and Path(str(path)) == state:
                return False
            return real(path, mode, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(fwsched.store.os, "access", access)
    yield app
    os.chmod(state, 0o600)


def test_a_read_only_state_still_reads(read_only: Path) -> None:
    app = read_only
    before = snapshot(app / ".fwsched")
    for command in READS:
        result = fw(app, *command)
        assert result.exit_code == 0, (command, result.stderr)
    for command in WRITES:
        line = one_line(fw(app, *command))
        assert "read-only" in line and "permissions" in line, line
    assert snapshot(app / ".fwsched") == before


@pytest.mark.skipif(AS_ROOT, reason="root reads and writes any file")
def test_an_unreadable_state_says_so(app: Path) -> None:
    os.chmod(state_of(app), 0)
    try:
        line = one_line(fw(app, "status"))
    finally:
        os.chmod(state_of(app), 0o600)
    assert str(state_of(app)) in line and "permissions" in line


@pytest.mark.skipif(AS_ROOT, reason="root writes in any folder")
def test_an_unwritable_state_folder_reads_but_does_not_write(app: Path) -> None:
    folder = app / ".fwsched"
    os.chmod(folder, 0o500)
    try:
        assert fw(app, "history").exit_code == 0
        line = one_line(fw(app, "advance", "1h"))
    finally:
        os.chmod(folder, 0o700)
    assert "read-only" in line or "permissions" in line


# -- symbolic links (point 4) ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["state.db", "state.db.lock", "state.db-wal", "state.db-shm"])
def test_a_link_in_the_state_folder_is_refused_and_its_target_untouched(
    make_app: MakeApp, tmp_path: Path, name: str
) -> None:
    root = make_app(SERVER, toml=TOML)
    victim = tmp_path / "victim" / "file"
    victim.parent.mkdir()
    victim.write_text("precious")
    (root / ".fwsched").mkdir()
    (root / ".fwsched" / name).symlink_to(Path("..") / ".." / "victim" / "file")
    for command in (["status"], ["advance", "1h"], ["reset", "--yes"]):
        result = fw(root, *command)
        if command[0] == "reset":
            assert result.exit_code == 0  # reset removes the link, never what it points at
        else:
            line = one_line(result)
            assert "symbolic link" in line and name in line, line
        assert victim.read_text() == "precious"
    assert not (root / ".fwsched" / name).is_symlink()


def test_a_linked_state_folder_is_refused(make_app: MakeApp, tmp_path: Path) -> None:
    root = make_app(SERVER, toml=TOML)
    elsewhere = tmp_path / "elsewhere-state"
    elsewhere.mkdir()
    (root / ".fwsched").symlink_to(elsewhere)
    line = one_line(fw(root, "status"))
    assert "symbolic link" in line and ".fwsched" in line
    assert list(elsewhere.iterdir()) == []


# -- a handler that attacks the state (point 3) ----------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4096])
def test_a_handler_truncating_the_state_does_not_kill_fwsched(app: Path, size: int) -> None:
    """Without a -shm file mapped in memory there is no SIGBUS to die of; what the
    handler broke is found at the latest by the next command, never taken as new."""
    run = subprocess.run(
        [sys.executable, "-m", "fwsched", "trigger", "--payload", f'{{"truncate": {size}}}'],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode in (0, 1), run.stderr  # not -SIGBUS
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr, run.stderr
    after = subprocess.run(
        [sys.executable, "-m", "fwsched", "history"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if after.returncode != 0:
        [line] = after.stderr.strip().splitlines()
        assert str(state_of(app)) in line and "fwsched reset" in line, line
    else:  # SQLite rewrote what it had in its -wal: the history is still all there
        assert "soon" in after.stdout
    assert not (app / ".fwsched" / "state.db-shm").exists()


def test_a_handler_removing_the_state_is_found_out_at_once(app: Path) -> None:
    line = one_line(fw(app, "trigger", "--payload", '{"remove": true}'))
    assert "was deleted while fwsched had it open" in line and "fwsched reset" in line
    line = one_line(fw(app, "status"))
    assert "missing" in line and "fwsched reset" in line


# -- refusing changes nothing (point 7) ------------------------------------------------------


def test_a_foreign_database_with_a_wal_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.db"
    path.parent.mkdir()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE notes (x)")
    writer.execute("INSERT INTO notes VALUES ('mine')")
    # A kill -9 leaves the files as they are now: copy them while the writer is open.
    copy = tmp_path / "copy"
    copy.mkdir()
    for suffix in ("", "-wal"):
        (copy / f"state.db{suffix}").write_bytes(path.with_name(f"state.db{suffix}").read_bytes())
    writer.close()
    before = snapshot(copy)
    for _ in range(2):
        with pytest.raises(StateError, match="not a fwsched state file"):
            Store.open(copy / "state.db")
        assert snapshot(copy) == before
