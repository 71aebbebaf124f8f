"""Durable state: the simulated clock, the schedules and the invocation history, in SQLite.

One file per app (``<app>/.fwsched/state.db``, WAL journal) or a private
in-memory database. The schema is versioned: ``MIGRATIONS[i]`` takes a
database from version ``i`` to ``i + 1``, so opening an older file upgrades it
and a newer or foreign file is refused with an error that names the file and
``fwsched reset`` — nothing is ever overwritten silently.

Times are stored as integer microseconds since the epoch (UTC), which keeps the
"next due occurrence" query a plain indexed range scan.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from fwsched.durations import from_epoch_us, to_epoch_us
from fwsched.errors import StateError
from fwsched.outcome import Outcome
from fwsched.platform.db import SqliteKv
from fwsched.records import Invocation, Schedule, ScheduleKind
from fwsched.recurrence import Repeat
from fwsched.rules import ScheduleSpec

SCHEMA_VERSION = 3

MIGRATIONS: list[str] = [
    # 0 -> 1: the first schema.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE schedules (
        name          TEXT PRIMARY KEY,
        seq           INTEGER NOT NULL UNIQUE,  -- creation order, breaks ties
        recurring     INTEGER NOT NULL,
        data          TEXT NOT NULL,            -- compact JSON
        schedule_at   TEXT NOT NULL,            -- exactly as given
        at_us         INTEGER NOT NULL,
        repeat        TEXT,                     -- JSON, NULL for one-time
        next_fire_us  INTEGER NOT NULL
    );
    CREATE INDEX schedules_due ON schedules (next_fire_us, seq);
    CREATE INDEX schedules_kind ON schedules (recurring);
    CREATE TABLE invocations (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        schedule      TEXT,                     -- NULL for an ad-hoc payload
        source        TEXT NOT NULL,            -- schedule | trigger | payload
        fire_at_us    INTEGER NOT NULL,
        timestamp_ms  INTEGER NOT NULL,
        outcome       TEXT NOT NULL,            -- 'running' until the outcome is known
        started_at_us INTEGER,                  -- real wall-clock start
        duration_ms   REAL,
        error         TEXT,
        traceback     TEXT,
        log           TEXT NOT NULL DEFAULT '',
        return_value  TEXT,                     -- JSON
        payload       TEXT NOT NULL             -- JSON, secure iparams masked
    );
    CREATE INDEX invocations_schedule ON invocations (schedule, id);
    CREATE INDEX invocations_running ON invocations (outcome) WHERE outcome = 'running';
    """,
    # 1 -> 2: SPEC §8. Any event or server function runs, so an invocation names its
    # event (or function) and keeps what the handler rendered; the install state and the
    # installation's iparams live in `meta`, which needs no change.
    """
    ALTER TABLE invocations ADD COLUMN event TEXT;
    ALTER TABLE invocations ADD COLUMN render TEXT;
    UPDATE invocations SET event = 'onScheduledEvent';
    """,
    # 2 -> 3: SPEC §9 and §10. The app's `db` data (`fwsched.platform.db.SqliteKv` reads
    # and writes it), and the requests each invocation made.
    """
    CREATE TABLE kv (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL,            -- compact JSON, ASCII-escaped
        expires_us  INTEGER                   -- simulated time, NULL for never
    );
    ALTER TABLE invocations ADD COLUMN requests TEXT;
    """,
]

RUNNING = "running"  # outcome of an invocation that has started and not finished


def _invocation_filter(
    name: str | None, outcome: str | None, after_id: int
) -> tuple[str, list[Any]]:
    """The WHERE clause of a history query: finished invocations, optionally filtered."""
    clauses, params = ["id > ?", "outcome != ?"], [after_id, RUNNING]
    if name is not None:
        # A schedule's name, or an event's or server function's (SPEC §8).
        clauses.append("(schedule = ? OR event = ?)")
        params += [name, name]
    if outcome is not None:
        clauses.append("outcome = ?")
        params.append(outcome)
    return " AND ".join(clauses), params


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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


class Store:
    """All reads and writes of one state database. Not thread-safe: one owner at a time."""

    def __init__(self, conn: sqlite3.Connection, label: str) -> None:
        self._conn = conn
        self.label = label  # the file path, or ":memory:", for messages

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str | None) -> Store:
        """Open (creating or migrating) the state at ``path``; ``None`` keeps it in memory."""
        if path is None:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            store = cls(conn, ":memory:")
        else:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            cls._check_before_writing(path)
            conn = sqlite3.connect(
                str(path), isolation_level=None, timeout=10, check_same_thread=False
            )
            store = cls(conn, str(path))
        try:
            store._prepare(on_disk=path is not None)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise store._corrupt(exc) from None
        except StateError:
            conn.close()
            raise
        return store

    @classmethod
    def open_reader(cls, path: Path | str) -> Store:
        """A read-only connection to the state at ``path``, which its owner keeps open (in
        WAL mode a reader sees the last commit and never blocks the owner's writes)."""
        uri = f"{Path(path).absolute().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        return cls(conn, str(path))

    @classmethod
    def _check_before_writing(cls, path: Path) -> None:
        """Refuse a corrupt or unknown file while it is still byte for byte as it was.

        Opening for writing changes a file before its schema can be read (switching
        to WAL rewrites the header), so the check reads it on its own first.
        """
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            # A killed owner left its last commits in the -wal: read through it. The
            # -wal and -shm exist already, and a read-only connection never checkpoints.
            query = "mode=ro"
        elif path.exists() and path.stat().st_size > 0:
            query = "immutable=1"  # the file alone: no locks, no -wal or -shm created
        else:
            return  # a fresh state
        uri = f"{path.absolute().as_uri()}?{query}"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        store = cls(conn, str(path))
        try:
            store._schema_version()
        except sqlite3.DatabaseError as exc:
            raise store._corrupt(exc) from None
        finally:
            conn.close()

    def _corrupt(self, exc: BaseException) -> StateError:
        return StateError(
            f"{self.label}: the state file is corrupt or not a fwsched state file ({exc}); "
            "run `fwsched reset` to start over (this deletes schedules and history)"
        )

    def _prepare(self, *, on_disk: bool) -> None:
        conn = self._conn
        if on_disk:
            # WAL with synchronous=NORMAL survives a killed process (the case SPEC §4 asks
            # for) and keeps commits cheap; only a power cut may lose the last commits.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        version = self._schema_version()
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _schema_version(self) -> int:
        """The state's schema version, 0 for an empty file; a newer or foreign one is refused."""
        conn = self._conn
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            return 0
        if "meta" not in tables:
            raise self._corrupt(ValueError("no fwsched schema in it"))
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise self._corrupt(ValueError("it has no schema version"))
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.label}: the state was written by a newer fwsched (schema {version}, "
                f"this one knows up to {SCHEMA_VERSION}); upgrade fwsched or run `fwsched reset`"
            )
        return version

    def _migrate(self, version: int) -> None:
        with self.transaction():
            for step in MIGRATIONS[version:]:
                for statement in step.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
            self._set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        self._conn.close()

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing writes. Nested use joins the outer transaction."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

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
        """The persisted simulated time, or None for a fresh state."""
        value = self._get_meta("now_us")
        return None if value is None else from_epoch_us(int(value))

    def set_now(self, now: datetime) -> None:
        self._set_meta("now_us", str(to_epoch_us(now)))

    @property
    def relaxed(self) -> bool:
        return self._get_meta("relaxed") == "1"

    def set_relaxed(self) -> None:
        """Remembered until reset (SPEC §5): there is no way back to strict but a reset."""
        self._set_meta("relaxed", "1")

    # -- schedules -------------------------------------------------------------------------

    _ENTRY_COLUMNS = "name, data, schedule_at, at_us, repeat, next_fire_us, seq"

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> Entry:
        name, data, schedule_at, at_us, repeat, next_fire_us, seq = row
        spec = ScheduleSpec(
            name=name,
            data=json.loads(data),
            schedule_at=schedule_at,
            at=from_epoch_us(at_us),
            repeat=Repeat.from_dict(json.loads(repeat)) if repeat else None,
        )
        return Entry(spec, from_epoch_us(next_fire_us), seq)

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
        self._conn.execute(
            "UPDATE schedules SET next_fire_us=? WHERE name=?", (to_epoch_us(next_fire_at), name)
        )

    def delete(self, name: str) -> None:
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
        return None if row[0] is None else from_epoch_us(row[0])

    def entries(self) -> list[Entry]:
        rows = self._conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM schedules ORDER BY next_fire_us, seq"
        )
        return [self._entry(row) for row in rows]

    # -- invocations -----------------------------------------------------------------------

    def begin_invocation(
        self,
        *,
        schedule: str | None,
        source: str,
        fire_at: datetime,
        timestamp_ms: int,
        payload: dict[str, Any],
        started_at: datetime,
        event: str = "onScheduledEvent",
    ) -> int:
        """Record that an invocation has started; it stays ``running`` until finished."""
        cursor = self._conn.execute(
            "INSERT INTO invocations "
            "(schedule, source, event, fire_at_us, timestamp_ms, outcome, started_at_us, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                schedule,
                source,
                event,
                to_epoch_us(fire_at),
                timestamp_ms,
                RUNNING,
                to_epoch_us(started_at),
                _dumps(payload),
            ),
        )
        return int(cast(int, cursor.lastrowid))

    def finish_invocation(
        self,
        invocation_id: int,
        *,
        outcome: Outcome,
        duration_ms: float | None,
        error: str | None,
        traceback: str | None,
        log: str,
        return_value: Any,
        render: dict[str, Any] | None = None,
        requests: list[dict[str, Any]] | None = None,
    ) -> None:
        self._conn.execute(
            "UPDATE invocations SET outcome=?, duration_ms=?, error=?, traceback=?, log=?, "
            "return_value=?, render=?, requests=? WHERE id=?",
            (
                str(outcome),
                duration_ms,
                error,
                traceback,
                log,
                _dumps(return_value),
                None if render is None else _dumps(render),
                _dumps(requests) if requests else None,
                invocation_id,
            ),
        )

    def running(self) -> dict[str, Any] | None:
        """The invocation that has started and not finished (the live runner's, at most one):
        ``{"id", "schedule", "source", "event", "fire_at", "started_at"}``, or None."""
        row = self._conn.execute(
            "SELECT id, schedule, source, event, fire_at_us, started_at_us FROM invocations "
            "WHERE outcome = ? ORDER BY id DESC LIMIT 1",
            (RUNNING,),
        ).fetchone()
        if row is None:
            return None
        id_, schedule, source, event, fire_at_us, started_at_us = row
        return {
            "id": id_,
            "schedule": schedule,
            "source": source,
            "event": event,
            "fire_at": from_epoch_us(fire_at_us),
            "started_at": None if started_at_us is None else from_epoch_us(started_at_us),
        }

    def interrupt_running(self) -> int:
        """Mark invocations left ``running`` by a process that died as ``interrupted``."""
        cursor = self._conn.execute(
            "UPDATE invocations SET outcome=?, error=? WHERE outcome=?",
            (
                str(Outcome.INTERRUPTED),
                "fwsched stopped while the handler was running; the occurrence is not fired again",
                RUNNING,
            ),
        )
        return cursor.rowcount

    _INVOCATION_COLUMNS = (
        "id, schedule, source, fire_at_us, timestamp_ms, outcome, started_at_us, duration_ms, "
        "error, traceback, log, return_value, payload, event, render, requests"
    )

    @staticmethod
    def _invocation(row: tuple[Any, ...]) -> Invocation:
        (id_, schedule, source, fire_at_us, timestamp_ms, outcome, started_at_us, duration_ms,
         error, traceback, log, return_value, payload, event, render, requests) = row  # fmt: skip
        return Invocation(
            id=id_,
            schedule=schedule,
            fire_at=from_epoch_us(fire_at_us),
            timestamp=timestamp_ms,
            outcome=Outcome(outcome),
            duration_ms=duration_ms,
            error=error,
            log=log,
            return_value=None if return_value is None else json.loads(return_value),
            payload=json.loads(payload),
            traceback=traceback,
            started_at=None if started_at_us is None else from_epoch_us(started_at_us),
            source=source,
            event=event,
            render=None if render is None else json.loads(render),
            requests=[] if requests is None else json.loads(requests),
        )

    def invocation(self, invocation_id: int) -> Invocation | None:
        """A finished invocation by id (one still running has no outcome to show yet)."""
        row = self._conn.execute(
            f"SELECT {self._INVOCATION_COLUMNS} FROM invocations WHERE id=? AND outcome != ?",
            (invocation_id, RUNNING),
        ).fetchone()
        return None if row is None else self._invocation(row)

    def invocations(
        self,
        *,
        name: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[Invocation]:
        """Finished invocations, oldest first; ``limit`` keeps the newest N."""
        where, params = _invocation_filter(name, outcome, after_id)
        sql = f"SELECT {self._INVOCATION_COLUMNS} FROM invocations WHERE {where} ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._conn.execute(sql, params).fetchall()
        return [self._invocation(row) for row in reversed(rows)]

    def invocation_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM invocations").fetchone()[0])

    def matching_count(self, *, name: str | None = None, outcome: str | None = None) -> int:
        """How many finished invocations ``invocations`` would list without a limit."""
        where, params = _invocation_filter(name, outcome, 0)
        row = self._conn.execute(f"SELECT COUNT(*) FROM invocations WHERE {where}", params)
        return int(row.fetchone()[0])

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
        if iparams is None:
            self._conn.execute("DELETE FROM meta WHERE key='install_iparams'")
        else:
            self._set_meta("install_iparams", _dumps(iparams))

    def set_uninstalled(self) -> None:
        self._set_meta("installed", "0")
        self._conn.execute("DELETE FROM meta WHERE key='install_iparams'")

    def install_iparams(self) -> dict[str, Any] | None:
        value = self._get_meta("install_iparams")
        return None if value is None else cast(dict[str, Any], json.loads(value))

    def delete_schedules(self) -> None:
        """Every schedule of the app (an uninstall)."""
        self._conn.execute("DELETE FROM schedules")

    # -- the app's db data (SPEC §9) -------------------------------------------------------

    def kv(self) -> SqliteKv:
        """The ``kv`` table, for ``DbService``; its calls join the caller's transaction."""
        return SqliteKv(self._conn)

    def delete_kv(self) -> None:
        """Every db key of the app (an uninstall)."""
        self._conn.execute("DELETE FROM kv")
