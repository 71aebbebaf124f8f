"""How other fwsched commands reach a live ``fwsched run``: a unix socket and a registry.

The socket is ``<app>/.fwsched/control.sock`` (mode 0600, never a TCP port). A
request is one line of JSON, ``{"op": NAME, "args": {...}}``; the answer is a
stream of JSON lines: ``{"wait": true}`` heartbeats while the runner is busy
(with ``"behind": TEXT``, what the runner is busy with, while the request has not
started), ``{"progress": {...}}`` for long commands, then exactly one
``{"result": DOC}`` or ``{"error": {"kind", "message", "status"?}}``, with
``"state": {"relaxed", "now"}`` (the mode and clock the command saw). The
heartbeats let the client keep a short idle timeout (a dead runner is noticed in
seconds) while an advance through a year of occurrences may take minutes, and
say why it waits.

The server only moves requests: it hands each to ``submit`` on the connection's
thread (the live runner answers a read-only one there and then, and queues the
others for its driver thread, since the engine is not thread-safe) and relays
what is put in the request's outbox.

The registry is a directory (``$FWSCHED_HOME/runners``, default
``~/.local/state/fwsched/runners``) with one small JSON file per live runner, so
that a command run outside any app directory can find the only live one.
Entries whose process is gone or whose socket refuses connections are stale:
ignored and deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwsched.errors import AppError, FwschedError, StateError, UsageError
from fwsched.sdk import ScheduleError

SOCKET_NAME = "control.sock"
CONNECT_TIMEOUT = 2.0  # seconds to connect to a live runner
IDLE_TIMEOUT = 30.0  # seconds without a line from the runner before the client gives up
TOTAL_TIMEOUT = 6 * 3600.0  # a finite bound even for the longest advance
HEARTBEAT = 1.0  # seconds between heartbeats while a request waits or runs
PROGRESS_INTERVAL = 0.1  # seconds between progress lines of a long command
REQUEST_READ_TIMEOUT = 10.0  # seconds for a client to send its request line
SEND_TIMEOUT = 30.0  # seconds for a client to take one answer line
MAX_REQUEST = 16 * 1024 * 1024
MAX_ANSWER = 1024 * 1024 * 1024  # an advance over many occurrences is one big line
STOP_BOUND = 5.0  # seconds stop() waits for the server's threads

# Request names answered by the connection thread itself, without the driver.
PING = "ping"

_ERROR_TYPES: dict[str, type[FwschedError]] = {
    "AppError": AppError,
    "StateError": StateError,
    "UsageError": UsageError,
    "FwschedError": FwschedError,
}


class NotLive(Exception):
    """No runner answers on this socket (no file, nobody listening, or it went away)."""


def socket_path(app_root: Path) -> Path:
    return app_root / ".fwsched" / SOCKET_NAME


# -- addresses ----------------------------------------------------------------------------

_SUN_PATH_MAX = 100  # sockaddr_un holds 108 bytes (104 on macOS); keep a margin


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """An address for ``path`` that fits in a sockaddr_un.

    Deep directories (pytest's tmp_path, for one) exceed its ~100 bytes; on Linux
    the socket is then reached through an open descriptor of its directory.
    """
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield str(path)
        return
    if not Path("/proc/self/fd").is_dir():
        raise FwschedError(
            f"the control socket path is too long for this system ({path}); "
            "move the app to a shorter path"
        )
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{dir_fd}/{path.name}"
    finally:
        os.close(dir_fd)


# -- errors on the wire -------------------------------------------------------------------


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """``{"kind", "message", "status"?}`` for an exception raised by a command."""
    if isinstance(exc, ScheduleError):
        return {"kind": "ScheduleError", "status": exc.status, "message": exc.message}
    for kind, cls in _ERROR_TYPES.items():
        if type(exc) is cls:
            return {"kind": kind, "message": str(exc)}
    if isinstance(exc, FwschedError):
        kind = "UsageError" if exc.exit_code == 2 else "FwschedError"
        return {"kind": kind, "message": str(exc)}
    text = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return {"kind": "InternalError", "message": f"the live runner failed: {detail}"}


def error_from_wire(error: Mapping[str, Any]) -> Exception:
    """The exception to raise in the client for an ``error`` answer."""
    kind = str(error.get("kind"))
    message = str(error.get("message"))
    if kind == "ScheduleError":
        return ScheduleError(int(error.get("status") or 400), message)
    return _ERROR_TYPES.get(kind, FwschedError)(message)


# -- the server ---------------------------------------------------------------------------


@dataclass
class Request:
    """One command from a client, waiting for (or being run by) the driver thread."""

    op: str
    args: dict[str, Any]
    outbox: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)  # the driver took it
    # Progress not sent yet (at most one line each PROGRESS_INTERVAL), and when the next may go.
    _held: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _next_progress: float = field(default=0.0, init=False, repr=False)

    def progress(self, fields: dict[str, Any]) -> None:
        """Sent at most every ``PROGRESS_INTERVAL``, the newest first (a line per invocation
        would cost a runner's advance as much as its invocations); the last one always goes
        before the answer."""
        now = time.monotonic()
        if now < self._next_progress:
            self._held = fields
            return
        self._next_progress = now + PROGRESS_INTERVAL
        self._held = None
        self.outbox.put({"progress": fields})

    def _flush_progress(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self.outbox.put({"progress": held})

    def answer(self, document: Any, state: dict[str, Any] | None = None) -> None:
        self._flush_progress()
        self.outbox.put({"result": document, **({"state": state} if state else {})})

    def fail(self, exc: BaseException, state: dict[str, Any] | None = None) -> None:
        self._flush_progress()
        self.outbox.put({"error": error_to_wire(exc), **({"state": state} if state else {})})


class ControlServer:
    """Accepts connections on the socket; each request goes to ``submit`` on its own thread."""

    def __init__(
        self,
        path: Path,
        submit: Callable[[Request], None],
        busy: Callable[[], str | None] | None = None,
        refuse: Callable[[int], bool] | None = None,
    ) -> None:
        self.path = path
        self._submit = submit
        self._busy = busy  # what keeps a request waiting: "the running handler", ...
        # Whether a client process (by pid) may not drive the runner: its own sandbox's.
        self._refuse = refuse
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Bind the socket (0600 before anyone can connect) and start accepting."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The caller holds the state lock, so a socket file left here is a dead runner's.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _address(self.path) as address:
                listener.bind(address)
            # Nobody can connect before listen(): chmod first, and the mode is never wider.
            os.chmod(self.path, 0o600)
            listener.listen(16)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, name="fwsched-control", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        """``close()`` then ``join()``."""
        self.close()
        self.join()

    def close(self) -> None:
        """Stop accepting and remove the socket file; requests in flight still get answers."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        with self._lock:
            accept_thread = self._threads[0] if self._threads else None
        if accept_thread is not None:
            accept_thread.join(STOP_BOUND)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def join(self) -> None:
        """Wait (bounded) for the connection threads to deliver their last answers."""
        deadline = time.monotonic() + STOP_BOUND
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            readable, _, _ = select.select([listener.fileno(), self._wake_r], [], [], HEARTBEAT)
            if self._stop.is_set():
                return
            if listener.fileno() not in readable:
                continue
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            thread = threading.Thread(
                target=self._serve, args=(conn,), name="fwsched-control-conn", daemon=True
            )
            with self._lock:  # the accept thread (this one) stays first
                self._threads = self._threads[:1] + [t for t in self._threads[1:] if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(REQUEST_READ_TIMEOUT)
            try:
                with conn.makefile("rb") as reader:
                    line = reader.readline(MAX_REQUEST + 1)
            except OSError:
                return
            conn.settimeout(SEND_TIMEOUT)
            try:
                request = _parse_request(line)
            except ValueError as exc:
                _send(conn, {"error": error_to_wire(UsageError(str(exc)))})
                return
            pid = peer_pid(conn)
            if self._refuse is not None and pid is not None and self._refuse(pid):
                _send(conn, {"error": {"kind": "FwschedError", "message": SANDBOX_REFUSED}})
                return
            if request.op == PING:
                _send(conn, {"result": {"pid": os.getpid()}})
                return
            if self._stop.is_set():
                _send(conn, {"error": _stopping_error()})
                return
            self._submit(request)
            self._relay(conn, request)

    def _relay(self, conn: socket.socket, request: Request) -> None:
        """Forward the outbox to the client until the final answer, with heartbeats."""
        deadline = time.monotonic() + TOTAL_TIMEOUT
        while time.monotonic() < deadline:
            try:
                item = request.outbox.get(timeout=HEARTBEAT)
            except queue.Empty:
                item = {"wait": True}
                behind = None if request.started.is_set() or self._busy is None else self._busy()
                if behind:
                    item["behind"] = behind
            if not _send(conn, item):
                request.cancelled.set()  # the client is gone: do not start it
                return
            if "result" in item or "error" in item:
                return
        request.cancelled.set()
        _send(conn, {"error": {"kind": "FwschedError", "message": "the request took too long"}})


SANDBOX_REFUSED = (
    "the live runner refuses commands from its own handlers' processes "
    "(a handler cannot drive the simulator that runs it)"
)


def peer_pid(conn: socket.socket) -> int | None:
    """The pid of the process at the other end of a unix socket (Linux), else None."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid, _uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, 12))
    except (OSError, struct.error):
        return None
    return int(pid) or None


def _stopping_error() -> dict[str, Any]:
    return {"kind": "FwschedError", "message": "the live runner is stopping; try again"}


def _parse_request(line: bytes) -> Request:
    if len(line) > MAX_REQUEST:
        raise ValueError("control request too large")
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"control request is not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ValueError('control request must be {"op": NAME, "args": {...}}')
    args = message.get("args") or {}
    if not isinstance(args, dict):
        raise ValueError("control request args must be an object")
    return Request(message["op"], args)


def _send(conn: socket.socket, item: dict[str, Any]) -> bool:
    data = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    try:
        conn.sendall(data)
    except OSError:
        return False
    return True


def reject_pending(requests: list[Request]) -> None:
    """Answer requests that will never run (the runner is stopping)."""
    for request in requests:
        request.outbox.put({"error": _stopping_error()})


# -- the client ---------------------------------------------------------------------------


def _connect(path: Path, timeout: float) -> socket.socket:
    """A connection to the runner at ``path``; ``NotLive`` if nobody listens there.

    A link at ``path`` (or for its folder) is refused, not followed: a cloned
    repository could ship one pointing at another app's runner.
    """
    for candidate in (path.parent, path):
        if candidate.is_symlink():
            raise StateError(
                f"{candidate} is a symbolic link: fwsched does not follow it to a runner "
                "(it may be another app's); remove it"
            )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with _address(path) as address:
            sock.connect(address)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
        sock.close()
        raise NotLive(str(exc)) from None
    except OSError as exc:
        sock.close()
        raise NotLive(f"cannot connect to {path}: {exc}") from None
    return sock


def request(
    path: Path,
    op: str,
    args: Mapping[str, Any] | None = None,
    *,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    on_state: Callable[[dict[str, Any]], None] | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    idle_timeout: float = IDLE_TIMEOUT,
    total_timeout: float = TOTAL_TIMEOUT,
) -> Any:
    """Send one command to the runner at ``path`` and return its result document.

    ``on_wait`` hears what the runner is busy with while the command waits its turn;
    ``on_state`` the state's mode and clock as the command saw them.
    Raises ``NotLive`` if no runner listens there (the caller then acts on the state
    directly), the command's own error (``ScheduleError``, ``AppError``, ...) if it
    failed, and ``FwschedError`` if the runner stops answering.
    """
    sock = _connect(path, connect_timeout)
    with sock:
        line = json.dumps({"op": op, "args": dict(args or {})}, ensure_ascii=False).encode()
        try:
            sock.sendall(line + b"\n")
        except OSError as exc:
            raise NotLive(f"the runner at {path} closed the connection: {exc}") from None
        sock.settimeout(idle_timeout)
        with sock.makefile("rb") as reader:
            return _read_answer(
                reader, path, on_progress, on_wait, on_state, idle_timeout, total_timeout
            )


def _read_answer(
    reader: Any,
    path: Path,
    on_progress: Callable[[dict[str, Any]], None] | None,
    on_wait: Callable[[str], None] | None,
    on_state: Callable[[dict[str, Any]], None] | None,
    idle_timeout: float,
    total_timeout: float,
) -> Any:
    """Read answer lines until the result or the error; heartbeats only keep it waiting."""
    deadline = time.monotonic() + total_timeout
    while time.monotonic() < deadline:
        try:
            raw = reader.readline(MAX_ANSWER)
        except TimeoutError:
            raise FwschedError(
                f"the live runner ({path}) did not answer for {idle_timeout:g} s"
            ) from None
        except OSError as exc:
            raise FwschedError(f"lost the connection to the live runner: {exc}") from None
        if not raw:
            raise FwschedError(
                "the live runner stopped before answering; its history shows what ran"
            )
        answer = json.loads(raw)
        if isinstance(answer.get("state"), dict) and on_state is not None:
            on_state(answer["state"])
        if "result" in answer:
            return answer["result"]
        if "error" in answer:
            raise error_from_wire(answer["error"])
        if "progress" in answer and on_progress is not None:
            on_progress(answer["progress"])
        if answer.get("behind") and on_wait is not None:
            on_wait(str(answer["behind"]))
    raise FwschedError(f"the live runner did not finish within {total_timeout:g} s")


def ping(path: Path, timeout: float = CONNECT_TIMEOUT) -> int | None:
    """The pid of the runner listening at ``path``, or None if there is none."""
    try:
        result = request(path, PING, connect_timeout=timeout, idle_timeout=timeout)
    except (NotLive, FwschedError, ValueError):
        return None
    return int(result["pid"]) if isinstance(result, dict) and "pid" in result else None


# -- the registry of live runners ---------------------------------------------------------


@dataclass(frozen=True)
class Runner:
    pid: int
    app: str
    socket: str
    entry: Path  # the registry file


def registry_dir() -> Path:
    home = os.environ.get("FWSCHED_HOME")
    if home:
        return Path(home).expanduser() / "runners"
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "fwsched" / "runners"


def register(app_root: Path, sock: Path) -> Path:
    """Record this process as the live runner of ``app_root``; the entry's path."""
    directory = registry_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    entry = directory / f"{os.getpid()}.json"
    tmp = entry.with_suffix(".tmp")
    body = {"pid": os.getpid(), "app": str(app_root), "socket": str(sock)}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle)
    os.replace(tmp, entry)  # readers never see half an entry
    return entry


def unregister(entry: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        entry.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True


def live_runners() -> list[Runner]:
    """The runners that answer, oldest entry first; stale entries are deleted."""
    directory = registry_dir()
    if not directory.is_dir():
        return []
    runners = []
    for entry in sorted(directory.glob("*.json"), key=_mtime):
        try:
            body = json.loads(entry.read_text())
            runner = Runner(int(body["pid"]), str(body["app"]), str(body["socket"]), entry)
        except (OSError, ValueError, KeyError, TypeError):
            unregister(entry)  # unreadable: not a runner's
            continue
        if _answers(runner):
            runners.append(runner)
        else:
            unregister(entry)
    return runners


def _answers(runner: Runner) -> bool:
    """Whether ``runner`` is still the live runner of its entry.

    A runner that is slow to answer (a loaded machine, a long command) is still live: only a
    dead pid, a socket nobody listens on, or another process's socket makes an entry stale.
    """
    if not _pid_alive(runner.pid):
        return False
    try:
        result = request(Path(runner.socket), PING, idle_timeout=CONNECT_TIMEOUT)
    except (NotLive, StateError):  # nobody listens there, or the socket is a link
        return False
    except (FwschedError, ValueError):
        return True  # connected but slow to answer: the process is there
    return isinstance(result, dict) and result.get("pid") == runner.pid


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def runner_pid(app_root: Path) -> int | None:
    """The pid of the live runner of ``app_root``, or None."""
    return ping(socket_path(app_root))


__all__ = [
    "ControlServer",
    "NotLive",
    "Request",
    "Runner",
    "live_runners",
    "ping",
    "register",
    "registry_dir",
    "reject_pending",
    "request",
    "runner_pid",
    "socket_path",
    "unregister",
]
