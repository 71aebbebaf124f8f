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
def handle(payload):
    data = payload["data"]
    print("first line", data)
    print("second line")
    if data.get("fail"):
        raise ValueError("asked to fail")

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
