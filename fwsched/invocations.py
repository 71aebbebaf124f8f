"""The invocations table: a run's start and outcome as fwsched records them, and the
history read back.

``InvocationRecords`` is part of ``store.Store`` (its connection, its file's label): an
invocation is recorded ``running`` before its handler runs and finished with its outcome
(SPEC §4); values are stored as ASCII JSON (``jsonsafe.dumps``: a lone surrogate fits in
SQLite text) and checked when read back (``statefile.reading``).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, cast

from fwsched import jsonsafe
from fwsched.durations import from_epoch_us, to_epoch_us
from fwsched.outcome import Outcome
from fwsched.records import Invocation
from fwsched.statefile import (
    INT64,
    float_value,
    int_value,
    json_value,
    optional,
    reading,
    str_value,
)

RUNNING = "running"  # outcome of an invocation that has started and not finished
# The fire time of the newest invocation; part of "now" (see Store.get_now).
LAST_FIRE_SQL = "SELECT fire_at_us FROM invocations ORDER BY id DESC LIMIT 1"


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


class InvocationRecords:
    """``Store``'s reads and writes of the invocations table."""

    _conn: sqlite3.Connection
    label: str

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
                jsonsafe.dumps(payload),
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
                jsonsafe.dumps(return_value),
                None if render is None else jsonsafe.dumps(render),
                jsonsafe.dumps(requests) if requests else None,
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

    def _invocation(self, row: tuple[Any, ...]) -> Invocation:
        (id_, schedule, source, fire_at_us, timestamp_ms, outcome, started_at_us, duration_ms,
         error, traceback, log, return_value, payload, event, render, requests) = row  # fmt: skip
        with reading(self.label):
            return Invocation(
                id=int_value(id_),
                schedule=optional(str_value, schedule),
                fire_at=from_epoch_us(int_value(fire_at_us)),
                timestamp=int_value(timestamp_ms),
                outcome=Outcome(outcome),
                duration_ms=optional(float_value, duration_ms),
                error=optional(str_value, error),
                log=str_value(log),
                return_value=None if return_value is None else json_value(return_value),
                payload=json_value(payload, dict),
                traceback=optional(str_value, traceback),
                started_at=None
                if started_at_us is None
                else from_epoch_us(int_value(started_at_us)),
                source=cast(Any, str_value(source)),
                event=optional(str_value, event),
                render=None if render is None else json_value(render, dict),
                requests=[] if requests is None else json_value(requests, list),
            )

    def invocation(self, invocation_id: int) -> Invocation | None:
        """A finished invocation by id (one still running has no outcome to show yet)."""
        if not INT64[0] <= invocation_id <= INT64[1]:
            return None  # no SQLite row id is that large
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
        after_id = max(min(after_id, INT64[1]), INT64[0])
        where, params = _invocation_filter(name, outcome, after_id)
        sql = f"SELECT {self._INVOCATION_COLUMNS} FROM invocations WHERE {where} ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(min(limit, INT64[1]), 0))
        rows = self._conn.execute(sql, params).fetchall()
        return [self._invocation(row) for row in reversed(rows)]

    def invocation_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM invocations").fetchone()[0])

    def matching_count(self, *, name: str | None = None, outcome: str | None = None) -> int:
        """How many finished invocations ``invocations`` would list without a limit."""
        where, params = _invocation_filter(name, outcome, 0)
        row = self._conn.execute(f"SELECT COUNT(*) FROM invocations WHERE {where}", params)
        return int(row.fetchone()[0])
