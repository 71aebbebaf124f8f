"""How to test an app with fwsched's pytest fixture: its schedules, install, functions, events.

`fwsched_sim` is a Simulator for the app named by the marker, with private
in-memory state; `advance` fires every occurrence that falls due, in order.
`install=True` installs the app first (its onAppInstall runs), as the platform
does before anything else happens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1]
fwsched_app = pytest.mark.fwsched(app=APP, start="2026-01-05T09:00:00Z", timeout=5)
installed_app = pytest.mark.fwsched(app=APP, start="2026-01-05T09:00:00Z", timeout=5, install=True)


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
def test_the_hourly_sync_moves_its_cursor_forward_for_a_week(fwsched_sim):
    # onAppInstall started it at the next full hour.
    assert fwsched_sim.schedule.fetch(name="hourly_sync")["schedule_at"] == "2026-01-05T10:00:00Z"

    runs = fwsched_sim.advance("7d")

    assert len(runs) == 7 * 24
    assert all(run.outcome == "ok" for run in runs)
    cursors = [run.payload["data"]["cursor"] for run in runs]
    assert cursors == sorted(cursors) and cursors[-1] > cursors[0]
    assert fwsched_sim.schedule.fetch(name="hourly_sync")["data"]["cursor"] >= cursors[-1]


@fwsched_app
def test_secure_iparams_are_masked_in_the_history(fwsched_sim):
    run = fwsched_sim.trigger_payload({"kind": "sync"})

    assert run.outcome == "ok"
    assert run.payload["iparams"]["api_key"] == "****"
    assert run.payload["iparams"]["crm_base_url"].startswith("https://")


@fwsched_app
def test_install_starts_the_sync_and_uninstall_stops_it(fwsched_sim):
    install = fwsched_sim.install()

    assert install.outcome == "ok" and install.render == {"status": 200, "response": None}
    assert fwsched_sim.installed
    assert [s.name for s in fwsched_sim.schedules()] == ["hourly_sync"]

    uninstall = fwsched_sim.uninstall()
    assert "hourly_sync stopped" in uninstall.log
    assert fwsched_sim.schedules() == [] and not fwsched_sim.installed


@fwsched_app
def test_an_install_with_a_bad_crm_url_is_blocked(fwsched_sim):
    run = fwsched_sim.install(iparams={"api_key": "k-12345", "crm_base_url": "http://crm"})

    assert run.render["message"] == "The CRM base URL must start with https:// (got 'http://crm')"
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
