"""The state's SQLite schema: its versions, how a file is upgraded, and how it is checked.

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``, so opening an
older file upgrades it; a newer or foreign file is refused with an error that names
the file and ``fwsched reset``. Before a file is written, its tables and columns are
compared with what the migrations make, and SQLite checks its pages. ``Store`` opens
files and runs these; ``cli.quickstate`` keeps a copy of the version and the columns
(a test keeps them in step).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterator

from fwsched.errors import StateError
from fwsched.statefile import corrupt_error

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

PAGE_SIZE = 1024  # bytes, of a new state file
WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024  # SQLite's default: 1,000 pages of 4 KiB


def set_file_pragmas(conn: sqlite3.Connection) -> None:
    """How a state file is written (before its first write on this connection).

    WAL with synchronous=NORMAL survives a killed process (the case SPEC §4 asks for)
    and keeps commits cheap; only a power cut may lose the last commits. Small pages:
    an occurrence's commit writes ~7 of them to the WAL, and 1 KiB ones halve its cost
    (bench_paths, target 2). The page size takes effect on a new file only; the WAL is
    checkpointed at 4 MiB whatever the file's page size.
    """
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0] or PAGE_SIZE)
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // page_size}")


def version_of(conn: sqlite3.Connection, label: str) -> int:
    """The state's schema version, 0 for an empty file; a newer or foreign one is refused."""
    tables = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    }
    if not tables:
        return 0
    if "meta" not in tables:
        raise corrupt_error(label, ValueError("no fwsched schema in it"))
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None or not isinstance(row[0], str) or not re.fullmatch("[0-9]{1,9}", row[0]):
        raise corrupt_error(label, ValueError("it has no schema version"))
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{label}: the state was written by a newer fwsched (schema {version}, "
            f"this one knows up to {SCHEMA_VERSION}); upgrade fwsched or run `fwsched reset`"
        )
    return version


def statements_from(version: int) -> Iterator[str]:
    """The statements that take a database from ``version`` to ``SCHEMA_VERSION``."""
    for step in MIGRATIONS[version:]:
        for statement in step.split(";"):
            if statement.strip():
                yield statement


@functools.cache
def expected_tables() -> dict[str, tuple[str, ...]]:
    """The tables and columns of the current schema, from the migrations themselves."""
    conn = sqlite3.connect(":memory:")
    for step in MIGRATIONS:
        conn.executescript(step)
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    expected = {
        table: tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
        for table in tables
        if not table.startswith("sqlite_")
    }
    conn.close()
    return expected


def check_tables(conn: sqlite3.Connection, label: str) -> None:
    """Every table and column of the current schema is there (none was dropped)."""
    for table, columns in expected_tables().items():
        found = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})").fetchall())
        if found != columns:
            what = "is missing" if not found else "has other columns"
            raise corrupt_error(label, f"table {table} {what}")


def quick_check(conn: sqlite3.Connection, label: str) -> None:
    """SQLite's check of every page (linear in the file's size, no index compares)."""
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        raise corrupt_error(label, "; ".join(str(p) for p in problems))
