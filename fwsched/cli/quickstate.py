"""The quick path's other source (``cli.quick``): the state file, read directly when no
runner listens and the full path would only read it too.

``from_state`` takes the state's lock as the Simulator does; checks the folder and the
files, that the app loads without errors (a verdict cached in ``.fwsched/app-check.json``),
the schema and each value read back; and builds the document ``operations`` would,
masked with the same ``redact``. Anything it does not expect raises ``quick.Defer`` and
the click command answers. Like ``quick``, it repeats a few
constants of other modules rather than import them (``tests/test_quick.py`` keeps them
equal).
"""

from __future__ import annotations

import os

from fwsched.cli.quick import OUTCOMES, Defer

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (as fwsched/__init__)
if TYPE_CHECKING:
    from typing import Any

SCHEMA = {  # schema.SCHEMA_VERSION and its tables' columns (a test keeps them in step)
    "meta": ("key", "value"),
    "schedules": (
        "name", "seq", "recurring", "data", "schedule_at", "at_us", "repeat", "next_fire_us",
    ),
    "invocations": (
        "id", "schedule", "source", "fire_at_us", "timestamp_ms", "outcome", "started_at_us",
        "duration_ms", "error", "traceback", "log", "return_value", "payload", "event",
        "render", "requests",
    ),
    "kv": ("key", "value", "expires_us"),
}  # fmt: skip
SCHEMA_VERSION = "3"
MAX_DEPTH = 64  # jsonsafe.MAX_DEPTH
CHECK_FILE = "app-check.json"
CHECK_FORMAT = 3  # 2 held the secrets' values: rewritten without them
SIDE_FILES = ("-wal", "-shm", "-journal")
SQLITE_HEADER = b"SQLite format 3\x00"


def from_state(root: str, folder: str, operation: str, arguments: dict[str, Any]) -> Any:
    """What ``operation`` answers from the state file; ``Defer`` unless all is as usual."""
    import fcntl
    import stat

    state = os.path.join(folder, "state.db")
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o077:
        raise Defer  # missing, a link, or to be made private by the full path
    lock = os.open(state + ".lock", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(lock).st_mode):
            raise Defer
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Defer from None  # another command: the full path waits for it
        os.ftruncate(lock, 0)  # statelock.StateLock: the owner's pid, for a busy message
        os.write(lock, str(os.getpid()).encode())
        _check_files(state)
        settings = _settings(root)
        return _read(root, state, operation, arguments, settings)
    finally:
        os.close(lock)  # releases the flock


def _check_files(state: str) -> None:
    """``statefile.check_files``, where the full path would change nothing: a regular private
    file with a header, writable, and no side file (a -wal is a killed owner's commits)."""
    import stat

    for suffix in SIDE_FILES:
        if os.path.lexists(state + suffix):
            raise Defer
    info = os.lstat(state)
    if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077 or info.st_size == 0:
        raise Defer
    if not (os.access(state, os.W_OK) and os.access(os.path.dirname(state), os.W_OK | os.X_OK)):
        raise Defer
    fd = os.open(state, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if os.read(fd, len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise Defer
    finally:
        os.close(fd)


# -- the app: checked once per version of its files --------------------------------------------


def _inputs(root: str, stubs_file: str | None) -> list[str]:
    """The files ``app.load_app`` reads (or looks for)."""
    names = [
        "manifest.json",
        "server.py",
        "fwsched.toml",
        os.path.join("config", "iparams.json"),
        os.path.join("config", "requests.json"),
    ]
    if stubs_file is not None:
        names.append(stubs_file)
    return [os.path.join(root, name) for name in names]


def _identity(paths: list[str]) -> list[Any]:
    identity: list[Any] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            identity.append(None)
        else:
            identity.append(
                [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
            )
    return identity


def _settings(root: str) -> tuple[dict[str, Any], frozenset[str]]:
    """fwsched.toml's iparams and which iparams are secure, what ``operations._secrets``
    masks with (``_read`` adds the installation's); ``Defer`` if the app does not load
    without errors (the full path says so).

    The check file holds only that verdict: the values are read here, each time, from the
    files the verdict is for (tomllib and json), and are never written anywhere.
    """
    import json

    from fwsched import __version__

    path = os.path.join(root, ".fwsched", CHECK_FILE)
    try:
        with open(path, encoding="utf-8", opener=_no_follow) as cached:
            check = json.load(cached)
        if (
            check["format"] != CHECK_FORMAT
            or check["version"] != __version__
            or type(check["ok"]) is not bool
            or check["identity"] != _identity(_inputs(root, check["stubs_file"]))
        ):
            raise ValueError("changed")
    except (OSError, ValueError, KeyError, TypeError):
        check = _check_app(root, path)
    if not check["ok"]:
        raise Defer  # the app has errors: the full command says which
    iparams, secure = _iparam_settings(root)
    if _identity(_inputs(root, check["stubs_file"])) != check["identity"]:
        raise Defer  # edited since it was checked: what was read may not be what loads
    return iparams, secure


def _iparam_settings(root: str) -> tuple[dict[str, Any], frozenset[str]]:
    """``load_app``'s ``iparams`` (fwsched.toml's ``[iparams]``) and ``secure_iparams``
    (config/iparams.json's definitions whose ``secure`` is ``true``), for an app known to
    load without errors. fwsched.toml is parsed only when some iparam is secure (tomllib
    costs start-up, and without a secure iparam nothing of it is masked)."""
    import json

    definitions: Any = {}
    declared = os.path.join(root, "config", "iparams.json")
    if os.path.isfile(declared):
        definitions = json.loads(_read_text(declared))
    if not isinstance(definitions, dict):
        raise Defer  # not what was checked: the full command
    secure = frozenset(
        name
        for name, definition in definitions.items()
        if isinstance(definition, dict) and definition.get("secure") is True  # app._flag
    )
    iparams: Any = {}
    config = os.path.join(root, "fwsched.toml")
    if secure and os.path.isfile(config):
        import tomllib

        iparams = tomllib.loads(_read_text(config)).get("iparams", {})
    if not isinstance(iparams, dict):
        raise Defer
    return iparams, secure


def _read_text(path: str) -> str:
    """``app._read_text``: utf-8, a BOM allowed."""
    with open(path, encoding="utf-8-sig") as file:
        return file.read()


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _check_app(root: str, path: str) -> dict[str, Any]:
    """Load the app as the Simulator does and remember whether it loads without errors
    (only that: no value from its settings)."""
    import json
    import tomllib

    from fwsched import __version__
    from fwsched.app import load_app

    stubs_file = None
    try:
        with open(os.path.join(root, "fwsched.toml"), "rb") as config:
            table = tomllib.load(config).get("request", {})
        if isinstance(table, dict) and isinstance(table.get("stubs_file"), str):
            stubs_file = table["stubs_file"]
    except (OSError, ValueError):
        pass
    identity = _identity(_inputs(root, stubs_file))  # before reading: an edit meanwhile misses
    try:
        spec = load_app(root)
    except Exception:  # the full command says why (an AppError, as a rule)
        spec = None
    check = {
        "format": CHECK_FORMAT,
        "version": __version__,
        "stubs_file": stubs_file,  # a path, so that its identity is part of the key
        "identity": identity,
        # False: the app does not load, and these files need not be read again
        "ok": spec is not None and not spec.errors,
    }
    temporary = f"{path}.{os.getpid()}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(check, out)
        os.replace(temporary, path)
    except OSError:
        try:  # noqa: SIM105
            os.unlink(temporary)
        except OSError:
            pass
    return check


# -- the state ----------------------------------------------------------------------------------


def _read(
    root: str,
    state: str,
    operation: str,
    arguments: dict[str, Any],
    settings: tuple[dict[str, Any], frozenset[str]],
) -> dict[str, Any]:
    import sqlite3

    # The full path's read-only look (``statefile.uri(path, immutable="1")``): changes no file.
    uri = f"file:{_quoted(os.path.abspath(state))}?vfs=unix-excl&immutable=1"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        _check_schema(conn)
        if conn.execute("SELECT 1 FROM invocations WHERE outcome = 'running' LIMIT 1").fetchone():
            raise Defer  # the full path records it interrupted
        meta = dict(_rows(conn, "SELECT key, value FROM meta"))
        now_us = meta.get("now_us")
        if type(now_us) is not str or not now_us.isascii() or not now_us.lstrip("-").isdigit():
            raise Defer
        # Store.get_now: the newest invocation's fire time when it is later than the clock.
        last = conn.execute("SELECT fire_at_us FROM invocations ORDER BY id DESC LIMIT 1")
        row = last.fetchone()
        if row is not None:
            meta["now_us"] = str(max(int(now_us), _integer(row[0])))
        install = meta.get("install_iparams")
        document = OPERATIONS[operation](conn, meta, state, root, arguments)
    finally:
        conn.close()
    installed = {} if install is None else _json(install, dict)
    iparams, secure = settings
    if not secure:
        return document
    from fwsched.redaction import redact, secrets_of

    # app.app_secrets: fwsched.toml's secure values and the installation's, longest first
    found = set(secrets_of(iparams, secure)) | set(secrets_of(installed, secure))
    masked = tuple(sorted(found, key=len, reverse=True))
    return redact(document, masked) if masked else document


_URI_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-~")


def _quoted(path: str) -> str:
    """``path`` percent-encoded for a file: URI (without importing urllib)."""
    return "".join(chr(b) if b in _URI_SAFE else f"%{b:02X}" for b in os.fsencode(path))


def _rows(conn: Any, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows, with a name stored as a BLOB (``jsonsafe.key``) as its string again."""
    rows = conn.execute(sql, parameters).fetchall()
    return [_unkeyed(row) if bytes in map(type, row) else row for row in rows]


def _unkeyed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    from fwsched import jsonsafe

    return tuple(jsonsafe.unkey(v) if type(v) is bytes else v for v in row)


def _check_schema(conn: Any) -> None:
    """``Store._check_before_writing``: the current schema, every table, the quick check."""
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None or row[0] != SCHEMA_VERSION:
        raise Defer  # an older state (the full path migrates it) or a foreign one
    for table, columns in SCHEMA.items():
        found = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})").fetchall())
        if found != columns:
            raise Defer
    if [r[0] for r in conn.execute("PRAGMA quick_check(3)").fetchall()] != ["ok"]:
        raise Defer


def _json(value: Any, kind: type | None = None) -> Any:
    """``statefile.json_value``: stored JSON, of ``kind``, no deeper than fwsched ever writes."""
    import json

    if type(value) is not str:
        raise Defer
    parsed = json.loads(value)
    if kind is not None and not isinstance(parsed, kind):
        raise Defer
    if value.count("[") + value.count("{") > MAX_DEPTH + 2:  # else it cannot be too deep
        from fwsched import jsonsafe

        if jsonsafe.too_deep(parsed, MAX_DEPTH + 2):
            raise Defer
    return parsed


def _integer(value: Any) -> int:
    if type(value) is not int:
        raise Defer
    return value


def _text(value: Any) -> str:
    if type(value) is not str:
        raise Defer
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _instant(us: Any) -> str:
    """``durations.format_instant(durations.from_epoch_us(us))``."""
    from datetime import UTC, datetime, timedelta

    u = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=_integer(us))
    text = f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
    millis = u.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def _status(
    conn: Any, meta: dict[str, Any], state: str, root: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """``operations._status``."""

    def count(sql: str, *parameters: Any) -> int:
        return int(conn.execute(sql, parameters).fetchone()[0])

    schedules = count("SELECT COUNT(*) FROM schedules WHERE recurring=?", 0) + count(
        "SELECT COUNT(*) FROM schedules WHERE recurring=?", 1
    )
    first = conn.execute("SELECT MIN(next_fire_us) FROM schedules").fetchone()[0]
    return {
        "app": root,
        "live": False,
        "now": _instant(int(meta["now_us"])),
        "schedules": schedules,
        "invocations": count("SELECT COUNT(*) FROM invocations"),
        "state_file": state,
        "relaxed": meta.get("relaxed") == "1",
        "installed": meta.get("installed") == "1",
        "next_fire_at": None if first is None else _instant(first),
    }


def _schedules(
    conn: Any, meta: dict[str, Any], state: str, root: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """``operations._schedules``: ``Store.entries`` as ``Schedule.to_json``."""
    rows = _rows(
        conn,
        "SELECT name, data, schedule_at, at_us, repeat, next_fire_us, seq FROM schedules "
        "ORDER BY next_fire_us, seq",
    )
    schedules = []
    for name, data, schedule_at, at_us, repeat, next_fire_us, seq in rows:
        _text(schedule_at)
        _integer(seq)
        schedules.append(
            {
                "name": _text(name),
                "kind": "one-time" if repeat is None else "recurring",
                "schedule_at": _instant(at_us),
                "next_fire_at": _instant(next_fire_us),
                "repeat": None if repeat is None else _repeat(_json(repeat, dict)),
                "data": _json(data, dict),
            }
        )
    return {
        "schedules": schedules,
        "now": _instant(int(meta["now_us"])),
        "relaxed": meta.get("relaxed") == "1",
    }


def _repeat(stored: dict[str, Any]) -> dict[str, Any]:
    """``Repeat.from_dict(stored).to_dict()``, its checks included."""
    zone = stored.get("timezone") or "UTC"
    frequency = stored.get("frequency")
    if (
        "time_unit" not in stored
        or stored["time_unit"] not in ("minutes", "hours", "days")
        or type(frequency) is not int
        or frequency < 1
    ):
        raise Defer
    if zone != "UTC":
        from fwsched.recurrence import known_timezone

        if not known_timezone(zone):
            raise Defer
    return {"time_unit": stored["time_unit"], "frequency": frequency, "timezone": zone}


_INVOCATION_COLUMNS = (
    "id, schedule, source, fire_at_us, timestamp_ms, outcome, started_at_us, duration_ms, "
    "error, traceback, log, return_value, payload, event, render, requests"
)


def _history(
    conn: Any, meta: dict[str, Any], state: str, root: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """``operations._history`` (its ``older`` is not printed with --json)."""
    clauses, parameters = ["id > ?", "outcome != ?"], [0, "running"]
    name, outcome, limit = arguments["name"], arguments["outcome"], arguments["limit"]
    if name is not None:
        if not name.isascii():
            from fwsched import jsonsafe

            name = jsonsafe.key(name)
        clauses.append("(schedule = ? OR event = ?)")
        parameters += [name, name]
    if outcome is not None:
        clauses.append("outcome = ?")
        parameters.append(outcome)
    sql = f"SELECT {_INVOCATION_COLUMNS} FROM invocations WHERE {' AND '.join(clauses)} "
    sql += "ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        parameters.append(min(limit, 2**63 - 1))
    invocations = [_invocation(row) for row in reversed(_rows(conn, sql, tuple(parameters)))]
    return {"invocations": invocations}


def _invocation(row: tuple[Any, ...]) -> dict[str, Any]:
    """``Store._invocation`` as ``Invocation.to_json``."""
    (id_, schedule, source, fire_at_us, timestamp_ms, outcome, started_at_us, duration_ms,
     error, traceback, log, return_value, payload, event, render, requests) = row  # fmt: skip
    if outcome not in OUTCOMES:
        raise Defer
    if duration_ms is not None and type(duration_ms) not in (int, float):
        raise Defer
    return {
        "id": _integer(id_),
        "schedule": _optional_text(schedule),
        "fire_at": _instant(fire_at_us),
        "timestamp": _integer(timestamp_ms),
        "outcome": outcome,
        "duration_ms": None if duration_ms is None else float(duration_ms),
        "error": _optional_text(error),
        "log": _text(log),
        "return_value": None if return_value is None else _json(return_value),
        "payload": _json(payload, dict),
        "traceback": _optional_text(traceback),
        "started_at": None if started_at_us is None else _instant(started_at_us),
        "source": _text(source),
        "event": _optional_text(event),
        "render": None if render is None else _json(render, dict),
        "requests": [] if requests is None else _json(requests, list),
    }


OPERATIONS = {"status": _status, "schedules": _schedules, "history": _history}
