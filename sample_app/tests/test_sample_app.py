"""How to test an app with fwsched's pytest fixture: schedules, install, functions, events,
its `db` data and its requests.

`fwsched_sim` is a Simulator for the app named by the marker, with private
in-memory state; `advance` fires every occurrence that falls due, in order.
`install=True` installs the app first (its onAppInstall runs), as the platform
does before anything else happens. Requests never reach the network: the stubs in
the app's fwsched.toml answer them, and a test adds its own with `sim.http.stub`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1]
fwsched_app = pytest.mark.fwsched(app=APP, start="2026-01-05T09:00:00Z", timeout=5)
installed_app = pytest.mark.fwsched(app=APP, start="2026-01-05T09:00:00Z", timeout=5, install=True)
TASKS_URL = "https://acme.myfreshworks.com/crm/sales/api/tasks"


@fwsched_app
def test_a_reminder_fires_and_books_its_follow_up(fwsched_sim):
    fwsched_sim.schedule.create(
        name="reminder_42",
        data={"kind": "reminder", "task_id": 42},
        schedule_at="2026-01-05T10:00:00Z",
    )

    [reminder] = fwsched_sim.advance("1h")

    assert reminder.outcome == "ok"
    assert "reminder for task 42" in reminder.log
    followup = fwsched_sim.schedule.fetch(name="followup_42")
    assert followup["schedule_at"] == "2026-01-06T10:00:00Z"

    [fired] = fwsched_sim.advance("1d")
    assert fired.schedule == "followup_42"
    assert "follow-up for task 42" in fired.log
    assert fwsched_sim.schedules() == []


@installed_app
def test_the_hourly_sync_keeps_its_cursor_in_db(fwsched_sim):
    # onAppInstall started it at the next full hour.
    assert fwsched_sim.schedule.fetch(name="hourly_sync")["schedule_at"] == "2026-01-05T10:00:00Z"

    runs = fwsched_sim.advance("3h")

    assert [run.return_value["fetched"] for run in runs] == [3, 1, 0]
    assert fwsched_sim.db.get("sync_cursor") == {
        "last_id": 104,
        "synced_at": "2026-01-05T12:00:00Z",
    }
    assert fwsched_sim.db.get("sync_stats") == {"runs": 3, "tasks": 4}
    # Each run asked the CRM once, through the getUpdatedTasks template; the stubs of
    # fwsched.toml answered.
    assert [(r["url"], r["status"], r["answered_by"]) for r in fwsched_sim.http.requests] == [
        (f"{TASKS_URL}?since_id=0", 200, "stub"),
        (f"{TASKS_URL}?since_id=103", 200, "stub"),
        (f"{TASKS_URL}?since_id=104", 200, "stub"),
    ]
    assert runs[0].requests[0]["template"] == "getUpdatedTasks"

    week = fwsched_sim.advance("7d")
    assert len(week) == 7 * 24 and all(run.outcome == "ok" for run in week)
    assert fwsched_sim.db.get("sync_stats") == {"runs": 3 + 7 * 24, "tasks": 4}


@fwsched_app
def test_a_failed_request_leaves_the_cursor_where_it_was(fwsched_sim):
    fwsched_sim.db.set("sync_cursor", {"last_id": 200})
    # A stub added in code: the CRM refuses the API key.
    fwsched_sim.http.stub(
        url=f"{TASKS_URL}?since_id=200", status=401, json={"message": "Invalid API key"}
    )

    run = fwsched_sim.trigger_payload({"kind": "sync"})

    assert "sync failed: 401 Unauthorized (status 401)" in run.log
    assert fwsched_sim.db.get("sync_cursor") == {"last_id": 200}
    [sent] = run.requests
    assert (sent["status"], sent["attempts"], sent["answered_by"]) == (401, 1, "stub")

    # No stub at all: offline, nothing is sent and the handler gets a 502.
    fwsched_sim.db.set("sync_cursor", {"last_id": 300})
    run = fwsched_sim.trigger_payload({"kind": "sync"})
    assert f"No stub for GET {TASKS_URL}?since_id=300" in run.log
    assert run.requests[0]["answered_by"] == "none"


@fwsched_app
def test_secure_iparams_are_masked_in_the_history(fwsched_sim):
    run = fwsched_sim.trigger_payload({"kind": "sync"})

    assert run.outcome == "ok"
    assert run.payload["iparams"]["api_key"] == "****"
    assert run.payload["iparams"]["crm_domain"] == "acme.myfreshworks.com"
    # The key went out in the request's Authorization header; nothing recorded shows it.
    assert "demo-api-key-not-real" not in json.dumps(run.to_json())


@fwsched_app
def test_install_starts_the_sync_and_uninstall_stops_it(fwsched_sim):
    install = fwsched_sim.install()

    assert install.outcome == "ok" and install.render == {"status": 200, "response": None}
    assert fwsched_sim.installed
    assert [s.name for s in fwsched_sim.schedules()] == ["hourly_sync"]
    fwsched_sim.trigger("hourly_sync")
    assert fwsched_sim.db.keys() == ["sync_cursor", "sync_stats"]

    uninstall = fwsched_sim.uninstall()
    assert "hourly_sync stopped" in uninstall.log
    assert fwsched_sim.schedules() == [] and not fwsched_sim.installed
    assert fwsched_sim.db.keys() == []  # the platform deletes the app's data too


@fwsched_app
def test_an_install_with_a_bad_crm_domain_is_blocked(fwsched_sim):
    run = fwsched_sim.install(iparams={"api_key": "k-12345", "crm_domain": "https://crm.local"})

    assert run.render["message"] == "The CRM domain must be a domain name (got 'https://crm.local')"
    assert not fwsched_sim.installed
    assert fwsched_sim.schedules() == []


@installed_app
def test_the_remind_me_button_books_a_reminder_that_fires(fwsched_sim):
    # What the product's "Remind me" button does: call the server function.
    run = fwsched_sim.invoke("bookReminder", {"task_id": 7, "in_minutes": 30})

    assert run.render == {
        "status": 200,
        "response": {"reminder": "reminder_7", "at": "2026-01-05T09:30:00Z"},
    }
    [reminder] = fwsched_sim.advance("30m")
    assert reminder.schedule == "reminder_7" and "reminder for task 7" in reminder.log

    too_soon = fwsched_sim.invoke("bookReminder", {"task_id": 8, "in_minutes": 1})
    assert too_soon.render["status"] == 400
    assert "at least 5 minutes" in too_soon.render["message"]


@installed_app
def test_a_new_task_in_the_crm_books_its_reminder(fwsched_sim):
    # The payload comes from test_data/onTaskCreate.json, as in the FDK.
    run = fwsched_sim.fire("onTaskCreate")

    assert run.outcome == "ok", run.error
    assert run.return_value == {"reminder": "reminder_42"}
    assert fwsched_sim.schedule.fetch(name="reminder_42")["schedule_at"] == "2026-01-05T14:00:00Z"
    fired = fwsched_sim.advance("5h")
    assert "reminder_42" in [i.schedule for i in fired]
