"""SPEC §3, §4 and §6: the Simulator fires every occurrence, in order, exactly once."""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import MakeApp

from fwsched import Outcome, ScheduleError, Simulator
from fwsched.durations import format_instant, to_epoch_us
from fwsched.errors import AppError, StateError

START = "2026-01-05T09:00:00Z"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

RECORDER = """
    import json
    from datetime import datetime, timezone

    from fwsched.sdk import schedule

    def handle(payload):
        now = datetime.now(timezone.utc)
        print(json.dumps({"data": payload["data"], "ts": payload["timestamp"],
                          "now": now.isoformat()}))
        return payload["data"]

    exports = {"onScheduledEventHandler": handle}
"""


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def recorder(make_app: MakeApp) -> Path:
    return make_app(RECORDER)


def test_ties_fire_in_creation_order(recorder: Path) -> None:
    with Simulator(recorder, start=START, timeout=5) as sim:
        for name in ("b", "c", "a"):
            sim.schedule.create(name=name, data={"n": name}, schedule_at=at(30))
        sim.schedule.create(name="first", data={}, schedule_at=at(10))
        fired = sim.advance("1h")
    assert [i.schedule for i in fired] == ["first", "b", "c", "a"]
    assert all(i.outcome == "ok" for i in fired)
    assert sim.now == T0 + timedelta(hours=1)


def test_the_payload_carries_the_occurrence_time_and_the_handler_sees_it(recorder: Path) -> None:
    with Simulator(recorder, start=START, timeout=5) as sim:
        sim.schedule.create(name="r", data={"task_id": 7}, schedule_at="2026-01-05T10:00:30.250Z")
        [inv] = sim.advance("2h")
    expected = datetime(2026, 1, 5, 10, 0, 30, 250000, tzinfo=UTC)
    assert inv.timestamp == int(expected.timestamp() * 1000)
    assert inv.fire_at == expected
    assert inv.payload["timestamp"] == inv.timestamp
    assert inv.payload["event"] == "onScheduledEvent"
    assert inv.payload["data"] == {"task_id": 7}
    assert inv.return_value == {"task_id": 7}
    seen = datetime.fromisoformat(json.loads(inv.log)["now"])
    # time-machine keeps time as a float: allow it a millisecond of rounding.
    assert expected - timedelta(milliseconds=1) <= seen < expected + timedelta(seconds=5)


def test_thirty_days_of_a_15_minute_schedule_fire_2880_times_in_order(recorder: Path) -> None:
    with Simulator(recorder, start=START, timeout=5) as sim:
        sim.schedule.create(
            name="q",
            data={},
            schedule_at=at(15),
            repeat={"time_unit": "minutes", "frequency": 15},
        )
        fired = sim.advance("30d")
    assert len(fired) == 30 * 24 * 4
    expected = [T0 + timedelta(minutes=15 * (k + 1)) for k in range(len(fired))]
    assert [i.fire_at for i in fired] == expected
    assert [i.timestamp for i in fired] == [int(t.timestamp() * 1000) for t in expected]
    assert {i.outcome for i in fired} == {Outcome.OK}


def test_a_recurring_schedule_in_the_past_starts_at_the_next_aligned_occurrence(
    recorder: Path,
) -> None:
    with Simulator(recorder, start=START, timeout=5) as sim:
        sim.schedule.create(
            name="rec",
            data={},
            schedule_at="2026-01-01T00:07:00Z",
            repeat={"time_unit": "hours", "frequency": 2},
        )
        [schedule] = sim.schedules()
        assert schedule.next_fire_at == datetime(2026, 1, 5, 10, 7, tzinfo=UTC)
        fired = sim.advance("4h")
    assert [i.fire_at.hour for i in fired] == [10, 12]


def test_a_handler_recreating_its_own_name_fires_again_in_the_same_advance(
    make_app: MakeApp,
) -> None:
    app = make_app(
        """
        from datetime import datetime, timedelta, timezone
        from fwsched.sdk import schedule, ScheduleError

        def handle(payload):
            try:
                schedule.fetch(name="loop")
            except ScheduleError as err:
                print("fetch:", err.status)
            n = payload["data"]["n"]
            if n < 3:
                at = datetime.now(timezone.utc) + timedelta(minutes=10)
                schedule.create(name="loop", data={"n": n + 1}, schedule_at=at.isoformat())
            return n

        exports = {"onScheduledEventHandler": handle}
        """
    )
    with Simulator(app, start=START, timeout=5) as sim:
        sim.schedule.create(name="loop", data={"n": 1}, schedule_at=at(10))
        fired = sim.advance("1h")
        assert sim.schedules() == []
    assert [i.return_value for i in fired] == [1, 2, 3]
    assert all("fetch: 404" in i.log for i in fired)  # deleted before its handler runs


def test_a_handler_deleting_another_schedule_cancels_it(make_app: MakeApp) -> None:
    app = make_app(
        """
        from fwsched.sdk import schedule

        def handle(payload):
            if payload["data"].get("cancel"):
                schedule.delete({"name": payload["data"]["cancel"]})

        exports = {"onScheduledEventHandler": handle}
        """
    )
    with Simulator(app, start=START, timeout=5) as sim:
        sim.schedule.create(name="killer", data={"cancel": "victim"}, schedule_at=at(10))
        sim.schedule.create(
            name="victim",
            data={},
            schedule_at=at(20),
            repeat={"time_unit": "minutes", "frequency": 5},
        )
        fired = sim.advance("2h")
    assert [i.schedule for i in fired] == ["killer"]


def test_a_handler_updating_its_own_recurring_schedule_does_not_refire(make_app: MakeApp) -> None:
    app = make_app(
        """
        from fwsched.sdk import schedule

        def handle(payload):
            current = schedule.fetch(name="sync")
            current["data"] = {"cursor": current["data"]["cursor"] + 1}
            schedule.update(current)

        exports = {"onScheduledEventHandler": handle}
        """
    )
    with Simulator(app, start=START, timeout=5) as sim:
        sim.schedule.create(
            name="sync",
            data={"cursor": 0},
            schedule_at=at(60),
            repeat={"time_unit": "hours", "frequency": 1},
        )
        fired = sim.advance("5h")
        assert [i.payload["data"]["cursor"] for i in fired] == [0, 1, 2, 3, 4]
        assert sim.schedule.fetch(name="sync")["data"] == {"cursor": 5}


def test_schedule_errors_in_a_handler_come_back_as_schedule_error(make_app: MakeApp) -> None:
    app = make_app(
        """
        from fwsched.sdk import schedule, ScheduleError

        def handle(payload):
            try:
                schedule.create(name="soon", data={}, schedule_at="2026-01-05T09:11:00Z")
            except ScheduleError as err:
                return [err.status, err.message]

        exports = {"onScheduledEventHandler": handle}
        """
    )
    with Simulator(app, start=START, timeout=5) as sim:
        sim.schedule.create(name="r", data={}, schedule_at=at(10))
        [inv] = sim.advance("1h")
        # At the occurrence's time (09:10) 09:11 is less than five minutes ahead.
        assert inv.return_value == [
            400,
            "The 'schedule_at' value must be at least 5 minutes in the future",
        ]
        assert [s.name for s in sim.schedules()] == []


def test_trigger_runs_now_and_leaves_the_schedule(recorder: Path) -> None:
    with Simulator(recorder, start=START, timeout=5) as sim:
        sim.schedule.create(name="once", data={"v": 1}, schedule_at=at(60))
        before = sim.schedules()
        inv = sim.trigger("once")
        assert (inv.schedule, inv.fire_at, inv.return_value) == ("once", T0, {"v": 1})
        assert inv.timestamp == int(T0.timestamp() * 1000)
        assert sim.trigger("once", data={"v": 2}).return_value == {"v": 2}
        assert sim.schedules() == before
        adhoc = sim.trigger_payload({"adhoc": True})
        assert (adhoc.schedule, adhoc.return_value) == (None, {"adhoc": True})
        with pytest.raises(ScheduleError, match="Schedule does not exist"):
            sim.trigger("nope")
        with pytest.raises(ScheduleError, match="must be of type JSON"):
            sim.trigger_payload([1, 2])  # type: ignore[arg-type]
        assert [i.source for i in sim.history()] == ["trigger", "trigger", "payload"]


def test_secure_iparams_reach_the_handler_but_are_stored_masked(make_app: MakeApp) -> None:
    app = make_app(
        """
        def handle(payload):
            print("got", payload["iparams"]["api_key"])
            assert payload["iparams"]["api_key"] == "s3cret"
            return payload["iparams"]

        exports = {"onScheduledEventHandler": handle}
        """,
        toml="""
        [account]
        account_id = 12345
        domain = "acme.myfreshworks.com"
        [iparams]
        api_key = "s3cret"
        region_name = "eu"
        """,
        iparams={
            "api_key": {"display_name": "Key", "type": "text", "secure": True},
            "region_name": {"display_name": "Region", "type": "text"},
        },
    )
    with Simulator(app, start=START, timeout=5, state=app / ".fwsched" / "state.db") as sim:
        inv = sim.trigger_payload({})
        # The handler got the real value; what fwsched keeps and shows is masked, even
        # where the handler returned or printed it.
        assert inv.return_value == {"api_key": "****", "region_name": "eu"}
        assert "s3cret" not in inv.log and "got ****" in inv.log
        assert inv.payload["iparams"] == {"api_key": "****", "region_name": "eu"}
        assert inv.payload["account_id"] == 12345
        assert sim.history()[0].payload["iparams"]["api_key"] == "****"
    assert b"s3cret" not in b"".join(p.read_bytes() for p in (app / ".fwsched").iterdir())


def test_state_persists_and_the_clock_does_not_move_while_closed(recorder: Path) -> None:
    state = recorder / ".fwsched" / "state.db"
    with Simulator(recorder, start=START, timeout=5, state=state) as sim:
        sim.schedule.create(name="r", data={}, schedule_at=at(90))
        sim.advance("1h")
    with Simulator(recorder, start="2030-01-01T00:00:00Z", timeout=5, state=state) as sim:
        assert sim.now == T0 + timedelta(hours=1)  # start applies only to a fresh state
        assert [s.name for s in sim.schedules()] == ["r"]
        assert [i.schedule for i in sim.advance("1h")] == ["r"]


def test_a_clock_saved_before_the_last_fire_time_resumes_at_that_fire_time(
    recorder: Path,
) -> None:
    # What a kill between an advance's last occurrence and its final clock save leaves:
    # a saved clock earlier than the newest invocation. Library and command line resume
    # at the fire time (an advance saves the clock only at its end).
    state = recorder / ".fwsched" / "state.db"
    with Simulator(recorder, start=START, timeout=5, state=state) as sim:
        sim.schedule.create(name="r", data={}, schedule_at=at(30))
        sim.advance("1h")
    conn = sqlite3.connect(f"file:{state}?vfs=unix-excl", uri=True, isolation_level=None)
    try:
        conn.execute("UPDATE meta SET value=? WHERE key='now_us'", (str(to_epoch_us(T0)),))
    finally:
        conn.close()
    status = subprocess.run(
        [sys.executable, "-m", "fwsched", "status", "--json", "--app", str(recorder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(status.stdout)["now"] == at(30)
    with Simulator(recorder, timeout=5, state=state) as sim:
        assert sim.now == T0 + timedelta(minutes=30)


def test_one_process_owns_a_state_file(recorder: Path) -> None:
    state = recorder / ".fwsched" / "state.db"
    with Simulator(recorder, start=START, state=state), pytest.raises(StateError, match="in use"):
        Simulator(recorder, state=state)
    Simulator(recorder, state=state).close()  # released on close


def test_a_broken_server_still_opens_and_reload_picks_up_the_fix(make_app: MakeApp) -> None:
    app = make_app("def broken(:\n")
    with Simulator(app, start=START, timeout=5) as sim:
        inv = sim.trigger_payload({})
        assert inv.outcome == Outcome.LOAD_ERROR
        assert inv.error is not None and "SyntaxError" in inv.error
        (app / "server.py").write_text(
            "exports = {'onScheduledEventHandler': lambda payload: 'fixed'}\n"
        )
        sim.reload()
        assert sim.trigger_payload({}).return_value == "fixed"


def test_manifest_errors_refuse_to_open(make_app: MakeApp) -> None:
    manifest = {
        "modules": {
            "a": {"events": {"onScheduledEvent": {"handler": "one"}}},
            "b": {"events": {"onScheduledEvent": {"handler": "two"}}},
        }
    }
    app = make_app("exports = {}\n", manifest=manifest)
    with pytest.raises(AppError, match="already mapped"):
        Simulator(app)


def test_no_handler_rejects_schedules_and_triggers(make_app: MakeApp) -> None:
    app = make_app("exports = {}\n", manifest={"events": {}})
    with Simulator(app, start=START) as sim:
        with pytest.raises(ScheduleError, match="has not registered an onScheduledEvent"):
            sim.schedule.create(name="r", data={}, schedule_at=at(10))
        with pytest.raises(AppError, match="No onScheduledEvent handler"):
            sim.trigger_payload({})


def test_time_only_moves_forward(recorder: Path) -> None:
    with Simulator(recorder, start=START) as sim:
        with pytest.raises(ValueError, match="backwards"):
            sim.advance_to("2026-01-05T08:00:00Z")
        with pytest.raises(ValueError):
            sim.advance("0s")
        with pytest.raises(ValueError):
            sim.advance(timedelta(minutes=-5))
        assert sim.now == T0
        assert sim.advance_to(T0) == []


def test_the_advance_target_is_inclusive(recorder: Path) -> None:
    with Simulator(recorder, start=START, timeout=5) as sim:
        sim.schedule.create(name="edge", data={}, schedule_at=at(60))
        assert [i.schedule for i in sim.advance_to(T0 + timedelta(minutes=60))] == ["edge"]


def test_relaxed_is_remembered_in_the_state(recorder: Path) -> None:
    state = recorder / ".fwsched" / "state.db"
    with Simulator(recorder, start=START, strict=False, state=state) as sim:
        sim.schedule.create(name="past", data={}, schedule_at="2026-01-01T00:00:00Z")
        [inv] = sim.advance("1m")
        # Overdue: it runs at once, its payload keeps the time it was due.
        assert inv.fire_at == T0 and inv.timestamp == 1767225600000
    with Simulator(recorder, state=state) as sim:
        assert not sim.strict


KILL_TARGET = """
import sys
from fwsched import Simulator

sim = Simulator(sys.argv[1], state=sys.argv[2], timeout=5)
print("ready", flush=True)
sim.advance("7d")
"""


def test_kill_minus_9_during_an_advance_loses_and_duplicates_nothing(make_app: MakeApp) -> None:
    app = make_app(
        """
        import time

        def handle(payload):
            with open("started.txt", "a") as progress:  # the state is locked while in use
                progress.write("x")
            time.sleep(0.002)

        exports = {"onScheduledEventHandler": handle}
        """
    )
    state = app / ".fwsched" / "state.db"
    with Simulator(app, start=START, state=state) as sim:
        sim.schedule.create(
            name="tick", data={}, schedule_at=at(5), repeat={"time_unit": "minutes", "frequency": 5}
        )
    with subprocess.Popen(
        [sys.executable, "-c", KILL_TARGET, str(app), str(state)],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], 30)  # bounded: never hang
            assert ready and child.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # let it fire a few hundred, then kill it
                if _handled(app) >= 200:
                    break
                time.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
            at_kill = _started(state)
        finally:
            child.kill()
            child.wait(timeout=10)

    # The clock is saved at the end of an advance; a killed one resumes at the last
    # occurrence it began, whose record holds its fire time (the command line agrees).
    status = subprocess.run(
        [sys.executable, "-m", "fwsched", "status", "--json", "--app", str(app)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    with Simulator(app, state=state, timeout=5) as sim:
        last_begun = sim.history()[-1].fire_at
        assert sim.now == last_begun > T0
        assert json.loads(status.stdout)["now"] == format_instant(last_begun)
        sim.advance_to(T0 + timedelta(days=7))
        history = sim.history()
    expected = [T0 + timedelta(minutes=5 * (k + 1)) for k in range(7 * 24 * 12)]
    assert 200 <= at_kill < len(expected), "the kill must land in the middle of the advance"
    assert [i.fire_at for i in history] == expected  # each occurrence exactly once, in order
    assert sum(i.outcome == "interrupted" for i in history) <= 1
    assert all(i.outcome in ("ok", "interrupted") for i in history)


def _handled(app: Path) -> int:
    """Invocations whose handler has started, as the handler counts them."""
    try:
        return len((app / "started.txt").read_text())
    except FileNotFoundError:
        return 0


def _started(state: Path) -> int:
    """Invocations started so far (their owner is gone: it held the file exclusively)."""
    conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM invocations").fetchone()[0])
    finally:
        conn.close()


def test_the_library_example_of_the_spec(tmp_path: Path) -> None:
    app = textwrap.dedent(
        """
        def handle(payload):
            print(f"task {payload['data']['task_id']}")

        exports = {"onScheduledEventHandler": handle}
        """
    )
    root = tmp_path / "spec_app"
    root.mkdir()
    (root / "manifest.json").write_text(
        '{"events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}}}'
    )
    (root / "server.py").write_text(app)
    with Simulator(root, start="2026-01-05T09:00:00Z", timeout=2) as sim:
        sim.schedule.create(name="r", data={"task_id": 1}, schedule_at="2026-01-05T10:00:00Z")
        sim.schedule.create(name="other", data={"task_id": 2}, schedule_at="2026-01-06T10:00:00Z")
        fired = sim.advance("1h")
        assert [i.schedule for i in fired] == ["r"]
        assert fired[0].outcome == "ok" and "task 1" in fired[0].log
        assert sim.trigger("other").outcome == "ok"
        assert sim.now == datetime(2026, 1, 5, 10, tzinfo=UTC)
        assert [s.name for s in sim.schedules()] == ["other"]
        assert len(sim.history()) == 2
