"""The state file as SQLite: a connection that trusts nothing it reads or is handed.

``store.Store`` keeps fwsched's state through it. Any string binds (one SQLite could not
store exactly travels as a BLOB, ``jsonsafe.key``), every SQLite failure becomes a one-line
``StateError`` that names the file and what to do, every value read back is checked for
what fwsched writes there, and links or odd files in the state's folder are refused
rather than followed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from fwsched import jsonsafe
from fwsched.errors import StateBusyError, StateError

# SQLite's unix VFS that holds an exclusive lock on the file (only this process uses
# it, on any number of connections) and keeps the WAL index in heap memory, not in a
# -shm file mapped into memory, which anyone truncating it would turn into SIGBUS.
VFS = "unix-excl"
SQLITE_HEADER = b"SQLite format 3\x00"
SIDE_FILES = ("-wal", "-shm", "-journal")
RESET_HINT = "run `fwsched reset` to start over (this deletes schedules and history)"
INT64 = (-(2**63), 2**63 - 1)


def corrupt_error(label: str, detail: object) -> StateError:
    return StateError(
        f"{label}: the state file is corrupt or not a fwsched state file ({detail}); {RESET_HINT}"
    )


def state_error(label: str, exc: BaseException) -> StateError:
    """What an SQLite failure on the state file means for the user, as one line."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc) or type(exc).__name__
    if code == getattr(sqlite3, "SQLITE_READONLY_DBMOVED", 1032):
        return StateError(
            f"{label}: the state file was deleted or moved while fwsched had it open "
            f"({text}); start again, and {RESET_HINT} if it is gone"
        )
    if primary == sqlite3.SQLITE_READONLY:
        return StateError(
            f"{label}: the state file is read-only ({text}); fwsched can show it but not "
            "change it: fix the permissions of the file and of its folder"
        )
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StateBusyError(f"{label} is in use by another process ({text}); stop it first")
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
        return StateError(
            f"{label}: cannot open the state file ({text}); check the permissions of the "
            f"file and of its folder, or {RESET_HINT}"
        )
    if primary == sqlite3.SQLITE_FULL:
        return StateError(f"{label}: the disk is full ({text}); free some space and retry")
    if primary == sqlite3.SQLITE_IOERR:
        return StateError(
            f"{label}: reading or writing the state file failed ({text}); if it was changed "
            f"from outside, {RESET_HINT}"
        )
    return corrupt_error(label, text)


# What a value read from the file raises when it is not as fwsched wrote it.
READ_ERRORS = (ValueError, TypeError, KeyError, OverflowError, RecursionError, AttributeError)


def unreadable(label: str, exc: Exception) -> StateError:
    return corrupt_error(label, f"a stored value does not read back: {type(exc).__name__}: {exc}")


@contextmanager
def reading(label: str) -> Iterator[None]:
    """Values read from the file are checked, not trusted: one that does not read back
    as fwsched writes it means the file was changed from outside."""
    try:
        yield
    except READ_ERRORS as exc:
        raise unreadable(label, exc) from None


def bindable(parameters: Any) -> Any:
    """Parameters with every string SQLite can store exactly (``jsonsafe.key``)."""
    if isinstance(parameters, tuple | list):
        for parameter in parameters:  # the usual case: nothing to change, no copy
            if type(parameter) is str and not parameter.isascii():
                return tuple(jsonsafe.key(p) if type(p) is str else p for p in parameters)
    return parameters


def checked_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row with the strings that were stored as BLOBs (``bindable``) as strings again."""
    for value in row:
        if type(value) is bytes:
            return tuple(jsonsafe.unkey(v) if type(v) is bytes else v for v in row)
    return row


class _Cursor(sqlite3.Cursor):
    """Rows are read lazily: a failure while stepping names the file too."""

    def _failed(self, exc: Exception) -> StateError:
        with suppress(sqlite3.Error):
            self.close()  # its statement must not keep the connection from closing cleanly
        connection = self.connection
        label = connection.label if isinstance(connection, Connection) else "state"
        if isinstance(exc, UnicodeError):
            return corrupt_error(label, exc)
        return state_error(label, exc)

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except (sqlite3.Error, UnicodeError) as exc:
            raise self._failed(exc) from None

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except (sqlite3.Error, UnicodeError) as exc:
            raise self._failed(exc) from None

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except (sqlite3.Error, UnicodeError) as exc:
            raise self._failed(exc) from None


class Connection(sqlite3.Connection):
    """A connection to a state: any string binds, any failure is a ``StateError``."""

    label = ":memory:"

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        # Connection.execute would make a plain cursor; cursor() takes our row_factory.
        cursor = self.cursor(_Cursor)
        try:
            cursor.execute(sql, bindable(parameters))
        except (sqlite3.Error, UnicodeError) as exc:  # the first row is stepped to at once
            raise cursor._failed(exc) from None
        return cursor


def connect(target: str, label: str, *, uri: bool = False, timeout: float = 5.0) -> Connection:
    try:
        conn = sqlite3.connect(
            target,
            uri=uri,
            isolation_level=None,
            timeout=timeout,
            check_same_thread=False,
            factory=Connection,
        )
    except sqlite3.Error as exc:
        raise state_error(label, exc) from None
    conn.label = label
    conn.row_factory = checked_row
    return conn


def uri(path: Path, **query: str) -> str:
    parameters = "&".join(f"{key}={value}" for key, value in {"vfs": VFS, **query}.items())
    return f"{path.absolute().as_uri()}?{parameters}"


def refuse_link_or_odd(path: Path) -> os.stat_result | None:
    """``path``'s lstat, or None if it does not exist; a link or a non-file is refused."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(
            f"{path}: cannot be read ({exc.strerror or exc}); fix the permissions of its folder"
        ) from None
    if stat.S_ISLNK(info.st_mode):
        raise StateError(
            f"{path} is a symbolic link: fwsched does not follow links in its state folder "
            "(a cloned repository can ship one); remove it, or run `fwsched reset`"
        )
    if not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise StateError(f"{path} is a directory, not a state file: remove it")
        raise StateError(
            f"{path} is not a regular file, not a state file; remove it, or run `fwsched reset`"
        )
    return info


def prepare_folder(directory: Path) -> None:
    """The state's folder: created private (0700); a link or a non-folder is refused."""
    try:
        info = directory.lstat()
    except FileNotFoundError:
        try:
            directory.mkdir(parents=True, mode=0o700)
        except FileExistsError:  # made meanwhile by another fwsched: checked below
            pass
        except OSError as exc:
            raise StateError(
                f"{directory}: cannot create the state folder ({exc.strerror or exc}); "
                "fix the permissions of the app directory"
            ) from None
        info = directory.lstat()
    except OSError as exc:
        raise StateError(f"{directory}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISLNK(info.st_mode):
        raise StateError(
            f"{directory} is a symbolic link: fwsched does not follow links to its state "
            "(a cloned repository can ship one); remove it"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(f"{directory} is not a folder; remove it so fwsched can keep its state")
    if directory.name == ".fwsched" and info.st_mode & 0o077:
        with suppress(OSError):
            directory.chmod(0o700)  # an older fwsched made it readable by others


def make_private(path: Path, info: os.stat_result) -> None:
    if info.st_mode & 0o077:
        with suppress(OSError):
            os.chmod(path, 0o600, follow_symlinks=False)


# -- reading values back: each one checked for what fwsched writes there ----------------------


def int_value(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def float_value(value: Any) -> float:
    if type(value) not in (int, float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def str_value(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def optional(check: Any, value: Any) -> Any:
    return None if value is None else check(value)


def json_value(value: Any, kind: type | None = None) -> Any:
    """Stored JSON text, at most ``jsonsafe.MAX_DEPTH`` deep (deeper is never written)."""
    text = str_value(value)
    parsed = json.loads(text)
    if kind is not None and not isinstance(parsed, kind):
        raise TypeError(f"expected a JSON {kind.__name__}, got {type(parsed).__name__}")
    limit = jsonsafe.MAX_DEPTH + 2  # + the payload's and the record's wrappers
    # Counting brackets is cheap; only a text with many is looked at level by level.
    if text.count("[") + text.count("{") > limit and jsonsafe.too_deep(parsed, limit):
        raise ValueError("a value nested deeper than fwsched ever stores")
    return parsed


def check_files(path: Path, kept: bool) -> bool:
    """Check the files before SQLite opens them; True if only reading is possible.

    A fresh state is created here, empty and private (0600).
    """
    prepare_folder(path.parent)
    side = {suffix: refuse_link_or_odd(path.with_name(path.name + suffix)) for suffix in SIDE_FILES}
    info = refuse_link_or_odd(path)
    if info is None or info.st_size == 0:
        if kept or side["-wal"] is not None:
            what = "missing" if info is None else "empty"
            raise StateError(
                f"{path} is {what}, but the files beside it show that a state was kept "
                f"there: it was deleted or truncated (by a handler?); {RESET_HINT}"
            )
        if info is None:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
            except OSError as exc:
                raise StateError(
                    f"{path}: cannot create the state file ({exc.strerror or exc}); "
                    "fix the permissions of its folder"
                ) from None
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            header = os.read(fd, len(SQLITE_HEADER))
        finally:
            os.close(fd)
    except OSError as exc:
        raise StateError(
            f"{path}: cannot read the state file ({exc.strerror or exc}); fix its permissions"
        ) from None
    if header != SQLITE_HEADER:
        raise corrupt_error(str(path), "no SQLite header")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
    wal = side["-wal"]
    if wal is not None:
        writable = writable and os.access(path.with_name(path.name + "-wal"), os.W_OK)
    if writable:
        make_private(path, info)
        if wal is not None:
            make_private(path.with_name(path.name + "-wal"), wal)
    return not writable
