"""The sandbox: the only way app code ever runs (in worker processes, never in fwsched's own).

``Sandbox`` (pool.py) is the parent side; worker.py is the child side; protocol.py
is what travels between them. The names below are imported on first use, so a
worker importing ``fwsched.sandbox.worker`` does not pay for the parent's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fwsched.sandbox.pool import Isolation, RpcHandler, Sandbox, Services
    from fwsched.sandbox.protocol import Opaque
    from fwsched.sandbox.result import LoadReport, RunResult

__all__ = ["Isolation", "LoadReport", "Opaque", "RpcHandler", "RunResult", "Sandbox", "Services"]

_HOME = {
    "Isolation": "pool",
    "RpcHandler": "pool",
    "Sandbox": "pool",
    "Services": "pool",
    "Opaque": "protocol",
    "LoadReport": "result",
    "RunResult": "result",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'fwsched.sandbox' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"fwsched.sandbox.{module}"), name)
