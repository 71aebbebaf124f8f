"""``fwsched init DIR``: a small working app that passes ``fwsched validate`` and its own test."""

from __future__ import annotations

import json
from pathlib import Path

from fwsched.errors import FwschedError

MANIFEST = {
    "platform-version": "3.0",
    "modules": {
        "common": {
            "events": {
                "onScheduledEvent": {"handler": "onScheduledEventHandler"},
            }
        }
    },
}

SERVER = '''\
"""Scheduled events of this app: a reminder that books a follow-up and counts itself in db.

Try it:
    fwsched run                 # in this directory; then, in another shell:
    fwsched schedule create --name reminder_1 --at +10m --data '{"task": "call Acme"}'
    fwsched advance 10m
    fwsched db get stats
"""

from datetime import UTC, datetime, timedelta

from fwsched.sdk import ScheduleError, db, schedule


def on_scheduled_event(payload):
    data = payload["data"]
    # When this occurrence was due (epoch ms); datetime.now() would tell the simulated
    # time too, a few milliseconds later as the handler runs.
    due = datetime.fromtimestamp(payload["timestamp"] / 1000, UTC)
    print(f"[{due:%Y-%m-%d %H:%M}Z] reminder: {data.get('task')}")
    # The app's data storage ($db): increment creates the key the first time.
    db.update("stats", "increment", {"reminders": 1})
    if data.get("followup"):
        return {"reminded": data.get("task"), "followup": None}
    try:
        schedule.create(
            name="followup",
            data={"task": data.get("task"), "followup": True},
            schedule_at=(due + timedelta(days=1)).isoformat(),
        )
    except ScheduleError as err:
        print(f"no follow-up booked: {err} (status {err.status})")
        return {"reminded": data.get("task"), "followup": None}
    return {"reminded": data.get("task"), "followup": "followup"}


exports = {
    "onScheduledEventHandler": on_scheduled_event,
}
'''

CONFIG = """\
# fwsched settings for this app (every key is optional).

[account]
account_id = 1
domain = "example.myfreshworks.com"
region = "US"

[iparams]
api_key = "not-a-real-key"   # declared secure in config/iparams.json: shown as ****

[simulator]
timeout = 20                          # seconds a handler may run
start = "2026-01-05T09:00:00Z"        # simulated time of a fresh state
"""

IPARAMS = {
    "api_key": {
        "display_name": "API key",
        "description": "Key of the service the reminders are sent to",
        "type": "text",
        "required": True,
        "secure": True,
    }
}

TEST = '''\
"""Tests of the scheduled handler, with fwsched's pytest fixture (run: pytest)."""

from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1]


@pytest.mark.fwsched(app=APP, start="2026-01-05T09:00:00Z", timeout=10)
def test_a_reminder_fires_and_books_a_follow_up(fwsched_sim):
    fwsched_sim.schedule.create(
        name="reminder_1", data={"task": "call Acme"}, schedule_at="2026-01-05T10:00:00Z"
    )

    [reminder] = fwsched_sim.advance("1h")

    assert reminder.outcome == "ok", reminder.error
    assert "reminder: call Acme" in reminder.log
    assert reminder.payload["iparams"]["api_key"] == "****"
    assert fwsched_sim.schedule.fetch(name="followup")["data"]["followup"] is True
    assert fwsched_sim.db.get("stats") == {"reminders": 1}

    [followup] = fwsched_sim.advance("1d")
    assert followup.schedule == "followup"
    assert fwsched_sim.schedules() == []
    assert fwsched_sim.db.get("stats") == {"reminders": 2}
'''

GITIGNORE = """\
.fwsched/
__pycache__/
.pytest_cache/
"""

FILES = {
    "manifest.json": json.dumps(MANIFEST, indent=2) + "\n",
    "server.py": SERVER,
    "fwsched.toml": CONFIG,
    "config/iparams.json": json.dumps(IPARAMS, indent=2) + "\n",
    "tests/test_app.py": TEST,
    ".gitignore": GITIGNORE,
}


def create_app(directory: Path) -> list[Path]:
    """Write the example app into ``directory`` (new or empty); the files written."""
    if directory.exists():
        if not directory.is_dir():
            raise FwschedError(f"{directory} exists and is not a directory")
        if any(directory.iterdir()):
            raise FwschedError(f"{directory} is not empty: fwsched init needs a new directory")
    written = []
    for name, text in FILES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
