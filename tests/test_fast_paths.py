"""What the per-occurrence shortcuts of issue 13 must not change: a handler's clock and
zone, and the iparams each run gets as installations come and go."""

from __future__ import annotations

from datetime import timedelta

from conftest import MakeApp

from fwsched import Simulator

CLOCK = """
import os, time
from datetime import datetime, timezone

def handle(payload):
    seen = {"tz": os.environ.get("TZ"), "tzname": list(time.tzname),
            "now": datetime.now(timezone.utc).isoformat(), "local": time.strftime("%H:%M")}
    if payload["data"].get("elsewhere"):
        os.environ["TZ"] = "Asia/Kolkata"
        time.tzset()
    return seen

exports = {"onScheduledEventHandler": handle}
"""

IPARAMS = """
def handle(payload):
    return payload["iparams"]

def install(payload):
    render_data(None, {})

exports = {"onScheduledEventHandler": handle, "onAppInstallHandler": install}
"""
MANIFEST = {
    "events": {
        "onScheduledEvent": {"handler": "onScheduledEventHandler"},
        "onAppInstall": {"handler": "onAppInstallHandler"},
    }
}


def test_each_run_starts_in_utc_at_its_exact_time(make_app: MakeApp) -> None:
    app = make_app(CLOCK)
    with Simulator(app, start="2026-01-05T09:00:00Z") as sim:
        sim.schedule.create(name="a", data={"elsewhere": True}, schedule_at="2026-01-05T09:10:00Z")
        sim.schedule.create(name="b", data={}, schedule_at="2026-01-05T09:20:00.125Z")
        first, second = sim.advance(timedelta(hours=1))
    for run in (first, second):
        assert run.outcome == "ok", run
        assert run.return_value["tz"] == "UTC"
        assert run.return_value["tzname"] == ["UTC", "UTC"]
    assert first.return_value["now"].startswith("2026-01-05T09:10:00")
    assert second.return_value["now"].startswith("2026-01-05T09:20:00.125")
    assert second.return_value["local"] == "09:20"  # the first one's zone did not stay


def test_each_run_gets_the_iparams_of_the_installation_at_its_time(make_app: MakeApp) -> None:
    app = make_app(IPARAMS, manifest=MANIFEST, toml='[iparams]\nkey = "toml"\n')
    with Simulator(app, start="2026-01-05T09:00:00Z") as sim:
        sim.schedule.create(name="s", data={}, schedule_at="2026-01-05T10:00:00Z",
                            repeat={"time_unit": "hours", "frequency": 1})  # fmt: skip
        assert [run.return_value for run in sim.advance(timedelta(hours=1))] == [{"key": "toml"}]
        sim.install({"key": "first"})
        assert [run.return_value for run in sim.advance(timedelta(hours=2))] == [
            {"key": "first"},
            {"key": "first"},
        ]
        sim.uninstall(keep_data=True)
        sim.install({"key": "second"})
        assert sim.trigger("s").return_value == {"key": "second"}
        sim.uninstall(keep_data=True)
        assert sim.advance(timedelta(hours=1))[0].return_value == {"key": "toml"}


CHAIN = """
def handle(payload):
    data = payload["data"]
    if data.get("drop"):
        schedule.delete(name=data["drop"])
    if data.get("add"):
        schedule.create(name=data["add"], data={}, schedule_at="2026-01-05T09:12:00Z")
    return data.get("n")

exports = {"onScheduledEventHandler": handle}
"""


def test_what_a_run_or_on_fired_changes_decides_what_fires_next(make_app: MakeApp) -> None:
    app = make_app(CHAIN)
    with Simulator(app, start="2026-01-05T09:00:00Z", strict=False) as sim:
        at = "2026-01-05T09:{:02d}:00Z".format
        sim.schedule.create(name="a", data={"n": 1, "drop": "b", "add": "c"}, schedule_at=at(10))
        sim.schedule.create(name="b", data={"n": 2}, schedule_at=at(11))  # dropped by a
        sim.schedule.create(name="d", data={"n": 4}, schedule_at=at(13))
        sim.schedule.create(name="e", data={"n": 5}, schedule_at=at(14))  # dropped by on_fired
        sim.schedule.create(name="f", data={"n": 6}, schedule_at=at(15),
                            repeat={"time_unit": "minutes", "frequency": 1})  # fmt: skip

        def on_fired(invocation: object) -> None:
            if getattr(invocation, "schedule", None) == "d":
                sim.schedule.delete(name="e")

        fired = sim.advance_to(at(17), on_fired=on_fired)
    assert [(run.schedule, run.return_value) for run in fired] == [
        ("a", 1), ("c", None), ("d", 4), ("f", 6), ("f", 6), ("f", 6),
    ]  # fmt: skip
