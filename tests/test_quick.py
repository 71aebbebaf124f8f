"""``fwsched.cli.quick``: the read-only JSON commands without click print exactly what the
click commands print, and leave every other case to them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MakeApp

from fwsched import Simulator, control, jsonsafe, operations, schema
from fwsched.cli import quick, quickstate, state
from fwsched.cli.root import cli
from fwsched.outcome import Outcome
from fwsched.statelock import StateLock

BOUND = 30.0
START = "2026-01-05T09:00:00Z"
SERVER = """
def handle(payload):
    data = payload["data"]
    print("key", payload["iparams"].get("api_key"), "data", data)
    if data.get("fail"):
        raise ValueError("asked to fail: s3cret-value")
    return {"echo": data, "n": 1.5}

def install(payload):
    render_data(None, {"ok": True})

exports = {"onScheduledEventHandler": handle, "onAppInstallHandler": install}
"""
MANIFEST = {
    "events": {
        "onScheduledEvent": {"handler": "onScheduledEventHandler"},
        "onAppInstall": {"handler": "onAppInstallHandler"},
    }
}
TOML = f"""
[simulator]
start = "{START}"

[iparams]
api_key = "s3cret-value"
"""
IPARAMS = {"api_key": {"display_name": "API key", "type": "text", "secure": True}}
COMMANDS = [
    ["status", "--json"],
    ["schedules", "--json"],
    ["ls", "--json"],
    ["history", "--json"],
    ["history", "--limit", "2", "--json"],
    ["history", "--json", "--limit=3", "--name", "daily"],
    ["history", "--outcome", "error", "--json"],
    ["history", "--name", "nothing-by-this-name", "--json"],
]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)


def fill(app: Path) -> None:
    """A state with what the documents show: secrets, zones, names beyond ASCII, outcomes."""
    with Simulator(app, state=app / ".fwsched" / "state.db", strict=False) as sim:
        sim.install({"api_key": "installed-secret"})
        sim.schedule.create(
            name="daily",
            data={"kind": "sync", "nested": {"a": [1, 2, {"b": None}]}},
            schedule_at="2026-01-05T10:00:00+01:00",
            repeat={"time_unit": "days", "frequency": 1, "timezone": "Europe/Berlin"},
        )
        sim.schedule.create(name="hourly", data={}, schedule_at=START,
                            repeat={"time_unit": "hours", "frequency": 2})  # fmt: skip
        sim.schedule.create(name="café ☕", data={"é": "ü"}, schedule_at="2026-01-05T09:30:00.250Z")
        sim.schedule.create(name="failing", data={"fail": True}, schedule_at="2026-01-05T11:00:00Z")
        sim.schedule.create(name="later", data={"x": 1}, schedule_at="2026-03-01T00:00:00Z")
        sim.advance(timedelta(hours=6))
        sim.trigger_payload({"ad hoc": "s3cret-value inside"})


def full(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def fast(args: list[str], capsys: pytest.CaptureFixture[str]) -> str | None:
    capsys.readouterr()
    answered = quick.answer(args)
    out = capsys.readouterr().out
    if not answered:
        assert out == ""
        return None
    return out


@pytest.fixture
def app(make_app: MakeApp) -> Path:
    root = make_app(SERVER, manifest=MANIFEST, toml=TOML, iparams=IPARAMS)
    fill(root)
    return root


def test_the_constants_are_the_stores_and_the_commands() -> None:
    assert schema.expected_tables() == quickstate.SCHEMA
    assert str(schema.SCHEMA_VERSION) == quickstate.SCHEMA_VERSION
    assert quick.OUTCOMES == state.OUTCOMES == tuple(outcome.value for outcome in Outcome)
    assert quick.STATUS_KEYS == operations.STATUS_KEYS
    assert quickstate.MAX_DEPTH == jsonsafe.MAX_DEPTH


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_the_quick_answer_is_the_commands(
    app: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*command, "--app", str(app)]
    answered = fast(args, capsys)
    assert answered is not None, "the quick path deferred"
    assert answered == full(args)
    assert "s3cret-value" not in answered and "installed-secret" not in answered


def test_the_app_is_found_as_the_commands_find_it(
    app: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = full(["status", "--json", "--app", str(app)])
    assert fast(["--app", str(app), "status", "--json"], capsys) == expected
    assert fast(["status", f"--app={app}", "--json"], capsys) == expected
    monkeypatch.chdir(app / ".fwsched")  # a parent has the manifest.json
    assert fast(["status", "--json"], capsys) == expected
    monkeypatch.setenv("FWSCHED_APP", str(app))
    monkeypatch.chdir(app.parent / "elsewhere")
    assert fast(["status", "--json"], capsys) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["status"],  # a table: rich
        ["status", "--json", "--debug"],
        ["status", "--json", "--json"],
        ["history", "--limit", "0", "--json"],
        ["history", "--limit", "+2", "--json"],
        ["history", "--outcome", "OK", "--json"],
        ["history", "--all", "--json"],
        ["schedules", "--json", "--limit", "2"],
        ["show", "1", "--json"],
        ["status", "--json", "--app"],
        ["status", "--json", "--app", "--json"],
        ["status", "--json", "--", "x"],
    ],
    ids=" ".join,
)
def test_other_command_lines_go_to_click(
    app: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert fast([*args, "--app", str(app)] if "--app" not in args else args, capsys) is None


def test_the_full_command_answers_what_is_not_as_usual(
    app: Path, make_app: MakeApp, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["status", "--json", "--app", str(app)]
    assert fast(args, capsys) is not None
    lock = StateLock(app / ".fwsched" / "state.db")  # another command has the state
    try:
        assert fast(args, capsys) is None
    finally:
        lock.release()
    fresh = make_app(SERVER, manifest=MANIFEST, name="fresh")  # no state yet: it is made
    assert fast(["status", "--json", "--app", str(fresh)], capsys) is None
    assert not (fresh / ".fwsched" / "app-check.json").exists()
    with (app / "fwsched.toml").open("a") as toml:  # an error now: the command says it
        toml.write('\n[simulator2]\ntimeout = "x"\n')
    (app / "manifest.json").write_text('{"events": {"onScheduledEvent": 3}}')
    assert fast(args, capsys) is None
    check = json.loads((app / ".fwsched" / "app-check.json").read_text())
    assert check["ok"] is False  # known broken until edited
    assert fast(args, capsys) is None
    assert CliRunner().invoke(cli, args).exit_code == 1


def test_no_secret_is_written_by_the_quick_path(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SPEC §5: fwsched.toml's secure values are never stored; §8: the installation's are
    kept in the state (only) while installed. The check file holds a verdict, no value."""
    folder = app / ".fwsched"
    check_file = folder / "app-check.json"
    stale = {"format": 2, "secrets": ["s3cret-value"], "secure": ["api_key"], "ok": True}
    check_file.write_text(json.dumps(stale))  # as an earlier version wrote it: replaced
    for command in COMMANDS:
        assert fast([*command, "--app", str(app)], capsys) is not None, command
    check = json.loads(check_file.read_text())
    assert set(check) == {"format", "version", "stubs_file", "identity", "ok"}
    assert check["ok"] is True
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert check_file in files
    for path in files:
        content = path.read_bytes()
        assert b"s3cret-value" not in content, path
        if path.name != "state.db":
            assert b"installed-secret" not in content, path


def test_the_secure_flags_are_read_at_each_run(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["schedules", "--json", "--app", str(app)]
    (app / "fwsched.toml").write_text(TOML.replace("s3cret-value", "sync"))  # in a schedule
    answered = fast(args, capsys)  # the check file is written
    assert answered == full(args)
    assert answered is not None and '"sync"' not in answered
    iparams = app / "config" / "iparams.json"
    iparams.write_text(json.dumps({"api_key": {"type": "text"}}))  # no longer secure
    answered = fast(args, capsys)
    assert answered == full(args)
    assert answered is not None and '"sync"' in answered
    iparams.write_text("\ufeff" + json.dumps(IPARAMS), encoding="utf-8")  # a BOM, as app reads
    answered = fast(args, capsys)
    assert answered == full(args)
    assert answered is not None and '"sync"' not in answered


def test_a_handler_left_running_is_recorded_by_the_full_command(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    conn = sqlite3.connect(app / ".fwsched" / "state.db")
    with conn:
        conn.execute("UPDATE invocations SET outcome = 'running' WHERE id = 2")
    conn.close()
    args = ["history", "--json", "--app", str(app)]
    assert fast(args, capsys) is None
    outcomes = {item["id"]: item["outcome"] for item in json.loads(full(args))}
    assert outcomes[2] == "interrupted"
    assert fast(args, capsys) == full(args)


def test_an_edited_setting_is_seen(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["schedules", "--json", "--app", str(app)]
    assert '"sync"' in (fast(args, capsys) or "")
    (app / "fwsched.toml").write_text(TOML.replace("s3cret-value", "sync"))
    answered = fast(args, capsys)
    assert answered == full(args)
    assert answered is not None and '"sync"' not in answered  # a secret now


@pytest.fixture
def short_app(make_app: MakeApp) -> Iterator[Path]:
    """The app in a short folder: a unix socket's path has ~100 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="fwq", dir="/tmp"))
    app = folder / "app"
    shutil.copytree(make_app(SERVER, manifest=MANIFEST, toml=TOML, iparams=IPARAMS), app)
    fill(app)
    yield app
    shutil.rmtree(folder, ignore_errors=True)


def test_with_a_live_runner_the_answer_is_the_runners(
    short_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = subprocess.Popen(
        [sys.executable, "-m", "fwsched", "run", str(short_app), "--paused"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + BOUND
        while control.ping(control.socket_path(short_app), timeout=0.5) != runner.pid:
            assert runner.poll() is None and time.monotonic() < deadline, "no runner"
            time.sleep(0.05)
        for command in COMMANDS:
            args = [*command, "--app", str(short_app)]
            answered = fast(args, capsys)
            assert answered is not None, command
            assert answered == full(args), command
        assert json.loads(fast(["status", "--json", "--app", str(short_app)], capsys) or "")["live"]
    finally:
        runner.send_signal(signal.SIGINT)
        try:
            runner.wait(BOUND)
        except subprocess.TimeoutExpired:
            runner.kill()
            runner.wait(BOUND)


def test_the_console_script_answers_through_it(app: Path) -> None:
    script = Path(sys.executable).parent / "fwsched"
    done = subprocess.run(
        [str(script), "status", "--json", "--app", str(app)],
        capture_output=True,
        text=True,
        timeout=BOUND,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=True,
    )
    assert json.loads(done.stdout)["app"] == str(app)
