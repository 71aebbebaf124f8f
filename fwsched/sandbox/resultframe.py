"""The ``result`` frame a sandbox worker sends for an invocation, and how it reports errors.

A handler's return value travels as JSON, cut at ``jsonsafe.MAX_DEPTH`` levels
(each cut marked); a value that is not JSON, or too big to keep, travels as its
repr, cut at ``VALUE_CAP``. A handler's error is one line (``one_line``, or
``exit_error`` for ``sys.exit()``) and a traceback from the first frame of app
code (``user_traceback``); the worker reports a failed import of server.py in its
``loaded`` frame the same way, and a ``LoadProblem`` without a traceback.

Imported by the worker (worker.py): its imports are paid on every worker start, so
they stay light (os, fwsched.jsonsafe and protocol; traceback only when used).
"""

from __future__ import annotations

import os
from typing import Any

from fwsched import jsonsafe
from fwsched.sandbox import protocol

VALUE_CAP = 1024 * 1024  # bytes of a return value's JSON kept (then its repr, cut)
ERROR_CAP = 2000  # characters of the one-line error
CUT_NODES = 1_000_000  # objects and lists a deep return value may have while it is cut


class LoadProblem(Exception):
    """server.py imported but does not have the shape fwsched needs (no traceback)."""


def exit_error(exc: SystemExit) -> str:
    """The one-line error of a handler that raised ``SystemExit`` (``sys.exit()``)."""
    code = "" if exc.code is None else f"({exc.code!r})"
    return (
        f"SystemExit{code}: a handler must return (or raise an error), not exit; "
        "sys.exit() and exit() end a Python program, not a handler"
    )[:ERROR_CAP]


def result_frame(result: dict[str, Any]) -> bytes:
    """The ``result`` frame: the value as JSON, cut at ``jsonsafe.MAX_DEPTH`` levels (each
    cut marked); a value that is not JSON (or too big to keep) as its repr, cut."""
    value = result["value"]
    if isinstance(value, dict | list | tuple):  # breadth first, a level at a time
        shape = _shape(value)
        if shape == "huge":  # a value that shares its parts (v = [v, v], 200 times)
            result["value"] = (
                f"<{type(value).__name__} of more than {CUT_NODES:,} objects and values: "
                "not recorded>"
            )
        elif shape == "deep":
            result["value"] = jsonsafe.cut_deep(value)
    try:
        frame = protocol.encode_strict("result", result)
    except (TypeError, ValueError, RecursionError):
        frame = b""
    if frame and len(frame) <= VALUE_CAP:
        return frame
    text = protocol.safe_repr(value)
    if len(text) > VALUE_CAP:
        text = text[:VALUE_CAP] + protocol.CUT
    result["value"] = text
    return protocol.encode("result", result)


def _shape(value: Any) -> str:
    """ "deep" if ``value`` nests deeper than ``jsonsafe.MAX_DEPTH``, "huge" if its first
    ``MAX_DEPTH`` levels hold more than ``CUT_NODES`` objects and values, else "ok".

    Bounded work however the value is built, and it finds what would make the JSON
    encoder recurse too deep or run for ever, before the encoder runs."""
    limit = jsonsafe.MAX_DEPTH
    containers = (dict, list, tuple)
    visited = 0
    level_nodes: list[Any] = [value]
    for _ in range(limit):
        below: list[Any] = []
        for node in level_nodes:
            children = node.values() if isinstance(node, dict) else node
            visited += len(children)
            if visited > CUT_NODES:
                return "huge"
            below += [child for child in children if isinstance(child, containers)]
        if not below:
            return "ok"
        level_nodes = below
    return "deep" if level_nodes else "ok"


def one_line(exc: BaseException) -> str:
    """``<ExceptionType>: <message>``, on one line."""
    if isinstance(exc, LoadProblem):
        return str(exc)
    try:
        text = str(exc).strip()
    except Exception:
        text = "<exception str() failed>"
    first = text.splitlines()[0] if text else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= ERROR_CAP else line[:ERROR_CAP] + protocol.CUT


def user_traceback(exc: BaseException) -> str | None:
    """The traceback from the first frame of app code (fwsched's and asyncio's frames cut)."""
    if isinstance(exc, LoadProblem):
        return None
    import traceback

    tb = exc.__traceback__
    while tb is not None and _not_app_code(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except RecursionError:  # an exception chain thousands of causes long
        text = f"(the traceback could not be formatted: too deep)\n{one_line(exc)}\n"
    return text if len(text) <= VALUE_CAP else text[:VALUE_CAP] + protocol.CUT


_ASYNCIO_DIR = os.path.join(os.path.dirname(os.__file__), "asyncio", "")
_WORKER = os.path.join(os.path.dirname(__file__), "worker.py")  # Worker.run and load


def _not_app_code(filename: str) -> bool:
    return (
        filename == _WORKER
        or filename.startswith(_ASYNCIO_DIR)
        or filename.startswith("<frozen importlib")
    )
