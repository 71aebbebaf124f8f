"""SPEC §8 through the library: any event, install and uninstall, server functions, render_data."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeApp

from fwsched import FwschedError, Outcome, ScheduleError, Simulator
from fwsched.errors import AppError
from fwsched.platform import events

START = "2026-01-05T09:00:00Z"
T0_MS = int(datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp() * 1000)

SERVER = """
    import json
    import time

    def show(payload):
        # Secure values are masked in the log: show them reversed, to see what arrived.
        seen = {**payload, "iparams": {k: str(v)[::-1] for k, v in payload["iparams"].items()}}
        print(json.dumps(seen, sort_keys=True))
        return payload

    def on_install(payload):
        print("installing with", payload["iparams"])
        if payload["iparams"].get("block"):
            render_data({"message": "the API key is not valid", "status": 401})
            return
        if payload["iparams"].get("fail"):
            raise RuntimeError("no network")
        if payload["iparams"].get("silent"):
            return "forgot to answer"
        schedule.create(name="sync", data={"kind": "sync"}, schedule_at="2026-01-05T10:00:00Z",
                        repeat={"time_unit": "hours", "frequency": 1})
        render_data()

    def on_uninstall(payload):
        print("uninstalling")
        schedule.delete(name="sync")
        render_data()

    def on_scheduled(payload):
        print("fired", payload["data"])
        return payload["data"]

    def book(payload):
        try:
            schedule.create(name=payload["name"], data={"task": payload["task"]},
                            schedule_at=payload["at"])
        except ScheduleError as err:
            render_data({"message": err.message, "status": err.status})
            return
        render_data(None, {"booked": payload["name"], "isInstall": payload["isInstall"],
                           "key": payload["iparams"]["api_key"]})

    def answer(payload):
        how = payload.get("how")
        if how == "twice":
            render_data(None, {"first": True})
            render_data(None, {"second": True})
        elif how == "error_only_status":
            render_data({"status": 403})
        elif how == "bad_error":
            render_data("just a string")
        elif how == "empty_error":
            render_data({})
        elif how == "nothing":
            render_data()
        elif how == "not_json":
            render_data(None, {1, 2})
        elif how == "none":
            pass
        return "returned"

    def sleepy(payload):
        time.sleep(30)

    exports = {
        "showHandler": show,
        "onAppInstallHandler": on_install,
        "onAppUninstallHandler": on_uninstall,
        "onScheduledEventHandler": on_scheduled,
        "bookReminder": book,
        "answer": answer,
        "sleepy": sleepy,
        "notDeclared": show,
    }
"""
MANIFEST = {
    "platform-version": "3.0",
    "modules": {
        "common": {
            "events": {
                "onAppInstall": {"handler": "onAppInstallHandler"},
                "onAppUninstall": {"handler": "onAppUninstallHandler"},
                "onScheduledEvent": {"handler": "onScheduledEventHandler"},
                "onTicketCreate": {"handler": "showHandler"},
            },
            "functions": {"bookReminder": {"timeout": 10}, "answer": {}, "sleepy": {"timeout": 1}},
        }
    },
}
TOML = """
[account]
account_id = 777
domain = "acme.freshdesk.com"

[iparams]
api_key = "toml-secret"
"""
IPARAMS = {"api_key": {"type": "text", "secure": True}, "block": {}, "fail": {}, "silent": {}}


@pytest.fixture
def app(make_app: MakeApp) -> Path:
    return make_app(SERVER, manifest=MANIFEST, toml=TOML, iparams=IPARAMS)


@pytest.fixture
def sim(app: Path) -> Any:
    with Simulator(app, start=START, timeout=5) as simulator:
        yield simulator


def logged_payload(log: str) -> dict[str, Any]:
    """The payload the show handler printed, with its iparams as they arrived."""
    seen = dict(json.loads(log.splitlines()[0]))
    seen["iparams"] = {k: v[::-1] for k, v in seen["iparams"].items()}
    return seen


# -- firing any event ---------------------------------------------------------------------


def test_an_event_fires_with_the_default_payload_at_the_simulated_now(sim: Simulator) -> None:
    run = sim.fire("onTicketCreate", {"ticket": {"id": 7}})
    assert run.outcome == Outcome.OK
    assert (run.source, run.event, run.schedule) == ("event", "onTicketCreate", None)
    seen = logged_payload(run.log)
    assert seen == {
        "account_id": 777,
        "domain": "acme.freshdesk.com",
        "region": "US",
        "event": "onTicketCreate",
        "timestamp": T0_MS,
        "data": {"ticket": {"id": 7}},
        "iparams": {"api_key": "toml-secret"},
    }
    assert run.timestamp == T0_MS
    assert run.payload["iparams"] == {"api_key": "****"}  # masked in the record
    assert run.render is None  # optional for product events
    assert sim.history()[-1] == run


def test_an_unregistered_event_is_refused_and_records_nothing(sim: Simulator) -> None:
    with pytest.raises(
        FwschedError, match=r"^Event 'onDealCreate' is not registered in manifest.json$"
    ):
        sim.fire("onDealCreate")
    assert sim.history() == []


@pytest.mark.parametrize("folder", ["test_data", "server/test_data"])
def test_the_payload_starts_from_the_apps_test_data_file(app: Path, folder: str) -> None:
    sample = {
        "account_id": 1,
        "domain": "sample.freshdesk.com",
        "event": "wrong",
        "region": "EU",
        "timestamp": 1500000000000,
        "data": {"ticket": {"id": 1}},
        "iparams": {"api_key": "from the file"},
    }
    (app / folder).mkdir(parents=True)
    (app / folder / "onTicketCreate.json").write_text(json.dumps(sample))
    with Simulator(app, start=START, timeout=5) as sim:
        from_file = logged_payload(sim.fire("onTicketCreate").log)
        data_only = logged_payload(sim.fire("onTicketCreate", {"ticket": {"id": 2}}).log)
    # event and iparams are the app's; a timestamp in the file is kept.
    assert from_file == {**sample, "event": "onTicketCreate", "iparams": {"api_key": "toml-secret"}}
    assert data_only == {**from_file, "data": {"ticket": {"id": 2}}}


def test_a_full_payload_replaces_the_file_and_a_missing_timestamp_is_now(sim: Simulator) -> None:
    full = {"domain": "other.freshdesk.com", "data": {"x": 1}}
    seen = logged_payload(sim.fire("onTicketCreate", full).log)
    assert seen == {**full, "event": "onTicketCreate", "iparams": {"api_key": "toml-secret"},
                    "timestamp": T0_MS}  # fmt: skip
    # "data" alone is not a full payload: it is the data.
    assert logged_payload(sim.fire("onTicketCreate", {"data": 5}).log)["data"] == {"data": 5}


def test_trigger_payload_takes_an_fdk_full_payload_as_it_is(sim: Simulator) -> None:
    fdk = {
        "account_id": 12345,
        "event": "onScheduledEvent",
        "region": "US",
        "timestamp": 1767261600000,
        "domain": "acme.myfreshworks.com",
        "data": {"task_id": 100001},
        "iparams": {},
    }
    run = sim.trigger_payload(fdk)
    assert run.outcome == Outcome.OK, run.error
    assert run.return_value == {"task_id": 100001}
    assert (run.source, run.event, run.timestamp) == ("payload", "onScheduledEvent", 1767261600000)
    assert run.payload["domain"] == "acme.myfreshworks.com"
    # Plain data still works, and still follows a schedule's data rules.
    assert sim.trigger_payload({"task_id": 1}).return_value == {"task_id": 1}
    with pytest.raises(ScheduleError, match="must be of type JSON"):
        sim.trigger_payload({"account_id": 1, "data": [1]})


def test_a_broken_test_data_file_names_file_line_and_column(app: Path) -> None:
    (app / "test_data").mkdir()
    (app / "test_data" / "onTicketCreate.json").write_text('{\n  "data": {,}\n}')
    with Simulator(app, start=START, timeout=5) as sim:
        with pytest.raises(
            AppError, match=r"^test_data/onTicketCreate.json: invalid JSON at line 2 column 12"
        ):
            sim.fire("onTicketCreate")
        assert sim.history() == []


def test_a_payload_that_is_not_an_object_is_refused(sim: Simulator) -> None:
    with pytest.raises(FwschedError, match="must be a JSON object"):
        sim.fire("onTicketCreate", [1])  # type: ignore[arg-type]
    assert sim.history() == []


# -- render_data --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "render"),
    [
        ("nothing", {"status": 200, "response": None}),
        ("error_only_status", {"status": 403, "message": None, "errorSource": "APP"}),
        ("bad_error", {"status": 400, "message": events.BAD_ERROR, "errorSource": "APP"}),
        ("empty_error", {"status": 400, "message": events.BAD_ERROR, "errorSource": "APP"}),
    ],
)
def test_render_data_answers_as_the_platform_does(
    sim: Simulator, how: str, render: dict[str, Any]
) -> None:
    run = sim.invoke("answer", {"how": how})
    assert run.outcome == Outcome.OK
    assert run.render == render


def test_a_second_render_data_is_ignored_with_a_warning(sim: Simulator) -> None:
    run = sim.invoke("answer", {"how": "twice"})
    assert run.render == {"status": 200, "response": {"first": True}}
    assert "render_data was called again" in run.log


def test_a_function_that_does_not_render_ends_in_error(sim: Simulator) -> None:
    run = sim.invoke("answer", {"how": "none"})
    assert run.outcome == Outcome.ERROR
    assert run.error == "render_data was not called"
    assert run.render is None and run.return_value == "returned"


def test_render_data_of_something_not_json_raises_in_the_handler(sim: Simulator) -> None:
    run = sim.invoke("answer", {"how": "not_json"})
    assert run.outcome == Outcome.ERROR
    assert run.error is not None and run.error.startswith(
        "TypeError: render_data: data is not JSON"
    )


def test_render_data_in_a_scheduled_handler_is_only_recorded(make_app: MakeApp) -> None:
    app = make_app(
        "def h(payload):\n    render_data(None, {'ok': 1})\n\n"
        "exports = {'onScheduledEventHandler': h}\n"
    )
    with Simulator(app, start=START, timeout=5) as sim:
        run = sim.trigger_payload({})
        assert run.render == {"status": 200, "response": {"ok": 1}}
        assert sim.history()[-1].render == run.render  # stored


def test_render_data_outside_a_handler_says_where_it_works() -> None:
    from fwsched.sdk import render_data

    with pytest.raises(RuntimeError, match="only inside a handler run by fwsched"):
        render_data()


# -- server functions ---------------------------------------------------------------------


def test_a_function_creates_a_schedule_that_fires_on_advance(sim: Simulator) -> None:
    params = {"name": "remind_7", "task": 7, "at": "2026-01-05T09:30:00Z"}
    run = sim.invoke("bookReminder", params)
    assert run.outcome == Outcome.OK, run.error
    assert (run.source, run.event, run.schedule) == ("function", "bookReminder", None)
    assert run.render == {
        "status": 200,
        "response": {"booked": "remind_7", "isInstall": False, "key": "****"},  # redacted
    }
    assert run.payload == {**params, "iparams": {"api_key": "****"}, "isInstall": False}
    [fired] = sim.advance("1h")
    assert fired.schedule == "remind_7" and fired.outcome == Outcome.OK


def test_a_function_renders_the_schedule_apis_error(sim: Simulator) -> None:
    run = sim.invoke("bookReminder", {"name": "r", "task": 1, "at": "2026-01-05T09:01:00Z"})
    assert run.outcome == Outcome.OK
    assert run.render is not None and run.render["status"] == 400
    assert "at least 5 minutes" in run.render["message"]


def test_undeclared_and_missing_functions_are_refused(sim: Simulator, app: Path) -> None:
    with pytest.raises(
        FwschedError, match=r"^Function 'notDeclared' is not declared in manifest.json functions$"
    ):
        sim.invoke("notDeclared")
    with pytest.raises(FwschedError, match="must be a JSON object"):
        sim.invoke("answer", [1])  # type: ignore[arg-type]
    assert sim.history() == []


def test_without_a_functions_block_any_export_may_be_invoked(make_app: MakeApp) -> None:
    app = make_app(
        "def fn(payload):\n    render_data(None, sorted(payload))\n\n"
        "exports = {'onScheduledEventHandler': fn, 'fn': fn}\n"
    )
    with Simulator(app, start=START, timeout=5) as sim:
        run = sim.invoke("fn", {"a": 1})
        assert run.render == {"status": 200, "response": ["a", "iparams", "isInstall"]}
        with pytest.raises(
            FwschedError, match=r"^Function 'nope' is not defined in server.py exports$"
        ):
            sim.invoke("nope")


def test_a_function_has_its_own_timeout(sim: Simulator) -> None:
    run = sim.invoke("sleepy")
    assert run.outcome == Outcome.TIMEOUT
    assert run.error == (
        "killed after 1 s timeout "
        "(the limit is set by functions.sleepy.timeout in manifest.json, 5 s if not given)"
    )
    assert events.function_timeout(sim.spec, "bookReminder") == 10
    assert events.function_timeout(sim.spec, "answer") == 5  # the platform's default


# -- install and uninstall ----------------------------------------------------------------


def test_install_fires_on_app_install_and_uninstall_removes_the_schedules(sim: Simulator) -> None:
    assert not sim.installed and not sim.ever_installed
    run = sim.install()
    assert run is not None and run.outcome == Outcome.OK
    assert (run.source, run.event) == ("install", "onAppInstall")
    assert run.render == {"status": 200, "response": None}
    assert sim.installed
    assert [s.name for s in sim.schedules()] == ["sync"]
    with pytest.raises(FwschedError, match="already installed"):
        sim.install()

    sim.schedule.create(name="left_over", data={}, schedule_at="2026-01-05T12:00:00Z")
    gone = sim.uninstall()
    assert gone is not None and gone.source == "uninstall" and "uninstalling" in gone.log
    assert sim.schedules() == [] and not sim.installed and sim.ever_installed
    with pytest.raises(FwschedError, match="not installed"):
        sim.uninstall()


def test_uninstall_keep_data_keeps_the_schedules(sim: Simulator) -> None:
    sim.install()
    sim.schedule.create(name="kept", data={}, schedule_at="2026-01-05T12:00:00Z")
    sim.uninstall(keep_data=True)
    assert [s.name for s in sim.schedules()] == ["kept"]  # the handler stopped "sync"


@pytest.mark.parametrize(
    ("iparams", "reason"),
    [
        ({"block": True}, "Install blocked by the app: the API key is not valid"),
        ({"fail": True}, "Install failed: RuntimeError: no network"),
        ({"silent": True}, "Install failed: render_data was not called"),
    ],
)
def test_an_install_that_fails_or_is_blocked_leaves_the_app_not_installed(
    sim: Simulator, iparams: dict[str, Any], reason: str
) -> None:
    run = sim.install(iparams={"api_key": "install-key", **iparams})
    assert run is not None
    assert events.install_failure(run) == reason
    assert not sim.installed and not sim.ever_installed
    with pytest.raises(FwschedError, match="not installed"):
        sim.uninstall()


def test_installation_iparams_reach_later_events_until_uninstall(app: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with Simulator(app, start=START, timeout=5, state=state) as sim:
        run = sim.install(iparams={"api_key": "install-secret"})
        assert run is not None and "installing with {'api_key': 'install-secret'}" not in run.log
        assert "****" in run.log  # the secure value is masked in what is stored
    with Simulator(app, timeout=5, state=state) as sim:  # a later process
        assert sim.installed
        seen = sim.fire("onTicketCreate")
        assert logged_payload(seen.log)["iparams"] == {"api_key": "install-secret"}
        assert seen.payload["iparams"] == {"api_key": "****"}
        sim.uninstall()
        after = sim.fire("onTicketCreate")
        assert logged_payload(after.log)["iparams"] == {"api_key": "toml-secret"}
    # The real value is not kept once uninstalled, and never in the history.
    conn = sqlite3.connect(state)
    dump = "\n".join(conn.iterdump())
    conn.close()
    assert "install-secret" not in dump


def test_an_app_without_setup_events_installs_at_once(make_app: MakeApp) -> None:
    app = make_app("exports = {'onScheduledEventHandler': print}\n")
    with Simulator(app, start=START) as sim:
        assert sim.install() is None and sim.installed
        assert sim.uninstall() is None and not sim.installed
        assert sim.history() == []


def test_bad_install_iparams_change_nothing(sim: Simulator) -> None:
    with pytest.raises(AppError, match="iparams must be a dict"):
        sim.install(iparams=[1])  # type: ignore[arg-type]
    assert not sim.installed and sim.history() == []


def test_history_by_name_finds_events_and_functions(sim: Simulator) -> None:
    sim.install()
    sim.invoke("answer", {"how": "nothing"})
    assert [i.event for i in sim.history(name="answer")] == ["answer"]
    assert [i.source for i in sim.history(name="onAppInstall")] == ["install"]
