"""Task reminders for Freshsales: the fwsched sample app.

- onAppInstall checks the iparams and starts `hourly_sync`, a recurring schedule
  that pulls task changes; onAppUninstall stops it.
- onTaskCreate (a product event) books a reminder an hour before the new task is due.
- bookReminder is a server function: what a "Remind me" button in the product calls.
- onScheduledEvent dispatches on `payload["data"]["kind"]`:
  `reminder` prints a reminder and books a follow-up one day later,
  `followup` prints the follow-up, `sync` fetches the tasks changed since the
  cursor it keeps in `db`, with the `getUpdatedTasks` request template
  (config/requests.json), and moves the cursor on.

The CRM's answers are stubs in fwsched.toml, so the app runs offline.

Try it: `fwsched run sample_app` installs the app (so `hourly_sync` appears), then
in another shell:

    fwsched invoke bookReminder --app sample_app --params '{"task_id": 42, "in_minutes": 30}'
    fwsched trigger --event onTaskCreate --app sample_app   # test_data/onTaskCreate.json
    fwsched db get sync_cursor --app sample_app             # after the first sync
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import tasks  # a sibling module of server.py

from fwsched.sdk import DbError, RequestError, ScheduleError, db, render_data, request, schedule


def on_app_install(payload: dict[str, Any]) -> None:
    domain = str(payload["iparams"].get("crm_domain", ""))
    if not tasks.is_host_name(domain):
        # An error blocks the install, and the product shows the message.
        render_data({"message": f"The CRM domain must be a domain name (got {domain!r})"})
        return
    now = datetime.now(UTC)  # simulated time when run by fwsched
    try:
        # Keyword spelling of the schedule API.
        schedule.create(
            name=tasks.SYNC_SCHEDULE,
            data={"kind": "sync"},  # the cursor is in db, where every handler sees it
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
    """Fetch the tasks changed since the cursor kept in db, then move the cursor on."""
    try:
        since_id = int(db.get(tasks.CURSOR_KEY)["last_id"])
    except DbError as err:
        if err.status != 404:  # 404 "Record not found": the first sync
            raise
        since_id = 0
    try:
        # host, path and the API key come from the template and the iparams.
        answer = request.invoke_template(tasks.SYNC_TEMPLATE, context={"since_id": since_id})
    except RequestError as err:
        # The cursor stays where it was, so the next run asks again.
        print(f"sync failed: {err} (status {err.status}); cursor stays at {since_id}")
        return {"kind": "sync", "error": err.status, "cursor": since_id}
    records = json.loads(answer["response"])["tasks"]
    last_id = max((record["id"] for record in records), default=since_id)
    db.set(tasks.CURSOR_KEY, {"last_id": last_id, "synced_at": tasks.iso_at(payload["timestamp"])})
    # increment creates the key on the first run.
    db.update(tasks.STATS_KEY, "increment", {"runs": 1, "tasks": len(records)})
    print(f"fetched {len(records)} updated task(s) since {since_id}; cursor now {last_id}")
    return {"kind": "sync", "fetched": len(records), "cursor": last_id}


exports = {
    "onAppInstallHandler": on_app_install,
    "onAppUninstallHandler": on_app_uninstall,
    "onScheduledEventHandler": on_scheduled_event,
    "onTaskCreateHandler": on_task_create,
    "bookReminder": book_reminder,
}
