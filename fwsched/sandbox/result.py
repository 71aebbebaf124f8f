"""What the sandbox reports: the result of one invocation, and of loading server.py."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fwsched.outcome import Outcome


@dataclass(frozen=True)
class RunResult:
    """Exactly one outcome per invocation, with what the handler left behind."""

    outcome: Outcome
    # None for ok; "<ExceptionType>: <message>" for error; a sentence for the others.
    error: str | None
    traceback: str | None  # for error and load-error
    log: str  # stdout + stderr + logging, in order, capped at 1 MiB then "[output truncated]"
    return_value: Any  # the value if JSON-serialisable, else its repr
    duration_ms: float  # wall time of the handler call (until the kill for timeout/crashed)
    exit_code: int | None = None  # crashed: the sandbox process's exit code
    signal: int | None = None  # crashed: the signal that killed it
    # The first render_data call as {"error", "data"} (None if there was none);
    # fwsched.platform.events makes the platform's response of it.
    render: dict[str, Any] | None = None


@dataclass(frozen=True)
class LoadReport:
    """Whether server.py imports, and the handler names it exports (for `fwsched validate`)."""

    ok: bool
    exports: list[str] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None


TIMEOUT_SETTING = "--timeout, Simulator(timeout=) or [simulator] timeout in fwsched.toml"
MEMORY_SETTING = "--memory-limit or Simulator(memory_limit_mb=)"


def naming_limits(
    result: RunResult, *, memory_limit_mb: int, function: str | None = None
) -> RunResult:
    """``result`` with an error caused by a limit naming the setting that changes it.

    A timeout says which timeout applied (a server function's is its own, from the
    manifest); a ``MemoryError`` says that the sandbox's memory limit was reached.
    """
    error = result.error or ""
    if result.outcome == Outcome.TIMEOUT:
        if function is not None:
            where = f"functions.{function}.timeout in manifest.json, 5 s if not given"
        else:
            where = TIMEOUT_SETTING
        return replace(result, error=f"{error} (the limit is set by {where})")
    if result.outcome == Outcome.ERROR and error.split(":")[0] == "MemoryError":
        limit = f"{memory_limit_mb} MiB" if memory_limit_mb > 0 else "the system's memory"
        return replace(
            result,
            error=f"{error} (beyond the sandbox's memory limit of {limit}: {MEMORY_SETTING})",
        )
    return result
