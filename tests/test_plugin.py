"""The pytest plugin: marker, ini option, private state, teardown, pytest-xdist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import MakeApp


@pytest.fixture(autouse=True)
def not_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest runs as a developer's would: on CI (``CI`` or ``BUILD_NUMBER`` set)
    pytest prints its short summary untruncated, which repeats the lines these tests count."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)


SERVER = """
    import os

    def handle(payload):
        print("task", payload["data"].get("task_id"))
        return os.getpid()

    exports = {"onScheduledEventHandler": handle}
"""


def test_the_marker_names_the_app_and_simulator_arguments(
    pytester: pytest.Pytester, make_app: MakeApp
) -> None:
    app = make_app(SERVER)
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.fwsched(app={str(app)!r}, start="2026-01-05T09:00:00Z", timeout=3)
        def test_reminder(fwsched_sim):
            fwsched_sim.schedule.create(name="r", data={{"task_id": 1}},
                                        schedule_at="2026-01-05T10:00:00Z")
            [run] = fwsched_sim.advance("1h")
            assert run.outcome == "ok" and "task 1" in run.log
            assert fwsched_sim.timeout == 3

        @pytest.mark.fwsched(app={str(app)!r}, start="2026-01-05T09:00:00Z")
        def test_state_is_private(fwsched_sim):
            assert fwsched_sim.schedules() == [] and fwsched_sim.history() == []
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert not (app / ".fwsched").exists(), "private state writes nothing into the app"


def test_the_ini_option_names_the_app(pytester: pytest.Pytester, make_app: MakeApp) -> None:
    app = make_app(SERVER)
    pytester.makeini(f"[pytest]\nfwsched_app = {app}\n")
    pytester.makepyfile(
        """
        def test_it(fwsched_sim):
            assert fwsched_sim.trigger_payload({"task_id": 2}).outcome == "ok"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_without_an_app_the_fixture_says_how_to_name_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(fwsched_sim):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fwsched_sim needs an app*@pytest.mark.fwsched(app=*"])


def test_the_sandbox_is_closed_when_the_test_fails(
    pytester: pytest.Pytester, make_app: MakeApp, tmp_path: Path
) -> None:
    app = make_app(SERVER)
    pid_file = tmp_path / "worker.pid"
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.fwsched(app={str(app)!r})
        def test_fails(fwsched_sim):
            run = fwsched_sim.trigger_payload({{}})
            with open({str(pid_file)!r}, "w") as out:
                out.write(str(run.return_value))
            assert False, "on purpose"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(failed=1)
    worker = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)


def test_tests_using_the_fixture_run_under_xdist(
    pytester: pytest.Pytester, make_app: MakeApp
) -> None:
    app = make_app(SERVER)
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.parametrize("n", range(6))
        @pytest.mark.fwsched(app={str(app)!r}, start="2026-01-05T09:00:00Z")
        def test_many(fwsched_sim, n):
            fwsched_sim.schedule.create(name="r", data={{"task_id": n}},
                                        schedule_at="2026-01-05T10:00:00Z")
            [run] = fwsched_sim.advance("1h")
            assert f"task {{n}}" in run.log
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=6)


INSTALLING = """
    def on_install(payload):
        if payload["iparams"].get("block"):
            render_data({"message": "refused"})
            return
        schedule.create(name="sync", data={}, schedule_at="2026-01-05T10:00:00Z",
                        repeat={"time_unit": "hours", "frequency": 1})
        render_data()

    def tick(payload):
        print("tick")

    def book(payload):
        schedule.create(name=payload["name"], data={}, schedule_at="2026-01-05T09:30:00Z")
        render_data(None, {"booked": payload["name"]})

    exports = {"onAppInstallHandler": on_install, "onScheduledEventHandler": tick, "book": book}
"""
INSTALLING_MANIFEST = {
    "events": {
        "onAppInstall": {"handler": "onAppInstallHandler"},
        "onScheduledEvent": {"handler": "onScheduledEventHandler"},
    },
    "functions": {"book": {}},
}


def test_the_marker_installs_the_app_when_asked(
    pytester: pytest.Pytester, make_app: MakeApp
) -> None:
    app = make_app(INSTALLING, manifest=INSTALLING_MANIFEST)
    pytester.makepyfile(
        f"""
        import pytest

        APP = {str(app)!r}

        @pytest.mark.fwsched(app=APP, start="2026-01-05T09:00:00Z", install=True)
        def test_installed(fwsched_sim):
            assert fwsched_sim.installed
            assert [s.name for s in fwsched_sim.schedules()] == ["sync"]
            run = fwsched_sim.invoke("book", {{"name": "r"}})
            assert run.render == {{"status": 200, "response": {{"booked": "r"}}}}
            assert [i.schedule for i in fwsched_sim.advance("1h")] == ["r", "sync"]

        @pytest.mark.fwsched(app=APP, start="2026-01-05T09:00:00Z")
        def test_not_installed_by_default(fwsched_sim):
            assert not fwsched_sim.installed and fwsched_sim.history() == []

        @pytest.mark.fwsched(app=APP, iparams={{"block": True}}, install=True)
        def test_blocked(fwsched_sim):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*install=True, but the app did not install: Install blocked by the app: refused*"]
    )


# -- issue 12: what a failing test shows ----------------------------------------------------

FAILING = """
    def handle(payload):
        print("starting", payload["data"])
        print("about to fail")
        raise KeyError("cursor")

    exports = {"onScheduledEventHandler": handle}
"""


def test_an_app_that_is_not_found_fails_with_one_line_naming_the_paths_tried(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fwsched(app="my_app")
        def test_it(fwsched_sim):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    near = pytester.path / "my_app"
    [line] = [line for line in result.outlines if "fwsched_sim: no app" in line]
    assert line == (
        f"fwsched_sim: no app for @pytest.mark.fwsched(app='my_app'): no manifest.json in {near}"
    )
    text = result.stdout.str()
    assert "fwsched init" not in text and "engine.py" not in text and "app.py" not in text


def test_the_ini_option_is_relative_to_the_rootdir_and_named_when_wrong(
    pytester: pytest.Pytester, make_app: MakeApp
) -> None:
    app = make_app(SERVER, name="app")
    (pytester.path / "apps").mkdir()
    app.rename(pytester.path / "apps" / "app")
    pytester.makeini("[pytest]\nfwsched_app = apps/app\n")
    pytester.mkdir("tests")
    pytester.path.joinpath("tests", "test_it.py").write_text(
        "def test_it(fwsched_sim):\n    assert fwsched_sim.spec.root.name == 'app'\n"
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nfwsched_app = apps/typo\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["fwsched_sim: no app for fwsched_app = apps/typo: no manifest*"])


def test_a_failed_outcome_assertion_shows_the_error_traceback_and_output(
    pytester: pytest.Pytester, make_app: MakeApp
) -> None:
    app = make_app(FAILING)
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.fwsched(app={str(app)!r})
        def test_assert(fwsched_sim):
            run = fwsched_sim.trigger_payload({{"n": 1}})
            assert run.outcome == "ok"

        @pytest.mark.fwsched(app={str(app)!r})
        def test_check(fwsched_sim):
            fwsched_sim.trigger_payload({{"n": 2}}).check()

        @pytest.mark.fwsched(app={str(app)!r})
        def test_check_passes_the_invocation_on(fwsched_sim):
            assert fwsched_sim.trigger_payload({{"n": 3}}).check("error").id == 1
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, passed=1)
    text = result.stdout.str()
    for n in (1, 2):
        assert f"starting {{'n': {n}}}" in text  # the output
    assert text.count("error: KeyError: 'cursor'") == 2  # the error
    assert text.count("traceback:") == 2  # (pytest cuts a long explanation short unless -vv)
    assert 'raise KeyError("cursor")' in text  # the traceback, from the handler's own line
    assert "ended error, not ok" in text


def test_a_repr_says_how_the_run_ended(make_app: MakeApp) -> None:
    from fwsched import Simulator

    with Simulator(make_app(FAILING)) as sim:
        run = sim.trigger_payload({"n": 1})
    text = repr(run)
    assert text.startswith("<Invocation #1 onScheduledEvent (payload) at ")
    assert "error: KeyError: 'cursor'" in text and "about to fail" in text
    assert len(text) <= 240  # pytest cuts longer ones


def test_a_schedule_error_points_at_the_test_not_into_fwsched(
    pytester: pytest.Pytester, make_app: MakeApp
) -> None:
    app = make_app(SERVER)
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.fwsched(app={str(app)!r}, start="2026-01-05T09:00:00Z")
        def test_it(fwsched_sim):
            fwsched_sim.schedule.create(name="r", data={{}}, schedule_at="2026-01-05T09:01:00Z")
        """
    )
    # In a process of its own: in-process runs re-import modules, which breaks the
    # identity of exception classes that the traceback trimming relies on.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "ScheduleError: The 'schedule_at' value must be at least 5 minutes in the future" in text
    assert "schedule_api.py" not in text and "rules.py" not in text
    result.stdout.fnmatch_lines(
        ["test_a_schedule_error_points_at_the_test_not_into_fwsched.py:5: *"]
    )
