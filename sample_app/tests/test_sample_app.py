"""How to test an app's scheduled handlers with fwsched's pytest fixture.

`fwsched_sim` is a Simulator for the app named by the marker, with private
in-memory state; `advance` fires every occurrence that falls due, in order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1]
fwsched_app = pytest.mark.fwsched(app=APP, start="2026-01-05T09:00:00Z", timeout=5)


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


@fwsched_app
def test_the_hourly_sync_moves_its_cursor_forward_for_a_week(fwsched_sim):
    # What onAppInstall does when the app is installed.
    fwsched_sim.schedule.create(
        name="hourly_sync",
        data={"kind": "sync", "cursor": 0},
        schedule_at="2026-01-05T10:00:00Z",
        repeat={"time_unit": "hours", "frequency": 1},
    )

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
