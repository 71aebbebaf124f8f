"""JSON values from outside fwsched, kept usable: bounded in depth and storable as text.

Handlers, command lines and state files can hand fwsched any JSON value: one nested a
thousand levels deep (Python's recursion limit is about 1000 frames, and the C json
module counts against it too), strings with lone surrogates (valid JSON and valid
JavaScript strings, but not encodable as UTF-8, which SQLite and terminals want) or
integers of thousands of digits. These helpers keep every such value from taking
fwsched down:

- ``MAX_DEPTH`` bounds nesting everywhere: schedule data and event payloads deeper
  than it are refused, a handler's return value is cut at it (``TOO_DEEP`` marks each
  cut), and the parent treats a deeper value from a worker as a protocol violation.
  So no code path of fwsched ever recurses deeper than a few hundred frames.
- ``dumps`` writes JSON as ASCII (a lone surrogate becomes ``\\ud800``), ``text``
  makes any string storable as SQLite TEXT, ``key``/``unkey`` store a name exactly.

This module is imported by the sandbox worker: json only.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "TOO_DEEP",
    "cut_deep",
    "dumps",
    "key",
    "shown",
    "text",
    "too_deep",
    "unkey",
]

MAX_DEPTH = 64  # objects and lists inside each other ({"a": 1} is 1 deep)
TOO_DEEP = f"[cut: nested deeper than {MAX_DEPTH} levels]"

_ascii = json.JSONEncoder(separators=(",", ":"))


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` has objects or lists more than ``limit`` deep (iterative, any depth;
    it stops at the first path that is too deep, so a cyclic value answers True too)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def cut_deep(value: Any, limit: int = MAX_DEPTH) -> Any:
    """A copy of ``value`` whose objects and lists deeper than ``limit`` are ``TOO_DEEP``.

    Tuples become lists (as in JSON); other values are kept as they are. The recursion
    stops at ``limit``, however deep the value.
    """

    def cut(node: Any, level: int) -> Any:
        if isinstance(node, dict | list | tuple) and level > limit:
            return TOO_DEEP
        if isinstance(node, dict):
            return {k: cut(v, level + 1) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [cut(v, level + 1) for v in node]
        return node

    return cut(value, 1)


def dumps(value: Any) -> str:
    """Compact JSON in ASCII: any string fits in SQLite TEXT, and reads back the same."""
    return _ascii.encode(value)


def text(value: str) -> str:
    """``value`` as UTF-8 can carry it: a lone surrogate becomes its ``\\udXXX`` escape.

    For text that is only shown (logs, errors); names that must read back exactly
    go through ``key``.
    """
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def key(value: str) -> str | bytes:
    """A name as SQLite can store and compare it exactly: TEXT, or (only for a string
    with lone surrogates, which UTF-8 cannot carry) the BLOB of its surrogatepass bytes."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
    return value


def unkey(value: str | bytes) -> str:
    """The name ``key`` stored."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    return value


def shown(value: object, limit: int = 200) -> str:
    """``repr(value)`` for a message, at most ``limit`` characters; never fails (an
    integer too long to print, a value too deep, a broken ``__repr__``)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
