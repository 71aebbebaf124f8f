"""The live runner while its driver is busy (issue 12): it answers, it says what it waits for,
it stops as announced, and its display keeps up."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import MakeApp
from test_live import BOUND, Runner, doc, fw, isolated, start_runner, wait_for

from fwsched import control
from fwsched.dashboard import Snapshot

__all__ = ["isolated", "start_runner"]  # fixtures of test_live, used here too

START = "2026-01-05T09:00:00Z"
TOML = f'[simulator]\nstart = "{START}"\ntimeout = 60\n'
SLOW = """
import time

def handle(payload):
    print("started", payload["data"])
    open("started", "w").close()
    time.sleep(payload["data"].get("sleep", 0))
    print("finished")

exports = {"onScheduledEventHandler": handle}
"""
READ_BOUND = 1.0  # the issue asks for 100 ms; a loaded 2-core CI machine gets some slack


@pytest.fixture
def slow_app(make_app: MakeApp) -> Path:
    return make_app(SLOW, toml=TOML, name="slow")


def background(*args: str) -> subprocess.Popen[str]:
    """A fwsched command in its own process, as from a second shell."""
    return subprocess.Popen(
        [sys.executable, "-m", "fwsched", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(BOUND)


def timed(*args: Any) -> tuple[float, Any]:
    began = time.monotonic()
    result = CliRunner().invoke(cli_root(), [str(arg) for arg in args])
    elapsed = time.monotonic() - began
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return elapsed, result


def cli_root() -> Any:
    from fwsched.cli.root import cli

    return cli


# -- point 3: a runner that answers while a handler runs -------------------------------------


def test_read_only_commands_answer_at_once_while_a_handler_runs(
    slow_app: Path, start_runner: Callable[..., Runner]
) -> None:
    start_runner(slow_app, "--paused")
    doc("trigger", "--payload", "{}", "--app", slow_app)  # a finished invocation: #1
    (slow_app / "started").unlink()
    busy = background("trigger", "--payload", '{"sleep": 8}', "--app", str(slow_app))
    try:
        wait_for(lambda: (slow_app / "started").exists(), "the handler to start")
        for command in (["status"], ["schedules"], ["history"], ["show", "1"], ["db", "ls"]):
            elapsed, result = timed(*command, "--app", slow_app)
            assert elapsed < READ_BOUND, (command, elapsed)
        elapsed, result = timed("status", "--app", slow_app)
        assert "running #2 (payload) for " in result.stdout  # what the runner is busy with
        assert busy.poll() is None  # all that while the handler ran
    finally:
        finish(busy)


def test_a_changing_command_waits_for_the_running_handler_and_says_so(
    slow_app: Path, start_runner: Callable[..., Runner]
) -> None:
    start_runner(slow_app, "--paused")
    busy = background("trigger", "--payload", '{"sleep": 3}', "--app", str(slow_app))
    try:
        wait_for(lambda: (slow_app / "started").exists(), "the handler to start")
        create = background(
            "schedule", "create", "--name", "r", "--data", "{}", "--at", "+1h",
            "--app", str(slow_app),
        )  # fmt: skip
        out, err = finish(create)
    finally:
        finish(busy)
    assert create.returncode == 0, err
    assert json.loads(out) == {"status": 200, "message": "Schedule created"}
    assert "waiting for the running handler (1 s)…" in err
    assert busy.returncode == 0  # it finished first


# -- point 4: stopping ----------------------------------------------------------------------


def test_the_first_ctrl_c_says_it_waits_for_the_handler_and_the_second_interrupts_it(
    slow_app: Path, start_runner: Callable[..., Runner]
) -> None:
    runner = start_runner(slow_app, "--paused")
    busy = background("trigger", "--payload", '{"sleep": 60}', "--app", str(slow_app))
    try:
        wait_for(lambda: (slow_app / "started").exists(), "the handler to start")
        runner.proc.send_signal(signal.SIGINT)
        wait_for(
            lambda: (
                "stopping after the running handler (Ctrl-C again to stop it now)"
                in runner.stderr()
            ),
            "the stopping line",
            bound=5,
        )
        assert runner.proc.poll() is None
        assert runner.interrupt() == 0
    finally:
        finish(busy)
    err = runner.stderr()
    assert "the running handler was interrupted" in err
    assert "stopped (SIGINT); the clock is saved at 2026-01-05T09:00:00Z" in err
    [record] = doc("history", "--app", slow_app)
    assert record["outcome"] == "interrupted"


def test_sigterm_and_a_piped_runner_print_a_stop_line(
    slow_app: Path, start_runner: Callable[..., Runner]
) -> None:
    runner = start_runner(slow_app, "--paused")
    runner.proc.send_signal(signal.SIGTERM)
    assert runner.proc.wait(BOUND) == 0
    assert "stopped (SIGTERM); the clock is saved at" in runner.stderr()


def test_a_piped_runner_says_when_a_broken_app_is_fixed_and_when_a_reload_failed(
    slow_app: Path, start_runner: Callable[..., Runner]
) -> None:
    runner = start_runner(slow_app, "--paused")
    good = (slow_app / "server.py").read_text()
    (slow_app / "server.py").write_text("def broken(:\n")
    wait_for(lambda: "reload failed: server.py changed" in runner.stderr(), "the failure")
    assert "SyntaxError" in runner.stderr()
    assert "reloaded: server.py changed" not in runner.stderr()
    (slow_app / "server.py").write_text(good)
    wait_for(lambda: "the app loads again" in runner.stderr(), "the all-clear")
    assert "reloaded: server.py changed" in runner.stderr()
    assert runner.interrupt() == 0


# -- points 4 and 9, in-process: what the display is given -----------------------------------


class Collect:
    """A display that keeps every snapshot and notice, with the time it got them."""

    def __init__(self) -> None:
        self.snapshots: list[tuple[float, Snapshot]] = []
        self.notices: list[str] = []

    def start(self, snapshot: Snapshot) -> None:
        self.update(snapshot)

    def update(self, snapshot: Snapshot) -> None:
        self.snapshots.append((time.monotonic(), snapshot))

    def invocation(self, invocation: Mapping[str, Any]) -> None:
        pass

    def notice(self, text: str, *, error: bool = False) -> None:
        self.notices.append(text)

    def stop(self) -> None:
        pass


TICKING = """
import time

def handle(payload):
    time.sleep(0.05)

exports = {"onScheduledEventHandler": handle}
"""


def test_the_display_keeps_up_during_a_long_advance(make_app: MakeApp, tmp_path: Path) -> None:
    from fwsched.engine import Simulator
    from fwsched.live import LiveRunner

    app = make_app(TICKING, toml=TOML, name="ticking")
    display = Collect()
    with Simulator(app, state=tmp_path / "state.db") as sim:
        sim.schedule.create(name="tick", data={}, schedule_at=START, repeat={
            "time_unit": "minutes", "frequency": 1})  # fmt: skip
        runner = LiveRunner(sim, display, speed=60, reload=False, handle_signals=False)
        thread = threading.Thread(target=runner.run)
        thread.start()
        try:
            wait_for(lambda: control.ping(runner.socket) is not None, "the socket")
            began = time.monotonic()
            control.request(runner.socket, "advance", {"duration": "1h"})  # ≥ 3 s of handlers
            ended = time.monotonic()
        finally:
            runner.stop()
            thread.join(BOUND)
    during = [(at, s) for at, s in display.snapshots if began <= at <= ended]
    stamps = [began] + [at for at, _ in during] + [ended]
    assert max(b - a for a, b in itertools.pairwise(stamps)) <= 0.5
    next_fires = [s.schedules[0]["next_fire_at"] for _, s in during]
    assert len(set(next_fires)) >= 4  # the schedules pane moves on as occurrences fire
    assert any(s.running is not None for _, s in during)
    # The last screen shows the runner's speed, not the clock stopped for the exit.
    last = display.snapshots[-1][1]
    assert last.paused is False and last.speed == 60
    assert display.notices[-1].startswith("stopped; the clock is saved at")


def test_the_dashboard_hides_typed_keys_while_it_is_live(slow_app: Path, tmp_path: Path) -> None:
    """An echoed ^C would shift the screen under the live display, leaving copies of the
    panel's border in the scrollback: echo is off while the dashboard shows."""
    import pty
    import termios

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "LINES": "30", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fwsched", "run", str(slow_app), "--paused"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    output = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            output.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: b"Ctrl-C to stop" in output, "the dashboard")
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & termios.ECHO and not lflag & termios.ECHOCTL
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(BOUND) == 0
        lflag = termios.tcgetattr(slave)[3]
        assert lflag & termios.ECHO and lflag & termios.ECHOCTL  # given back
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(BOUND)
        os.close(slave)
        os.close(master)
        reader.join(BOUND)
    assert b"stopped (SIGINT)" in output
    assert fw("status", "--app", slow_app).exit_code == 0
