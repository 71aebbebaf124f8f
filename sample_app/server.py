"""Task reminders for Freshsales: the fwsched sample app.

- onAppInstall checks the iparams and starts `hourly_sync`, a recurring schedule
  that pulls task changes; onAppUninstall stops it.
- onTaskCreate (a product event) books a reminder an hour before the new task is due.
- bookReminder is a server function: what a "Remind me" button in the product calls.
- onScheduledEvent dispatches on `payload["data"]["kind"]`:
  `reminder` prints a reminder and books a follow-up one day later,
  `followup` prints the follow-up, `sync` advances the sync cursor.

Try it: `fwsched run sample_app` installs the app (so `hourly_sync` appears), then
in another shell:

    fwsched invoke bookReminder --app sample_app --params '{"task_id": 42, "in_minutes": 30}'
    fwsched trigger --event onTaskCreate --app sample_app   # test_data/onTaskCreate.json
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import tasks  # a sibling module of server.py

from fwsched.sdk import ScheduleError, render_data, schedule


def on_app_install(payload: dict[str, Any]) -> None:
    base_url = str(payload["iparams"].get("crm_base_url", ""))
    if not base_url.startswith("https://"):
        # An error blocks the install, and the product shows the message.
        render_data({"message": f"The CRM base URL must start with https:// (got {base_url!r})"})
        return
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
        # A reinstall that kept the data finds the schedule already there: keep it.
        print(f"{tasks.SYNC_SCHEDULE} not created: {err} (status {err.status})")
    else:
        print(
            f"installed on {payload.get('domain')}; {tasks.SYNC_SCHEDULE} starts at the next hour"
        )
    render_data()  # setup events must answer: this one says "installed"


def on_app_uninstall(payload: dict[str, Any]) -> None:
    try:
        schedule.delete(name=tasks.SYNC_SCHEDULE)
        print(f"{tasks.SYNC_SCHEDULE} stopped")
    except ScheduleError as err:
        print(f"{tasks.SYNC_SCHEDULE} was not running: {err}")
    render_data()


def book_reminder(payload: dict[str, Any]) -> None:
    """Server function: `{"task_id": 42, "in_minutes": 30}` or `{"task_id": 42, "at": ISO}`."""
    task_id = payload.get("task_id")
    if task_id is None:
        render_data({"status": 400, "message": "task_id is required"})
        return
    at = payload.get("at") or tasks.iso_in(datetime.now(UTC), int(payload.get("in_minutes", 60)))
    name = tasks.reminder_name(task_id)
    try:
        schedule.create(name=name, data={"kind": "reminder", "task_id": task_id}, schedule_at=at)
    except ScheduleError as err:
        # The platform's answer goes back to the product's page as an error.
        render_data({"status": err.status, "message": err.message})
        return
    print(f"reminder for task {task_id} booked at {at}")
    render_data(None, {"reminder": name, "at": at})


def on_task_create(payload: dict[str, Any]) -> dict[str, Any] | None:
    task = payload["data"]["task"]
    due = datetime.fromisoformat(task["due_date"].replace("Z", "+00:00"))
    at = due - timedelta(hours=1)
    if at < datetime.now(UTC) + timedelta(minutes=5):  # the platform's minimum lead time
        print(f"task {task['id']} is due too soon for a reminder")
        return None
    name = tasks.reminder_name(task["id"])
    try:
        schedule.create(
            name=name,
            data={"kind": "reminder", "task_id": task["id"], "title": task["title"]},
            schedule_at=tasks.iso(at),
        )
    except ScheduleError as err:  # e.g. someone pressed "Remind me" already
        print(f"no reminder for task {task['id']}: {err}")
        return None
    print(f"new task {task['id']} ({task['title']}): reminder at {tasks.iso(at)}")
    return {"reminder": name}


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
    "onAppUninstallHandler": on_app_uninstall,
    "onScheduledEventHandler": on_scheduled_event,
    "onTaskCreateHandler": on_task_create,
    "bookReminder": book_reminder,
}
