"""Helpers of the sample app, in a sibling module to show that server.py can import them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

SYNC_SCHEDULE = "hourly_sync"
SYNC_TEMPLATE = "getUpdatedTasks"  # config/requests.json, declared in manifest.json
CURSOR_KEY = "sync_cursor"  # db: {"last_id": N, "synced_at": ISO}
STATS_KEY = "sync_stats"  # db: {"runs": N, "tasks": N}

_HOST_NAME = re.compile(
    r"(?i)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+"
)


def is_host_name(text: str) -> bool:
    """A domain such as acme.myfreshworks.com (no scheme, no path): a request template's host."""
    return _HOST_NAME.fullmatch(text) is not None


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
