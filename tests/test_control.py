"""The control socket and the registry of live runners, without an engine behind them."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fwsched import control
from fwsched.errors import AppError, FwschedError, StateError, UsageError
from fwsched.sdk import ScheduleError

Handler = Callable[[control.Request], None]
Serve = Callable[..., Path]  # serve(handler, path=None) -> the socket's path


@pytest.fixture(autouse=True)
def fwsched_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FWSCHED_HOME", str(home))
    return home


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(handler)`` starts a server whose requests ``handler`` answers (on a thread)."""
    servers: list[control.ControlServer] = []
    threads: list[threading.Thread] = []

    def start(handler: Handler, path: Path | None = None) -> Path:
        path = path or tmp_path / "app" / ".fwsched" / "control.sock"

        def submit(request: control.Request) -> None:
            thread = threading.Thread(target=handler, args=(request,))
            threads.append(thread)
            thread.start()

        server = control.ControlServer(path, submit)
        server.start()
        servers.append(server)
        return path

    yield start
    for server in servers:
        server.stop()
    for thread in threads:
        thread.join(5)


def echo(request: control.Request) -> None:
    request.answer({"op": request.op, "args": request.args})


def test_a_request_gets_its_result(serve: Serve) -> None:
    path = serve(echo)
    assert control.request(path, "status", {"x": 1}) == {"op": "status", "args": {"x": 1}}


def test_progress_and_heartbeats_come_before_the_result(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "HEARTBEAT", 0.02)
    release = threading.Event()

    def slow(request: control.Request) -> None:
        request.progress({"fired": 1, "fraction": 0.5})
        release.wait(5)
        request.answer({"done": True})

    path = serve(slow)
    seen: list[dict[str, object]] = []

    def on_progress(fields: dict[str, object]) -> None:
        seen.append(fields)
        threading.Timer(0.1, release.set).start()  # heartbeats flow meanwhile

    result = control.request(path, "advance", on_progress=on_progress, idle_timeout=1.0)
    assert result == {"done": True}
    assert seen == [{"fired": 1, "fraction": 0.5}]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ScheduleError(404, "Schedule does not exist"), ScheduleError),
        (AppError("manifest.json: invalid JSON at line 1 column 2: x"), AppError),
        (StateError("state.db: corrupt"), StateError),
        (UsageError("invalid duration"), UsageError),
        (FwschedError("No invocation with id 7"), FwschedError),
    ],
)
def test_errors_cross_the_socket_as_their_own_type(
    serve: Serve, error: Exception, expected: type[Exception]
) -> None:
    def failing(request: control.Request) -> None:
        request.fail(error)

    path = serve(failing)
    with pytest.raises(expected) as raised:
        control.request(path, "anything")
    assert type(raised.value) is expected
    assert str(raised.value) == str(error)
    if isinstance(error, ScheduleError):
        assert isinstance(raised.value, ScheduleError)
        assert raised.value.status == 404


def test_an_unexpected_error_is_reported_not_hidden(serve: Serve) -> None:
    def broken(request: control.Request) -> None:
        request.fail(RuntimeError("boom"))

    path = serve(broken)
    with pytest.raises(FwschedError, match="the live runner failed: RuntimeError: boom"):
        control.request(path, "status")


def test_ping_is_answered_without_the_driver(serve: Serve) -> None:
    def never(request: control.Request) -> None:
        raise AssertionError("ping must not reach the driver")

    path = serve(never)
    assert control.ping(path) == os.getpid()


def test_the_socket_is_private_to_its_user(serve: Serve) -> None:
    path = serve(echo)
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_a_path_too_long_for_sockaddr_un_still_works(serve: Serve, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / ".fwsched" / "control.sock"
    assert len(str(deep)) > 108
    path = serve(echo, deep)
    assert path.exists()
    assert control.request(path, "status")["op"] == "status"


def test_stop_removes_the_socket_file(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    server = control.ControlServer(path, echo)
    server.start()
    server.stop()
    assert not path.exists()
    with pytest.raises(control.NotLive):
        control.request(path, "status")


def test_nobody_listening_is_not_live(tmp_path: Path) -> None:
    with pytest.raises(control.NotLive):
        control.request(tmp_path / "missing.sock", "status")
    # A socket file left by a runner that was killed: connections are refused.
    stale = tmp_path / "stale.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(stale))
    sock.close()
    with pytest.raises(control.NotLive):
        control.request(stale, "status")
    assert control.ping(stale) is None


def test_a_runner_that_never_answers_times_out(tmp_path: Path) -> None:
    path = tmp_path / "mute.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        with pytest.raises(FwschedError, match="did not answer"):
            control.request(path, "status", idle_timeout=0.2)
    finally:
        listener.close()


def test_a_malformed_request_gets_a_usage_error(serve: Serve) -> None:
    path = serve(echo)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"not json\n")
        with sock.makefile("rb") as reader:
            answer = json.loads(reader.readline())
    assert answer["error"]["kind"] == "UsageError"


def test_requests_are_rejected_once_the_runner_stops() -> None:
    request = control.Request("advance", {})
    control.reject_pending([request])
    assert "stopping" in request.outbox.get(timeout=1)["error"]["message"]


# -- the registry -------------------------------------------------------------------------


def test_registry_lists_a_live_runner_and_forgets_it(serve: Serve, tmp_path: Path) -> None:
    path = serve(echo)
    entry = control.register(tmp_path / "app", path)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    [runner] = control.live_runners()
    assert (runner.pid, runner.app, runner.socket) == (
        os.getpid(),
        str(tmp_path / "app"),
        str(path),
    )
    control.unregister(entry)
    assert control.live_runners() == []


def test_stale_registrations_are_ignored_and_deleted(tmp_path: Path) -> None:
    directory = control.registry_dir()
    directory.mkdir(parents=True)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    dead_pid = int(gone.stdout)
    entries = {
        "dead.json": {"pid": dead_pid, "app": "/a", "socket": str(tmp_path / "a.sock")},
        # Alive (this very process) but nothing listens on its socket.
        "deaf.json": {"pid": os.getpid(), "app": "/b", "socket": str(tmp_path / "b.sock")},
    }
    for name, body in entries.items():
        (directory / name).write_text(json.dumps(body))
    (directory / "junk.json").write_text("{not json")
    assert control.live_runners() == []
    assert list(directory.iterdir()) == []


def test_a_runner_slow_to_answer_stays_registered_and_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loaded machine: the runner accepts the ping but answers after the client's bound.
    monkeypatch.setattr(control, "CONNECT_TIMEOUT", 0.2)
    path = tmp_path / "slow.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        entry = control.register(tmp_path / "app", path)
        [runner] = control.live_runners()
        assert runner.app == str(tmp_path / "app")
        assert entry.exists()
    finally:
        listener.close()
    assert control.live_runners() == []  # now nobody listens: the entry is stale
    assert not entry.exists()


def test_the_registry_lives_under_fwsched_home_or_xdg_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert control.registry_dir() == tmp_path / "home" / "runners"
    monkeypatch.delenv("FWSCHED_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert control.registry_dir() == tmp_path / "xdg" / "fwsched" / "runners"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert control.registry_dir() == Path.home() / ".local" / "state" / "fwsched" / "runners"


def test_progress_is_sent_at_most_every_interval_and_the_last_before_the_answer(
    serve: Serve,
) -> None:
    def many(request: control.Request) -> None:
        for fired in range(1, 1001):
            request.progress({"fired": fired})
        request.answer({"done": True})

    path = serve(many)
    seen: list[dict[str, object]] = []
    result = control.request(path, "advance", on_progress=seen.append, idle_timeout=5.0)
    assert result == {"done": True}
    assert seen[0] == {"fired": 1} and seen[-1] == {"fired": 1000}
    assert len(seen) < 1000
