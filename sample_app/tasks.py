"""Helpers of the sample app, in a sibling module to show that server.py can import them.

Nothing here talks to the network: `fetch_updated_since` pretends to call the
CRM with a deterministic answer, so runs of the sample are reproducible.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

SYNC_SCHEDULE = "hourly_sync"


def followup_name(task_id: object) -> str:
    """The follow-up's schedule name (schedule names are at most 30 characters)."""
    return f"followup_{task_id}"[:30]


def reminder_name(task_id: object) -> str:
    return f"reminder_{task_id}"[:30]


def iso(moment: datetime) -> str:
    """An instant as the ISO string the schedule API takes, in UTC."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_in(now: datetime, minutes: int) -> str:
    """`minutes` from `now`, to the second."""
    return iso((now + timedelta(minutes=minutes)).replace(microsecond=0))


def iso_at(timestamp_ms: int, *, after: timedelta = timedelta(0)) -> str:
    """An occurrence's epoch-millisecond timestamp plus `after`, as an ISO string in UTC."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC) + after
    return moment.isoformat().replace("+00:00", "Z")


def next_full_hour(now: datetime) -> str:
    """The first whole hour after `now`: where the hourly sync series starts."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return (hour + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def interval(repeat: dict[str, Any]) -> timedelta:
    """The time between two occurrences of a recurring schedule."""
    return timedelta(**{repeat["time_unit"]: repeat["frequency"]})


def fetch_updated_since(base_url: str, api_key: str, cursor: int) -> list[dict[str, Any]]:
    """Tasks updated since `cursor`, as the CRM would answer `GET {base_url}/api/tasks`.

    Simulated: a few made-up records whose count depends only on the cursor.
    """
    headers = {"Authorization": f"Token token={api_key}"}  # what a real call would send
    del headers
    count = (cursor * 7 + 3) % 5
    return [
        {"id": cursor + n, "title": f"Task {cursor + n}", "url": f"{base_url}/tasks/{cursor + n}"}
        for n in range(1, count + 1)
    ]
