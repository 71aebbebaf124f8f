"""A sandbox worker process seen from the parent: starting it, talking to it, killing it.

``spawn`` is the one place a worker is created. Every wait here has a deadline:
a worker that hangs, crashes or floods its output cannot block the parent.

Before the first worker starts, the parent makes itself non-dumpable (Linux):
then no process of the same user, a handler included, can read its memory, its
environment (``/proc/<pid>/environ``) or its open files (``/proc/<pid>/fd``).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import subprocess
import sys
import time
import weakref
from collections import deque
from pathlib import Path

from fwsched.sandbox import protocol
from fwsched.sandbox.output import OutputBuffer

# `-I`: no user site, no PYTHON* variables, no script directory on sys.path.
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from fwsched.sandbox.worker import main; main(sys.argv[2:])"
)
CHUNK = protocol.CHUNK
DRAIN_READS = 64  # a drain reads at most 4 MiB: a flooding grandchild cannot pin us
REAP_BOUND = 5.0  # seconds to wait for a SIGKILLed process to be reaped
POLL_SLICE_MS = 3_600_000  # poll() takes a C int of milliseconds: wait at most an hour at once
PR_SET_DUMPABLE = 4
_FWSCHED_ROOT = str(Path(__file__).resolve().parents[2])


class WorkerExited(Exception):
    """The worker process is gone (after its last messages were delivered)."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__(returncode)
        self.returncode = returncode  # negative: killed by that signal; None: unknown


def worker_environment(app_dir: Path) -> dict[str, str]:
    """A clean environment: none of the parent's variables (and secrets) but the basics."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", str(app_dir)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TZ": "UTC",
        "FWSCHED_SANDBOX": "1",
        "FWSCHED_APP_DIR": str(app_dir),
    }


def _prctl(option: int, value: int) -> bool:
    """Linux's prctl(2) through libc; False where there is none or it fails."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


_undumpable = False


def protect_parent() -> None:
    """Make this process non-dumpable, once: a handler running as the same user cannot
    read its environment, memory or descriptors through ``/proc`` (nor ptrace it).
    It also means no core dump of this process (the workers are not affected)."""
    global _undumpable
    if not _undumpable:
        _undumpable = _prctl(PR_SET_DUMPABLE, 0)


def spawn(app_dir: Path, *, fresh: bool, memory_limit_mb: int, backstop_s: int) -> WorkerProcess:
    """Start a worker for ``app_dir`` in its own session; it loads server.py at once."""
    protect_parent()
    cmd_r, cmd_w = os.pipe()
    msg_r, msg_w = os.pipe()
    out_r, out_w = os.pipe()
    argv = [
        sys.executable,
        *("-I", "-X", "utf8", "-c", BOOT),
        _FWSCHED_ROOT,
        str(app_dir),
        str(cmd_r),
        str(msg_w),
        "fresh" if fresh else "warm",
        str(memory_limit_mb),
        str(backstop_s),
        str(os.getpid()),  # the worker dies with this process (PR_SET_PDEATHSIG)
    ]
    try:
        proc = subprocess.Popen(
            argv,
            cwd=app_dir,
            env=worker_environment(app_dir),
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            pass_fds=(cmd_r, msg_w),
            start_new_session=True,  # its own session and process group: killed as one
        )
    except BaseException:
        for fd in (cmd_w, msg_r, out_r):
            os.close(fd)
        raise
    finally:
        for fd in (cmd_r, msg_w, out_w):
            os.close(fd)
    return WorkerProcess(proc, cmd_w=cmd_w, msg_r=msg_r, out_r=out_r)


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether process ``pid`` is ``ancestor`` or was started by it (Linux ``/proc``):
    in its session (what a handler starts, unless it calls setsid), or below it in the
    process tree (a worker is the subreaper of its handlers' orphans)."""
    if pid == ancestor:
        return True
    try:
        if os.getsid(pid) == ancestor:
            return True
    except OSError:
        return False
    for _ in range(64):
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            pid = int(fields[1])  # after ") state": the parent's pid
        except (OSError, IndexError, ValueError):
            return False
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class WorkerProcess:
    """One worker: its pipes, its process group, and the messages it sent so far."""

    def __init__(
        self, proc: subprocess.Popen[bytes], *, cmd_w: int, msg_r: int, out_r: int
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._cmd_w = cmd_w
        self._msg_r = msg_r
        self._out_r = out_r
        for fd in (cmd_w, msg_r, out_r):
            os.set_blocking(fd, False)
        self._frames = protocol.FrameBuffer()
        self._queue: deque[protocol.Message] = deque()
        self._gone = False  # the process exited and its message pipe is drained
        self._msg_open = True
        self.output_pending = False  # the last read of output filled its buffer
        self._closed = False
        self._poller = select.poll()
        self._poller.register(msg_r, select.POLLIN)
        self._poller.register(out_r, select.POLLIN)
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd: fall back to polling proc.poll()
            pass
        else:
            self._poller.register(self._pidfd, select.POLLIN)
        # A worker is never left behind, even if its owner forgets to close it.
        self._finalizer = weakref.finalize(self, _kill_group, self.pid)

    # -- talking ----------------------------------------------------------------------

    def send(self, frame: bytes, deadline: float) -> bool:
        """Write a frame; False if the worker did not take it before the deadline.

        A worker that died is not reported here: ``receive`` reports it with its status.
        """
        view = memoryview(frame)
        while view:
            try:
                view = view[os.write(self._cmd_w, view) :]
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                waiter = select.poll()
                waiter.register(self._cmd_w, select.POLLOUT)
                waiter.poll(min(math.ceil(remaining * 1000), POLL_SLICE_MS))
            except BrokenPipeError:
                return True
        return True

    def receive(self, deadline: float, output: OutputBuffer) -> protocol.Message | None:
        """The next message, reading output into ``output`` meanwhile.

        None when the deadline passes first; ``WorkerExited`` when the process ended
        (only after every message it sent before dying was returned).
        """
        queue = self._queue
        while not queue:
            if self._gone:
                raise WorkerExited(self.close())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            wait_ms = min(math.ceil(remaining * 1000), POLL_SLICE_MS)
            if self._pidfd is None:
                wait_ms = min(wait_ms, 50)
            for fd, _ in self._poller.poll(wait_ms):
                if fd == self._msg_r:
                    self._read_messages()
                elif fd == self._out_r:
                    self.drain_output(output)
                else:
                    self._exited(output)
            if self._pidfd is None and not self._gone and self.proc.poll() is not None:
                self._exited(output)
        return queue.popleft()

    def unasked(self) -> list[protocol.Message]:
        """The messages already sent (read without waiting) and not yet received."""
        if self._msg_open and any(fd == self._msg_r for fd, _ in self._poller.poll(0)):
            self._read_messages()
        messages = list(self._queue)
        self._queue.clear()
        return messages

    def drain_output(self, output: OutputBuffer) -> None:
        """Read what is already in the output pipe, without waiting for more.

        After a result, this is needed only when ``output_pending``: the message pipe
        is registered first, so the poll that reports a result also reports the output
        written before it, and that output is read in the same round.
        """
        for _ in range(DRAIN_READS):
            if not self._read_output(output):
                return

    def _read_messages(self) -> None:
        while self._msg_open:
            try:
                chunk = os.read(self._msg_r, CHUNK)
            except BlockingIOError:
                return
            if not chunk:
                # Every writer closed: the worker is exiting; pidfd (or poll) reports it.
                self._msg_open = False
                self._poller.unregister(self._msg_r)
                if self._frames.pending:
                    raise protocol.ProtocolError("pipe closed in the middle of a frame")
                return
            self._queue.extend(self._frames.feed(chunk))
            if len(chunk) < CHUNK:
                return

    def _read_output(self, output: OutputBuffer) -> bool:
        """One read of output; True if the pipe may hold more (it filled the read)."""
        try:
            chunk = os.read(self._out_r, CHUNK)
        except (BlockingIOError, OSError):  # nothing there, or closed meanwhile
            self.output_pending = False
            return False
        if not chunk:
            with contextlib.suppress(KeyError):
                self._poller.unregister(self._out_r)  # every writer is gone
            self.output_pending = False
            return False
        output.feed(chunk)
        self.output_pending = len(chunk) == CHUNK
        return self.output_pending

    def _exited(self, output: OutputBuffer) -> None:
        # Its last messages and output are in the pipes already: deliver them first.
        self._read_messages()
        self.drain_output(output)
        if self._pidfd is not None:
            with contextlib.suppress(KeyError):
                self._poller.unregister(self._pidfd)
        self._gone = True

    # -- ending -----------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker and everything it started.

        Safe from any thread; the thread waiting in ``receive`` sees the exit.
        """
        if not self._closed:
            _kill_group(self.pid)

    def close(self) -> int | None:
        """Kill, reap and release the pipes; the process's return code. Idempotent."""
        if self._closed:
            return self.proc.returncode
        # Also on a normal exit: stray grandchildren still in the group go with it.
        # Only before the reap below: until then the pid cannot be reused.
        if self.proc.returncode is None:
            _kill_group(self.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(REAP_BOUND)
        self._closed = True
        self._finalizer.detach()
        for fd in (self._cmd_w, self._msg_r, self._out_r, self._pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return self.proc.returncode
