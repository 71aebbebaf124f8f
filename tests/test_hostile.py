"""Issue 11, points 1, 2 and 9 (and 4's control socket): hostile handlers. Whatever a
handler returns, writes to the sandbox's pipes or starts, the simulator records an
outcome and goes on; nothing it started outlives its invocation or its runner, and it
cannot drive the runner that runs it.

One app does every kind of harm its payload's ``data.kind`` asks for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import BOUND, MakeApp, wait_for

from fwsched import Simulator, control
from fwsched.cli.root import cli
from fwsched.jsonsafe import MAX_DEPTH, TOO_DEEP

START = "2026-01-05T09:00:00Z"
SECRET = "s3cr3t-Token-42"
NUMBER = 73914526  # a secure iparam that is a number

HOSTILE = r"""
import json, os, subprocess, sys, threading, time

SECRET_AT_IMPORT = None

def _frame(message):
    body = json.dumps(message).encode()
    return len(body).to_bytes(4, "big") + body

def _seq():
    frame = sys._getframe(1)
    while frame is not None:
        fields = frame.f_locals.get("fields")
        if isinstance(fields, dict) and "seq" in fields:
            return fields["seq"]
        frame = frame.f_back
    raise RuntimeError("no invocation frame")

def _write(raw):
    os.write(int(sys.argv[4]), raw)  # the worker's message pipe (python -c: argv[0] is -c)

def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value

def handle(payload):
    data = payload["data"]
    kind = data.get("kind")
    seq = _seq()
    if kind == "deep":
        return nested(data["depth"])
    if kind == "shared":  # a DAG: 2**200 paths, few objects
        value = []
        for _ in range(200):
            value = [value, value]
        return value
    if kind == "deep-error":
        raise ValueError(nested(2000))
    if kind == "deep-render":
        render_data(None, nested(100))
    if kind == "deep-rpc":
        return schedule.create({"name": "x", "data": {"a": nested(data["depth"])},
                                "schedule_at": "2026-01-05T10:00:00Z"})
    if kind == "frame":
        message = data["message"]
        if message[0] == "result" and isinstance(message[1], dict) and message[1].get("seq") == "SEQ":
            message[1]["seq"] = seq
            if message[1].get("value") == "DEEP":
                message[1]["value"] = nested(100)
        _write(_frame(message))
        time.sleep(2)
        return "not reached"
    if kind == "raw":
        _write(bytes.fromhex(data["hex"]))
        time.sleep(2)
    if kind == "raw-deep":  # well framed, but nested deeper than any decoder goes
        body = b"[" * data["depth"] + b"]" * data["depth"]
        _write(len(body).to_bytes(4, "big") + body)
        time.sleep(2)
    if kind == "stray-thread":  # a frame written after the handler returned
        threading.Thread(target=lambda: (time.sleep(0.3), _write(_frame(["result", {"seq": seq + 1, "outcome": "ok", "value": "forged"}])))).start()
        return "left a thread"
    if kind == "children":
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        daemon = subprocess.Popen(
            [sys.executable, "-c", "import os, subprocess, sys, time; os.setsid(); "
             "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
             "print(p.pid, flush=True); time.sleep(60)"],
            stdout=subprocess.PIPE, text=True)
        grandchild = int(daemon.stdout.readline())
        return [sleeper.pid, daemon.pid, grandchild]
    if kind == "hang":
        with open(data["pidfile"], "w") as pidfile:
            pidfile.write(str(os.getpid()))
        time.sleep(60)
    if kind == "control":
        argv = [sys.executable, "-m", "fwsched", "status", "--app", os.getcwd()]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return {"code": run.returncode, "stderr": run.stderr}
    return "ok"

exports = {"onScheduledEventHandler": handle}
"""
TOML = f"""
[simulator]
start = "{START}"
timeout = 10

[iparams]
api_key = "{SECRET}"
pin = {NUMBER}
"""
IPARAMS = {
    "api_key": {"display_name": "API key", "type": "text", "secure": True},
    "pin": {"display_name": "PIN", "type": "number", "secure": True},
}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    monkeypatch.delenv("FWSCHED_DEBUG", raising=False)


@pytest.fixture
def app(make_app: MakeApp) -> Path:
    return make_app(HOSTILE, toml=TOML, iparams=IPARAMS)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def fw(app: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--app", str(app)])


# -- point 1: a return value of any depth ----------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, 500, 990, 5000])
def test_a_deep_return_value_is_kept_cut_with_a_marker(app: Path, depth: int) -> None:
    with Simulator(app) as sim:
        run = sim.trigger_payload({"kind": "deep", "depth": depth})
        assert run.outcome == "ok", run.error
        value, levels = run.return_value, 0
        while isinstance(value, list) and value:
            value, levels = value[0], levels + 1
        if depth + 1 <= MAX_DEPTH:  # nested(depth) is depth + 1 lists deep
            assert (levels, value) == (depth, [])
        else:
            assert (levels, value) == (MAX_DEPTH, TOO_DEEP)
        assert sim.trigger_payload({"kind": "noop"}).outcome == "ok"


def test_values_that_cannot_be_cut_in_time_or_shown_end_with_a_clear_line(app: Path) -> None:
    with Simulator(app) as sim:
        shared = sim.trigger_payload({"kind": "shared"})
        assert shared.outcome == "ok" and isinstance(shared.return_value, str)
        error = sim.trigger_payload({"kind": "deep-error"})
        assert error.outcome == "error" and error.error.startswith("ValueError: ")
        render = sim.trigger_payload({"kind": "deep-render"})
        assert render.outcome == "error" and "nested deeper than" in render.error
        assert [i.outcome for i in sim.history()] == ["ok", "error", "error"]


@pytest.mark.parametrize("depth", [70, 300, 3000])
def test_deep_data_from_a_handler_is_the_platform_rule_4(app: Path, depth: int) -> None:
    with Simulator(app) as sim:
        run = sim.trigger_payload({"kind": "deep-rpc", "depth": depth})
        assert run.outcome == "error", run.return_value
        assert "The 'data' value must be of type JSON" in run.error
        assert sim.schedules() == []


# -- point 2: frames a handler forges on the worker's pipe -----------------------------------

FORGED: dict[str, list[Any]] = {
    "bogus outcome": ["result", {"seq": "SEQ", "outcome": "timeout"}],
    "crashed is the parent's": ["result", {"seq": "SEQ", "outcome": "crashed"}],
    "duration not a number": ["result", {"seq": "SEQ", "outcome": "ok", "duration_ms": "fast"}],
    "duration negative": ["result", {"seq": "SEQ", "outcome": "ok", "duration_ms": -5}],
    "missing seq": ["result", {"outcome": "ok"}],
    "another seq": ["result", {"seq": 99, "outcome": "ok"}],
    "seq a string": ["result", {"seq": "1", "outcome": "ok"}],
    "unknown key": ["result", {"seq": "SEQ", "outcome": "ok", "exit": 3}],
    "error not text": ["result", {"seq": "SEQ", "outcome": "error", "error": ["x"]}],
    "render not a pair": ["result", {"seq": "SEQ", "outcome": "ok", "render": {"data": 1}}],
    "value too deep": ["result", {"seq": "SEQ", "outcome": "ok", "value": "DEEP"}],
    "fields a list": ["result", [1, 2]],
    "an unknown message": ["hello", {"pid": 1}],
    "odd request": ["rpc", {"service": "schedule", "call": "create", "request": [1], "opaque": 5}],
    "opaque key not in request": [
        "rpc",
        {"service": "db", "call": "get", "request": {}, "opaque": ["key"]},
    ],
    "exited from the future": ["exited", {"seq": 10**6, "code": 0, "signal": None}],
}
RAW = {
    "not JSON": (b"not json").hex(),
    "invalid UTF-8": (b"\xff\xfe").hex(),
    "larger than any frame": "7fffffff",
}


def _framed(body: bytes) -> str:
    return (len(body).to_bytes(4, "big") + body).hex()


@pytest.mark.parametrize("isolation", ["warm", "fresh"])
def test_a_forged_frame_crashes_the_run_and_the_worker_is_replaced(
    app: Path, isolation: str
) -> None:
    cases = [{"kind": "frame", "message": message} for message in FORGED.values()]
    cases += [
        {
            "kind": "raw",
            "hex": raw if name == "larger than any frame" else _framed(bytes.fromhex(raw)),
        }
        for name, raw in RAW.items()
    ]
    cases.append({"kind": "raw-deep", "depth": 100_000})
    with Simulator(app, isolation=isolation, timeout=10) as sim:
        for case in cases:
            began = time.monotonic()
            run = sim.trigger_payload(case)
            assert run.outcome == "crashed", (case, run.outcome, run.error)
            assert "broke the protocol" in run.error, (case, run.error)
            assert time.monotonic() - began < 5  # not the handler's sleep, not the timeout
            assert sim.trigger_payload({"kind": "noop"}).outcome == "ok", case
        outcomes = [i.outcome for i in sim.history()]
    assert outcomes == ["crashed", "ok"] * len(cases)


def test_a_frame_a_left_thread_writes_later_is_not_taken_for_a_result(app: Path) -> None:
    with Simulator(app, timeout=10) as sim:
        assert sim.trigger_payload({"kind": "stray-thread"}).outcome == "ok"
        time.sleep(0.5)  # the thread has written its forged result for the next run
        forged = sim.trigger_payload({"kind": "noop"})
        assert forged.return_value != "forged"
        assert sim.trigger_payload({"kind": "noop"}).outcome == "ok"


# -- the live runner goes on (points 1 and 2) ------------------------------------------------


@dataclass
class Runner:
    proc: subprocess.Popen[bytes]
    err: Path

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(BOUND)


@pytest.fixture
def live(app: Path, tmp_path: Path) -> Iterator[Runner]:
    err = tmp_path / "run.err"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fwsched", "run", str(app), "--paused", "--no-reload"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    runner = Runner(proc, err)
    socket = control.socket_path(app)

    def serving() -> bool:
        assert proc.poll() is None, err.read_text()
        return control.ping(socket, timeout=0.5) == proc.pid

    wait_for(serving, "the runner to serve")
    yield runner
    if proc.poll() is None:
        proc.kill()
        proc.wait(BOUND)


def test_the_live_runner_records_every_hostile_run_and_goes_on(app: Path, live: Runner) -> None:
    payloads = [
        {"kind": "deep", "depth": 500},
        {"kind": "deep", "depth": 990},
        {"kind": "frame", "message": FORGED["bogus outcome"]},
        {"kind": "frame", "message": FORGED["odd request"]},
        {"kind": "raw-deep", "depth": 100_000},
    ]
    for payload in payloads:
        result = fw(app, "trigger", "--payload", json.dumps(payload), "--json")
        assert result.exit_code == 0, result.stderr
        assert live.proc.poll() is None, live.err.read_text()
    history = json.loads(fw(app, "history", "--json").stdout)
    assert [i["outcome"] for i in history] == ["ok", "ok", "crashed", "crashed", "crashed"]
    status = json.loads(fw(app, "status", "--json").stdout)
    assert status["live"] and status["invocations"] == len(payloads)  # none left running
    assert live.stop() == 0


def test_a_handler_cannot_drive_its_own_runner(app: Path, live: Runner) -> None:
    result = fw(app, "trigger", "--payload", '{"kind": "control"}', "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)["return_value"]
    assert answer["code"] == 1, answer
    assert "refuses commands from its own handlers" in answer["stderr"], answer
    assert fw(app, "status").exit_code == 0  # other processes still may
    assert live.stop() == 0


def test_a_linked_control_socket_is_never_followed(
    make_app: MakeApp, app: Path, live: Runner
) -> None:
    other = make_app(HOSTILE, toml=TOML, iparams=IPARAMS, name="other")
    (other / ".fwsched").mkdir()
    (other / ".fwsched" / "control.sock").symlink_to(control.socket_path(app))
    result = fw(other, "advance", "1h")
    assert result.exit_code == 1
    assert "symbolic link" in result.stderr and "internal error" not in result.stderr
    history = json.loads(fw(app, "history", "--json").stdout)
    assert history == []  # the other runner was never driven
    assert live.stop() == 0


# -- point 9: process hygiene ----------------------------------------------------------------


@pytest.mark.parametrize("isolation", ["warm", "fresh"])
def test_nothing_a_handler_started_outlives_its_invocation(app: Path, isolation: str) -> None:
    with Simulator(app, isolation=isolation) as sim:
        run = sim.trigger_payload({"kind": "children"})
        assert run.outcome == "ok", run.error
        pids = run.return_value
        assert len(pids) == 3
        wait_for(lambda: not any(alive(pid) for pid in pids), "the handler's processes to end", 5)
        assert sim.trigger_payload({"kind": "noop"}).outcome == "ok"


KILLED_PARENT = """
import sys
from fwsched import Simulator

with Simulator(sys.argv[1], timeout=600) as sim:
    sim.trigger_payload({"kind": "hang", "pidfile": sys.argv[2]})
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("isolation", ["warm", "fresh"])
def test_a_worker_dies_with_its_killed_parent(app: Path, tmp_path: Path, isolation: str) -> None:
    pidfile = tmp_path / "worker.pid"
    script = KILLED_PARENT.replace("timeout=600", f"timeout=600, isolation={isolation!r}")
    parent = subprocess.Popen([sys.executable, "-c", script, str(app), str(pidfile)])
    try:
        worker = wait_for(lambda: pidfile.exists() and pidfile.read_text(), "the handler to run")
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(BOUND)
        wait_for(lambda: not alive(int(worker)), "the worker to die with its parent", 5)
    finally:
        parent.kill()
        parent.wait(BOUND)
