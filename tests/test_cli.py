"""The command line (SPEC §5) through click's CliRunner, without a live runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import MakeApp

from fwsched.cli.root import cli

START = "2026-01-05T09:00:00Z"
SERVER = """
VERSION = "v1"

def handle(payload):
    data = payload["data"]
    print(f"{VERSION} ran {data}")
    print("second line")
    if data.get("fail"):
        raise ValueError("asked to fail")
    return {"version": VERSION, "data": data}

exports = {"onScheduledEventHandler": handle}
"""
TOML = f"""
[simulator]
start = "{START}"
timeout = 10

[iparams]
api_key = "s3cret"
"""
IPARAMS = {"api_key": {"display_name": "API key", "type": "text", "secure": True}}
INVOCATION_KEYS = {
    "id",
    "schedule",
    "fire_at",
    "timestamp",
    "outcome",
    "duration_ms",
    "error",
    "log",
    "return_value",
    "payload",
}
SCHEDULE_KEYS = {"name", "kind", "schedule_at", "next_fire_at", "repeat", "data"}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No registry of the real user, no app from the environment, a cwd without an app."""
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    monkeypatch.delenv("FWSCHED_DEBUG", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    yield


@pytest.fixture
def app(make_app: MakeApp) -> Path:
    return make_app(SERVER, toml=TOML, iparams=IPARAMS)


def fw(*args: Any, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], input=input, env=env)


def ok(*args: Any) -> Result:
    result = fw(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def doc(*args: Any) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def create(
    app: Path,
    name: str,
    at: str = "2026-01-05T10:00:00Z",
    *,
    data: str = '{"n": 1}',
    every: str | None = None,
    relaxed: bool = False,
) -> None:
    args = ["schedule", "create", "--name", name, "--at", at, "--data", data]
    if every is not None:
        args += ["--every", every]
    if relaxed:
        args.append("--relaxed")
    assert doc(*args, "--app", app) == {"status": 200, "message": "Schedule created"}


def one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


# -- basics -------------------------------------------------------------------------------


def test_version_and_help() -> None:
    assert ok("--version").stdout == "fwsched 0.1.0\n"
    help_text = ok("--help").stdout
    for command in ("run", "advance", "trigger", "schedules", "schedule", "history", "show"):
        assert command in help_text
    for command in ("status", "validate", "init", "reset"):
        assert command in help_text


def test_no_command_prints_the_help() -> None:
    result = fw()
    assert "Usage: fwsched [OPTIONS] COMMAND" in result.output
    assert "Commands:" in result.output


def test_version_is_answered_without_importing_click() -> None:
    code = (
        "import sys\nfrom fwsched.cli import main\nmain(['--version'])\n"
        "print('click' in sys.modules, 'fwsched.engine' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout == "fwsched 0.1.0\nFalse False\n"


def test_python_m_fwsched_runs_the_cli(app: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fwsched", "status", "--json", "--app", str(app)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FWSCHED_HOME": str(app.parent / "home")},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["now"] == START


# -- finding the app ----------------------------------------------------------------------


def test_no_app_found_is_a_usage_error() -> None:
    result = fw("status")
    assert result.exit_code == 2
    assert one_line_error(result) == (
        "Error: No app found: pass --app PATH or run inside an app directory"
    )


def test_the_app_comes_from_the_option_the_environment_or_the_current_directory(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert doc("status", "--app", app)["app"] == str(app)
    assert json.loads(fw("status", "--json", env={"FWSCHED_APP": str(app)}).stdout)["app"] == str(
        app
    )
    monkeypatch.chdir(app)
    assert doc("status")["app"] == str(app)


def test_app_may_stand_anywhere_after_the_command(app: Path) -> None:
    result = fw("schedule", "create", "--app", app, "--name", "r", "--data", "{}", "--at", "+1h")
    assert result.exit_code == 0, result.stderr
    assert doc("schedule", "--app", app, "fetch", "--name", "r")["name"] == "r"
    assert doc("schedule", "fetch", "--name", "r", "--app", app)["name"] == "r"


def test_a_missing_app_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = fw("status", "--app", tmp_path / "nope")
    assert result.exit_code == 2  # SPEC §5: a --app path that is not an app
    assert "No app directory" in one_line_error(result)


# -- the schedule API ---------------------------------------------------------------------


def test_schedule_create_fetch_update_delete(app: Path) -> None:
    create(app, "r")
    assert doc("schedule", "fetch", "--name", "r", "--app", app) == {
        "name": "r",
        "data": {"n": 1},
        "schedule_at": "2026-01-05T10:00:00Z",
    }
    updated = doc(
        "schedule", "update", "--name", "r", "--data", '{"n": 2}', "--at", "+2h", "--app", app
    )
    assert updated == {"status": 200, "message": "Schedule updated"}
    fetched = doc("schedule", "fetch", "--name", "r", "--app", app)
    assert fetched["data"] == {"n": 2}
    assert fetched["schedule_at"] == "2026-01-05T11:00:00Z"  # +2h from the simulated now
    deleted = doc("schedule", "delete", "--name", "r", "--app", app)
    assert deleted == {"status": 200, "message": "Schedule deleted"}


def test_human_output_of_the_api_is_its_json_answer(app: Path) -> None:
    result = ok("schedule", "create", "--name", "r", "--data", "{}", "--at", "+1h", "--app", app)
    assert json.loads(result.stdout) == {"status": 200, "message": "Schedule created"}


def test_a_missing_option_is_a_missing_key_for_the_api(app: Path) -> None:
    result = fw("schedule", "create", "--name", "r", "--at", "+1h", "--json", "--app", app)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "status": 400,
        "message": "The following mandatory keys are missing - data",
    }
    assert one_line_error(result).endswith("(status 400)")


def test_a_partial_repeat_goes_to_the_api(app: Path) -> None:
    base = ["schedule", "create", "--name", "r", "--data", "{}", "--at", "+1h", "--json"]
    result = fw(*base, "--timezone", "Europe/Berlin", "--app", app)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["message"] == (
        "The following mandatory keys are missing - time_unit,frequency"
    )
    result = fw(*base, "--time-unit", "weeks", "--frequency", "1", "--app", app)
    assert json.loads(result.stdout)["message"] == "Time unit must either be days, minutes or hours"
    result = fw(*base, "--time-unit", "hours", "--frequency", "often", "--app", app)
    assert json.loads(result.stdout)["message"] == "The 'frequency' value must be of type Number"


def test_every_becomes_the_repeat_of_the_api(app: Path) -> None:
    create(app, "sync", at=START, every="2h")
    fetched = doc("schedule", "fetch", "--name", "sync", "--app", app)
    assert fetched["repeat"] == {"time_unit": "hours", "frequency": 2, "timezone": "UTC"}
    result = fw(
        "schedule", "create", "--name", "x", "--data", "{}", "--at", START, "--every", "90s"
    )
    assert result.exit_code == 2
    assert "whole minutes, hours or days" in one_line_error(result)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["fetch", "--name", "nope"], 404, "Schedule does not exist"),
        (["delete", "--name", "nope"], 404, "Schedule does not exist"),
        (["fetch"], 400, "The following mandatory keys are missing - name"),
        (
            ["update", "--name", "nope", "--data", "{}", "--at", "+1h"],
            404,
            "Schedule does not exist",
        ),
        (
            ["create", "--name", "r", "--data", "{}", "--at", "+1m"],
            400,
            "The 'schedule_at' value must be at least 5 minutes in the future",
        ),
        (["create", "--name", "r", "--data", "[1]", "--at", "+1h"], 400, None),
    ],
)
def test_api_errors_print_the_answer_and_exit_1(
    app: Path, args: list[str], status: int, message: str | None
) -> None:
    result = fw("schedule", *args, "--json", "--app", app)
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["status"] == status
    assert message is None or answer["message"] == message


@pytest.mark.parametrize("data", ["{bad", "{'single': 1}", ""])
def test_invalid_json_in_data_is_a_usage_error(app: Path, data: str) -> None:
    result = fw("schedule", "create", "--name", "r", "--data", data, "--at", "+1h", "--app", app)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "--data: invalid JSON at line 1 column" in line
    assert result.stdout == ""


def test_relaxed_lifts_the_limits_and_is_remembered(app: Path) -> None:
    result = fw("schedule", "create", "--name", "r", "--data", "{}", "--at", "+1m", "--app", app)
    assert result.exit_code == 1
    create(app, "r", at="+1m", relaxed=True)
    assert doc("status", "--app", app)["relaxed"] is True
    assert "relaxed" in ok("schedules", "--app", app).stdout
    assert "relaxed" in ok("status", "--app", app).stdout
    create(app, "again", at="+1m")  # no --relaxed: still relaxed until reset


# -- listing ------------------------------------------------------------------------------


def test_schedules_lists_soonest_first_with_the_documented_keys(app: Path) -> None:
    create(app, "later", at="2026-01-05T12:00:00Z")
    create(app, "sync", at=START, every="15m")
    listed = doc("schedules", "--app", app)
    assert [s["name"] for s in listed] == ["sync", "later"]
    assert all(set(s) == SCHEDULE_KEYS for s in listed)
    assert listed[0]["kind"] == "recurring" and listed[1]["kind"] == "one-time"
    assert listed[0]["next_fire_at"] == START
    assert doc("ls", "--app", app) == listed
    table = ok("ls", "--app", app).stdout
    assert "every 15 minutes" in table and "later" in table and "one-time" in table


def test_json_times_are_utc_with_z_and_fetch_keeps_schedule_at_as_given(app: Path) -> None:
    create(app, "paris", at="2026-01-05T11:00:00+01:00")
    create(app, "sync", at="2026-01-05T04:15:00-05:00", every="15m")
    [sync, paris] = doc("schedules", "--app", app)
    assert (sync["schedule_at"], sync["next_fire_at"]) == (
        "2026-01-05T09:15:00Z",
        "2026-01-05T09:15:00Z",
    )
    assert (paris["schedule_at"], paris["next_fire_at"]) == (
        "2026-01-05T10:00:00Z",
        "2026-01-05T10:00:00Z",
    )
    fetched = doc("schedule", "fetch", "--name", "paris", "--app", app)
    assert fetched["schedule_at"] == "2026-01-05T11:00:00+01:00"

    advanced = doc("advance", "1h", "--app", app)
    invocations = advanced["invocations"]
    assert [i["fire_at"] for i in invocations][-1] == "2026-01-05T10:00:00Z"
    shown = doc("show", invocations[-1]["id"], "--app", app)
    times = [advanced["from"], advanced["to"], doc("status", "--app", app)["now"]]
    for invocation in [*invocations, *doc("history", "--app", app), shown]:
        times += [invocation["fire_at"], invocation["started_at"]]
    for schedule in doc("schedules", "--app", app):
        times += [schedule["schedule_at"], schedule["next_fire_at"]]
    assert all(t.endswith("Z") and "+" not in t for t in times), times


def test_the_library_schedule_record_has_the_instant(app: Path) -> None:
    from fwsched import Simulator

    with Simulator(app, start=START) as sim:
        sim.schedule.create(name="paris", data={}, schedule_at="2026-01-05T11:00:00+01:00")
        [listed] = sim.schedules()
    at = datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert listed.schedule_at == at and listed.schedule_at.utcoffset() == timedelta(0)
    assert listed.to_json()["schedule_at"] == "2026-01-05T10:00:00Z"


def test_an_empty_app_lists_nothing(app: Path) -> None:
    assert doc("schedules", "--app", app) == []
    assert "No schedules." in ok("schedules", "--app", app).stdout
    assert doc("history", "--app", app) == []


# -- moving time --------------------------------------------------------------------------


def test_advance_prints_each_invocation_then_a_summary(app: Path) -> None:
    create(app, "a", at="2026-01-05T10:00:00Z")
    create(app, "b", at="2026-01-05T09:30:00Z", data='{"fail": true}')
    lines = ok("advance", "1h30m", "--app", app).stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[1:4] == ["2026-01-05T09:30:00Z", "b", "error"]
    assert lines[0].endswith("ValueError: asked to fail")
    assert lines[1].split()[1:4] == ["2026-01-05T10:00:00Z", "a", "ok"]
    assert lines[1].endswith("v1 ran {'n': 1}")  # the first log line
    assert lines[2] == (
        "Advanced from 2026-01-05T09:00:00Z to 2026-01-05T10:30:00Z: 2 invocations (1 error, 1 ok)"
    )


def test_advance_json_has_from_to_and_invocations(app: Path) -> None:
    create(app, "a")
    result = doc("advance", "PT1H", "--app", app)
    assert set(result) == {"from", "to", "invocations"}
    assert (result["from"], result["to"]) == (START, "2026-01-05T10:00:00Z")
    [invocation] = result["invocations"]
    assert set(invocation) >= INVOCATION_KEYS
    assert invocation["schedule"] == "a"
    assert invocation["timestamp"] == 1767607200000
    assert invocation["payload"]["iparams"] == {"api_key": "****"}
    assert invocation["return_value"] == {"version": "v1", "data": {"n": 1}}


def test_advance_to_is_inclusive(app: Path) -> None:
    create(app, "a")
    result = doc("advance", "--to", "2026-01-05T10:00:00Z", "--app", app)
    assert [i["schedule"] for i in result["invocations"]] == ["a"]
    assert doc("status", "--app", app)["now"] == "2026-01-05T10:00:00Z"


@pytest.mark.parametrize("duration", ["3x", "0s", "-1h", "", "1y", "P1M"])
def test_a_bad_duration_exits_2_showing_the_accepted_forms(app: Path, duration: str) -> None:
    result = fw("advance", duration, "--app", app)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "90s, 1h30m, 2d, 1w" in line and "PT1H30M" in line


@pytest.mark.parametrize(
    "args",
    [[], ["1h", "--to", "2026-01-06T00:00:00Z"], ["--to", "tomorrow"]],
)
def test_advance_needs_exactly_one_target(app: Path, args: list[str]) -> None:
    result = fw("advance", *args, "--app", app)
    assert result.exit_code == 2
    one_line_error(result)


def test_advance_cannot_go_backwards(app: Path) -> None:
    result = fw("advance", "--to", "2026-01-01T00:00:00Z", "--app", app)
    assert result.exit_code == 2
    assert "backwards" in one_line_error(result)


def test_fail_on_error(app: Path) -> None:
    create(app, "bad", data='{"fail": true}')
    result = fw("advance", "1h", "--fail-on-error", "--json", "--app", app)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["invocations"][0]["outcome"] == "error"
    assert ok("advance", "1h", "--fail-on-error", "--app", app).stdout.startswith("Advanced")


# -- trigger ------------------------------------------------------------------------------


def test_trigger_runs_the_handler_now_and_keeps_the_schedule(app: Path) -> None:
    create(app, "r")
    invocation = doc("trigger", "r", "--app", app)
    assert set(invocation) >= INVOCATION_KEYS
    assert (invocation["schedule"], invocation["fire_at"]) == ("r", START)
    assert invocation["payload"]["data"] == {"n": 1}
    assert [s["name"] for s in doc("schedules", "--app", app)] == ["r"]
    replaced = doc("trigger", "r", "--data", '{"n": 9}', "--app", app)
    assert replaced["payload"]["data"] == {"n": 9}
    human = ok("trigger", "r", "--app", app).stdout
    assert " r " in human and " ok " in human and "  second line" in human


def test_trigger_of_an_unknown_schedule_exits_1(app: Path) -> None:
    result = fw("trigger", "nope", "--app", app)
    assert result.exit_code == 1
    assert "Schedule does not exist: 'nope'" in one_line_error(result)


def test_trigger_payload_fires_an_ad_hoc_event(app: Path, tmp_path: Path) -> None:
    invocation = doc("trigger", "--payload", '{"task_id": 7}', "--app", app)
    assert invocation["schedule"] is None
    assert invocation["payload"]["data"] == {"task_id": 7}
    payload_file = tmp_path / "payload.json"
    payload_file.write_text('{"from": "file"}')
    from_file = doc("trigger", "--payload", f"@{payload_file}", "--app", app)
    assert from_file["payload"]["data"] == {"from": "file"}
    assert "(payload)" in ok("history", "--app", app).stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--payload", "{nope"],
        ["r", "--data", "not json"],
        [],
        ["r", "--payload", "{}"],
        ["--payload", "{}", "--data", "{}"],
        ["--payload", "@/does/not/exist.json"],
    ],
)
def test_trigger_usage_errors_exit_2(app: Path, args: list[str]) -> None:
    result = fw("trigger", *args, "--app", app)
    assert result.exit_code == 2
    one_line_error(result)


def test_trigger_data_must_be_an_object(app: Path) -> None:
    result = fw("trigger", "--payload", "[1, 2]", "--app", app)
    assert result.exit_code == 1
    assert "The 'data' value must be of type JSON" in one_line_error(result)


# -- history and show ---------------------------------------------------------------------


def test_history_filters_and_limits_newest_last(app: Path) -> None:
    create(app, "sync", at="2026-01-05T09:10:00Z", every="10m")
    create(app, "bad", at="2026-01-05T09:25:00Z", data='{"fail": true}')
    ok("advance", "1h", "--app", app)
    everything = doc("history", "--app", app)
    assert len(everything) == 7
    assert [i["id"] for i in everything] == sorted(i["id"] for i in everything)
    assert all(set(i) >= INVOCATION_KEYS for i in everything)
    assert [i["schedule"] for i in doc("history", "--outcome", "error", "--app", app)] == ["bad"]
    assert len(doc("history", "--name", "sync", "--app", app)) == 6
    newest = doc("history", "--limit", "2", "--app", app)
    assert [i["id"] for i in newest] == [i["id"] for i in everything[-2:]]
    assert fw("history", "--outcome", "meh", "--app", app).exit_code == 2


def test_show_prints_one_invocation_in_full(app: Path) -> None:
    create(app, "bad", data='{"fail": true}')
    [fired] = doc("advance", "1h", "--app", app)["invocations"]
    shown = doc("show", fired["id"], "--app", app)
    assert shown == fired
    assert shown["error"] == "ValueError: asked to fail"
    assert "Traceback" in shown["traceback"]
    human = ok("show", fired["id"], "--app", app).stdout
    for text in ("ValueError: asked to fail", '"api_key": "****"', "second line", "Traceback"):
        assert text in human
    assert "s3cret" not in human


def test_show_of_an_unknown_id_exits_1(app: Path) -> None:
    result = fw("show", "42", "--app", app)
    assert result.exit_code == 1
    assert "No invocation with id 42" in one_line_error(result)
    assert fw("show", "abc", "--app", app).exit_code == 2


# -- status, validate, init, reset --------------------------------------------------------


def test_status_json_has_exactly_the_documented_keys(app: Path) -> None:
    create(app, "r")
    status = doc("status", "--app", app)
    assert status == {
        "app": str(app),
        "live": False,
        "now": START,
        "schedules": 1,
        "invocations": 0,
        "state_file": str(app / ".fwsched" / "state.db"),
        "relaxed": False,
        "installed": False,
    }
    human = ok("status", "--app", app).stdout
    assert "live runner    no" in human and "next fires 2026-01-05T10:00:00Z" in human


def test_validate_accepts_a_good_app(app: Path) -> None:
    result = ok("validate", app)
    assert "OK (exports: onScheduledEventHandler)" in result.stdout
    report = doc("validate", "--app", app)
    assert report["ok"] is True and report["errors"] == []


def test_validate_reports_a_missing_export_and_exits_1(make_app: MakeApp) -> None:
    root = make_app("exports = {'somethingElse': print}\n")
    result = fw("validate", root)
    assert result.exit_code == 1
    assert (
        "Event callback 'onScheduledEventHandler' is not defined in server.py exports"
        in result.stdout
    )


def test_validate_reports_a_broken_server_and_a_broken_manifest(make_app: MakeApp) -> None:
    broken = make_app("def handle(payload:\n", name="broken")
    report = json.loads(fw("validate", broken, "--json").stdout)
    assert report["ok"] is False
    assert report["errors"][0].startswith("server.py: SyntaxError")
    bad_manifest = make_app(SERVER, name="bad_manifest")
    (bad_manifest / "manifest.json").write_text('{\n  "events": {,}\n}')
    result = fw("validate", bad_manifest)
    assert result.exit_code == 1
    assert "manifest.json: invalid JSON at line 2 column 14" in result.stdout


def test_init_writes_an_app_that_validates_and_passes_its_own_test(tmp_path: Path) -> None:
    target = tmp_path / "new_app"
    result = ok("init", target)
    assert "Created an example app" in result.stdout
    for name in ("manifest.json", "server.py", "fwsched.toml", "config/iparams.json"):
        assert (target / name).is_file()
    assert "fwsched_sim" in (target / "tests" / "test_app.py").read_text()
    ok("validate", target)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed" in tests.stdout


def test_init_refuses_a_directory_that_is_not_empty(app: Path) -> None:
    result = fw("init", app)
    assert result.exit_code == 1
    assert "is not empty" in one_line_error(result)


def test_reset_asks_and_deletes_the_state(app: Path) -> None:
    create(app, "r")
    state = app / ".fwsched" / "state.db"
    assert state.exists()
    kept = fw("reset", "--app", app, input="n\n")
    assert kept.exit_code == 0
    assert f"Delete the state of {app}? [y/N]" in kept.stderr
    assert state.exists()
    assert fw("reset", "--app", app, input="\n").exit_code == 0
    assert state.exists()
    deleted = fw("reset", "--app", app, input="yes\n")
    assert deleted.exit_code == 0
    assert not any((app / ".fwsched").glob("state.db*"))
    assert doc("schedules", "--app", app) == []


def test_reset_yes_does_not_ask(app: Path) -> None:
    create(app, "r", relaxed=True)
    result = ok("reset", "--yes", "--app", app)
    assert "Delete the state" not in result.stderr
    assert "No state to delete" in ok("reset", "--yes", "--app", app).stdout
    assert doc("status", "--app", app)["relaxed"] is False


# -- errors and colour --------------------------------------------------------------------


def test_a_busy_state_is_waited_for_then_reported(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fwsched import session
    from fwsched.engine import Simulator

    holder = Simulator(app, state=app / ".fwsched" / "state.db")  # another process, say
    try:
        monkeypatch.setattr(session, "LOCK_WAIT", 0.3)
        busy = fw("status", "--app", app)
        assert busy.exit_code == 1
        assert "in use by another fwsched process" in one_line_error(busy)
        monkeypatch.setattr(session, "LOCK_WAIT", 10.0)
        release = threading.Timer(0.3, holder.close)
        release.start()
        assert doc("status", "--app", app)["now"] == START  # waited for the lock
        release.join(5)
    finally:
        holder.close()


def test_a_corrupt_state_file_exits_1_naming_it_and_reset(app: Path) -> None:
    state = app / ".fwsched" / "state.db"
    state.parent.mkdir()
    state.write_bytes(b"this is not sqlite" * 100)
    result = fw("status", "--app", app)
    assert result.exit_code == 1
    line = one_line_error(result)
    assert str(state) in line and "fwsched reset" in line
    debug = fw("status", "--app", app, "--debug")
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr


def test_no_colour_when_the_output_is_not_a_terminal(app: Path) -> None:
    create(app, "r")
    create(app, "bad", data='{"fail": true}')
    for args in (["advance", "1h"], ["history"], ["schedules"], ["status"], ["show", "1"]):
        result = fw(*args, "--app", app)
        assert "\x1b[" not in result.stdout + result.stderr, args
