"""Masking secrets: ``redact`` and the secret values of some iparams (``secrets_of``).

Kept apart from ``app`` (which re-exports both) so that the commands that only read
the state can mask what they print without loading the app machinery: json only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "****"


def secrets_of(values: Mapping[str, Any], secure: Iterable[str]) -> tuple[str, ...]:
    """The text of the secure ones of ``values``, longest first (so a secret that contains
    another is masked whole); a number counts by its digits."""
    names = set(secure)
    found = set()
    for name, value in values.items():
        if name in names:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if text and text != "null":
                found.add(text)
    return tuple(sorted(found, key=len, reverse=True))


# Where fwsched cuts a text at a cap: what stands before such a marker may be the first
# part of a secret, which whole-secret masking cannot see.
_CUT_MARKERS = ("\n[output truncated]", " [truncated]")
_REDACT_DEPTH = 200  # values are bounded far below this (jsonsafe.MAX_DEPTH); a backstop


def redact(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` with each of ``secrets`` replaced by ``****`` wherever it shows.

    Strings (dict keys too) at any depth; a number whose digits contain a secret
    becomes ``****``; the first part of a secret left at the end of a text that
    fwsched cut at a cap (``[output truncated]``) is masked too. The one function
    every display path and every stored record goes through.
    """
    if not secrets:
        return value

    def text(item: str) -> str:
        for secret in secrets:
            if secret in item:
                item = item.replace(secret, MASK)
        for marker in _CUT_MARKERS:
            if item.endswith(marker):
                head = item[: -len(marker)]
                for secret in secrets:
                    for size in range(len(secret) - 1, 0, -1):
                        if head.endswith(secret[:size]):
                            return head[:-size] + MASK + marker
        return item

    def scrub(item: Any, level: int) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, bool) or item is None:
            return item
        if isinstance(item, int | float):
            try:
                digits = repr(item)
            except ValueError:  # an integer too long to print: nobody reads it whole
                return item
            return MASK if any(secret in digits for secret in secrets) else item
        if level > _REDACT_DEPTH:
            return item
        if isinstance(item, list | tuple):
            return [scrub(x, level + 1) for x in item]
        if isinstance(item, dict):
            return {
                (text(k) if isinstance(k, str) else k): scrub(v, level + 1) for k, v in item.items()
            }
        return item

    return scrub(value, 0)
