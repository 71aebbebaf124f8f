"""The outcome of one invocation: every invocation has exactly one."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """Compares equal to its string, so ``inv.outcome == "ok"`` works."""

    OK = "ok"  # the handler returned
    ERROR = "error"  # the handler raised
    TIMEOUT = "timeout"  # still running after the timeout: killed with all its processes
    CRASHED = "crashed"  # the sandbox process died (exit code or signal)
    LOAD_ERROR = "load-error"  # server.py could not be imported, or the handler is missing
    INTERRUPTED = "interrupted"  # fwsched itself stopped (crash, kill -9) while it ran
