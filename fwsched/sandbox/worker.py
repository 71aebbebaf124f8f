"""The sandbox worker: the only process in which app code runs (the child side).

Started by ``process.spawn`` as ``python -c`` with the app directory as working
directory, it imports server.py with ``schedule`` injected, reports what it
exports, then runs invocations sent by the parent:

- warm: in this process, one after another, with the module state kept;
- fresh: as a zygote (zygote.py) that never runs a handler itself but forks one
  child per invocation, so each starts from the freshly imported module without
  paying for an interpreter start and an import.

Messages travel on the two pipes named on the command line (see protocol.py);
fds 1 and 2 are the output pipe, so prints, logging, C code and subprocesses
are all captured by the parent (streams.py keeps what Python buffers in order).
Keep this module's imports light: they are paid on every worker start.

Process hygiene (Linux) is hygiene.py's: a worker dies with the fwsched process
that started it, a forked child with its zygote, and after every invocation each
kills and reaps every process the handler left behind.
"""

from __future__ import annotations

import _thread
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fwsched import jsonsafe, sdk
from fwsched.sandbox import protocol
from fwsched.sandbox.hygiene import die_with, end_strays, limit_memory
from fwsched.sandbox.resultframe import (
    LoadProblem,
    exit_error,
    one_line,
    result_frame,
    user_traceback,
)
from fwsched.sandbox.streams import capture_logging, flush, setup_output
from fwsched.sandbox.zygote import serve_fresh

if TYPE_CHECKING:
    from time_machine import Traveller

SERVER = "server.py"

Handler = Callable[[Any], Any]

# The platform services a handler reaches by RPC, and the error each one raises.
SERVICE_ERRORS: dict[str, type[sdk.PlatformError]] = {
    "schedule": sdk.ScheduleError,
    "db": sdk.DbError,
    "request": sdk.RequestError,
}
RENDERED_AGAIN = (
    "fwsched: warning: render_data was called again; only the first call answers "
    "(the platform ignores the others)"
)


def main(argv: list[str]) -> None:
    """Entry point: ``APP_DIR CMD_FD MSG_FD warm|fresh MEMORY_LIMIT_MB BACKSTOP_S PARENT_PID``."""
    app_dir, cmd_fd, msg_fd, mode, memory_mb, backstop, parent = argv
    die_with(int(parent))
    # fwsched's own modules are compiled and cached by now; the app's must not be:
    # no __pycache__ in the app directory (the reloader would see it change).
    sys.dont_write_bytecode = True
    limit_memory(int(memory_mb))
    worker = Worker(app_dir, int(cmd_fd), int(msg_fd), int(backstop))
    worker.serve(fresh=mode == "fresh")


def _import_time_machine() -> ModuleType:
    # time-machine imports pytest and dateutil when it finds them (≈100 ms), only for
    # its pytest plugin and string destinations; the worker needs neither.
    blocked = [name for name in ("pytest", "dateutil") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import time_machine
    except ImportError:  # a time-machine that needs them after all: pay for them
        for name in blocked:
            del sys.modules[name]
        blocked = []
        import time_machine
    finally:
        for name in blocked:
            sys.modules.pop(name, None)
    return time_machine


class Worker:
    def __init__(self, app_dir: str, cmd_fd: int, msg_fd: int, backstop: int) -> None:
        self.app_dir = app_dir
        self.msg_fd = msg_fd
        self.reader = protocol.FrameReader(cmd_fd)
        # If the parent dies while a handler hangs, nobody kills us: the alarm does.
        self.backstop = backstop
        self.exports: dict[str, Handler] = {}
        self.clock: Traveller | None = None  # the handler's time, moved per invocation
        self._in_invocation = False
        self._rendered: dict[str, Any] | None = None  # the first render_data call, as JSON
        self._rpc_lock = _thread.allocate_lock()  # one schedule call at a time, in order
        self._logging_captured = False
        for fd in (cmd_fd, msg_fd):
            os.set_inheritable(fd, False)  # handler subprocesses must not hold our pipes

    def send(self, frame: bytes) -> None:
        protocol.write_all(self.msg_fd, frame)

    def serve(self, *, fresh: bool) -> None:
        setup_output()
        time_machine = _import_time_machine()
        sdk.schedule._install(self.transport)
        sdk.db._install(lambda op, request: self.transport(op, request, "db"))
        sdk.request._install(lambda op, request: self.transport(op, request, "request"))
        sdk.render_data._install(self.render)
        self.send(protocol.encode("hello", {"pid": os.getpid()}))
        if not self.load():
            return
        # The clock is patched once, here, and only moved per invocation: patching is
        # what costs (in fresh isolation, ~100 copy-on-write page faults per child).
        # So after an invocation, simulated time keeps running from its fire time.
        self.clock = time_machine.travel(time.time(), tick=True).start()
        if fresh:
            serve_fresh(self)
        else:
            self.serve_warm()

    # -- loading ----------------------------------------------------------------------

    def load(self) -> bool:
        """Import server.py and report its exports; False if that failed (we then exit)."""
        report: dict[str, Any] = {"ok": False, "exports": [], "error": None, "traceback": None}
        signal.alarm(self.backstop)
        try:
            exports = self._import_server()
        except BaseException as exc:
            report["error"] = one_line(exc)
            report["traceback"] = user_traceback(exc)
        else:
            problem = _check_exports(exports)
            if problem is None:
                self.exports = exports
                report.update(ok=True, exports=list(exports))
                _preload_asyncio(exports)
            else:
                report["error"] = problem
        finally:
            signal.alarm(0)
            flush()
        self._logging_captured = capture_logging()
        self.send(protocol.encode("loaded", report))
        return bool(report["ok"])

    def _import_server(self) -> Any:
        path = os.path.join(self.app_dir, SERVER)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{SERVER} not found in {self.app_dir}")
        # The app directory comes first, so server.py imports its siblings, not
        # installed modules of the same name.
        sys.path.insert(0, self.app_dir)
        spec = importlib.util.spec_from_file_location("server", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        # Globals before the body runs, as the platform's $schedule and renderData are
        # (and the error type, so a ported app can catch it without an import).
        module.schedule = sdk.schedule  # type: ignore[attr-defined]
        module.render_data = sdk.render_data  # type: ignore[attr-defined]
        module.ScheduleError = sdk.ScheduleError  # type: ignore[attr-defined]
        module.db = sdk.db  # type: ignore[attr-defined]
        module.request = sdk.request  # type: ignore[attr-defined]
        module.DbError = sdk.DbError  # type: ignore[attr-defined]
        module.RequestError = sdk.RequestError  # type: ignore[attr-defined]
        sys.modules["server"] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules["server"]
            raise
        if not hasattr(module, "exports"):
            raise LoadProblem(
                f"{SERVER} does not define 'exports' (a dict of handler name to function)"
            )
        return module.exports

    # -- serving ----------------------------------------------------------------------

    def serve_warm(self) -> None:
        while True:
            message = self.reader.read()
            if message is None:
                return  # the parent closed the pipe: it wants us gone
            name, fields = message
            if name == "invoke":
                self.send(self.run(fields))

    # -- one invocation -----------------------------------------------------------------

    def run(self, fields: dict[str, Any]) -> bytes:
        """Run one invocation; the ``result`` frame to send."""
        seq = fields["seq"]
        handler = self.exports.get(fields["handler"])
        if handler is None:
            return protocol.encode(
                "result",
                {
                    "seq": seq,
                    "outcome": "load-error",
                    "error": f"Event callback '{fields['handler']}' is not defined "
                    f"in {SERVER} exports",
                },
            )
        assert self.clock is not None
        result: dict[str, Any] = {"seq": seq, "outcome": "ok", "value": None}
        if not self._logging_captured:
            self._logging_captured = capture_logging()
        self._rendered = None
        self._in_invocation = True
        signal.alarm(self.backstop)
        _in_utc()
        fire_at = fields["fire_at"]
        # Whole seconds as an int (exact, and the cheapest); else a datetime, not the
        # float: time-machine's float path can lose a microsecond.
        if float(fire_at).is_integer():
            self.clock.move_to(int(fire_at))
        else:
            self.clock.move_to(datetime.fromtimestamp(fire_at, _UTC))
        start = time.perf_counter()
        try:
            value = handler(fields["payload"])
            if value is not None and isinstance(value, Awaitable):
                value = _run_async(value)
            result["value"] = value
        except SystemExit as exc:
            # A handler is a function the platform calls and waits for: exiting is a bug in
            # it, not the end of the sandbox (sys.exit(0) looked like a crash with code 0).
            result.update(outcome="error", error=exit_error(exc), traceback=user_traceback(exc))
        except BaseException as exc:
            result.update(outcome="error", error=one_line(exc), traceback=user_traceback(exc))
        finally:
            result["duration_ms"] = (time.perf_counter() - start) * 1000.0
            signal.alarm(0)
            with self._rpc_lock:  # a schedule call from another thread finishes first
                self._in_invocation = False
            result["render"] = self._rendered
            flush()
            end_strays()
        return result_frame(result)

    def render(self, error: Any, data: Any) -> None:
        """``render_data(error, data)``: keep the first call; the parent judges it."""
        with self._rpc_lock:
            if not self._in_invocation:
                raise RuntimeError("render_data is only available while a handler runs")
            if self._rendered is not None:
                print(RENDERED_AGAIN, file=sys.stderr)
                return
            try:
                # Sent like an HTTP response: what it is now, and it must be JSON.
                data = protocol.json_copy(data, strict=True)
                error = protocol.json_copy(error, strict=False)
            except (TypeError, ValueError, RecursionError) as exc:
                raise TypeError(f"render_data: data is not JSON: {exc}") from None
            if jsonsafe.too_deep(data) or jsonsafe.too_deep(error):
                raise TypeError(
                    f"render_data: nested deeper than {jsonsafe.MAX_DEPTH} levels "
                    "(fwsched's limit for any value)"
                )
            self._rendered = {"error": error, "data": data}

    def transport(
        self, op: str, request: dict[str, Any], service: str = "schedule"
    ) -> dict[str, Any]:
        """``<service>.<op>(...)``: ask the parent, block for its answer."""
        error_type = SERVICE_ERRORS[service]
        frame = protocol.encode_rpc(op, request, service)
        with self._rpc_lock:
            if not self._in_invocation:
                raise error_type(500, f"{service} is only available while a handler runs")
            self.send(frame)
            reply = self.reader.read()
        if reply is None:
            os._exit(0)  # the parent is gone; nobody wants the result
        _, fields = reply
        error = fields.get("error")
        if error is not None:
            if error_type is sdk.RequestError:  # with headers, response and attempts
                raise sdk.RequestError.from_dict(error)
            raise error_type(int(error["status"]), str(error["message"]))
        response: dict[str, Any] = fields["response"]
        return response


class _Utc(tzinfo):
    """UTC that time-machine does not recognise as UTC: given ``datetime.UTC`` it sets the
    TZ variable and calls tzset() twice per move (a fifth of an invocation's cost);
    ``_in_utc`` keeps the handler's zone UTC instead, with no system call."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "UTC"


_UTC = _Utc()


def _in_utc() -> None:
    """Every invocation starts in UTC (the worker's TZ), whatever an earlier one set."""
    if os.environ.get("TZ") != "UTC" or time.tzname != ("UTC", "UTC"):
        os.environ["TZ"] = "UTC"
        time.tzset()


def _check_exports(exports: Any) -> str | None:
    if not isinstance(exports, dict):
        return (
            f"{SERVER} 'exports' must be a dict of handler name to function, "
            f"not {type(exports).__name__}"
        )
    for name, handler in exports.items():
        if not isinstance(name, str):
            return f"{SERVER} exports keys must be handler names (str), not {name!r}"
        if not callable(handler):
            return f"{SERVER} exports[{name!r}] is not callable ({type(handler).__name__})"
    return None


def _preload_asyncio(exports: dict[str, Handler]) -> None:
    """Import asyncio once, here, if a handler needs it; not in every forked child."""
    import inspect  # already imported by time-machine: free

    if any(inspect.iscoroutinefunction(handler) for handler in exports.values()):
        import asyncio  # noqa: F401


def _run_async(awaitable: Any) -> Any:
    import asyncio

    async def wait() -> Any:
        return await awaitable

    # A new loop per invocation: it ends with the handler, cancelling what it left.
    return asyncio.run(awaitable if asyncio.iscoroutine(awaitable) else wait())
