"""SPEC §9: the pure core of ``db`` (fwsched.platform.db), over both storages."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fwsched.platform import db as dbmod
from fwsched.platform.db import (
    KV_SCHEMA,
    DbEntry,
    DbService,
    KvStorage,
    MemoryKv,
    SqliteKv,
)
from fwsched.platform.db_update import parse_path
from fwsched.sdk import DbError

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

MANDATORY = "Mandatory attributes (key or value) is missing"
BLANK_KEY = "The key cannot be blank"
KEY_TOO_LONG = "Key length should not exceed 30 characters"
BAD_VALUE = "The value cannot be blank and should be of type JSON"
VALUE_TOO_BIG = "The combined size of the key and value should not exceed 8KB"
BAD_TTL = "Time to live(ttl) should be of type float and a non-zero value"
BAD_SET_IF = 'setIf can only take two values: "exist" or "not_exist"'
SET_IF_FAILED = "The setIf conditional request failed"
NOT_FOUND = "Record not found"
BAD_ATTRIBUTES = "Attributes object cannot be empty and should be of type JSON or Array"
BAD_INCREMENT = "The value passed to increment should be of type number"
BAD_APPEND = "The value passed to append should be of type array and should not be an empty array"
BAD_REMOVE = "The attributes object passed to remove action should be of type array"
REMOVE_ABSENT = "The specified key for remove operation does not exist in the data store"
BAD_PATH = "One or more paths in the attributes are invalid or overlapping with each other"
ITEM_TOO_BIG = "Item size exceeded the maximum limit of 8 KB"
BLANK_PATH = "Keys or paths inside attributes object cannot be blank"


class Clock:
    """The simulated clock, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def sqlite_storage() -> SqliteKv:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(KV_SCHEMA)
    return SqliteKv(conn)


STORAGES: dict[str, Callable[[], KvStorage]] = {"memory": MemoryKv, "sqlite": sqlite_storage}


@pytest.fixture(params=sorted(STORAGES))
def storage(request: pytest.FixtureRequest) -> KvStorage:
    return STORAGES[request.param]()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(storage: KvStorage, clock: Clock) -> DbService:
    return DbService(storage, clock)


def snapshot(storage: KvStorage) -> dict[str, Any]:
    stored = storage.keys()  # a storage method, not a dict's
    return {key: storage.get_raw(key) for key in stored}


def fails(call: Callable[[], object], status: int, message: str) -> None:
    with pytest.raises(DbError) as info:
        call()
    assert (info.value.status, info.value.message) == (status, message)
    assert str(info.value) == message


def sized(total: int) -> dict[str, Any]:
    """A value whose compact UTF-8 JSON is exactly ``total`` bytes."""
    return {"a": "x" * (total - len('{"a":""}'))}


# -- DbError --------------------------------------------------------------------------------


def test_db_error_has_the_shape_of_schedule_error() -> None:
    err = DbError(404, NOT_FOUND)
    assert (err.status, err.message, str(err)) == (404, NOT_FOUND, NOT_FOUND)
    assert err.to_dict() == {"status": 404, "message": NOT_FOUND}
    assert dbmod.DbError is DbError


# -- the answers of SPEC §9's example -------------------------------------------------------


def test_the_spec_example(db: DbService) -> None:
    assert db.set("cursor", {"last_id": 42}) == {"Created": True}
    assert db.set("lock", {"by": "sync"}, ttl=60, set_if="not_exist") == {"Created": True}
    assert db.set("lock2", {"by": "sync"}, {"ttl": 60, "setIf": "not_exist"}) == {"Created": True}
    assert db.get("cursor") == {"last_id": 42}
    assert db.update("cursor", "increment", {"runs": 1}) == {"Updated": True}
    assert db.get("cursor") == {"last_id": 42, "runs": 1}
    assert db.delete("cursor") == {"Deleted": True}
    fails(lambda: db.get("cursor"), 404, NOT_FOUND)
    assert db.keys() == ["lock", "lock2"]


def test_set_replaces_the_whole_value(db: DbService) -> None:
    db.set("k", {"a": 1, "b": 2})
    db.set("k", {"c": 3})
    assert db.get("k") == {"c": 3}


def test_delete_of_an_absent_key_succeeds(db: DbService) -> None:
    assert db.delete("never") == {"Deleted": True}


def test_get_returns_a_copy(db: DbService) -> None:
    value = {"a": [1]}
    db.set("k", value)
    value["a"].append(2)
    db.get("k")["a"].append(3)
    assert db.get("k") == {"a": [1]}


# -- every row of the table, in order -------------------------------------------------------

# fmt: off
ROWS: list[tuple[str, Callable[[DbService], object], int, str]] = [
    # all: key missing or falsy; for set, value missing or falsy
    ("set no args", lambda d: d.set(), 400, MANDATORY),
    ("set key None", lambda d: d.set(None, {"a": 1}), 400, MANDATORY),
    ("set key empty", lambda d: d.set("", {"a": 1}), 400, MANDATORY),
    ("set key 0", lambda d: d.set(0, {"a": 1}), 400, MANDATORY),
    ("set key False", lambda d: d.set(False, {"a": 1}), 400, MANDATORY),
    ("set key True", lambda d: d.set(True, {"a": 1}), 400, MANDATORY),
    ("set key a list", lambda d: d.set(["k"], {"a": 1}), 400, MANDATORY),
    ("set value missing", lambda d: d.set("k"), 400, MANDATORY),
    ("set value empty string", lambda d: d.set("k", ""), 400, MANDATORY),
    ("set value 0", lambda d: d.set("k", 0), 400, MANDATORY),
    ("set value False", lambda d: d.set("k", False), 400, MANDATORY),
    ("set value NaN", lambda d: d.set("k", math.nan), 400, MANDATORY),
    ("get key missing", lambda d: d.get(), 400, MANDATORY),
    ("get key empty", lambda d: d.get(""), 400, MANDATORY),
    ("delete key None", lambda d: d.delete(None), 400, MANDATORY),
    ("update key missing", lambda d: d.update(None, "set", {"a": 1}), 400, MANDATORY),
    # set: key blank
    ("set key spaces", lambda d: d.set("   ", {"a": 1}), 400, BLANK_KEY),
    ("set key whitespace", lambda d: d.set(" \t\n", {"a": 1}), 400, BLANK_KEY),
    ("update key spaces", lambda d: d.update("  ", "increment", {"a": 1}), 400, BLANK_KEY),
    # set: key or a top-level key of the value longer than 30
    ("set key 31", lambda d: d.set("k" * 31, {"a": 1}), 400, KEY_TOO_LONG),
    ("set value key 31", lambda d: d.set("k", {"a" * 31: 1}), 400, KEY_TOO_LONG),
    ("set key 16 emoji", lambda d: d.set("\U0001f600" * 16, {"a": 1}), 400, KEY_TOO_LONG),
    ("update key 31", lambda d: d.update("k" * 31, "increment", {"a": 1}), 400, KEY_TOO_LONG),
    ("update field 31", lambda d: d.update("k", "increment", {"a" * 31: 1}), 400, KEY_TOO_LONG),
    ("update path 31", lambda d: d.update("k", "set", {"a." + "b" * 29: 1}), 400, KEY_TOO_LONG),
    # set: value {} / blank
    ("set value {}", lambda d: d.set("k", {}), 400, BAD_VALUE),
    ("set value []", lambda d: d.set("k", []), 400, BAD_VALUE),
    # set: value not a dict
    ("set value text", lambda d: d.set("k", "text"), 422, BAD_VALUE),
    ("set value spaces", lambda d: d.set("k", "   "), 422, BAD_VALUE),
    ("set value number", lambda d: d.set("k", 5), 422, BAD_VALUE),
    ("set value True", lambda d: d.set("k", True), 422, BAD_VALUE),
    ("set value list", lambda d: d.set("k", [1, 2]), 422, BAD_VALUE),
    ("set value not JSON", lambda d: d.set("k", {"a": {1, 2}}), 422, BAD_VALUE),
    # set: value larger than 8 KB
    ("set value 8193 bytes", lambda d: d.set("k", sized(8193)), 400, VALUE_TOO_BIG),
    # set: unknown option
    ("set option dict", lambda d: d.set("k", {"a": 1}, {"foo": 1}), 400, "Invalid option foo inside options"),
    ("set option keyword", lambda d: d.set("k", {"a": 1}, foo=1), 400, "Invalid option foo inside options"),
    ("set option None keyword", lambda d: d.set("k", {"a": 1}, foo=None), 400, "Invalid option foo inside options"),
    ("set options not a dict", lambda d: d.set("k", {"a": 1}, 60), 400, "Invalid option 60 inside options"),
    ("set options a list", lambda d: d.set("k", {"a": 1}, ["ttl"]), 400, 'Invalid option ["ttl"] inside options'),
    # set: ttl not a positive number
    ("ttl 0", lambda d: d.set("k", {"a": 1}, ttl=0), 400, BAD_TTL),
    ("ttl negative", lambda d: d.set("k", {"a": 1}, {"ttl": -1}), 400, BAD_TTL),
    ("ttl text", lambda d: d.set("k", {"a": 1}, {"ttl": "60"}), 400, BAD_TTL),
    ("ttl null in dict", lambda d: d.set("k", {"a": 1}, {"ttl": None}), 400, BAD_TTL),
    ("ttl True", lambda d: d.set("k", {"a": 1}, ttl=True), 400, BAD_TTL),
    ("ttl NaN", lambda d: d.set("k", {"a": 1}, ttl=math.nan), 400, BAD_TTL),
    ("ttl Infinity", lambda d: d.set("k", {"a": 1}, ttl=math.inf), 400, BAD_TTL),
    # set: set_if not exist/not_exist
    ("setIf other", lambda d: d.set("k", {"a": 1}, set_if="maybe"), 422, BAD_SET_IF),
    ("setIf case", lambda d: d.set("k", {"a": 1}, {"setIf": "Exist"}), 422, BAD_SET_IF),
    ("setIf null in dict", lambda d: d.set("k", {"a": 1}, {"setIf": None}), 422, BAD_SET_IF),
    ("setIf number", lambda d: d.set("k", {"a": 1}, setIf=1), 422, BAD_SET_IF),
    # set: an empty key inside the value (the FDK's rule)
    ("set value empty key", lambda d: d.set("k", {"a": {"": 1}}), 400, MANDATORY),
    # set: set_if condition fails
    ("setIf exist on absent", lambda d: d.set("absent", {"a": 1}, set_if="exist"), 400, SET_IF_FAILED),
    ("setIf not_exist on present", lambda d: d.set("present", {"a": 1}, set_if="not_exist"), 400, SET_IF_FAILED),
    # get: absent
    ("get absent", lambda d: d.get("absent"), 404, NOT_FOUND),
    ("get blank", lambda d: d.get("   "), 404, NOT_FOUND),
    # update: action
    ("action unknown", lambda d: d.update("k", "multiply", {"a": 1}), 400, "Invalid action multiply for update"),
    ("action case", lambda d: d.update("k", "Increment", {"a": 1}), 400, "Invalid action Increment for update"),
    ("action missing", lambda d: d.update("k"), 400, "Invalid action null for update"),
    # update: attributes empty or not a dict/list
    ("attributes missing", lambda d: d.update("k", "set"), 400, BAD_ATTRIBUTES),
    ("attributes {}", lambda d: d.update("k", "increment", {}), 400, BAD_ATTRIBUTES),
    ("attributes []", lambda d: d.update("k", "remove", []), 400, BAD_ATTRIBUTES),
    ("attributes text", lambda d: d.update("k", "set", "a"), 400, BAD_ATTRIBUTES),
    ("attributes number", lambda d: d.update("k", "increment", 5), 400, BAD_ATTRIBUTES),
    ("attributes not JSON", lambda d: d.update("k", "set", {"a": object()}), 400, BAD_ATTRIBUTES),
    # update: increment value not a number
    ("increment text", lambda d: d.update("k", "increment", {"n": "1"}), 400, BAD_INCREMENT),
    ("increment bool", lambda d: d.update("k", "increment", {"n": True}), 400, BAD_INCREMENT),
    ("increment null", lambda d: d.update("k", "increment", {"n": None}), 400, BAD_INCREMENT),
    ("increment NaN", lambda d: d.update("k", "increment", {"n": math.nan}), 400, BAD_INCREMENT),
    ("increment a list", lambda d: d.update("k", "increment", [1]), 400, BAD_INCREMENT),
    ("increment into text", lambda d: d.update("present", "increment", {"s": 1}), 400, BAD_INCREMENT),
    ("increment into bool", lambda d: d.update("present", "increment", {"t": 1}), 400, BAD_INCREMENT),
    ("increment blank name", lambda d: d.update("k", "increment", {" ": 1}), 400, BLANK_PATH),
    # update: append value not a non-empty list
    ("append empty list", lambda d: d.update("k", "append", {"l": []}), 400, BAD_APPEND),
    ("append number", lambda d: d.update("k", "append", {"l": 1}), 400, BAD_APPEND),
    ("append a list", lambda d: d.update("k", "append", [[1]]), 400, BAD_APPEND),
    ("append into number", lambda d: d.update("present", "append", {"n": [1]}), 400, BAD_APPEND),
    ("append blank name", lambda d: d.update("k", "append", {"": [1]}), 400, BLANK_PATH),
    # update: remove attributes not a list
    ("remove a dict", lambda d: d.update("present", "remove", {"a": 1}), 400, BAD_REMOVE),
    ("remove blank path", lambda d: d.update("present", "remove", ["  "]), 422, BLANK_PATH),
    ("set blank path", lambda d: d.update("present", "set", {"": 1}), 422, BLANK_PATH),
    # update: remove on an absent key
    ("remove absent key", lambda d: d.update("absent", "remove", ["a"]), 400, REMOVE_ABSENT),
    # update: set or remove path through a missing or non-object step
    ("set through missing", lambda d: d.update("present", "set", {"x.y": 1}), 400, BAD_PATH),
    ("set through number", lambda d: d.update("present", "set", {"n.y": 1}), 400, BAD_PATH),
    ("set through null", lambda d: d.update("present", "set", {"z.y": 1}), 400, BAD_PATH),
    ("set index on object", lambda d: d.update("present", "set", {"o[0]": 1}), 400, BAD_PATH),
    ("set name on list", lambda d: d.update("present", "set", {"l.x": 1}), 400, BAD_PATH),
    ("set index past end mid-path", lambda d: d.update("present", "set", {"l[9].x": 1}), 400, BAD_PATH),
    ("set overlapping", lambda d: d.update("present", "set", {"o": {}, "o.b": 1}), 400, BAD_PATH),
    ("set unparsable", lambda d: d.update("present", "set", {"a..b": 1}), 400, BAD_PATH),
    ("set bad index", lambda d: d.update("present", "set", {"l[x]": 1}), 400, BAD_PATH),
    ("set open bracket", lambda d: d.update("present", "set", {"l[": 1}), 400, BAD_PATH),
    ("set a list", lambda d: d.update("present", "set", ["a"]), 400, BAD_PATH),
    ("set absent key nested", lambda d: d.update("absent", "set", {"a.b": 1}), 400, BAD_PATH),
    ("remove through missing", lambda d: d.update("present", "remove", ["x.y"]), 400, BAD_PATH),
    ("remove through number", lambda d: d.update("present", "remove", ["n.y"]), 400, BAD_PATH),
    ("remove index on object", lambda d: d.update("present", "remove", ["o[0]"]), 400, BAD_PATH),
    ("remove twice", lambda d: d.update("present", "remove", ["n", "n"]), 400, BAD_PATH),
    ("remove leading index", lambda d: d.update("present", "remove", ["[0]"]), 400, BAD_PATH),
    ("remove not text", lambda d: d.update("present", "remove", [5]), 400, BAD_PATH),
    # update: result larger than 8 KB
    ("update result 8193", lambda d: d.update("present", "set", {"big": "x" * 8200}), 400, ITEM_TOO_BIG),
    ("update empty key inside", lambda d: d.update("present", "set", {"q": {"": 1}}), 400, MANDATORY),
]
# fmt: on

PRESENT = {"s": "text", "n": 1, "z": None, "o": {"a": 1}, "l": [1, 2], "t": True}


@pytest.mark.parametrize(
    ("call", "status", "message"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_table_row(
    db: DbService,
    storage: KvStorage,
    call: Callable[[DbService], object],
    status: int,
    message: str,
) -> None:
    db.set("present", PRESENT)
    before = snapshot(storage)
    fails(lambda: call(db), status, message)
    assert snapshot(storage) == before  # a failed call changes nothing


# When a call breaks several rules, the first row of the table answers.
# fmt: off
FIRST_ROW_WINS: list[tuple[str, Callable[[DbService], object], int, str]] = [
    ("falsy key before blank value", lambda d: d.set("", {}), 400, MANDATORY),
    ("blank key before its length", lambda d: d.set(" " * 31, {"a": 1}), 400, BLANK_KEY),
    ("blank key before blank value", lambda d: d.set("  ", {}), 400, BLANK_KEY),
    ("length before blank value", lambda d: d.set("k" * 31, []), 400, KEY_TOO_LONG),
    ("length before not a dict", lambda d: d.set("k" * 31, "text"), 400, KEY_TOO_LONG),
    ("not a dict before options", lambda d: d.set("k", "text", {"foo": 1}), 422, BAD_VALUE),
    ("size before options", lambda d: d.set("k", sized(9000), {"foo": 1}), 400, VALUE_TOO_BIG),
    ("unknown option before ttl", lambda d: d.set("k", {"a": 1}, {"ttl": -1, "foo": 1}), 400, "Invalid option foo inside options"),
    ("ttl before setIf", lambda d: d.set("k", {"a": 1}, {"setIf": "x", "ttl": -1}), 400, BAD_TTL),
    ("setIf value before condition", lambda d: d.set("present", {"a": 1}, set_if="x"), 422, BAD_SET_IF),
    ("empty key before condition", lambda d: d.set("present", {"": 1}, set_if="not_exist"), 400, MANDATORY),
    ("update key before action", lambda d: d.update("", "bogus", {}), 400, MANDATORY),
    ("update length before action", lambda d: d.update("k" * 31, "bogus", {}), 400, KEY_TOO_LONG),
    ("action before attributes", lambda d: d.update("k", "bogus", {}), 400, "Invalid action bogus for update"),
    ("attributes before values", lambda d: d.update("k", "increment", "x"), 400, BAD_ATTRIBUTES),
    ("remove type before absent key", lambda d: d.update("absent", "remove", {"a": 1}), 400, BAD_REMOVE),
    ("absent key before path", lambda d: d.update("absent", "remove", ["a..b"]), 400, REMOVE_ABSENT),
    ("path before size", lambda d: d.update("present", "set", {"x.y": 1, "big": "x" * 9000}), 400, BAD_PATH),
    ("existing type before size", lambda d: d.update("present", "append", {"n": [1], "b": ["x" * 9000]}), 400, BAD_APPEND),
]
# fmt: on


@pytest.mark.parametrize(
    ("call", "status", "message"),
    [r[1:] for r in FIRST_ROW_WINS],
    ids=[r[0] for r in FIRST_ROW_WINS],
)
def test_first_row_wins(
    db: DbService,
    storage: KvStorage,
    call: Callable[[DbService], object],
    status: int,
    message: str,
) -> None:
    db.set("present", PRESENT)
    before = snapshot(storage)
    fails(lambda: call(db), status, message)
    assert snapshot(storage) == before


# -- keys and their limits ------------------------------------------------------------------


def test_key_and_value_key_lengths_at_the_boundary(db: DbService) -> None:
    assert db.set("k" * 30, {"a" * 30: 1}) == {"Created": True}
    assert db.get("k" * 30) == {"a" * 30: 1}
    # lengths are UTF-16 code units, as in JavaScript: 15 emoji are 30 of them
    assert db.set("\U0001f600" * 15, {"é" * 30: 1}) == {"Created": True}
    fails(lambda: db.set("\U0001f600" * 15 + "a", {"a": 1}), 400, KEY_TOO_LONG)


def test_numeric_keys_are_their_decimal_text(db: DbService) -> None:
    db.set(42, {"a": 1})
    assert db.get("42") == {"a": 1}
    assert db.get(42.0) == {"a": 1}
    db.update(42, "increment", {"a": 1})
    assert db.delete("42") == {"Deleted": True}
    fails(lambda: db.get(42), 404, NOT_FOUND)


def test_a_long_key_is_merely_absent_for_get_and_delete(db: DbService) -> None:
    fails(lambda: db.get("k" * 40), 404, NOT_FOUND)
    assert db.delete("k" * 40) == {"Deleted": True}


# -- sizes ----------------------------------------------------------------------------------


def test_value_size_boundary(db: DbService) -> None:
    assert db.set("k", sized(8192)) == {"Created": True}
    fails(lambda: db.set("k", sized(8193)), 400, VALUE_TOO_BIG)
    assert db.get("k") == sized(8192)


def test_value_size_counts_utf8_bytes(db: DbService) -> None:
    base = len('{"a":""}')
    assert db.set("k", {"a": "é" * ((8192 - base) // 2)}) == {"Created": True}
    fails(lambda: db.set("k", {"a": "é" * ((8192 - base) // 2 + 1)}), 400, VALUE_TOO_BIG)


def test_value_size_counts_nan_as_null(db: DbService) -> None:
    overhead = len('{"n":null,"a":""}')
    assert db.set("k", {"n": math.nan, "a": "x" * (8192 - overhead)}) == {"Created": True}
    fails(lambda: db.set("k", {"n": math.nan, "a": "x" * (8193 - overhead)}), 400, VALUE_TOO_BIG)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_limit(db: DbService) -> None:
    assert db.set("k", {"a": nested(31)}) == {"Created": True}  # 32 levels with the value
    fails(lambda: db.set("k", {"a": nested(32)}), 422, BAD_VALUE)
    fails(lambda: db.set("k", {"a": nested(5000)}), 422, BAD_VALUE)
    fails(lambda: db.update("k", "set", {"b": nested(32)}), 400, BAD_ATTRIBUTES)
    db.set("k", {"o": {}})
    fails(lambda: db.update("k", "set", {"o.p": nested(31)}), 400, ITEM_TOO_BIG)
    assert db.update("k", "set", {"o.p": nested(30)}) == {"Updated": True}


def test_update_result_size_boundary(db: DbService) -> None:
    db.set("k", {"a": "x"})
    assert db.update("k", "set", {"a": sized(8192)["a"]}) == {"Updated": True}
    assert db.get("k") == sized(8192)
    fails(lambda: db.update("k", "set", {"a": sized(8193)["a"]}), 400, ITEM_TOO_BIG)
    fails(lambda: db.update("k", "append", {"l": [1]}), 400, ITEM_TOO_BIG)
    assert db.get("k") == sized(8192)


# -- null-ing -------------------------------------------------------------------------------


def test_empty_strings_nan_and_infinity_become_null(db: DbService) -> None:
    db.set(
        "k",
        {
            "empty": "",
            "nan": math.nan,
            "inf": math.inf,
            "ninf": -math.inf,
            "space": " ",
            "zero": 0,
            "deep": {"list": ["", 1.5, math.nan, {"x": ""}], "f": False},
        },
    )
    assert db.get("k") == {
        "empty": None,
        "nan": None,
        "inf": None,
        "ninf": None,
        "space": " ",
        "zero": 0,
        "deep": {"list": [None, 1.5, None, {"x": None}], "f": False},
    }


def test_updates_null_empty_strings_too(db: DbService) -> None:
    db.update("k", "append", {"l": ["", "a"]})
    db.update("k", "set", {"s": "", "n": math.inf})
    assert db.get("k") == {"l": [None, "a"], "s": None, "n": None}


# -- options, both spellings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {"ttl": 60, "set_if": "not_exist"}),
        (({"ttl": 60, "setIf": "not_exist"},), {}),
        ((), {"options": {"ttl": 60, "setIf": "not_exist"}}),
        (({"ttl": 60, "set_if": "not_exist"},), {}),
        ((), {"ttl": 60, "setIf": "not_exist"}),
        (({"setIf": "not_exist"},), {"ttl": 60}),
        (({"ttl": 1, "setIf": "exist"},), {"ttl": 60, "set_if": "not_exist"}),  # keywords win
        (({"ttl": 60, "setIf": "not_exist"},), {"ttl": None, "set_if": None}),  # None: not given
    ],
)
def test_option_spellings(
    db: DbService, clock: Clock, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    assert db.set("lock", {"by": "a"}, *args, **kwargs) == {"Created": True}
    fails(lambda: db.set("lock", {"by": "b"}, *args, **kwargs), 400, SET_IF_FAILED)
    assert db.get("lock") == {"by": "a"}
    clock.advance(60)
    fails(lambda: db.get("lock"), 404, NOT_FOUND)
    assert db.set("lock", {"by": "c"}, *args, **kwargs) == {"Created": True}


def test_set_if_exist(db: DbService) -> None:
    fails(lambda: db.set("k", {"v": 1}, set_if="exist"), 400, SET_IF_FAILED)
    db.set("k", {"v": 1})
    assert db.set("k", {"v": 2}, {"setIf": "exist"}) == {"Created": True}
    assert db.get("k") == {"v": 2}


def test_empty_options_and_none_keywords(db: DbService, clock: Clock) -> None:
    assert db.set("k", {"v": 1}, {}) == {"Created": True}
    assert db.set("k", {"v": 2}, setIf=None, ttl=None, set_if=None) == {"Created": True}
    clock.advance(10**6)
    assert db.get("k") == {"v": 2}


# -- ttl in simulated time ------------------------------------------------------------------


def test_ttl_expires_in_simulated_time(db: DbService, clock: Clock) -> None:
    db.set("k", {"v": 1}, ttl=60)
    clock.advance(59.999999)
    assert db.get("k") == {"v": 1}
    assert db.keys() == ["k"]
    clock.advance(0.000001)
    fails(lambda: db.get("k"), 404, NOT_FOUND)
    assert db.keys() == []


def test_fractional_ttl(db: DbService, clock: Clock) -> None:
    db.set("k", {"v": 1}, ttl=0.5)
    clock.advance(0.4)
    assert db.get("k") == {"v": 1}
    clock.advance(0.1)
    fails(lambda: db.get("k"), 404, NOT_FOUND)


def test_huge_ttl_is_clamped(db: DbService) -> None:
    db.set("k", {"v": 1}, ttl=1e300)
    [entry] = db.entries()
    assert entry.expires_at == datetime.max.replace(tzinfo=UTC)
    assert db.get("k") == {"v": 1}


def test_set_if_treats_an_expired_key_as_absent(db: DbService, clock: Clock) -> None:
    db.set("k", {"v": 1}, ttl=10)
    clock.advance(10)
    fails(lambda: db.set("k", {"v": 2}, set_if="exist"), 400, SET_IF_FAILED)
    assert db.set("k", {"v": 3}, set_if="not_exist") == {"Created": True}
    assert db.get("k") == {"v": 3}
    clock.advance(10**6)
    assert db.get("k") == {"v": 3}  # the new set had no ttl


def test_set_without_ttl_clears_the_expiry(db: DbService, clock: Clock) -> None:
    db.set("k", {"v": 1}, ttl=10)
    db.set("k", {"v": 2})
    clock.advance(3600)
    assert db.get("k") == {"v": 2}


def test_update_keeps_the_expiry(db: DbService, clock: Clock) -> None:
    db.set("k", {"n": 1}, ttl=10)
    clock.advance(5)
    db.update("k", "increment", {"n": 1})
    assert db.get("k") == {"n": 2}
    clock.advance(5)
    fails(lambda: db.get("k"), 404, NOT_FOUND)


def test_update_of_an_expired_key_starts_afresh(db: DbService, clock: Clock) -> None:
    db.set("k", {"n": 5, "other": 1}, ttl=10)
    clock.advance(10)
    db.update("k", "increment", {"n": 1})
    assert db.get("k") == {"n": 1}
    clock.advance(10**6)
    assert db.get("k") == {"n": 1}  # created by update: no expiry
    db.set("gone", {"a": 1}, ttl=1)
    clock.advance(1)
    fails(lambda: db.update("gone", "remove", ["a"]), 400, REMOVE_ABSENT)


def test_entries_clear_and_expired_keys(db: DbService, clock: Clock, storage: KvStorage) -> None:
    db.set("b", {"v": "é"}, ttl=90)
    db.set("a", {"v": 1})
    db.set("c", {"v": 1}, ttl=1)
    clock.advance(1)
    assert db.entries() == [
        DbEntry("a", len('{"v":1}'), None),
        DbEntry("b", len('{"v":"é"}'.encode()), START + timedelta(seconds=90)),
    ]
    assert [e.to_dict() for e in db.entries()] == [
        {"key": "a", "bytes": 7, "expires_at": None},
        {"key": "b", "bytes": 10, "expires_at": "2026-01-05T09:01:30Z"},
    ]
    assert db.clear() == 2  # live keys; the expired one goes too
    assert storage.keys() == []


# -- update actions -------------------------------------------------------------------------


def test_increment(db: DbService) -> None:
    db.set("k", {"n": 1, "f": 1.5, "z": None, "s": "x"})
    db.update("k", "increment", {"n": 2, "f": 1, "z": 3, "new": -4})
    assert db.get("k") == {"n": 3, "f": 2.5, "z": 3, "s": "x", "new": -4}


def test_increment_creates_an_absent_key(db: DbService) -> None:
    assert db.update("runs", "increment", {"count": 1}) == {"Updated": True}
    db.update("runs", "increment", {"count": 1})
    assert db.get("runs") == {"count": 2}


def test_append(db: DbService) -> None:
    db.set("k", {"l": [1], "z": None})
    db.update("k", "append", {"l": [2, {"a": 3}], "z": ["a"], "new": [[1]]})
    assert db.get("k") == {"l": [1, 2, {"a": 3}], "z": ["a"], "new": [[1]]}


def test_append_creates_an_absent_key(db: DbService) -> None:
    db.update("pending", "append", {"ids": [1, 2]})
    db.update("pending", "append", {"ids": [3]})
    assert db.get("pending") == {"ids": [1, 2, 3]}


def test_set_with_paths(db: DbService) -> None:
    db.set("k", {"a": {"b": {"c": 1}}, "items": [0, 1, 2], "m": [[1, 2], [3]], "t": 1})
    db.update(
        "k",
        "set",
        {
            "a.b.c": 2,
            "a.b.d": {"e": 1},
            "items[2]": "two",
            "m[0][1]": 20,
            "m[1][5]": 4,
            "t": {"new": True},
            "top": [1],
        },
    )
    assert db.get("k") == {
        "a": {"b": {"c": 2, "d": {"e": 1}}},
        "items": [0, 1, "two"],
        "m": [[1, 20], [3, 4]],
        "t": {"new": True},
        "top": [1],
    }


def test_set_past_the_end_appends(db: DbService) -> None:
    db.set("k", {"items": [0]})
    db.update("k", "set", {"items[1]": 1})
    db.update("k", "set", {"items[9]": 9})
    assert db.get("k") == {"items": [0, 1, 9]}


def test_set_paths_resolve_against_the_value_before_the_call(db: DbService) -> None:
    db.set("k", {"items": [0]})
    # items[1] does not exist before the call, though items[5] would append it
    fails(lambda: db.update("k", "set", {"items[5]": {}, "items[1].x": 1}), 400, BAD_PATH)
    assert db.get("k") == {"items": [0]}


def test_set_creates_an_absent_key(db: DbService) -> None:
    db.update("k", "set", {"a": 1, "b": {"c": 2}})
    assert db.get("k") == {"a": 1, "b": {"c": 2}}


def test_set_on_dotted_name_fields(db: DbService) -> None:
    db.set("k", {"o": {"0": "zero"}})
    db.update("k", "set", {"o.0": "cero"})
    assert db.get("k") == {"o": {"0": "cero"}}


def test_remove(db: DbService) -> None:
    db.set(
        "k", {"a": {"b": 1, "c": 2}, "items": [0, 1, 2, 3], "keep": 1, "objs": [{"x": 1}, {"x": 2}]}
    )
    db.update(
        "k",
        "remove",
        ["a.b", "items[1]", "items[3]", "absent", "a.absent", "items[9]", "objs[1].x", "objs[0]"],
    )
    assert db.get("k") == {"a": {"c": 2}, "items": [0, 2], "keep": 1, "objs": [{}]}


def test_remove_everything_leaves_an_empty_value(db: DbService) -> None:
    db.set("k", {"a": 1})
    assert db.update("k", "remove", ["a"]) == {"Updated": True}
    assert db.get("k") == {}
    assert db.keys() == ["k"]


def test_update_ignores_a_fourth_options_argument(db: DbService) -> None:
    db.update("k", "set", {"a": 1}, {"setIf": "exist"})
    assert db.get("k") == {"a": 1}


# -- call(): what a handler's proxy forwards ------------------------------------------------


def test_call_dispatches_positional_and_keyword_arguments(db: DbService, clock: Clock) -> None:
    assert db.call("set", ["k", {"a": 1}, {"ttl": 60}]) == {"Created": True}
    assert db.call("set", ["k2", {"a": 1}], {"ttl": 60, "set_if": "not_exist"}) == {"Created": True}
    assert db.call("set", [], {"key": "k3", "value": {"a": 1}}) == {"Created": True}
    assert db.call("get", ["k"]) == {"a": 1}
    assert db.call("update", ["k", "increment", {"a": 1}]) == {"Updated": True}
    assert db.call("update", [], {"key": "k", "action": "set", "attributes": {"b": 1}}) == {
        "Updated": True
    }
    assert db.call("get", [], {"key": "k"}) == {"a": 2, "b": 1}
    assert db.call("delete", ["k"]) == {"Deleted": True}
    with pytest.raises(DbError) as info:
        db.call("get", ["k"])
    assert info.value.to_dict() == {"status": 404, "message": NOT_FOUND}
    clock.advance(60)
    assert db.call("get", ["k3"]) == {"a": 1}
    with pytest.raises(DbError):
        db.call("get", ["k2"])


def test_call_refuses_what_is_no_method(db: DbService) -> None:
    with pytest.raises(ValueError, match="db has no method 'keys'"):
        db.call("keys")
    with pytest.raises(ValueError, match="no method '_live'"):
        db.call("_live", ["k", 0])
    with pytest.raises(TypeError):
        db.call("get", ["a", "b"])
    with pytest.raises(TypeError):
        db.call("delete", [], {"ttl": 1})


# -- storages -------------------------------------------------------------------------------


def test_sqlite_storage_rows() -> None:
    kv = sqlite_storage()
    assert kv.get_raw("a") is None
    kv.put("b", '{"v":1}', None)
    kv.put("a", '{"v":2}', 123)
    kv.put("a", '{"v":3}', 456)
    assert kv.get_raw("a") == ('{"v":3}', 456)
    assert kv.keys() == ["a", "b"]
    kv.delete("a")
    kv.delete("absent")
    assert kv.keys() == ["b"]


def test_sqlite_storage_joins_the_callers_transaction(clock: Clock) -> None:
    kv = sqlite_storage()
    db = DbService(kv, clock)
    db.set("kept", {"v": 1})
    kv._conn.execute("BEGIN")
    db.set("k", {"v": 1})
    db.update("kept", "increment", {"v": 1})
    kv._conn.execute("ROLLBACK")
    assert db.keys() == ["kept"]
    assert db.get("kept") == {"v": 1}


def test_any_text_survives_sqlite(clock: Clock) -> None:
    db = DbService(sqlite_storage(), clock)
    value = {"s": "\ud800 lone surrogate, é, \U0001f600, \x00"}
    db.set("k", value)
    assert db.get("k") == value


# -- properties -----------------------------------------------------------------------------

# BMP only: a name of 30 characters is then 30 UTF-16 code units, within the limit
names = st.text(st.characters(codec="utf-8", max_codepoint=0xFFFF), min_size=1, max_size=30)
scalars = (
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=20,
)
records = st.dictionaries(names, json_values, min_size=1, max_size=5)


def nulled(value: Any) -> Any:
    if value == "" or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, dict):
        return {k: nulled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nulled(v) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(value=records)
def test_set_then_get_round_trips_modulo_nulls(value: dict[str, Any]) -> None:
    assume(dbmod._json_size(value) <= 8192 and not dbmod._has_empty_key(value))
    db = DbService(MemoryKv(), Clock())
    db.set("k", value)
    assert db.get("k") == nulled(value)


@settings(max_examples=150, deadline=None)
@given(value=json_values | st.tuples(json_values) | st.dictionaries(st.integers(), json_values))
def test_the_fast_plain_copy_is_what_json_gives(value: Any) -> None:
    """``_plain`` copies plain values itself and asks json for the rest: same result."""
    wrapped = {"v": value}
    copied = dbmod._plain(wrapped)
    assert repr(copied) == repr(json.loads(json.dumps(wrapped)))  # NaN == NaN here
    assert copied is not wrapped
    if isinstance(value, dict | list) and value:
        assert copied["v"] is not value


steps = st.lists(
    st.one_of(
        st.text(st.characters(exclude_characters=".[]"), min_size=1, max_size=5),
        st.integers(0, 99),
    ),
    min_size=1,
    max_size=5,
).filter(lambda s: isinstance(s[0], str))


@given(path_steps=steps)
def test_parse_path_round_trips(path_steps: list[str | int]) -> None:
    text = str(path_steps[0]) + "".join(
        f"[{s}]" if isinstance(s, int) else f".{s}" for s in path_steps[1:]
    )
    assert parse_path(text) == tuple(path_steps)


keys = st.sampled_from(["a", "b", "", "  ", None, 7, "k" * 31])
small = st.dictionaries(st.sampled_from(["x", "y", "", "l", "o"]), json_values, max_size=3)
paths = st.sampled_from(["x", "y", "l[0]", "l[3]", "o.x", "o.x.y", "x..y", "", "l.x"])
calls = st.one_of(
    st.tuples(st.just("get"), st.tuples(keys)),
    st.tuples(st.just("delete"), st.tuples(keys)),
    st.tuples(
        st.just("set"),
        st.tuples(
            keys,
            small | st.sampled_from([[], "v", 0, {"z": "x" * 9000}]),
            st.none()
            | st.fixed_dictionaries(
                {},
                optional={
                    "ttl": st.sampled_from([1, 0.5, 0, -1, "9"]),
                    "setIf": st.sampled_from(["exist", "not_exist", "x"]),
                    "foo": st.just(1),
                },
            ),
        ),
    ),
    st.tuples(
        st.just("update"),
        st.tuples(
            keys,
            st.sampled_from(["increment", "append", "set", "remove", "bogus"]),
            st.one_of(
                st.dictionaries(st.sampled_from(["x", "l", "n", " "]), json_values, max_size=3),
                st.dictionaries(paths, json_values, max_size=3),
                st.lists(paths, max_size=3),
                st.just({"big": "x" * 9000}),
            ),
        ),
    ),
)


def check_invariants(storage: KvStorage) -> None:
    stored = storage.keys()
    for key in stored:
        raw = storage.get_raw(key)
        assert raw is not None
        value = json.loads(raw[0])
        assert isinstance(value, dict)
        assert key.strip() and len(key) <= 30
        assert dbmod._json_size(value) <= 8192
        assert value == nulled(value)
        assert not dbmod._has_empty_key(value)


@settings(max_examples=200, deadline=None)
@given(script=st.lists(st.tuples(calls, st.integers(0, 2)), max_size=12))
def test_failed_calls_change_nothing(script: list[tuple[tuple[str, tuple[Any, ...]], int]]) -> None:
    storage = MemoryKv()
    clock = Clock()
    db = DbService(storage, clock)
    db.set("a", {"x": 1, "l": [1, 2], "o": {"x": {}}})
    for (method, args), seconds in script:
        clock.advance(seconds)
        before = snapshot(storage)
        try:
            db.call(method, args)
        except DbError:
            assert snapshot(storage) == before
        check_invariants(storage)
