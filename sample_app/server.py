"""Task reminders for Freshsales: the fwsched sample app.

- onAppInstall starts `hourly_sync`, a recurring schedule that pulls task changes.
- onScheduledEvent dispatches on `payload["data"]["kind"]`:
  `reminder` prints a reminder and books a follow-up one day later,
  `followup` prints the follow-up, `sync` advances the sync cursor.

Try it: `fwsched run sample_app`, then in another shell:

    fwsched schedule create --app sample_app --name reminder_42 --at +10m \
        --data '{"kind": "reminder", "task_id": 42}'
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import tasks  # a sibling module of server.py

from fwsched.sdk import ScheduleError, schedule


def on_app_install(payload: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)  # simulated time when run by fwsched
    try:
        # Keyword spelling of the schedule API.
        schedule.create(
            name=tasks.SYNC_SCHEDULE,
            data={"kind": "sync", "cursor": 0},
            schedule_at=tasks.next_full_hour(now),
            repeat={"time_unit": "hours", "frequency": 1},
        )
    except ScheduleError as err:
        # A reinstall finds the schedule already there: keep it.
        print(f"{tasks.SYNC_SCHEDULE} not created: {err} (status {err.status})")
        return {"installed": True, "sync": "kept"}
    print(f"installed on {payload.get('domain')}; {tasks.SYNC_SCHEDULE} starts at the next hour")
    return {"installed": True, "sync": "created"}


def on_scheduled_event(payload: dict[str, Any]) -> dict[str, Any] | None:
    data = payload["data"]
    kind = data.get("kind")
    now = datetime.now(UTC)
    print(f"[{now:%Y-%m-%d %H:%M:%S}Z] onScheduledEvent kind={kind}")
    if kind == "reminder":
        return remind(payload)
    if kind == "followup":
        print(f"follow-up for task {data.get('task_id')}: is it done yet?")
        return {"kind": "followup", "task_id": data.get("task_id")}
    if kind == "sync":
        return sync(payload)
    print(f"ignoring an event of unknown kind {kind!r}")
    return None


def remind(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload["data"]
    task_id = data.get("task_id")
    print(f"reminder for task {task_id}")
    if "followup" in data:
        # Marked as a reminder that must not book another follow-up.
        return {"kind": "reminder", "task_id": task_id, "followup": None}
    name = tasks.followup_name(task_id)
    try:
        # The JS spelling: one dict with the same keys.
        schedule.create(
            {
                "name": name,
                "data": {"kind": "followup", "task_id": task_id},
                "schedule_at": tasks.iso_at(payload["timestamp"], after=timedelta(days=1)),
            }
        )
    except ScheduleError as err:
        print(f"no follow-up for task {task_id}: {err}")
        return {"kind": "reminder", "task_id": task_id, "followup": None}
    return {"kind": "reminder", "task_id": task_id, "followup": name}


def sync(payload: dict[str, Any]) -> dict[str, Any]:
    iparams = payload["iparams"]
    cursor = int(payload["data"].get("cursor", 0))
    records = tasks.fetch_updated_since(iparams["crm_base_url"], iparams["api_key"], cursor)
    new_cursor = max((record["id"] for record in records), default=cursor)
    print(f"fetched {len(records)} updated task(s) since cursor {cursor}; cursor now {new_cursor}")

    try:
        current = schedule.fetch(name=tasks.SYNC_SCHEDULE)
    except ScheduleError:
        # An ad-hoc run (`fwsched trigger --payload`) without the schedule: nothing to move on.
        return {"kind": "sync", "fetched": len(records), "cursor": new_cursor}
    repeat = current["repeat"]
    # update() replaces the schedule: keep its repeat, and restart the series at
    # the next occurrence so the one being handled does not fire again.
    schedule.update(
        {
            "name": tasks.SYNC_SCHEDULE,
            "data": {"kind": "sync", "cursor": new_cursor},
            "schedule_at": tasks.iso_at(payload["timestamp"], after=tasks.interval(repeat)),
            "repeat": repeat,
        }
    )
    return {"kind": "sync", "fetched": len(records), "cursor": new_cursor}


exports = {
    "onAppInstallHandler": on_app_install,
    "onScheduledEventHandler": on_scheduled_event,
}
