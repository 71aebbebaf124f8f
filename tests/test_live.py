"""``fwsched run``: a live runner in a real process, driven by commands from other processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import BOUND, MakeApp, wait_for

from fwsched import control
from fwsched.cli.root import cli
from fwsched.dashboard import Snapshot
from fwsched.reloader import Reloader, is_relevant

START = "2026-01-05T09:00:00Z"
SERVER = """
VERSION = "v1"

def handle(payload):
    print(f"{VERSION} handled {payload['data']}")
    return {"version": VERSION}

exports = {"onScheduledEventHandler": handle}
"""
TOML = f'[simulator]\nstart = "{START}"\ntimeout = 10\n'


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)


@pytest.fixture
def app(make_app: MakeApp) -> Path:
    return make_app(SERVER, toml=TOML)


def fw(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def doc(*args: Any) -> Any:
    result = fw(*args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


@dataclass
class Runner:
    proc: subprocess.Popen[bytes]
    app: Path
    out: Path
    err: Path

    @property
    def socket(self) -> Path:
        return control.socket_path(self.app)

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(BOUND)


@pytest.fixture
def start_runner(tmp_path: Path) -> Iterator[Callable[..., Runner]]:
    """``start_runner(app, *options)``: a ``fwsched run`` process, serving once this returns."""
    runners: list[Runner] = []

    def start(app: Path, *options: str) -> Runner:
        n = len(runners)
        out, err = tmp_path / f"run{n}.out", tmp_path / f"run{n}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fwsched", "run", str(app), *options],
                stdout=stdout,
                stderr=stderr,
                env={**os.environ},
            )
        runner = Runner(proc, app, out, err)
        runners.append(runner)

        def serving() -> bool:
            assert proc.poll() is None, f"the runner exited: {err.read_text()}"
            # Registered too: a runner answers on its socket a moment before its entry in
            # the registry of live runners is written (commands without --app look there).
            registered = (control.registry_dir() / f"{proc.pid}.json").exists()
            return registered and control.ping(runner.socket, timeout=0.5) == proc.pid

        wait_for(serving, "the runner to serve its socket and be registered")
        return runner

    yield start
    for runner in runners:
        if runner.proc.poll() is None:
            runner.proc.send_signal(signal.SIGINT)
            try:
                runner.proc.wait(BOUND)
            except subprocess.TimeoutExpired:
                runner.proc.kill()
                runner.proc.wait(BOUND)


# -- commands through the runner ----------------------------------------------------------


def test_commands_from_other_processes_reach_the_live_runner(
    app: Path, start_runner: Callable[..., Runner]
) -> None:
    runner = start_runner(app, "--paused")
    status = doc("status", "--app", app)
    assert status["live"] is True and status["now"] == START
    assert set(status) == {
        "app",
        "live",
        "now",
        "schedules",
        "invocations",
        "state_file",
        "relaxed",
        "installed",
    }

    created = doc(
        "schedule", "create", "--name", "r", "--data", '{"n": 1}', "--at", "+30m", "--app", app
    )
    assert created == {"status": 200, "message": "Schedule created"}
    # A real separate process, like a developer's second shell.
    advanced = subprocess.run(
        [sys.executable, "-m", "fwsched", "advance", "1h", "--json", "--app", str(app)],
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert advanced.returncode == 0, advanced.stderr
    [fired] = json.loads(advanced.stdout)["invocations"]
    assert (fired["schedule"], fired["fire_at"], fired["outcome"]) == (
        "r",
        "2026-01-05T09:30:00Z",
        "ok",
    )

    trigger = doc("trigger", "--payload", '{"adhoc": true}', "--app", app)
    assert trigger["fire_at"] == "2026-01-05T10:00:00Z"  # paused: only advance moved it
    assert [i["id"] for i in doc("history", "--app", app)] == [fired["id"], trigger["id"]]
    assert doc("show", fired["id"], "--app", app)["log"] == "v1 handled {'n': 1}\n"

    # The runner prints one line per invocation, also for those fired on request.
    wait_for(lambda: runner.stdout().count("\n") >= 2, "the runner's invocation lines")
    lines = runner.stdout().splitlines()
    assert " r " in lines[0] and "v1 handled {'n': 1}" in lines[0]
    assert "(payload)" in lines[1]


def test_errors_come_back_as_without_a_runner(
    app: Path, start_runner: Callable[..., Runner]
) -> None:
    start_runner(app, "--paused")
    result = fw("schedule", "fetch", "--name", "nope", "--json", "--app", app)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"status": 404, "message": "Schedule does not exist"}
    assert fw("trigger", "nope", "--app", app).exit_code == 1
    assert fw("show", "99", "--app", app).exit_code == 1
    backwards = fw("advance", "--to", "2020-01-01T00:00:00Z", "--app", app)
    assert backwards.exit_code == 2 and "backwards" in backwards.stderr


def test_commands_without_app_find_the_only_live_runner(
    app: Path, start_runner: Callable[..., Runner], make_app: MakeApp
) -> None:
    start_runner(app, "--paused")
    assert doc("status")["app"] == str(app)
    other = make_app(SERVER, toml=TOML, name="other")
    start_runner(other, "--paused")
    result = fw("status")
    assert result.exit_code == 2
    assert "No app found" in result.stderr and str(app) in result.stderr


def test_a_second_runner_and_reset_are_refused_while_live(
    app: Path, start_runner: Callable[..., Runner]
) -> None:
    runner = start_runner(app, "--paused")
    second = fw("run", app)
    assert second.exit_code == 1 and "already live" in second.stderr
    reset = fw("reset", "--yes", "--app", app)
    assert reset.exit_code == 1
    assert f"pid {runner.proc.pid}" in reset.stderr and "stop it first" in reset.stderr


def test_the_control_socket_is_private(app: Path, start_runner: Callable[..., Runner]) -> None:
    runner = start_runner(app, "--paused")
    assert runner.socket == app / ".fwsched" / "control.sock"
    assert stat.S_IMODE(runner.socket.stat().st_mode) == 0o600


# -- live reload --------------------------------------------------------------------------


def test_an_edit_of_server_py_runs_in_the_next_invocation(
    app: Path, start_runner: Callable[..., Runner]
) -> None:
    runner = start_runner(app, "--paused")
    assert doc("trigger", "--payload", "{}", "--app", app)["return_value"] == {"version": "v1"}

    (app / "server.py").write_text(SERVER.replace('"v1"', '"v2-edited"'))
    wait_for(
        lambda: (
            doc("trigger", "--payload", "{}", "--app", app)["return_value"]
            == {"version": "v2-edited"}
        ),
        "the edited server.py to run",
    )

    (app / "server.py").write_text("def handle(payload:\n")  # a broken edit
    broken = wait_for(
        lambda: (
            (i := doc("trigger", "--payload", "{}", "--app", app))["outcome"] == "load-error" and i
        ),
        "the broken edit to show",
    )
    assert "SyntaxError" in broken["error"]
    assert runner.proc.poll() is None  # the runner itself survives it
    wait_for(lambda: "SyntaxError" in runner.stderr(), "the runner to report the load error")

    (app / "server.py").write_text(SERVER.replace('"v1"', '"v3-fixed"'))
    wait_for(
        lambda: (
            doc("trigger", "--payload", "{}", "--app", app)["return_value"]
            == {"version": "v3-fixed"}
        ),
        "the fixed server.py to run",
    )


def test_no_reload_keeps_the_loaded_code(app: Path, start_runner: Callable[..., Runner]) -> None:
    start_runner(app, "--paused", "--no-reload")
    assert doc("trigger", "--payload", "{}", "--app", app)["return_value"] == {"version": "v1"}
    (app / "server.py").write_text(SERVER.replace('"v1"', '"v2-edited"'))
    time.sleep(0.5)
    assert doc("trigger", "--payload", "{}", "--app", app)["return_value"] == {"version": "v1"}


# -- stopping -----------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_with_exit_0_and_the_state_intact(
    app: Path, start_runner: Callable[..., Runner], signum: int
) -> None:
    runner = start_runner(app, "--paused")
    doc("schedule", "create", "--name", "r", "--data", "{}", "--at", "+2h", "--app", app)
    doc("schedule", "create", "--name", "s", "--data", "{}", "--at", "+10m", "--app", app)
    doc("advance", "1h", "--app", app)
    before = doc("status", "--app", app)

    runner.proc.send_signal(signum)
    assert runner.proc.wait(BOUND) == 0
    assert not runner.socket.exists()
    assert list(control.registry_dir().glob("*.json")) == []

    after = doc("status", "--app", app)  # directly on the state now
    assert after["live"] is False
    for key in ("now", "schedules", "invocations"):
        assert after[key] == before[key]
    assert after["now"] == "2026-01-05T10:00:00Z"
    assert [s["name"] for s in doc("schedules", "--app", app)] == ["r"]
    assert [i["schedule"] for i in doc("history", "--app", app)] == ["s"]


def test_a_running_clock_fires_on_time_and_is_saved(
    app: Path, start_runner: Callable[..., Runner]
) -> None:
    # 600x: the occurrence 5 simulated minutes ahead falls due after half a real second.
    doc("schedule", "create", "--name", "soon", "--data", "{}", "--at", "+5m", "--app", app)
    runner = start_runner(app, "--speed", "600")
    wait_for(lambda: " soon " in runner.stdout(), "the occurrence to fire")
    assert runner.interrupt() == 0
    status = doc("status", "--app", app)
    assert status["now"] > "2026-01-05T09:05:00Z"  # the clock ran, and was saved
    [fired] = doc("history", "--app", app)
    due = datetime(2026, 1, 5, 9, 5, tzinfo=UTC)
    assert fired["timestamp"] == int(due.timestamp() * 1000)
    assert fired["fire_at"] == "2026-01-05T09:05:00Z"  # however late the runner woke


NOW_SERVER = """
from datetime import datetime, timezone

def handle(payload):
    return {"now": datetime.now(timezone.utc).isoformat()}

exports = {"onScheduledEventHandler": handle}
"""


def test_a_fast_clock_fires_each_occurrence_at_exactly_its_due_time(
    make_app: MakeApp, start_runner: Callable[..., Runner]
) -> None:
    # At 3600x a real millisecond is 3.6 simulated seconds: any wake-up latency, handler
    # run or start-up time would show in fire_at and in the handler's clock.
    app = make_app(NOW_SERVER, toml=TOML, name="exact")
    for name, at in [("a", "09:05:00"), ("b", "09:07:30"), ("c", "09:09:00.250")]:
        doc("schedule", "create", "--name", name, "--data", "{}", "--at", f"2026-01-05T{at}Z",
            "--app", app)  # fmt: skip
    doc("schedule", "create", "--name", "r", "--data", "{}", "--at", "2026-01-05T09:06:00Z",
        "--every", "5m", "--app", app)  # fmt: skip
    runner = start_runner(app, "--speed", "3600")
    wait_for(lambda: len(doc("history", "--app", app)) >= 7, "seven occurrences")
    assert runner.interrupt() == 0
    fired = doc("history", "--app", app)
    expected = [
        ("a", "09:05:00Z"),
        ("r", "09:06:00Z"),
        ("b", "09:07:30Z"),
        ("c", "09:09:00.250Z"),
        ("r", "09:11:00Z"),
        ("r", "09:16:00Z"),
        ("r", "09:21:00Z"),
    ]
    assert [(i["schedule"], i["fire_at"]) for i in fired[:7]] == [
        (name, f"2026-01-05T{at}") for name, at in expected
    ]
    for invocation in fired:
        fire_at = datetime.fromisoformat(invocation["fire_at"])
        assert invocation["timestamp"] == int(fire_at.timestamp() * 1000), invocation
        seen = datetime.fromisoformat(invocation["return_value"]["now"])
        assert fire_at <= seen < fire_at + timedelta(milliseconds=1), invocation


def test_a_second_ctrl_c_interrupts_the_running_handler(
    make_app: MakeApp, start_runner: Callable[..., Runner]
) -> None:
    slow = make_app(
        "import time\n"
        "def handle(payload):\n"
        "    open('started', 'w').close()\n"
        "    time.sleep(60)\n"
        "exports = {'onScheduledEventHandler': handle}\n",
        toml='[simulator]\nstart = "2026-01-05T09:00:00Z"\ntimeout = 120\n',
        name="slow",
    )
    runner = start_runner(slow, "--paused")
    client = subprocess.Popen(
        [sys.executable, "-m", "fwsched", "trigger", "--payload", "{}", "--app", str(slow)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (slow / "started").exists(), "the handler to start")
        runner.proc.send_signal(signal.SIGINT)  # the first waits for the handler...
        time.sleep(0.3)
        assert runner.proc.poll() is None
        assert runner.interrupt() == 0  # ...the second cuts it short
        _, err = client.communicate(timeout=BOUND)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(BOUND)
    assert client.returncode == 1
    assert "stopped during the command" in err
    [record] = doc("history", "--app", slow)
    assert record["outcome"] == "interrupted"


def test_start_sets_the_clock_of_a_fresh_state(
    app: Path, start_runner: Callable[..., Runner]
) -> None:
    runner = start_runner(app, "--paused", "--start", "2030-02-03T04:05:06Z")
    assert doc("status", "--app", app)["now"] == "2030-02-03T04:05:06Z"
    assert runner.interrupt() == 0
    again = start_runner(app, "--paused", "--start", "2031-01-01T00:00:00Z")
    assert doc("status", "--app", app)["now"] == "2030-02-03T04:05:06Z"
    wait_for(lambda: "--start ignored" in again.stderr(), "the note about --start")


def test_settings_are_reloaded_and_a_broken_manifest_keeps_the_last_good_one(
    app: Path, start_runner: Callable[..., Runner]
) -> None:
    runner = start_runner(app, "--paused")
    assert doc("trigger", "--payload", "{}", "--app", app)["payload"]["account_id"] == 1

    (app / "fwsched.toml").write_text(TOML + "[account]\naccount_id = 777\n")
    wait_for(
        lambda: doc("trigger", "--payload", "{}", "--app", app)["payload"]["account_id"] == 777,
        "the new account settings",
    )

    (app / "manifest.json").write_text("{broken")
    wait_for(lambda: "manifest.json: invalid JSON" in runner.stderr(), "the manifest error")
    assert runner.proc.poll() is None
    invocation = doc("trigger", "--payload", "{}", "--app", app)
    assert invocation["outcome"] == "ok"  # the last good manifest is still in force


# -- the pieces in-process ----------------------------------------------------------------


def test_the_dashboard_shows_clock_schedules_invocations_and_load_errors() -> None:
    from io import StringIO

    from rich.console import Console

    from fwsched.dashboard import Dashboard

    out = StringIO()
    console = Console(file=out, width=140, force_terminal=False, color_system=None)
    dashboard = Dashboard(lambda: datetime(2026, 1, 5, 9, 30, tzinfo=UTC), console)
    snapshot = Snapshot(
        app="/apps/demo",
        speed=60,
        paused=False,
        reload=True,
        socket="/apps/demo/.fwsched/control.sock",
        relaxed=True,
        schedules=[
            {
                "name": "sync",
                "kind": "recurring",
                "schedule_at": START,
                "next_fire_at": "2026-01-05T09:45:00Z",
                "repeat": {"time_unit": "minutes", "frequency": 15, "timezone": "UTC"},
                "data": {"cursor": 3},
            }
        ],
        schedule_count=12,
        recent=[
            {
                "id": 41,
                "schedule": "sync",
                "fire_at": "2026-01-05T09:15:00Z",
                "outcome": "error",
                "duration_ms": 12.5,
                "error": "KeyError: 'cursor'",
                "log": "starting\n",
            }
        ],
        load_errors=["server.py: SyntaxError: invalid syntax (server.py, line 3)"],
    )
    dashboard.update(snapshot)
    dashboard.notice("reloaded: server.py changed")
    console.print(dashboard.render())
    text = out.getvalue()
    for expected in (
        "2026-01-05T09:30:00Z",
        "speed 60x",
        "relaxed",
        "SyntaxError: invalid syntax",
        "Schedules (12)",
        "every 15 minutes",
        "2026-01-05T09:45:00Z",
        "and 11 more",
        "KeyError: 'cursor'",
        "12 ms",
        "reloaded: server.py changed",
    ):
        assert expected in text, expected


def test_the_progress_bar_appears_only_after_a_second() -> None:
    from fwsched.render import AdvanceProgress

    with AdvanceProgress(enabled=True, delay=0.1) as bar:
        bar.update({"fired": 1, "at": START, "fraction": 0.25})
        assert bar._progress is None  # a quick advance never shows it
        wait_for(lambda: bar._progress is not None, "the bar to appear")
        bar.update({"fired": 2, "at": START, "fraction": 0.5})
    assert bar._progress is None
    with AdvanceProgress(enabled=False, delay=0.0) as off:
        time.sleep(0.05)
        assert off._progress is None


def test_the_driver_sleeps_until_the_next_occurrence(app: Path, tmp_path: Path) -> None:
    from fwsched.engine import Simulator
    from fwsched.live import LiveRunner

    lines: list[dict[str, Any]] = []

    class Collect:
        def start(self, snapshot: Snapshot) -> None:
            pass

        def update(self, snapshot: Snapshot) -> None:
            pass

        def invocation(self, invocation: Any) -> None:
            lines.append(dict(invocation))

        def notice(self, text: str, *, error: bool = False) -> None:
            pass

        def stop(self) -> None:
            pass

    with Simulator(app, state=tmp_path / "state.db", start=START) as sim:
        sim.schedule.create(name="a", data={}, schedule_at="2026-01-05T09:05:00Z")
        sim.schedule.create(name="b", data={}, schedule_at="2026-01-05T09:06:00Z")
        runner = LiveRunner(sim, Collect(), speed=1200, reload=False, handle_signals=False)
        thread = threading.Thread(target=runner.run)
        began = time.monotonic()
        thread.start()
        try:
            wait_for(lambda: len(lines) == 2, "both occurrences")
        finally:
            runner.stop()
            thread.join(BOUND)
        assert not thread.is_alive()
        elapsed = time.monotonic() - began
        # Due after 0.25 s and 0.3 s of real time: neither early nor much later.
        assert 0.25 <= elapsed < 5
        assert [line["schedule"] for line in lines] == ["a", "b"]
        due = [datetime(2026, 1, 5, 9, minute, tzinfo=UTC) for minute in (5, 6)]
        assert [line["timestamp"] for line in lines] == [int(d.timestamp() * 1000) for d in due]


@pytest.mark.parametrize(
    ("path", "relevant"),
    [
        ("server.py", True),
        ("lib/helpers.py", True),
        ("manifest.json", True),
        ("fwsched.toml", True),
        ("config/iparams.json", True),
        ("README.md", False),
        ("lib/manifest.json", False),
        (".fwsched/state.db", False),
        (".fwsched/control.sock", False),
        ("__pycache__/server.cpython-311.pyc", False),
        (".git/index", False),
        (".server.py.swp", False),
        ("server.py~", False),
        (".#server.py", False),
        ("#server.py#", False),
        ("4913", False),
    ],
)
def test_which_files_reload_the_app(tmp_path: Path, path: str, relevant: bool) -> None:
    assert is_relevant(tmp_path / path, tmp_path) is relevant


def test_a_burst_of_writes_is_one_reload(tmp_path: Path) -> None:
    reloader = Reloader(tmp_path, debounce=0.1)
    batches: list[set[Path]] = []

    def watch() -> None:
        for batch in reloader:
            batches.append(batch)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        time.sleep(0.3)  # the observer is watching
        for i in range(5):
            (tmp_path / "server.py").write_text(f"x = {i}\n")
            (tmp_path / "helpers.py").write_text(f"y = {i}\n")
            time.sleep(0.01)
        (tmp_path / "notes.txt").write_text("not code")
        wait_for(lambda: batches, "a batch of changes")
        time.sleep(0.3)
    finally:
        reloader.stop()
        thread.join(BOUND)
    assert not thread.is_alive()
    assert batches == [{tmp_path / "server.py", tmp_path / "helpers.py"}]


def test_a_started_reloader_sees_a_change_made_before_iterating(tmp_path: Path) -> None:
    # The live runner starts watching before its socket answers, so an edit made as soon as
    # a client can reach it is never missed (a race a loaded machine exposed).
    reloader = Reloader(tmp_path, debounce=0.05)
    reloader.start()
    (tmp_path / "server.py").write_text("x = 1\n")
    batches: list[set[Path]] = []

    def watch() -> None:
        for batch in reloader:
            batches.append(batch)
            reloader.stop()

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        wait_for(lambda: batches, "the change made before iterating")
    finally:
        reloader.stop()
        thread.join(BOUND)
        reloader.close()
    assert batches == [{tmp_path / "server.py"}]


class Notified(Reloader):
    """A reloader that records every path its watcher reports (relevant or not)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, debounce=0.05)
        self.seen: list[Path] = []

    def notify(self, path: str | os.PathLike[str]) -> None:
        self.seen.append(Path(path))
        super().notify(path)


def test_the_state_folder_is_not_watched(tmp_path: Path) -> None:
    """The state's writes (several per invocation) must not wake the watcher's threads."""
    state = tmp_path / ".fwsched"
    state.mkdir()
    (tmp_path / "lib").mkdir()
    reloader = Notified(tmp_path)
    reloader.start()
    try:
        for i in range(20):
            (state / "state.db-wal").write_text(f"{i}\n")
        (tmp_path / "lib" / "helpers.py").write_text("x = 1\n")  # after them: they came first
        wait_for(lambda: tmp_path / "lib" / "helpers.py" in reloader.seen, "the change in lib/")
    finally:
        reloader.stop()
        reloader.close()
    assert not [path for path in reloader.seen if state in path.parents]


def test_a_folder_made_or_renamed_later_is_watched(tmp_path: Path) -> None:
    reloader = Notified(tmp_path)
    reloader.start()
    try:
        package = tmp_path / "package"
        package.mkdir()
        wait_for(lambda: str(package) in reloader._trees, "the new folder watched")
        (package / "one.py").write_text("x = 1\n")
        wait_for(lambda: package / "one.py" in reloader.seen, "a file of the new folder")
        outside = tmp_path.parent / f"{tmp_path.name}-outside"
        outside.mkdir()
        (outside / "two.py").write_text("x = 2\n")
        outside.rename(tmp_path / "moved")  # its files came before any watch: they count
        wait_for(lambda: tmp_path / "moved" / "two.py" in reloader.seen, "a moved-in file")
        (tmp_path / "moved").rename(tmp_path / "renamed")
        wait_for(lambda: str(tmp_path / "renamed") in reloader._trees, "the renamed folder")
        assert str(tmp_path / "moved") not in reloader._trees
        shutil.rmtree(package)
        wait_for(lambda: str(package) not in reloader._trees, "the deleted folder let go")
        package.mkdir()  # the same name again: a new watch
        wait_for(lambda: str(package) in reloader._trees, "the folder made again")
        (package / "three.py").write_text("x = 3\n")
        wait_for(lambda: package / "three.py" in reloader.seen, "a file of the folder made again")
    finally:
        reloader.stop()
        reloader.close()


# -- install on first run (SPEC §8) -------------------------------------------------------

INSTALLING = """
def on_install(payload):
    print("onAppInstall ran")
    schedule.create(name="sync", data={"n": 1}, schedule_at="2026-01-05T10:00:00Z",
                    repeat={"time_unit": "hours", "frequency": 1})
    render_data()

def handle(payload):
    print("sync", payload["data"])

def ping(payload):
    render_data(None, {"pong": payload.get("n")})

exports = {"onAppInstallHandler": on_install, "onScheduledEventHandler": handle, "ping": ping}
"""
INSTALLING_MANIFEST = {
    "events": {
        "onAppInstall": {"handler": "onAppInstallHandler"},
        "onScheduledEvent": {"handler": "onScheduledEventHandler"},
    }
}


def test_run_installs_a_never_installed_app_exactly_once(
    make_app: MakeApp, start_runner: Callable[..., Runner]
) -> None:
    app = make_app(INSTALLING, manifest=INSTALLING_MANIFEST, toml=TOML)
    runner = start_runner(app, "--paused")
    # Read-only commands answer from the state at once, also while the install runs.
    wait_for(lambda: doc("status", "--app", app)["installed"], "the first install")
    assert [s["name"] for s in doc("schedules", "--app", app)] == ["sync"]
    # The platform commands go through the runner like the others.
    pong = doc("invoke", "ping", "--params", '{"n": 3}', "--app", app)
    assert pong["render"] == {"status": 200, "response": {"pong": 3}}
    assert "already installed" in fw("install", "--app", app).stderr
    assert runner.interrupt() == 0
    assert "onAppInstall (install)" in runner.stdout()

    again = start_runner(app, "--paused")  # a restart: installed already, not fired again
    history = doc("history", "--app", app)
    assert [(i["source"], i["event"]) for i in history] == [
        ("install", "onAppInstall"),
        ("function", "ping"),
    ]
    assert again.interrupt() == 0

    fw("uninstall", "--app", app)  # an app uninstalled on purpose stays so
    third = start_runner(app, "--paused")
    assert doc("status", "--app", app)["installed"] is False
    assert third.interrupt() == 0


def test_run_no_install_and_a_failed_install_run_on_not_installed(
    make_app: MakeApp, start_runner: Callable[..., Runner]
) -> None:
    app = make_app(INSTALLING, manifest=INSTALLING_MANIFEST, toml=TOML)
    runner = start_runner(app, "--paused", "--no-install")
    assert doc("status", "--app", app)["installed"] is False
    assert doc("history", "--app", app) == []
    assert runner.interrupt() == 0

    (app / "server.py").write_text(INSTALLING.replace("    render_data()\n", ""))
    failing = start_runner(app, "--paused")
    assert doc("status", "--app", app)["installed"] is False
    assert failing.interrupt() == 0
    assert "Install failed: render_data was not called; running on, not installed" in (
        failing.stderr()
    )
