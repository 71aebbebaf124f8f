"""The command line as a new user meets it (issue 12): the right app, options, messages, output."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import MakeApp
from test_live import Runner, isolated, start_runner

from fwsched.cli.root import cli

__all__ = ["isolated", "start_runner"]  # fixtures of test_live, used here too

START = "2026-01-05T09:00:00Z"
TOML = f'[simulator]\nstart = "{START}"\ntimeout = 5\n'
SERVER = """
import time

def handle(payload):
    data = payload["data"]
    print("first line", data)
    print("second line")
    if data.get("fail"):
        raise ValueError("asked to fail")
    if data.get("exit") is not None:
        raise SystemExit(data["exit"])
    if data.get("mark"):
        with open("ran.txt", "a") as ran:  # progress the test can see (the state is locked)
            ran.write("x")
    if data.get("sleep"):
        time.sleep(data["sleep"])
    if data.get("allocate"):
        return len(bytearray(data["allocate"] * 1024 * 1024))

exports = {"onScheduledEventHandler": handle}
"""


@pytest.fixture
def app(make_app: MakeApp) -> Path:
    return make_app(SERVER, toml=TOML)


def fw(*args: Any, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], input=input)


def ok(*args: Any) -> Result:
    result = fw(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


# -- point 7 and 12: what a run shows -------------------------------------------------------


def test_trigger_of_a_failed_handler_shows_its_output_and_its_traceback(app: Path) -> None:
    ok("schedule", "create", "--name", "r", "--data", '{"fail": 1}', "--at", "+1h", "--app", app)
    out = fw("trigger", "r", "--app", app).stdout
    lines = out.splitlines()
    assert "error" in lines[0] and "ValueError: asked to fail" in lines[0]
    assert lines[1:3] == ["  first line {'fail': 1}", "  second line"]
    assert "Traceback (most recent call last)" in out and out.rstrip().endswith(
        "ValueError: asked to fail"
    )


def test_trigger_prints_each_log_line_once(app: Path) -> None:
    ok("schedule", "create", "--name", "r", "--data", "{}", "--at", "+1h", "--app", app)
    out = ok("trigger", "r", "--app", app).stdout
    assert out.count("first line {}") == 1
    assert out.splitlines()[1:] == ["  second line"]


def test_at_plus_duration_on_a_running_clock_is_a_whole_second(
    app: Path, start_runner: Callable[..., Runner]
) -> None:
    start_runner(app)  # the clock runs: its now has milliseconds
    ok("schedule", "create", "--name", "r", "--data", "{}", "--at", "+10m", "--app", app)
    fetched = json.loads(ok("schedule", "fetch", "--name", "r", "--app", app).stdout)
    assert re.fullmatch(r"2026-01-05T09:10:\d\dZ", fetched["schedule_at"]), fetched


def test_a_handler_that_exits_is_an_error_saying_handlers_return(app: Path) -> None:
    run = json.loads(ok("trigger", "--payload", '{"exit": 0}', "--json", "--app", app).stdout)
    assert run["outcome"] == "error"
    assert run["error"].startswith("SystemExit(0): a handler must return (or raise an error)")
    assert "first line" in run["log"]  # its output is kept, as for any error


def test_a_timeout_names_the_setting_that_changes_it(app: Path) -> None:
    args = ("trigger", "--payload", '{"sleep": 30}', "--timeout", "1", "--json", "--app", app)
    run = json.loads(ok(*args).stdout)
    assert run["outcome"] == "timeout"
    assert run["error"] == (
        "killed after 1 s timeout (the limit is set by --timeout, Simulator(timeout=) or "
        "[simulator] timeout in fwsched.toml)"
    )


def test_a_memory_error_names_the_memory_limit(app: Path) -> None:
    args = ("trigger", "--payload", '{"allocate": 1024}', "--memory-limit", "256", "--json")
    run = json.loads(ok(*args, "--app", app).stdout)
    assert run["outcome"] == "error", run
    assert run["error"].startswith("MemoryError")
    assert "beyond the sandbox's memory limit of 256 MiB: --memory-limit" in run["error"]


# -- point 2: the right app -----------------------------------------------------------------


def test_the_nearest_app_above_the_current_directory_wins_over_a_live_one(
    app: Path, make_app: MakeApp, start_runner: Callable[..., Runner], monkeypatch: Any
) -> None:
    other = make_app(SERVER, toml=TOML, name="other")
    start_runner(other, "--paused")
    (app / "tests").mkdir()
    monkeypatch.chdir(app / "tests")  # where pytest runs
    result = ok("advance", "5m", "--json")
    assert "using the live app" not in result.stderr
    assert json.loads(ok("status", "--json").stdout)["app"] == str(app)
    assert json.loads(ok("status", "--json", "--app", other).stdout)["now"] == START  # untouched


def test_the_only_live_app_is_used_from_elsewhere_and_that_is_said(
    app: Path, start_runner: Callable[..., Runner]
) -> None:
    start_runner(app, "--paused")
    result = ok("status", "--json")  # the cwd of these tests has no app above it
    assert json.loads(result.stdout)["app"] == str(app)
    assert result.stderr == f"using the live app {app}\n"


@pytest.mark.parametrize("where", ["missing", "plain_dir", "a_file", "inside_the_app"])
def test_an_app_path_that_is_not_an_app_is_a_usage_error(
    app: Path, tmp_path: Path, where: str, monkeypatch: Any
) -> None:
    paths = {
        "missing": tmp_path / "nope",
        "plain_dir": tmp_path / "elsewhere",
        "a_file": app / "server.py",
        "inside_the_app": app / "config",
    }
    (app / "config").mkdir(exist_ok=True)
    path = paths[where]
    for result in (fw("status", "--app", path), fw("--app", path, "status")):
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith("Error: ") and str(path) in result.stderr
    if where == "inside_the_app":
        assert f"(the app may be {app})" in result.stderr
    monkeypatch.setenv("FWSCHED_APP", str(path))
    assert fw("history").exit_code == 2


# -- point 10: options and exit codes -------------------------------------------------------


def _command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import click

    paths = []
    for name, command in group.commands.items():
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += _command_paths(command, (*prefix, name))
    return paths


def test_dash_h_is_the_help_of_every_command() -> None:
    paths = _command_paths(cli)
    assert ("advance",) in paths and ("schedule", "create") in paths
    for path in [(), *paths]:
        result = fw(*path, "-h")
        assert result.exit_code == 0, (path, result.stderr)
        assert result.stdout.startswith("Usage: "), path


def test_the_app_option_may_come_before_the_command(app: Path) -> None:
    assert json.loads(ok("--app", app, "status", "--json").stdout)["app"] == str(app)
    args = ("--name", "r", "--data", "{}", "--at", "+1h")
    ok("--app", app, "schedule", "create", *args)
    assert json.loads(ok("--app", app, "schedule", "fetch", "--name", "r").stdout)["name"] == "r"


@pytest.mark.parametrize(
    ("args", "code", "document"),
    [
        (["status"], 2, {"error": "No app found: pass --app PATH or run inside an app directory"}),
        (["trigger", "nope"], 1, {"error": "Schedule does not exist: 'nope' (fwsched schedules)"}),
        (["show", "99"], 1, {"error": "No invocation with id 99 (fwsched history lists them)"}),
        (
            ["schedule", "fetch", "--name", "nope"],
            1,
            {"status": 404, "message": "Schedule does not exist"},
        ),
        (["advance", "1x"], 2, None),
        (["history", "--limit", "0"], 2, None),
    ],
)
def test_a_failure_with_json_still_prints_one_json_document(
    app: Path, args: list[str], code: int, document: dict[str, Any] | None
) -> None:
    if args != ["status"]:
        args = [*args, "--app", str(app)]
    result = fw(*args, "--json")
    assert result.exit_code == code
    printed = json.loads(result.stdout)  # exactly one document: this would fail otherwise
    if document is not None:
        assert printed == document
    else:
        assert set(printed) == {"error"} and printed["error"] in result.stderr


# -- point 8: relaxed mode is sticky, and said so ---------------------------------------------


RELAXED = "relaxed: platform limits are off until `fwsched reset`\n"


def test_every_command_on_a_relaxed_state_says_so_once(app: Path) -> None:
    assert ok("status", "--app", app).stderr == ""
    ok(
        "schedule",
        "create",
        "--name",
        "r",
        "--data",
        "{}",
        "--at",
        "+1m",
        "--relaxed",
        "--app",
        app,
    )
    for args in (["history"], ["advance", "1h"], ["show", "1"], ["trigger", "--payload", "{}"]):
        assert ok(*args, "--app", app).stderr == RELAXED, args
    result = ok("schedule", "create", "--name", "s", "--data", "{}", "--at", "+1m", "--app", app)
    assert result.stderr == RELAXED  # a past time passes, and the user is told why
    assert ok("history", "--json", "--app", app).stderr == ""  # JSON: nothing else
    # The commands that show the mode themselves do not repeat it.
    assert "relaxed" in ok("schedules", "--app", app).stdout
    assert ok("schedules", "--app", app).stderr == ""
    assert ok("status", "--app", app).stderr == ""
    ok("reset", "--yes", "--app", app)
    assert ok("history", "--app", app).stderr == ""


# -- point 11: messages that help -----------------------------------------------------------


def test_the_five_minute_rule_says_the_simulated_now_on_stderr(app: Path) -> None:
    result = fw("schedule", "create", "--name", "r", "--data", "{}", "--at", "+1m", "--app", app)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "status": 400,
        "message": "The 'schedule_at' value must be at least 5 minutes in the future",
    }
    assert result.stderr == (
        "Error: The 'schedule_at' value must be at least 5 minutes in the future (status 400); "
        f"checked against the simulated now, {START}\n"
    )


def test_at_errors_name_at(app: Path) -> None:
    result = fw("schedule", "create", "--name", "r", "--data", "{}", "--at", "+1x", "--app", app)
    assert result.exit_code == 2 and result.stderr.startswith("Error: --at: invalid duration '1x'")
    result = fw("schedule", "create", "--name", "r", "--data", "{}", "--at", "tmrw", "--app", app)
    assert result.exit_code == 1
    assert "--at takes an ISO 8601 time (2026-01-05T10:00:00Z) or +DURATION" in result.stderr


def test_a_duration_in_words_gets_the_short_form_suggested(app: Path) -> None:
    result = fw("advance", "1", "hour", "--app", app)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: invalid duration '1 hour' (did you mean 1h?): use ")
    assert json.loads(ok("advance", "1h", "30m", "--json", "--app", app).stdout)["to"] == (
        "2026-01-05T10:30:00Z"
    )


def test_a_misspelt_handler_name_gets_the_closest_export(make_app: MakeApp) -> None:
    manifest = {"events": {"onScheduledEvent": {"handler": "onScheduledEventHandlr"}}}
    typo = make_app(SERVER, toml=TOML, manifest=manifest, name="typo")
    result = fw("validate", typo)
    assert result.exit_code == 1
    assert (
        "Event callback 'onScheduledEventHandlr' is not defined in server.py exports "
        "(did you mean 'onScheduledEventHandler'?)"
    ) in result.stdout
    run = json.loads(ok("trigger", "--payload", "{}", "--json", "--app", typo).stdout)
    assert run["outcome"] == "load-error"
    assert run["error"].endswith("(did you mean 'onScheduledEventHandler'?)")


def test_the_one_recurring_schedule_rule_names_the_one_there_is(app: Path) -> None:
    every = ("--data", "{}", "--at", "+1h", "--every", "1h", "--app", app)
    ok("schedule", "create", "--name", "sync", *every)
    result = fw("schedule", "create", "--name", "other", *every)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["message"] == "The maximum number of recurring schedules is 1"
    assert "; the recurring schedule is 'sync' (fwsched schedules)" in result.stderr


@pytest.mark.parametrize("option", ["--payload", "--data"])
def test_a_json_option_error_shows_an_example_of_that_option(app: Path, option: str) -> None:
    args = (
        ["trigger", "--payload", "{bad"]
        if option == "--payload"
        else ["trigger", "r", "--data", "{bad"]
    )
    result = fw(*args, "--app", app)
    assert result.exit_code == 2
    assert f"(quote it for the shell, e.g. {option} '{{\"task_id\": 1}}'" in result.stderr


# -- point 12: tidy output ------------------------------------------------------------------


def test_init_ignores_the_pytest_cache(tmp_path: Path) -> None:
    ok("init", tmp_path / "new_app")
    assert ".pytest_cache/" in (tmp_path / "new_app" / ".gitignore").read_text().splitlines()


def test_ctrl_c_during_advance_says_where_the_clock_stopped_and_how_many_ran(
    make_app: MakeApp,
) -> None:
    import signal
    import subprocess
    import sys
    import time

    slow = make_app(SERVER, toml=TOML, name="slow")
    ok("schedule", "create", "--name", "t", "--data", '{"sleep": 0.2, "mark": 1}', "--at", "+5m",
       "--every", "5m", "--app", slow)  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "fwsched", "advance", "1d", "--app", str(slow)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _count(slow) < 3:
            assert time.monotonic() < deadline, "the advance did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 130
    match = re.fullmatch(
        r"Error: interrupted; the clock stopped at (\S+) after (\d+) invocations? "
        r"\(fwsched history shows them\)",
        err.strip(),
    )
    assert match is not None, err
    status = json.loads(ok("status", "--json", "--app", slow).stdout)
    assert status["now"] == match.group(1)
    history = json.loads(ok("history", "--json", "--app", slow).stdout)
    assert sum(i["outcome"] == "ok" for i in history) == int(match.group(2))


def _count(app: Path) -> int:
    """Invocations started so far, as the handler marks them."""
    try:
        return len((app / "ran.txt").read_text())
    except FileNotFoundError:
        return 0
