"""fwsched: a local simulator for Freshworks scheduled events, for apps written in Python.

The public API. Every name but ``__version__`` is imported on first use, so that
``fwsched --version`` and handler processes do not pay for the engine's imports
(not even for ``typing``: this module imports nothing at start-up).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy knows the name
if TYPE_CHECKING:
    from fwsched.engine import Simulator
    from fwsched.errors import AppError, FwschedError, StateError
    from fwsched.outcome import Outcome
    from fwsched.records import Invocation, Schedule
    from fwsched.sdk import DbError, RequestError, ScheduleError

__version__ = "0.1.0"

__all__ = [
    "AppError",
    "DbError",
    "FwschedError",
    "Invocation",
    "Outcome",
    "RequestError",
    "Schedule",
    "ScheduleError",
    "Simulator",
    "StateError",
    "__version__",
]

_HOME = {
    "AppError": "fwsched.errors",
    "FwschedError": "fwsched.errors",
    "StateError": "fwsched.errors",
    "Outcome": "fwsched.outcome",
    "ScheduleError": "fwsched.sdk",
    "DbError": "fwsched.sdk",
    "RequestError": "fwsched.sdk",
    "Simulator": "fwsched.engine",
    "Invocation": "fwsched.records",
    "Schedule": "fwsched.records",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'fwsched' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value
