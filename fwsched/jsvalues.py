"""How the platform's JavaScript sees Python values, where fwsched must answer as it does.

The platform judges values the JavaScript way: ``{}`` and ``[]`` are true there (unlike
Python), string length counts UTF-16 code units, and messages name JSON types.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["falsy", "type_name", "utf16_length"]


def falsy(value: Any) -> bool:
    """JavaScript's falsy values as they reach Python: None, False, 0, NaN and ``""``."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return value == ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0 or math.isnan(value)
    return False


def utf16_length(text: str) -> int:
    """JavaScript's ``String.length``: a character outside the BMP (an emoji) counts 2."""
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def type_name(value: Any) -> str:
    """How a JSON value is named in messages ("an object", "an array", "null", ...)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__
