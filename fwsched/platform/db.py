"""SPEC §9 as pure rules: the app's data storage (the platform's ``$db``).

``DbService`` checks every call against §9's table, in its order, and applies it to a
small key-value storage (``KvStorage``): ``MemoryKv`` for tests, ``SqliteKv`` over the
state file's ``kv`` table (``KV_SCHEMA``). Time is the simulated clock, read through the
``now`` callable, so fast-forwarding expires keys. Handlers (through the RPC), the library
(``sim.db``) and the command line (``fwsched db ...``) all go through ``DbService.call`` or
its methods, so there is one implementation of the rules and messages.
What each ``update`` action accepts, its attribute paths and applying it are in ``db_update``.

A call either fails before writing anything or makes exactly one storage write; the caller
runs it inside the store's transaction for crash safety.
"""

# Decisions where SPEC §9 is silent. The reference was the FDK's local `$db` (Freshworks' own
# simulator) where it answers, otherwise what a user would expect:
# - "falsy" is JavaScript's: None, False, 0, NaN and "". An empty dict or list is not falsy:
#   it gets "The value cannot be blank ..." (400) instead.
# - Keys are strings. An int key (or an integral float) becomes its decimal text, as in JS
#   (`db.set(42, v)` and `db.get("42")` are the same record); a bool, list or dict key is
#   "Mandatory attributes (key or value) is missing".
# - A blank key is empty or whitespace only. A blank value is an empty dict or list; a string,
#   number or bool value (even "   ") is "not of type JSON" (422).
# - Lengths count UTF-16 code units, as the platform's JavaScript does (an emoji counts 2).
# - 8 KB is 8192 bytes of compact UTF-8 JSON of the value alone, as given (NaN and Infinity
#   count as null): 8192 bytes pass, 8193 fail. An update's result is measured the same way,
#   after empty strings became null.
# - ttl is an int or float (not a bool, not a string), finite and > 0; fractions are kept to
#   the microsecond. A key expires when the simulated clock reaches set time + ttl: from that
#   instant it is absent everywhere (get 404, set_if, update, keys). `set` without ttl clears
#   an earlier expiry; `update` keeps the key's expiry; a key created by `update` never expires.
# - Options: keywords `ttl=`, `set_if=` (also `setIf=`) and/or a dict {"ttl", "setIf"} (also
#   "set_if"); keywords win. A keyword given as None means "not given"; a None inside the dict is
#   an invalid value, as in JS. Options that are not a dict: "Invalid option <options> inside
#   options". Every option name is checked before the ttl, then set_if (the table's order).
# - A value with an empty-string key anywhere inside is refused, 400 "Mandatory attributes (key
#   or value) is missing", as the FDK does, after the option checks; an update whose result
#   would hold one likewise.
# - update checks a blank or too long key as set does (increment can create the key). As in the
#   FDK, the names of a dict of attributes count as keys for the 30-character rule, so a `set`
#   path is at most 30 characters. An optional 4th argument (JS apps pass {setIf: "exist"}) is
#   accepted and ignored, as the FDK does.
# - A blank attribute name or path: "Keys or paths inside attributes object cannot be blank"
#   (the FDK's message), 400 for increment/append, 422 for set/remove.
# - increment needs finite numbers (not bools); append non-empty lists. A list of attributes gets
#   the action's value message (the path message for `set`). An existing field that is absent or
#   null starts from the attribute; one of another type (a string to increment, a non-list to
#   append) gets the action's value message, 400 (the FDK says "Mandatory attributes missing").
# - Paths are `name(.name|[index])*`: a name steps into an object, an index into a list. A path
#   that does not parse, steps through a missing field or the wrong type, or overlaps another of
#   the same call (one is a prefix of the other) gets the path message. `set` to an index at or
#   past the end of a list appends (as DynamoDB does: the platform's update and size messages are
#   DynamoDB's, so it likely sits behind `$db`; unconfirmed); `remove` of an absent
#   final key or an index past the end is a no-op; indices of one list are removed by their
#   positions before the call. `set` on an absent key creates it, starting from {}.
# - Every path is checked against the value before the call, so paths never depend on each other.
# - An update that removes every field leaves {} stored (get answers {}).
# - get and delete do no blank or length checks: such a key is simply absent (404 / Deleted).
# - Values are JSON: tuples become lists and non-string dict keys strings (as json.dumps does);
#   anything else (a set, a datetime) is "not of type JSON" (422 for set; the attributes message,
#   400, for update). So is a value nested deeper than 32 objects and lists (DynamoDB's limit,
#   which also keeps the simulator clear of Python's recursion limit); an update whose result
#   would be deeper gets the item size message.

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from fwsched import jsvalues
from fwsched.durations import format_instant, from_epoch_us, to_epoch_us
from fwsched.platform.db_update import APPLY, check_attributes, is_number
from fwsched.sdk import DbError

__all__ = [
    "KV_SCHEMA",
    "METHODS",
    "DbEntry",
    "DbError",
    "DbService",
    "KvStorage",
    "MemoryKv",
    "SqliteKv",
]

METHODS = ("get", "set", "update", "delete")
ACTIONS = ("increment", "append", "set", "remove")
SET_IF_VALUES = ("exist", "not_exist")
OPTION_NAMES = ("ttl", "setIf")
_OPTION_ALIASES = {"set_if": "setIf"}

MAX_KEY_LENGTH = 30
MAX_BYTES = 8 * 1024
MAX_DEPTH = 32  # nested objects and lists: DynamoDB's limit (see the decisions above)
# The latest expiry a datetime can show; a larger ttl is clamped to it.
MAX_EXPIRES_US = to_epoch_us(datetime.max.replace(tzinfo=UTC))

MANDATORY = "Mandatory attributes (key or value) is missing"
BLANK_KEY = "The key cannot be blank"
KEY_TOO_LONG = "Key length should not exceed 30 characters"
BAD_VALUE = "The value cannot be blank and should be of type JSON"
VALUE_TOO_BIG = "The combined size of the key and value should not exceed 8KB"
BAD_OPTION = "Invalid option {} inside options"
BAD_TTL = "Time to live(ttl) should be of type float and a non-zero value"
BAD_SET_IF = 'setIf can only take two values: "exist" or "not_exist"'
SET_IF_FAILED = "The setIf conditional request failed"
NOT_FOUND = "Record not found"
BAD_ACTION = "Invalid action {} for update"
BAD_ATTRIBUTES = "Attributes object cannot be empty and should be of type JSON or Array"
REMOVE_ABSENT = "The specified key for remove operation does not exist in the data store"
ITEM_TOO_BIG = "Item size exceeded the maximum limit of 8 KB"
# The messages of increment, append, remove and paths are db_update's, with their checks.

KV_SCHEMA = """
CREATE TABLE kv (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,              -- compact JSON (ASCII, escaped)
    expires_us  INTEGER                     -- simulated time it expires at, NULL for never
)
"""


# -- storage --------------------------------------------------------------------------------


class KvStorage(Protocol):
    """Where ``DbService`` keeps its records: raw JSON text and an expiry, nothing more.

    Expired records may still be here: ``DbService`` decides what is live.
    """

    def get_raw(self, key: str) -> tuple[str, int | None] | None:
        """``(value_json, expires_us)`` of ``key``, or None when there is no record."""
        ...

    def put(self, key: str, value_json: str, expires_us: int | None) -> None:
        """Create or replace the record of ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the record of ``key`` if there is one."""
        ...

    def keys(self) -> list[str]:
        """Every stored key (expired ones included), sorted."""
        ...


class MemoryKv:
    """A ``KvStorage`` in a dict, for tests and throwaway simulators."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, int | None]] = {}

    def get_raw(self, key: str) -> tuple[str, int | None] | None:
        return self._rows.get(key)

    def put(self, key: str, value_json: str, expires_us: int | None) -> None:
        self._rows[key] = (value_json, expires_us)

    def delete(self, key: str) -> None:
        self._rows.pop(key, None)

    def keys(self) -> list[str]:
        return sorted(self._rows)


class SqliteKv:
    """A ``KvStorage`` over the ``kv`` table (``KV_SCHEMA``) of an open connection.

    It runs single statements and never begins or commits a transaction: the caller owns
    those (the store's ``transaction()``), so a db call commits with the rest of its work.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get_raw(self, key: str) -> tuple[str, int | None] | None:
        row = self._conn.execute("SELECT value, expires_us FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else (cast(str, row[0]), cast("int | None", row[1]))

    def put(self, key: str, value_json: str, expires_us: int | None) -> None:
        self._conn.execute(
            "INSERT INTO kv (key, value, expires_us) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value, expires_us=excluded.expires_us",
            (key, value_json, expires_us),
        )

    def delete(self, key: str) -> None:
        self._conn.execute("DELETE FROM kv WHERE key=?", (key,))

    def keys(self) -> list[str]:
        return [cast(str, row[0]) for row in self._conn.execute("SELECT key FROM kv ORDER BY key")]


# -- the service ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DbEntry:
    """One live record, as ``fwsched db ls`` shows it."""

    key: str
    bytes: int  # compact UTF-8 JSON of the value
    expires_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        expires = None if self.expires_at is None else format_instant(self.expires_at)
        return {"key": self.key, "bytes": self.bytes, "expires_at": expires}


class DbService:
    """``$db`` for one app: ``get``, ``set``, ``update``, ``delete``, each returning the
    platform's answer or raising ``DbError``; plus ``keys``, ``entries`` and ``clear`` for
    the simulator itself."""

    def __init__(self, storage: KvStorage, now: Callable[[], datetime]) -> None:
        self._storage = storage
        self._now = now

    def call(
        self, method: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run ``method`` with what a handler's ``db`` proxy forwards (JSON-able arguments).

        A method that is not one of ``METHODS`` is a ``ValueError``; arguments that do not
        fit its signature a ``TypeError``, as calling it directly would be.
        """
        if method not in METHODS:
            raise ValueError(f"db has no method {method!r}; it has {', '.join(METHODS)}")
        bound: Callable[..., dict[str, Any]] = getattr(self, method)
        return bound(*args, **dict(kwargs or {}))

    # -- the platform's methods ---------------------------------------------------------------

    def get(self, key: Any = None) -> dict[str, Any]:
        name = _key_text(key)
        if name is None:
            raise DbError(400, MANDATORY)
        record = self._live(name, self._now_us())
        if record is None:
            raise DbError(404, NOT_FOUND)
        return record[0]

    def set(
        self,
        key: Any = None,
        value: Any = None,
        options: Any = None,
        *,
        ttl: Any = None,
        set_if: Any = None,
        **more_options: Any,
    ) -> dict[str, bool]:
        name = _key_text(key)
        if name is None or jsvalues.falsy(value):
            raise DbError(400, MANDATORY)
        if not name.strip():
            raise DbError(400, BLANK_KEY)
        if _too_long(name) or (isinstance(value, dict) and any(_too_long(str(k)) for k in value)):
            raise DbError(400, KEY_TOO_LONG)
        if isinstance(value, dict | list | tuple) and not value:
            raise DbError(400, BAD_VALUE)
        plain = _plain(value) if isinstance(value, dict) else _NOT_JSON
        if not isinstance(plain, dict):
            raise DbError(422, BAD_VALUE)
        if _json_size(plain) > MAX_BYTES:
            raise DbError(400, VALUE_TOO_BIG)
        ttl_seconds, condition = _set_options(options, ttl, set_if, more_options)
        if _has_empty_key(plain):
            raise DbError(400, MANDATORY)
        now_us = self._now_us()
        if condition is not None:
            exists = self._live(name, now_us) is not None
            if exists != (condition == "exist"):
                raise DbError(400, SET_IF_FAILED)
        expires_us = None
        if ttl_seconds is not None:
            expires_us = min(now_us + round(ttl_seconds * 1_000_000), MAX_EXPIRES_US)
        self._storage.put(name, _stored_text(_nulled(plain)), expires_us)
        return {"Created": True}

    def update(
        self, key: Any = None, action: Any = None, attributes: Any = None, options: Any = None
    ) -> dict[str, bool]:
        del options  # accepted for JS apps that pass {setIf: ...}; ignored, as in the FDK
        name = _key_text(key)
        if name is None:
            raise DbError(400, MANDATORY)
        if not name.strip():
            raise DbError(400, BLANK_KEY)
        if _too_long(name) or (
            isinstance(attributes, dict) and any(_too_long(str(k)) for k in attributes)
        ):
            raise DbError(400, KEY_TOO_LONG)
        if not isinstance(action, str) or action not in ACTIONS:
            raise DbError(400, BAD_ACTION.format(_shown(action)))
        if not isinstance(attributes, dict | list | tuple) or not attributes:
            raise DbError(400, BAD_ATTRIBUTES)
        plain = _plain(attributes)
        if plain is _NOT_JSON:
            raise DbError(400, BAD_ATTRIBUTES)
        check_attributes(action, plain)
        now_us = self._now_us()
        record = self._live(name, now_us)
        if record is None and action == "remove":
            raise DbError(400, REMOVE_ABSENT)
        value, expires_us = record if record is not None else ({}, None)
        APPLY[action](value, plain)
        result = _nulled(value)
        if _has_empty_key(result):
            raise DbError(400, MANDATORY)
        if _json_size(result) > MAX_BYTES or _depth(result) > MAX_DEPTH:
            raise DbError(400, ITEM_TOO_BIG)
        self._storage.put(name, _stored_text(result), expires_us)
        return {"Updated": True}

    def delete(self, key: Any = None) -> dict[str, bool]:
        name = _key_text(key)
        if name is None:
            raise DbError(400, MANDATORY)
        self._storage.delete(name)
        return {"Deleted": True}

    # -- the simulator's extras ---------------------------------------------------------------

    def keys(self) -> list[str]:
        """Every live key, sorted."""
        return [entry.key for entry in self.entries()]

    def entries(self) -> list[DbEntry]:
        """Every live record with its size and expiry, sorted by key."""
        now_us = self._now_us()
        found = []
        stored = self._storage.keys()  # a storage method, not a dict's
        for key in stored:
            raw = self._storage.get_raw(key)
            if raw is None or _expired(raw[1], now_us):
                continue
            expires = None if raw[1] is None else from_epoch_us(raw[1])
            found.append(DbEntry(key, _json_size(json.loads(raw[0])), expires))
        return found

    def clear(self) -> int:
        """Remove every record (expired ones too); the number of live keys removed."""
        live = len(self.keys())
        stored = self._storage.keys()
        for key in stored:
            self._storage.delete(key)
        return live

    # -- internals ---------------------------------------------------------------------------

    def _now_us(self) -> int:
        return to_epoch_us(self._now())

    def _live(self, key: str, now_us: int) -> tuple[dict[str, Any], int | None] | None:
        """The value (a fresh copy) and expiry of ``key``, or None when absent or expired."""
        raw = self._storage.get_raw(key)
        if raw is None or _expired(raw[1], now_us):
            return None
        return json.loads(raw[0]), raw[1]


# -- checks ---------------------------------------------------------------------------------


_NOT_JSON: Any = object()


def _expired(expires_us: int | None, now_us: int) -> bool:
    return expires_us is not None and now_us >= expires_us


def _key_text(key: Any) -> str | None:
    """The key as text (numbers as JS prints them), or None when it is missing or unusable."""
    if jsvalues.falsy(key):
        return None
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key) if -_INT_LIMIT < key < _INT_LIMIT else None  # too long to print
    if isinstance(key, float):
        return str(int(key)) if key.is_integer() else repr(key)
    return None


def _too_long(text: str) -> bool:
    # A character is one or two UTF-16 code units: most keys are decided by their length.
    if len(text) * 2 <= MAX_KEY_LENGTH:
        return False
    return len(text) > MAX_KEY_LENGTH or jsvalues.utf16_length(text) > MAX_KEY_LENGTH


def _shown(value: Any) -> str:
    """How a bad option or action appears in a message: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return repr(value)
    except Exception:  # an integer too long to print, a value too deep, a broken __repr__
        return f"<{type(value).__name__}>"


# Not int: one past ``_INT_LIMIT`` has more digits than Python prints (json.dumps refuses it).
_PLAIN_SCALARS = frozenset({str, float, bool, type(None)})
_INT_LIMIT = 10**4000
_SLOW: Any = object()


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data (a fresh copy), or ``_NOT_JSON`` (also when too deep)."""
    copied = _copy_plain(value, 1)
    if copied is not _SLOW:
        return copied
    try:
        plain = json.loads(json.dumps(value))
    except (TypeError, ValueError, RecursionError):
        return _NOT_JSON
    return plain if _depth(plain) <= MAX_DEPTH else _NOT_JSON


def _copy_plain(value: Any, level: int) -> Any:
    """A copy of ``value`` when it holds only dicts with str keys, lists and scalars of
    exactly JSON's types, at most ``MAX_DEPTH`` deep (what a handler's call brings); else
    ``_SLOW``, and ``_plain`` asks json. Either way the result is the same, this is faster."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind is int:
        return value if -_INT_LIMIT < value < _INT_LIMIT else _SLOW
    if level > MAX_DEPTH:
        return _SLOW
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                return _SLOW
            copied = item if type(item) in _PLAIN_SCALARS else _copy_plain(item, level + 1)
            if copied is _SLOW:
                return _SLOW
            out[key] = copied
        return out
    if kind is list:
        items: list[Any] = []
        for item in value:
            copied = item if type(item) in _PLAIN_SCALARS else _copy_plain(item, level + 1)
            if copied is _SLOW:
                return _SLOW
            items.append(copied)
        return items
    return _SLOW


def _depth(value: Any) -> int:
    """How many objects and lists deep ``value`` is ({"a": 1} is 1); iterative, any depth."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return value


def _nulled(value: Any) -> Any:
    """A copy of ``value`` with empty strings, NaN and ±Infinity as null (SPEC §9)."""
    if (isinstance(value, float) and not math.isfinite(value)) or value == "":
        return None
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled(v) for v in value]
    return value


# Made once: json.dumps builds an encoder per call for any non-default option.
_SIZE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_STORED_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _json_size(value: Any) -> int:
    """Bytes of compact UTF-8 JSON, as the platform measures (NaN and Infinity are null)."""
    try:
        text = _SIZE_ENCODER.encode(value)
    except ValueError:  # NaN or an infinity somewhere: measured as null
        text = _SIZE_ENCODER.encode(_finite_or_null(value))
    return len(text.encode("utf-8", "surrogatepass"))


def _stored_text(value: Any) -> str:
    # ASCII so that any string (even a lone surrogate) fits in SQLite's UTF-8 text.
    return _STORED_ENCODER.encode(value)


def _has_empty_key(value: Any) -> bool:
    if isinstance(value, dict):
        return "" in value or any(_has_empty_key(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_empty_key(v) for v in value)
    return False


def _set_options(
    options: Any, ttl: Any, set_if: Any, more: Mapping[str, Any]
) -> tuple[float | None, str | None]:
    """The checked ttl and setIf of a ``set``, from the options dict and the keywords."""
    if options is None and ttl is None and set_if is None and not more:
        return None, None  # the usual set: no options at all
    if options is not None and not isinstance(options, dict):
        raise DbError(400, BAD_OPTION.format(_shown(options)))
    given: dict[Any, Any] = {}
    for name, value in (options or {}).items():
        given[_OPTION_ALIASES.get(name, name)] = value
    for name, value in more.items():
        if value is not None or _OPTION_ALIASES.get(name, name) not in OPTION_NAMES:
            given[_OPTION_ALIASES.get(name, name)] = value
    if ttl is not None:
        given["ttl"] = ttl
    if set_if is not None:
        given["setIf"] = set_if
    for name in given:
        if name not in OPTION_NAMES:
            raise DbError(400, BAD_OPTION.format(_shown(name)))
    seconds = None
    if "ttl" in given:
        seconds = given["ttl"]
        if not is_number(seconds) or seconds <= 0:
            raise DbError(400, BAD_TTL)
    condition = given.get("setIf")
    if "setIf" in given and (not isinstance(condition, str) or condition not in SET_IF_VALUES):
        raise DbError(422, BAD_SET_IF)
    return (None if seconds is None else float(seconds)), condition
