"""SPEC §9's ``update``: what each action accepts, its attribute paths, and applying it.

``DbService.update`` (``db.py``) runs the table's checks in their order. Of those, the
per-action ones that need no stored value are ``check_attributes`` here; then
``APPLY[action]`` changes the value (a fresh copy of the stored one, or ``{}``) in place,
raising ``DbError`` when a path or a field does not fit it. ``is_number`` is the one rule
of what a number is, shared with ``set``'s ttl. The decisions where SPEC §9 is silent
(paths, what an absent field starts from, ...) are listed at the top of ``db.py``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import Any

from fwsched.sdk import DbError

__all__ = ["APPLY", "Step", "check_attributes", "is_number", "parse_path"]

BAD_INCREMENT = "The value passed to increment should be of type number"
BAD_APPEND = "The value passed to append should be of type array and should not be an empty array"
BAD_REMOVE = "The attributes object passed to remove action should be of type array"
BAD_PATH = "One or more paths in the attributes are invalid or overlapping with each other"
BLANK_PATH = "Keys or paths inside attributes object cannot be blank"


# -- checks ---------------------------------------------------------------------------------


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_attributes(action: str, attributes: Any) -> None:
    """The per-action rows of the table that need no stored value."""
    if action in ("increment", "append"):
        message = BAD_INCREMENT if action == "increment" else BAD_APPEND
        if not isinstance(attributes, dict):
            raise DbError(400, message)
        for field, amount in attributes.items():
            if not field.strip():
                raise DbError(400, BLANK_PATH)
            ok = is_number(amount) if action == "increment" else _is_nonempty_list(amount)
            if not ok:
                raise DbError(400, message)
    elif action == "set":
        if not isinstance(attributes, dict):
            raise DbError(400, BAD_PATH)
        if any(not path.strip() for path in attributes):
            raise DbError(422, BLANK_PATH)
    else:  # remove
        if not isinstance(attributes, list):
            raise DbError(400, BAD_REMOVE)
        if any(path is None or (isinstance(path, str) and not path.strip()) for path in attributes):
            raise DbError(422, BLANK_PATH)


def _is_nonempty_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0


# -- update actions -------------------------------------------------------------------------

Step = str | int
_HEAD = re.compile(r"[^.\[\]]+")
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: Any) -> tuple[Step, ...]:
    """``"a.b[2].c"`` as ``("a", "b", 2, "c")``; ``ValueError`` when it is not a path."""
    if not isinstance(path, str):
        raise ValueError(f"a path is text, not {type(path).__name__}")
    head = _HEAD.match(path)
    if head is None:
        raise ValueError(f"a path starts with a name: {path!r}")
    steps: list[Step] = [head.group()]
    pos = head.end()
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            raise ValueError(f"not a path: {path!r}")
        name, index = match.groups()
        steps.append(name if name is not None else int(index))
        pos = match.end()
    return tuple(steps)


def _parsed_paths(paths: list[Any]) -> list[tuple[Step, ...]]:
    """Every path parsed, none a prefix of (or equal to) another; else the path error."""
    try:
        parsed = [parse_path(path) for path in paths]
    except ValueError:
        raise DbError(400, BAD_PATH) from None
    for a, b in itertools.combinations(parsed, 2):
        short, long = (a, b) if len(a) <= len(b) else (b, a)
        if long[: len(short)] == short:
            raise DbError(400, BAD_PATH)
    return parsed


def _fits(node: Any, step: Step) -> bool:
    return isinstance(node, dict) if isinstance(step, str) else isinstance(node, list)


def _parent(root: dict[str, Any], steps: tuple[Step, ...]) -> Any:
    """The object or list that holds the final step, every step before it present."""
    node: Any = root
    for step in steps[:-1]:
        if not _fits(node, step):
            raise DbError(400, BAD_PATH)
        if isinstance(step, str):
            if step not in node:
                raise DbError(400, BAD_PATH)
        elif step >= len(node):
            raise DbError(400, BAD_PATH)
        node = node[step]
    if not _fits(node, steps[-1]):
        raise DbError(400, BAD_PATH)
    return node


def _apply_increment(value: dict[str, Any], attributes: dict[str, Any]) -> None:
    for field, amount in attributes.items():
        current = value.get(field)
        if current is None:
            value[field] = amount
        elif is_number(current):
            value[field] = current + amount
        else:
            raise DbError(400, BAD_INCREMENT)


def _apply_append(value: dict[str, Any], attributes: dict[str, Any]) -> None:
    for field, items in attributes.items():
        current = value.get(field)
        if current is None:
            value[field] = items
        elif isinstance(current, list):
            value[field] = current + items
        else:
            raise DbError(400, BAD_APPEND)


def _apply_set(value: dict[str, Any], attributes: dict[str, Any]) -> None:
    paths = list(attributes)
    parsed = _parsed_paths(paths)
    # Resolve every path against the value as it was, then write.
    targets = [(_parent(value, steps), steps[-1]) for steps in parsed]
    for (node, last), path in zip(targets, paths, strict=True):
        if isinstance(last, int) and last >= len(node):
            node.append(attributes[path])
        else:
            node[last] = attributes[path]


def _apply_remove(value: dict[str, Any], attributes: list[Any]) -> None:
    parsed = _parsed_paths(attributes)
    targets = [(_parent(value, steps), steps[-1]) for steps in parsed]
    by_list: dict[int, tuple[list[Any], list[int]]] = {}
    for node, last in targets:
        if isinstance(last, str):
            node.pop(last, None)
        else:
            by_list.setdefault(id(node), (node, []))[1].append(last)
    for items, indices in by_list.values():
        for index in sorted(indices, reverse=True):
            if index < len(items):
                del items[index]


APPLY: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "increment": _apply_increment,
    "append": _apply_append,
    "set": _apply_set,
    "remove": _apply_remove,
}
