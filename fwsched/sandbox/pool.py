"""``Sandbox``: runs an app's handler in worker processes and turns whatever happens into data.

The parent side of the sandbox: it starts workers (lazily), sends each invocation,
answers the handler's platform calls (``schedule.*``) from the caller's table of
``services``, enforces the
timeout by killing the worker's process group, and starts a new worker after a
timeout or crash. It never imports app code: a broken or hostile server.py can
fail an invocation, never the simulator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from fwsched.errors import did_you_mean
from fwsched.outcome import Outcome
from fwsched.sandbox import protocol
from fwsched.sandbox.output import OutputBuffer, OutputCallback
from fwsched.sandbox.process import WorkerExited, WorkerProcess, descends_from, spawn
from fwsched.sandbox.result import LoadReport, RunResult
from fwsched.sdk import PlatformError

RpcHandler = Callable[[str, dict[str, Any]], dict[str, Any]]
"""``(op, request) -> response`` for a handler's ``<service>.<op>(...)``; raises a PlatformError."""

Services = Mapping[str, RpcHandler]
"""The platform services a handler can call, by name (``{"schedule": ...}``)."""

NO_HANDLER = "No onScheduledEvent handler is registered in manifest.json"
STRAY_NOTE = (
    "fwsched: the sandbox process wrote to fwsched while no handler ran (a thread left "
    "by an earlier invocation?); it was replaced before this one\n"
)
STARTUP_BOUND = 30.0  # seconds for an interpreter to start, before the import clock runs
CLOSE_BOUND = 5.0  # seconds close() waits for a running invoke to notice the kill
BACKSTOP_GRACE = 30  # the worker's own alarm, past the timeout, if the parent is gone


class Isolation(StrEnum):
    WARM = "warm"  # one worker, module state kept between invocations
    FRESH = "fresh"  # every invocation starts from the freshly imported module


class Sandbox:
    """Runs ``handler`` from ``app_dir``/server.py, one invocation at a time.

    The worker starts on the first ``invoke`` or ``inspect`` and stays (warm: it runs
    every invocation; fresh: it is the zygote the invocations are forked from) until
    a timeout, a crash, ``reload()`` or ``close()``. ``memory_limit_mb`` <= 0: no limit.

    Thread-safe: ``close()`` and ``reload()`` may be called from another thread
    while ``invoke()`` runs (``close`` interrupts it; ``reload`` applies to the next).
    """

    def __init__(
        self,
        app_dir: Path | str,
        handler: str | None,
        *,
        timeout: float = 20.0,
        isolation: Isolation | str = "warm",
        memory_limit_mb: int = 512,
        services: Services | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.app_dir = Path(app_dir).resolve()
        self.handler = handler
        self.timeout = float(timeout)
        self.isolation = Isolation(isolation)
        self.memory_limit_mb = memory_limit_mb  # 0 or less: no limit
        self._services = dict(services or {})
        self._lock = threading.Lock()  # one invoke/inspect at a time
        self._worker: WorkerProcess | None = None
        self._report: LoadReport | None = None  # of the live worker, or a failed load
        self._load_log = ""  # output of a failed load, repeated in every load-error
        self._generation = 0  # bumped by reload(); the worker must match it
        self._loaded_generation = 0
        self._seq = 0
        self._closed = False

    # -- public -----------------------------------------------------------------------

    def invoke(
        self,
        payload: dict[str, Any],
        *,
        fire_at: datetime,
        handler: str | None = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> RunResult:
        """Run a handler once with ``payload``, its clock starting at ``fire_at``.

        ``handler`` is the exported name to call (default: the sandbox's own, the
        scheduled-event handler) and ``timeout`` its limit in seconds (default: the
        sandbox's). ``on_output`` receives the captured output as it arrives;
        ``on_sent`` is called once the invocation is on its way, while the worker runs
        it (work of the caller's that can overlap the handler's).
        """
        handler = handler or self.handler
        if handler is None:
            return _load_error(NO_HANDLER)
        limit = self.timeout if timeout is None else float(timeout)
        if limit <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if fire_at.tzinfo is None:
            fire_at = fire_at.replace(tzinfo=UTC)
        output = OutputBuffer(on_text=on_output)
        with self._lock:
            self._check_open()
            if self._worker is not None and self._spoke_unasked(self._worker):
                # Frames while no request was out: a thread a handler left behind writes
                # to the pipe. They must not pass for this run's: a new worker runs it.
                self._discard()
                output.feed(STRAY_NOTE.encode())
            report = self._ready(output)
            if self._closed:  # by another thread while the worker was starting
                return _interrupted(output, 0.0)
            if not report.ok:
                return _load_error(report.error, report.traceback, self._load_log)
            if handler not in report.exports:
                return _load_error(
                    f"Event callback '{handler}' is not defined in server.py exports"
                    + did_you_mean(handler, report.exports),
                    log=output.text(),
                )
            return self._run(handler, payload, fire_at.timestamp(), limit, output, on_sent)

    def _spoke_unasked(self, worker: WorkerProcess) -> bool:
        """Whether the idle worker sent anything but a late "exited" of an earlier run."""
        try:
            messages = worker.unasked()
            for message in messages:
                _, fields = protocol.check_from_worker(message, "exited")
                if fields["seq"] > self._seq:
                    return True
        except protocol.ProtocolError:
            return True
        return False

    def inspect(self) -> LoadReport:
        """Import server.py in a sandbox process: does it load, and what does it export?"""
        with self._lock:
            self._check_open()
            return self._ready(OutputBuffer())

    def owns(self, pid: int) -> bool:
        """Whether process ``pid`` is this sandbox's worker or one its handlers started
        (safe from any thread)."""
        worker = self._worker
        return worker is not None and descends_from(pid, worker.pid)

    def reload(self) -> None:
        """The next invocation uses the files as they are now (new worker, new import)."""
        self._generation += 1
        if self._lock.acquire(blocking=False):  # else the running invoke's end applies it
            try:
                self._discard()
            finally:
                self._lock.release()

    def close(self) -> None:
        """Kill every process of this sandbox. Idempotent; interrupts a running invoke."""
        self._closed = True
        worker = self._worker
        if worker is not None:
            worker.kill()
        if self._lock.acquire(timeout=CLOSE_BOUND):
            try:
                self._discard()
            finally:
                self._lock.release()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- workers ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Sandbox is closed")

    def _discard(self) -> None:
        worker, self._worker = self._worker, None
        self._report = None
        if worker is not None:
            worker.close()

    def _ready(self, output: OutputBuffer) -> LoadReport:
        """The load report of a live worker, starting one if needed (or why it failed)."""
        if self._loaded_generation != self._generation:
            self._discard()
            self._loaded_generation = self._generation
        if self._report is None:
            self._report = self._start(output)
        return self._report

    def _start(self, output: OutputBuffer) -> LoadReport:
        """Spawn a worker and wait (bounded) until it has imported server.py."""
        try:
            worker = spawn(
                self.app_dir,
                fresh=self.isolation is Isolation.FRESH,
                memory_limit_mb=self.memory_limit_mb,
                backstop_s=int(self.timeout) + BACKSTOP_GRACE,
            )
        except OSError as exc:
            return self._failed(f"could not start the sandbox process: {exc}", output)
        self._worker = worker  # from now on close() can kill it
        try:
            message = worker.receive(time.monotonic() + STARTUP_BOUND, output)
            if message is None:
                return self._failed(
                    f"the sandbox process did not start within {STARTUP_BOUND:g} s", output
                )
            protocol.check_from_worker(message, "hello")
            message = worker.receive(time.monotonic() + self.timeout, output)
            if message is None:
                return self._failed(
                    f"server.py did not finish importing within {self.timeout:g} s", output
                )
            _, fields = protocol.check_from_worker(message, "loaded")
        except WorkerExited as died:
            return self._failed(f"{_death(died.returncode)} while loading server.py", output)
        except protocol.ProtocolError as exc:
            return self._failed(f"the sandbox process broke the protocol: {exc}", output)
        report = LoadReport(
            ok=fields["ok"],
            exports=list(fields["exports"]),
            error=fields.get("error"),
            traceback=fields.get("traceback"),
        )
        if not report.ok:
            return self._failed(report.error, output, report)
        return report

    def _failed(
        self, error: str | None, output: OutputBuffer, report: LoadReport | None = None
    ) -> LoadReport:
        """Remember why loading failed: every invocation ends load-error until a reload."""
        self._discard()
        self._load_log = output.text()
        return report or LoadReport(ok=False, error=error)

    # -- one invocation -----------------------------------------------------------------

    def _run(
        self,
        handler: str,
        payload: dict[str, Any],
        fire_at: float,
        timeout: float,
        output: OutputBuffer,
        on_sent: Callable[[], None] | None = None,
    ) -> RunResult:
        worker = self._worker
        assert worker is not None
        self._seq += 1
        seq = self._seq
        started = time.monotonic()
        deadline = started + timeout
        invoke = {"seq": seq, "handler": handler, "payload": payload, "fire_at": fire_at}
        try:
            if not worker.send(protocol.encode("invoke", invoke), deadline):
                return self._timed_out(worker, started, timeout, output)
            if on_sent is not None:
                on_sent()
            while True:
                message = worker.receive(deadline, output)
                if message is None:
                    return self._timed_out(worker, started, timeout, output)
                name, fields = protocol.check_from_worker(message, "rpc", "result", "exited")
                if name == "rpc":
                    if not worker.send(self._answer(fields), deadline):
                        return self._timed_out(worker, started, timeout, output)
                    continue
                if fields["seq"] > seq or (name == "result" and fields["seq"] != seq):
                    raise protocol.ProtocolError(f"{name!r} for invocation {fields['seq']}")
                if name == "result":
                    if worker.output_pending:
                        worker.drain_output(output)
                    return _finished(fields, output)
                if fields["seq"] == seq:
                    # Fresh isolation: the child died before sending its result.
                    worker.drain_output(output)
                    code, sig = fields["code"], fields["signal"]
                    return _crashed(-sig if sig else code, started, output)
                # A late "exited" of an earlier invocation (its child died after its result).
        except WorkerExited as died:
            self._discard()
            if self._closed:
                return _interrupted(output, _since(started))
            return _crashed(died.returncode, started, output)
        except protocol.ProtocolError as exc:
            self._discard()
            return RunResult(
                Outcome.CRASHED,
                f"the sandbox process broke the protocol ({exc}); it was replaced",
                None,
                output.text(),
                None,
                _since(started),
            )
        except BaseException:  # e.g. Ctrl-C in the parent: the worker is mid-invocation
            self._discard()
            raise

    def _timed_out(
        self, worker: WorkerProcess, started: float, timeout: float, output: OutputBuffer
    ) -> RunResult:
        worker.kill()
        worker.drain_output(output)
        self._discard()
        return RunResult(
            Outcome.TIMEOUT,
            f"killed after {timeout:g} s timeout",
            None,
            output.text(),
            None,
            _since(started),
        )

    def _answer(self, fields: dict[str, Any]) -> bytes:
        """The reply to a handler's ``<service>.<call>(request)``, from the caller's table."""
        service = str(fields.get("service") or "schedule")
        call = str(fields.get("call"))
        request = protocol.decode_request(fields)
        serve = self._services.get(service)
        if serve is None:
            return _rpc_error(500, f"{service} API is not available")
        try:
            response = serve(call, request)
        except PlatformError as err:
            return protocol.encode("reply", {"error": err.to_dict()})
        except Exception as exc:  # a bug on our side must not hang or kill the handler
            return _rpc_error(500, f"{service}.{call} failed in fwsched: {_one_line(exc)}")
        return protocol.encode("reply", {"response": response})


def _rpc_error(status: int, message: str) -> bytes:
    return protocol.encode("reply", {"error": {"status": status, "message": message}})


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _since(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


def _finished(fields: dict[str, Any], output: OutputBuffer) -> RunResult:
    """The outcome a worker reported (``protocol.check_from_worker`` checked every field)."""
    return RunResult(
        Outcome(fields["outcome"]),
        fields.get("error"),
        fields.get("traceback"),
        output.text(),
        fields.get("value"),
        float(fields.get("duration_ms", 0.0)),
        render=fields.get("render"),
    )


def _interrupted(output: OutputBuffer, duration_ms: float) -> RunResult:
    return RunResult(
        Outcome.INTERRUPTED,
        "the sandbox was closed while the handler ran",
        None,
        output.text(),
        None,
        duration_ms,
    )


def _load_error(error: str | None, traceback: str | None = None, log: str = "") -> RunResult:
    return RunResult(Outcome.LOAD_ERROR, error, traceback, log, None, 0.0)


def _death(returncode: int | None) -> str:
    """How the sandbox process ended, as a sentence."""
    if returncode is None:
        return "sandbox process ended"
    if returncode < 0:
        return f"sandbox process died with signal {_signal_name(-returncode)}"
    return f"sandbox process exited with code {returncode}"


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _crashed(returncode: int | None, started: float, output: OutputBuffer) -> RunResult:
    return RunResult(
        Outcome.CRASHED,
        _death(returncode),
        None,
        output.text(),
        None,
        _since(started),
        exit_code=returncode if returncode is not None and returncode >= 0 else None,
        signal=-returncode if returncode is not None and returncode < 0 else None,
    )
