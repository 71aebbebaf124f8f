"""Process hygiene of the sandbox worker (Linux): nothing a handler starts outlives it.

A worker dies with the fwsched process that started it (``PR_SET_PDEATHSIG``), a
forked child with its zygote; and each is the "subreaper" of what its handler
starts, so after every invocation it kills and reaps every process the handler
left behind, even one that daemonised itself. The memory limit is set here too,
before the app loads.

Imported by the worker (worker.py): its imports are paid on every worker start, so
they stay light (os, signal, sys, time; ctypes and resource only when used).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import Any

STRAY_ROUNDS = 20  # kill-and-reap rounds for what a handler left running (grandchildren...)
REAP_BOUND = 2.0  # seconds to wait for killed strays to be reaped (one stuck in the kernel)
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_libc: Any = None


def _prctl(option: int, value: int) -> bool:
    """Linux's prctl(2); False where there is none or it fails."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
        return int(_libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def die_with(parent: int) -> None:
    """SIGKILL when ``parent`` ends (not ``timeout + 30 s`` later, by the backstop alarm),
    and be the subreaper of this process's descendants (``end_strays`` finds them)."""
    if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL) and os.getppid() != parent:
        os._exit(0)  # the parent died before the prctl: nobody wants us
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _children() -> list[int]:
    """This process's children (with the subreaper flag: every live descendant whose own
    parent is gone shows up here too)."""
    found: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as listing:
                found += [int(pid) for pid in listing.read().split()]
        except OSError:
            continue
    return found


def end_strays() -> None:
    """Kill and reap every process the handler started that is still there: a warm
    worker keeps only its own process between invocations."""
    for _ in range(STRAY_ROUNDS):
        try:  # one system call answers the usual case: no child at all
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        children = _children()
        if not children:
            return
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + REAP_BOUND
        waiting = set(children)  # their own children come back to us (subreaper): next round
        while waiting and time.monotonic() < deadline:
            for pid in list(waiting):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    waiting.discard(pid)
            if waiting:
                time.sleep(0.001)


def limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    import resource

    limit = megabytes * 1024 * 1024
    # Hard limit too: app code cannot raise it again.
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
