"""Durable state: the simulated clock, the schedules and the invocation history, in SQLite.

One file per app (``<app>/.fwsched/state.db``, WAL journal) or a private
in-memory database. The schema is versioned (``fwsched.schema``): opening an
older file upgrades it, and a newer or foreign file is refused with an error that
names the file and ``fwsched reset`` — nothing is ever overwritten silently.

Times are stored as integer microseconds since the epoch (UTC), which keeps the
"next due occurrence" query a plain indexed range scan.

The file is not trusted (a handler runs with the user's permissions, a repository
can ship anything in ``.fwsched/``): it is opened only if it and its side files
are regular files, not links; a state that is missing or empty where the lock file
shows one was kept is an error, not a fresh start; every SQLite failure and every
value that does not read back as written becomes a ``StateError`` that names the
file and what to do (the connection, the checks of the files and of values read back
are ``fwsched.statefile``'s; the invocations table is ``fwsched.invocations``'). SQLite's ``unix-excl`` VFS keeps the WAL index in memory
instead of a shared ``-shm`` file, whose truncation by another process would kill
this one with SIGBUS; and a file that cannot be written is opened read-only, so
the commands that only read still work.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from fwsched import jsonsafe, schema
from fwsched.durations import from_epoch_us, to_epoch_us
from fwsched.errors import StateError
from fwsched.invocations import LAST_FIRE_SQL, InvocationRecords
from fwsched.platform.db import SqliteKv
from fwsched.records import Invocation, Schedule, ScheduleKind
from fwsched.recurrence import Repeat
from fwsched.rules import ScheduleSpec
from fwsched.schema import SCHEMA_VERSION
from fwsched.statefile import (
    READ_ERRORS,
    RESET_HINT,
    check_files,
    connect,
    int_value,
    json_value,
    reading,
    str_value,
    unreadable,
    uri,
)

_UNREAD = object()  # a cached value not read yet


def _dumps(value: Any) -> str:
    return jsonsafe.dumps(value)  # ASCII: a lone surrogate in a value is stored escaped


@dataclass(frozen=True)
class Entry:
    """A stored schedule: the validated spec plus where it stands in time."""

    spec: ScheduleSpec
    next_fire_at: datetime
    seq: int

    def public(self) -> Schedule:
        repeat = self.spec.repeat
        return Schedule(
            name=self.spec.name,
            kind=self.spec.kind,
            schedule_at=self.spec.at,
            next_fire_at=self.next_fire_at,
            repeat=repeat.to_dict() if repeat else None,
            data=self.spec.data,
        )


class _Transaction:
    """``Store.transaction()``: a plain context manager, not a generator one, because an
    advance enters two per occurrence (a generator one costs three times as much)."""

    __slots__ = ("_outer", "_store")

    def __init__(self, store: Store) -> None:
        self._store = store
        self._outer = False

    def __enter__(self) -> None:
        store = self._store
        if store._conn.in_transaction:
            return  # joins the outer one, which commits or rolls back
        store._check_identity()
        # Read-only: reads still work in it, a write fails with the read-only StateError.
        store._conn.execute("BEGIN" if store.read_only else "BEGIN IMMEDIATE")
        self._outer = True

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if not self._outer:
            return
        if kind is None:
            self._store._conn.execute("COMMIT")
        else:
            self._store._rolled_back()


class Store(InvocationRecords):
    """All reads and writes of one state database. Not thread-safe: one owner at a time."""

    def __init__(self, conn: sqlite3.Connection, label: str, *, read_only: bool = False) -> None:
        self._conn = conn
        self.label = label  # the file path, or ":memory:", for messages
        self.read_only = read_only  # the file cannot be written: only reads work
        self._made: Path | None = None  # a file SQLite made for this read, removed by close
        # The owner's copy of meta's install_iparams (it alone writes them), read once:
        # every occurrence's payload needs them. _UNREAD until read, and after a rollback.
        self._install_iparams: Any = _UNREAD
        # Counts the changes to the schedules through this Store (and rollbacks): a due
        # entry read while it stays the same is still the one due (Simulator's look-ahead).
        self.schedules_version = 0
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file opened

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str | None, *, kept: bool = False) -> Store:
        """Open (creating or migrating) the state at ``path``; ``None`` keeps it in memory.

        ``kept``: a state was kept at ``path`` before (its lock file says so), so a
        missing or empty file there was deleted or truncated: an error, not a fresh start.
        A file that cannot be written opens read-only (``read_only``).
        """
        conn: sqlite3.Connection
        if path is None:
            conn = connect(":memory:", ":memory:")
            store = cls(conn, ":memory:")
        else:
            path = Path(path)
            read_only = check_files(path, kept)
            cls._check_before_writing(path)
            if read_only:
                store = cls._reader_of(path)
            else:
                store = cls(connect(uri(path), str(path), uri=True), str(path))
                info = path.stat()
                store._identity = (info.st_dev, info.st_ino)
            conn = store._conn
        try:
            store._prepare(on_disk=path is not None)
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def open_reader(cls, path: Path | str) -> Store:
        """A read-only connection to the state at ``path``, which its owner keeps open (in
        WAL mode a reader sees the last commit and never blocks the owner's writes)."""
        # The owner's VFS: its WAL index is in this process's memory, shared by both.
        conn = connect(uri(Path(path), mode="ro"), str(path), uri=True)
        return cls(conn, str(path), read_only=True)

    @classmethod
    def _check_before_writing(cls, path: Path) -> None:
        """Refuse a corrupt or unknown file while it is still byte for byte as it was.

        Opening for writing changes a file before its schema can be read (switching
        to WAL rewrites the header), so the check reads it on its own first: the
        schema version, every table and column, and SQLite's quick check of the pages.
        """
        if path.stat().st_size == 0:
            return  # a fresh state
        store = cls._reader_of(path)
        try:
            if schema.version_of(store._conn, store.label) == SCHEMA_VERSION:
                schema.check_tables(store._conn, store.label)
            schema.quick_check(store._conn, store.label)
        finally:
            store.close()

    @classmethod
    def _reader_of(cls, path: Path) -> Store:
        """A read-only connection that changes no file: ``immutable`` (no locks, no -wal
        created) unless a killed owner left commits in a -wal, which is then read through;
        SQLite creates a -shm to read one, and ``close`` removes it again."""
        wal = path.with_name(path.name + "-wal")
        if not wal.exists():
            return cls(
                connect(uri(path, immutable="1"), str(path), uri=True), str(path), read_only=True
            )
        shm = path.with_name(path.name + "-shm")
        had_shm = shm.exists()
        store = cls(connect(uri(path, mode="ro"), str(path), uri=True), str(path), read_only=True)
        if not had_shm:
            store._made = shm
        return store

    def _prepare(self, *, on_disk: bool) -> None:
        conn = self._conn
        if on_disk and not self.read_only:
            schema.set_file_pragmas(conn)
        version = schema.version_of(conn, self.label)
        if version < SCHEMA_VERSION:
            if self.read_only:
                raise StateError(
                    f"{self.label}: the state is from an older fwsched and must be upgraded, "
                    "but the file is read-only: fix the permissions of the file and its folder"
                )
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        with self.transaction():
            for statement in schema.statements_from(version):
                self._conn.execute(statement)
            self._set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        self._conn.close()
        if self._made is not None:
            with suppress(OSError):
                self._made.unlink()

    # -- transactions ----------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        """All-or-nothing writes (``with store.transaction():``). Nested use joins the
        outer transaction."""
        return _Transaction(self)

    def _rolled_back(self) -> None:
        """What a rollback undoes is read again: the cached iparams, the next due entry."""
        self._install_iparams = _UNREAD
        self.schedules_version += 1
        self._conn.execute("ROLLBACK")

    def _check_identity(self) -> None:
        """The file opened is still at its path: writes to one deleted or replaced while
        fwsched had it open (by a handler, say) would be lost when it closes."""
        if self._identity is None:
            return
        try:
            info = os.stat(self.label)
        except OSError:
            info = None
        if info is None or (info.st_dev, info.st_ino) != self._identity:
            what = "deleted" if info is None else "replaced"
            raise StateError(
                f"{self.label} was {what} while fwsched had it open (by a handler?); what "
                f"happened since is lost: start again, and {RESET_HINT} if it is gone"
            )

    @contextmanager
    def read_transaction(self) -> Iterator[None]:
        """Several reads that see one commit (a reader's; takes no write lock)."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    # -- settings: clock and relaxed mode --------------------------------------------------

    def _get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else cast(str, row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def get_now(self) -> datetime | None:
        """The persisted simulated time, or None for a fresh state.

        That is the saved clock, or the fire time of the last invocation if it is later: an
        advance records each occurrence's fire time in its invocation and saves the clock
        only at its end, so a state killed during one resumes at the last occurrence begun
        (fire times never decrease from one invocation to the next).
        """
        value = self._get_meta("now_us")
        if value is None:
            return None
        with reading(self.label):
            saved = int_value(int(str_value(value)))
            row = self._conn.execute(LAST_FIRE_SQL).fetchone()
            last = saved if row is None else int_value(row[0])
            return from_epoch_us(max(saved, last))

    def set_now(self, now: datetime) -> None:
        self._set_meta("now_us", str(to_epoch_us(now)))

    @property
    def relaxed(self) -> bool:
        return self._get_meta("relaxed") == "1"

    def set_relaxed(self) -> None:
        """Remembered until reset (SPEC §5): there is no way back to strict but a reset."""
        self._set_meta("relaxed", "1")

    def request_window(self) -> list[datetime]:
        """When the requests the rate limit still counts were admitted (SPEC §10: 50 a
        simulated minute per app, whichever process made them), as last saved."""
        value = self._get_meta("request_window_us")
        if value is None:
            return []
        with reading(self.label):
            return [from_epoch_us(int_value(us)) for us in json_value(value, list)]

    def set_request_window(self, admitted: list[datetime]) -> None:
        self._set_meta("request_window_us", _dumps([to_epoch_us(t) for t in admitted]))

    # -- schedules -------------------------------------------------------------------------

    _ENTRY_COLUMNS = "name, data, schedule_at, at_us, repeat, next_fire_us, seq"

    def _entry(self, row: tuple[Any, ...]) -> Entry:
        name, data, schedule_at, at_us, repeat, next_fire_us, seq = row
        try:  # reading()'s check, inline: an advance reads one entry per occurrence
            spec = ScheduleSpec(
                name=str_value(name),
                data=json_value(data, dict),
                schedule_at=str_value(schedule_at),
                at=from_epoch_us(int_value(at_us)),
                repeat=Repeat.from_dict(json_value(repeat, dict)) if repeat is not None else None,
            )
            return Entry(spec, from_epoch_us(int_value(next_fire_us)), int_value(seq))
        except READ_ERRORS as exc:
            raise unreadable(self.label, exc) from None

    def kind_of(self, name: str) -> ScheduleKind | None:
        row = self._conn.execute("SELECT recurring FROM schedules WHERE name=?", (name,)).fetchone()
        if row is None:
            return None
        return "recurring" if row[0] else "one-time"

    def count(self, kind: ScheduleKind) -> int:
        row = self._conn.execute(
            "SELECT COUNT(*) FROM schedules WHERE recurring=?", (int(kind == "recurring"),)
        ).fetchone()
        return int(row[0])

    def get(self, name: str) -> Entry | None:
        row = self._conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM schedules WHERE name=?", (name,)
        ).fetchone()
        return None if row is None else self._entry(row)

    def put(self, spec: ScheduleSpec, next_fire_at: datetime) -> None:
        """Create, or replace keeping the schedule's place in creation order."""
        self.schedules_version += 1
        repeat = _dumps(spec.repeat.to_dict()) if spec.repeat else None
        self._conn.execute(
            "INSERT INTO schedules "
            "(name, seq, recurring, data, schedule_at, at_us, repeat, next_fire_us) "
            "VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM schedules), ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET recurring=excluded.recurring, data=excluded.data, "
            "schedule_at=excluded.schedule_at, at_us=excluded.at_us, repeat=excluded.repeat, "
            "next_fire_us=excluded.next_fire_us",
            (
                spec.name,
                int(spec.repeat is not None),
                _dumps(spec.data),
                spec.schedule_at,
                to_epoch_us(spec.at),
                repeat,
                to_epoch_us(next_fire_at),
            ),
        )

    def set_next_fire(self, name: str, next_fire_at: datetime) -> None:
        self.schedules_version += 1
        self._conn.execute(
            "UPDATE schedules SET next_fire_us=? WHERE name=?", (to_epoch_us(next_fire_at), name)
        )

    def delete(self, name: str) -> None:
        self.schedules_version += 1
        self._conn.execute("DELETE FROM schedules WHERE name=?", (name,))

    def next_due(self, until: datetime) -> Entry | None:
        """The earliest occurrence at or before ``until``; ties in creation order."""
        row = self._conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM schedules WHERE next_fire_us <= ? "
            "ORDER BY next_fire_us, seq LIMIT 1",
            (to_epoch_us(until),),
        ).fetchone()
        return None if row is None else self._entry(row)

    def next_fire_time(self) -> datetime | None:
        row = self._conn.execute("SELECT MIN(next_fire_us) FROM schedules").fetchone()
        if row[0] is None:
            return None
        with reading(self.label):
            return from_epoch_us(int_value(row[0]))

    def entries(self) -> list[Entry]:
        rows = self._conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM schedules ORDER BY next_fire_us, seq"
        ).fetchall()
        return [self._entry(row) for row in rows]

    # -- installation (SPEC §8) ------------------------------------------------------------

    def install_state(self) -> bool | None:
        """True installed, False uninstalled (or never installed: None)."""
        value = self._get_meta("installed")
        return None if value is None else value == "1"

    def set_installed(self, iparams: dict[str, Any] | None) -> None:
        """Installed, with the installation's iparams (None: fwsched.toml's apply).

        The real values are kept only as long as the installation (``set_uninstalled``
        drops them): later events of the app need them, in this process or the next.
        """
        self._set_meta("installed", "1")
        self._install_iparams = _UNREAD
        if iparams is None:
            self._conn.execute("DELETE FROM meta WHERE key='install_iparams'")
        else:
            self._set_meta("install_iparams", _dumps(iparams))

    def set_uninstalled(self) -> None:
        self._set_meta("installed", "0")
        self._install_iparams = _UNREAD
        self._conn.execute("DELETE FROM meta WHERE key='install_iparams'")

    def install_iparams_text(self) -> str | None:
        """The installation's iparams as stored (JSON), None without; the owner reads them
        once, a reader (``read_only``: another connection writes) every time."""
        value = self._install_iparams
        if value is _UNREAD:
            value = self._get_meta("install_iparams")
            if not self.read_only:
                self._install_iparams = value
        return cast("str | None", value)

    def install_iparams(self) -> dict[str, Any] | None:
        value = self.install_iparams_text()
        if value is None:
            return None
        with reading(self.label):
            return cast(dict[str, Any], json_value(value, dict))

    def delete_schedules(self) -> None:
        """Every schedule of the app (an uninstall)."""
        self.schedules_version += 1
        self._conn.execute("DELETE FROM schedules")

    # -- the app's db data (SPEC §9) -------------------------------------------------------

    def kv(self) -> SqliteKv:
        """The ``kv`` table, for ``DbService``; its calls join the caller's transaction."""
        return SqliteKv(self._conn)

    def delete_kv(self) -> None:
        """Every db key of the app (an uninstall)."""
        self._conn.execute("DELETE FROM kv")


class StateQueries:
    """The read-only questions about a state, for whoever holds its ``store``.

    ``engine.Simulator`` and the live runner's ``reader.StateReader`` both answer them, so
    ``operations.execute`` gets the same answers from either.
    """

    store: Store

    @property
    def strict(self) -> bool:
        """False once relaxed (``--relaxed``): the platform limits are off until a reset."""
        return not self.store.relaxed

    @property
    def installed(self) -> bool:
        """Whether the app is installed (``install`` and ``uninstall`` change it)."""
        return bool(self.store.install_state())

    def counts(self) -> tuple[int, int]:
        """(schedules, invocations) in the state."""
        store = self.store
        return store.count("one-time") + store.count("recurring"), store.invocation_count()

    def schedules(self) -> list[Schedule]:
        """Every schedule, soonest first."""
        return [entry.public() for entry in self.store.entries()]

    def history(
        self,
        *,
        name: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[Invocation]:
        """Past invocations, oldest first (``limit`` keeps the newest N)."""
        return self.store.invocations(name=name, outcome=outcome, limit=limit, after_id=after_id)

    def invocation(self, invocation_id: int) -> Invocation | None:
        return self.store.invocation(invocation_id)

    def next_fire_time(self) -> datetime | None:
        return self.store.next_fire_time()
