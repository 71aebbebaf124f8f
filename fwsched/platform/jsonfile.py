"""JSON files that fwsched reads for the app (requests.json, stubs files), with positions.

Messages about them name the file, and the line and column: of the syntax error, or of
the member (a template, a stub) that is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fwsched.errors import AppError

__all__ = ["json_member_positions", "read_json_file"]


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - text.rfind("\n", 0, pos)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def json_member_positions(text: str) -> dict[Any, tuple[int, int]]:
    """1-based (line, column) of each top-level member of a valid JSON object or array.

    Keys of an object (where the key starts), indexes of an array (where the item
    starts). ``text`` must already have parsed; anything else gives what was found.
    """
    decoder = json.JSONDecoder()
    positions: dict[Any, tuple[int, int]] = {}
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] not in "{[":
        return positions
    is_object = text[pos] == "{"
    pos = _skip_ws(text, pos + 1)
    index = 0
    try:
        while pos < len(text) and text[pos] not in "}]":
            start = pos
            key: Any = index
            if is_object:
                key, pos = decoder.raw_decode(text, pos)
                pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past the ':'
            _, pos = decoder.raw_decode(text, pos)
            positions[key] = _line_col(text, start)
            index += 1
            pos = _skip_ws(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos = _skip_ws(text, pos + 1)
    except json.JSONDecodeError:
        pass
    return positions


def read_json_file(path: Path, label: str) -> tuple[Any, str]:
    """(value, text) of a JSON file; ``AppError`` naming ``label``, line and column if bad."""
    try:
        # utf-8-sig: editors on Windows like to start JSON files with a BOM.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AppError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise AppError(f"{label}: cannot be read: {exc.strerror or exc}") from None
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        raise AppError(
            f"{label}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
