"""Issue 11, point 5: no display path shows a secure iparam's value in the clear.

Listings, fetch, show, history, --json, validate, the live runner's display: all go
through one function (``app.redact``) at the output boundary. A handler cannot read
the parent's environment either (the parent is not dumpable).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import BOUND, MakeApp, wait_for

from fwsched import Simulator
from fwsched.cli.root import cli
from fwsched.live import LiveRunner

START = "2026-01-05T09:00:00Z"
SECRET = "s3cr3t-Token-42"
NUMBER = 73914526  # a secure iparam that is a number

SERVER = r"""
import os, sys

def handle(payload):
    kind = payload["data"].get("kind")
    iparams = payload["iparams"]
    if kind == "secret":
        print("the key is", iparams["api_key"])
        return {"key": iparams["api_key"], "number": iparams["pin"]}
    if kind == "cut-secret":  # the 1 MiB log cap falls inside the secret
        sys.stdout.write("x" * (1024 * 1024 - 5) + iparams["api_key"])
        sys.stdout.flush()
    if kind == "environ":
        try:
            with open(f"/proc/{os.getppid()}/environ", "rb") as environ:
                return {"read": environ.read().decode(errors="replace")}
        except OSError as exc:
            return {"refused": type(exc).__name__}

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
    return make_app(SERVER, toml=TOML, iparams=IPARAMS)


def fw(app: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--app", str(app)])


def _no_secret(text: str) -> None:
    assert SECRET not in text and str(NUMBER) not in text, text
    assert SECRET[:8] not in text, text


def test_no_display_path_shows_a_secret(app: Path) -> None:
    hint = {"note": f"token {SECRET} pin {NUMBER}"}
    create = ["schedule", "create", "--data", json.dumps(hint), "--at", "+1h"]
    assert fw(app, *create, "--name", "r").exit_code == 0
    assert fw(app, *create, "--name", SECRET).exit_code == 0  # named like the secret
    assert fw(app, "trigger", "--payload", '{"kind": "secret"}').exit_code == 0
    assert fw(app, "trigger", "--payload", '{"kind": "cut-secret"}').exit_code == 0
    outputs = []
    for command in (
        ["schedules"],
        ["schedules", "--json"],
        ["schedule", "fetch", "--name", "r"],
        ["schedule", "fetch", "--name", "r", "--json"],
        ["history"],
        ["history", "--json"],
        ["show", "1"],
        ["show", "1", "--json"],
        ["show", "2", "--json"],
        ["status", "--json"],
    ):
        result = fw(app, *command)
        assert result.exit_code == 0, (command, result.stderr)
        outputs.append(result.stdout + result.stderr)
    for text in outputs:
        _no_secret(text)
    shown = json.loads(fw(app, "show", "1", "--json").stdout)
    assert shown["return_value"] == {"key": "****", "number": "****"}
    cut = json.loads(fw(app, "show", "2", "--json").stdout)["log"]
    assert cut.endswith("****\n[output truncated]"), cut[-40:]


def test_a_stored_record_holds_no_secret_of_fwsched_toml_once_installed(app: Path) -> None:
    """The installation's iparams replace fwsched.toml's in the payload; what a run
    records is still masked with both (SPEC §5: never stored; §8: the installation's
    are kept in the state while installed, and only there)."""
    state = app / ".fwsched" / "state.db"
    with Simulator(app, state=state) as sim:
        sim.install({"api_key": "installed-Token-7", "pin": 5})
        ran = sim.trigger_payload({"note": f"token {SECRET}, installed-Token-7"})
    assert ran.payload["data"] == {"note": "token ****, ****"}
    content = state.read_bytes()
    assert SECRET.encode() not in content
    assert str(NUMBER).encode() not in content
    assert content.count(b"installed-Token-7") == 1  # meta's install_iparams


def test_a_schedule_named_like_the_secret_is_masked(app: Path) -> None:
    assert fw(app, "schedule", "create", "--name", SECRET[:30], "--data", "{}", "--at", "+1h").exit_code == 0  # fmt: skip
    for command in (["schedules"], ["schedules", "--json"], ["status"]):
        _no_secret(fw(app, *command).stdout)


def test_load_errors_and_import_prints_are_masked(make_app: MakeApp, tmp_path: Path) -> None:
    leaky = make_app(
        f'print("loading with {SECRET}")\nraise RuntimeError("bad key {SECRET}")\n',
        toml=TOML,
        iparams=IPARAMS,
        name="leaky",
    )
    validate = fw(leaky, "validate")
    assert validate.exit_code == 1 and "bad key ****" in validate.stdout + validate.stderr
    _no_secret(validate.stdout + validate.stderr)
    run = fw(leaky, "trigger", "--payload", "{}", "--json")
    _no_secret(run.stdout + run.stderr)
    shown = []

    class Collect:
        def start(self, snapshot: Any) -> None:
            shown.append(repr(snapshot))

        def update(self, snapshot: Any) -> None:
            shown.append(repr(snapshot))

        def invocation(self, invocation: Any) -> None:
            shown.append(repr(invocation))

        def notice(self, text: str, *, error: bool = False) -> None:
            shown.append(text)

        def stop(self) -> None:
            pass

    with Simulator(leaky, state=tmp_path / "leaky.db") as sim:
        sim.schedule.create(name="r", data={"k": SECRET}, schedule_at="2026-01-05T10:00:00Z")
        runner = LiveRunner(sim, Collect(), paused=True, reload=False, handle_signals=False)
        thread = threading.Thread(target=runner.run)
        thread.start()
        wait_for(lambda: any("bad key" in line for line in shown), "the load error shown")
        runner.stop()
        thread.join(BOUND)
    assert not thread.is_alive()
    _no_secret("\n".join(shown))


def test_the_parent_is_not_dumpable(app: Path) -> None:
    """A handler cannot read the parent's environment or memory through /proc."""
    with Simulator(app) as sim:
        run = sim.trigger_payload({"kind": "environ"})
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None)
        assert libc.prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE of this (the parent) process
        if os.geteuid() != 0:  # root may read any process's /proc files anyway
            assert run.return_value == {"refused": "PermissionError"}
