"""SPEC §3 "Inside the handler": the sandbox turns whatever a handler does into one outcome."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeApp

from fwsched import Outcome, ScheduleError
from fwsched.sandbox import Isolation, LoadReport, Opaque, RunResult, Sandbox

HANDLER = "onScheduledEventHandler"
FIRE_AT = datetime(2030, 1, 2, 10, 0, tzinfo=UTC)
PAYLOAD = {"event": "onScheduledEvent", "timestamp": 1893578400000, "data": {"n": 1}}
TIMEOUT = 1.0  # seconds: short, so that the timeout tests stay fast
MODES = [Isolation.WARM, Isolation.FRESH]

# One app with a handler per behaviour; each test runs the one it names.
BEHAVIOURS = """
    import asyncio
    import ctypes
    import os
    import subprocess
    import sys
    import time

    def ok(payload):
        return {"ok": payload["data"]}

    def pid(payload):
        return os.getpid()

    def sleeps(payload):
        time.sleep(1000)

    def grandchild(payload):
        child = subprocess.Popen(["sleep", "1000"])
        print("grandchild", child.pid, flush=True)
        time.sleep(1000)

    def raises(payload):
        raise ValueError("bad data: " + repr(payload["data"]))

    def exits(payload):
        os._exit(3)

    def segfaults(payload):
        ctypes.string_at(0)

    def allocates(payload):
        block = bytearray(2 * 1024 ** 3)
        return len(block)

    def prints(payload):
        sys.stdout.write("x" * (5 * 1024 * 1024))
        return "printed"

    def sys_exits(payload):
        sys.exit(4)

    async def waits(payload):
        await asyncio.sleep(0.01)
        return "awaited"

    exports = {name: f for name, f in globals().items()
               if callable(f) and getattr(f, "__module__", None) == __name__}
"""


@pytest.fixture
def sandboxes() -> Iterator[Callable[..., Sandbox]]:
    """``open(app_dir, handler=..., **options)``: a Sandbox closed after the test."""
    opened: list[Sandbox] = []

    def open_sandbox(app_dir: Path, handler: str | None = HANDLER, **options: Any) -> Sandbox:
        options.setdefault("timeout", TIMEOUT)
        sandbox = Sandbox(app_dir, handler, **options)
        opened.append(sandbox)
        return sandbox

    yield open_sandbox
    for sandbox in opened:
        sandbox.close()


@pytest.fixture
def behaviours(make_app: MakeApp) -> Path:
    return make_app(BEHAVIOURS)


def invoke(sandbox: Sandbox, payload: dict[str, Any] | None = None, **options: Any) -> RunResult:
    return sandbox.invoke(PAYLOAD if payload is None else payload, fire_at=FIRE_AT, **options)


def assert_serves_next(app: Path, sandboxes: Callable[..., Sandbox], mode: Isolation) -> None:
    """The same app still runs a normal invocation (a new worker where needed)."""
    result = invoke(sandboxes(app, "ok", isolation=mode))
    assert result.outcome == Outcome.OK, result
    assert result.return_value == {"ok": {"n": 1}}


def after_failure_still_ok(sandbox: Sandbox) -> None:
    """The Sandbox that saw the failure serves the next invocation transparently."""
    sandbox.handler = "ok"
    result = invoke(sandbox)
    assert result.outcome == Outcome.OK, result


# -- one outcome per behaviour, in both isolations ---------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_ok_returns_value_duration_and_no_error(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    result = invoke(sandboxes(behaviours, "ok", isolation=mode))
    assert result.outcome == Outcome.OK
    assert (result.error, result.traceback, result.exit_code, result.signal) == (None,) * 4
    assert result.return_value == {"ok": {"n": 1}}
    assert 0 <= result.duration_ms < 1000


@pytest.mark.parametrize("mode", MODES)
def test_handler_that_sleeps_forever_times_out(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(behaviours, "sleeps", isolation=mode)
    started = time.monotonic()
    result = invoke(sandbox)
    assert result.outcome == Outcome.TIMEOUT
    assert result.error == "killed after 1 s timeout"
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 5
    assert result.duration_ms >= TIMEOUT * 1000
    after_failure_still_ok(sandbox)


@pytest.mark.parametrize("mode", MODES)
def test_timeout_kills_the_processes_the_handler_started(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(behaviours, "grandchild", isolation=mode)
    result = invoke(sandbox)
    assert result.outcome == Outcome.TIMEOUT
    match = re.search(r"grandchild (\d+)", result.log)  # the output before the kill is kept
    assert match, result.log
    assert_gone(int(match.group(1)))
    after_failure_still_ok(sandbox)


def assert_gone(pid: int) -> None:
    """The process no longer exists (a zombie waiting for a non-reaping init counts as gone)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.02)
    pytest.fail(f"process {pid} is still running")


@pytest.mark.parametrize("mode", MODES)
def test_handler_that_raises_is_an_error_with_traceback(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(behaviours, "raises", isolation=mode)
    result = invoke(sandbox)
    assert result.outcome == Outcome.ERROR
    assert result.error == "ValueError: bad data: {'n': 1}"
    assert result.traceback is not None
    assert result.traceback.startswith("Traceback (most recent call last):\n")
    assert 'server.py", line ' in result.traceback and "in raises" in result.traceback
    assert "fwsched" not in result.traceback  # the worker's own frames are cut
    after_failure_still_ok(sandbox)


@pytest.mark.parametrize("mode", MODES)
def test_os_exit_is_a_crash_with_its_exit_code(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(behaviours, "exits", isolation=mode)
    result = invoke(sandbox)
    assert result.outcome == Outcome.CRASHED
    assert (result.exit_code, result.signal) == (3, None)
    assert result.error == "sandbox process exited with code 3"
    after_failure_still_ok(sandbox)


@pytest.mark.parametrize("mode", MODES)
def test_segfault_is_a_crash_with_its_signal(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(behaviours, "segfaults", isolation=mode)
    result = invoke(sandbox)
    assert result.outcome == Outcome.CRASHED
    assert (result.exit_code, result.signal) == (None, 11)
    assert result.error == "sandbox process died with signal SIGSEGV"
    assert "Segmentation fault" in result.log  # faulthandler's Python traceback
    after_failure_still_ok(sandbox)


@pytest.mark.parametrize("mode", MODES)
def test_allocating_beyond_the_memory_limit_fails_the_invocation_only(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(behaviours, "allocates", isolation=mode)
    result = invoke(sandbox)
    assert result.outcome in (Outcome.ERROR, Outcome.CRASHED)
    if result.outcome == Outcome.ERROR:
        assert result.error == "MemoryError"
    after_failure_still_ok(sandbox)


@pytest.mark.parametrize("mode", MODES)
def test_output_is_capped_at_one_mebibyte(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(behaviours, "prints", isolation=mode)
    result = invoke(sandbox)
    assert result.outcome == Outcome.OK
    assert result.return_value == "printed"
    assert result.log == "x" * (1024 * 1024) + "\n[output truncated]"
    after_failure_still_ok(sandbox)
    assert invoke(sandbox).log == ""  # the rest was drained, not left for the next one


@pytest.mark.parametrize("mode", MODES)
def test_sys_exit_in_a_handler_is_an_error_that_says_handlers_return(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(behaviours, "sys_exits", isolation=mode)
    result = invoke(sandbox)
    assert result.outcome == Outcome.ERROR and result.exit_code is None
    assert result.error is not None
    assert result.error.startswith("SystemExit(4): a handler must return (or raise an error)")
    assert result.traceback is not None and "sys.exit(4)" in result.traceback
    after_failure_still_ok(sandbox)


@pytest.mark.parametrize("mode", MODES)
def test_async_handler_is_awaited(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    result = invoke(sandboxes(behaviours, "waits", isolation=mode))
    assert (result.outcome, result.return_value) == (Outcome.OK, "awaited")


@pytest.mark.parametrize("mode", MODES)
def test_syntax_error_is_a_load_error(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    app = make_app("print('importing')\ndef handler(payload)\n    return 1\n")
    sandbox = sandboxes(app, isolation=mode)
    for _ in range(2):  # remembered until a reload, not retried each time
        result = invoke(sandbox)
        assert result.outcome == Outcome.LOAD_ERROR
        assert result.error is not None
        assert result.error.startswith("SyntaxError: ")
        assert result.error.endswith("(server.py, line 2)")
        assert result.traceback is not None and "def handler(payload)" in result.traceback
        assert result.duration_ms == 0.0
    report = sandbox.inspect()
    assert (report.ok, report.exports) == (False, [])
    assert report.error == result.error
    fix(
        app, "def handler(payload):\n    return 1\nexports = {'onScheduledEventHandler': handler}\n"
    )
    sandbox.reload()
    assert (invoke(sandbox).outcome, sandbox.inspect().ok) == (Outcome.OK, True)


def fix(app: Path, source: str) -> None:
    (app / "server.py").write_text(source)


@pytest.mark.parametrize("mode", MODES)
def test_missing_handler_is_a_load_error(
    behaviours: Path, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    result = invoke(sandboxes(behaviours, "onScheduledEventHandler", isolation=mode))
    assert result.outcome == Outcome.LOAD_ERROR
    assert result.error == (
        "Event callback 'onScheduledEventHandler' is not defined in server.py exports"
    )
    assert result.traceback is None
    assert_serves_next(behaviours, sandboxes, mode)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("import no_such_module\n", "ModuleNotFoundError: No module named 'no_such_module'"),
        ("handlers = {}\n", "server.py does not define 'exports'"),
        ("exports = [1]\n", "server.py 'exports' must be a dict"),
        ("exports = {'onScheduledEventHandler': 42}\n", "exports['onScheduledEventHandler'] is"),
        ("raise SystemExit(2)\n", "SystemExit: 2"),
    ],
)
def test_broken_server_py_is_a_load_error(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox], source: str, error: str
) -> None:
    result = invoke(sandboxes(make_app(source)))
    assert result.outcome == Outcome.LOAD_ERROR
    assert result.error is not None and error in result.error


def test_import_that_never_finishes_is_a_load_error(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox]
) -> None:
    result = invoke(sandboxes(make_app("while True:\n    pass\n")))
    assert result.outcome == Outcome.LOAD_ERROR
    assert result.error == "server.py did not finish importing within 1 s"


def test_crash_while_importing_is_a_load_error(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox]
) -> None:
    result = invoke(sandboxes(make_app("import os\nprint('before')\nos._exit(5)\n")))
    assert result.outcome == Outcome.LOAD_ERROR
    assert result.error == "sandbox process exited with code 5 while loading server.py"
    assert result.log == "before\n"


def test_no_handler_in_manifest_is_a_load_error(
    behaviours: Path, sandboxes: Callable[..., Sandbox]
) -> None:
    result = invoke(sandboxes(behaviours, None))
    assert result.outcome == Outcome.LOAD_ERROR
    assert result.error == "No onScheduledEvent handler is registered in manifest.json"


def test_inspect_lists_the_exports(behaviours: Path, sandboxes: Callable[..., Sandbox]) -> None:
    report = sandboxes(behaviours, None).inspect()
    assert isinstance(report, LoadReport)
    assert report.ok and report.error is None
    assert {"ok", "sleeps", "waits"} <= set(report.exports)


# -- what the handler sees -----------------------------------------------------------------

CLOCK = """
    import time
    from datetime import date, datetime, timezone

    def handle(payload):
        first = time.time()
        time.sleep(0.2)
        return {
            "time": first,
            "later": time.time(),
            "now": datetime.now().isoformat(),
            "now_utc": datetime.now(timezone.utc).isoformat(),
            "utcnow": datetime.utcnow().isoformat(),
            "today": date.today().isoformat(),
        }

    exports = {"onScheduledEventHandler": handle}
"""


@pytest.mark.parametrize("mode", MODES)
def test_handler_sees_the_simulated_time_moving(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(make_app(CLOCK), isolation=mode)
    for fire_at in (FIRE_AT, FIRE_AT + timedelta(days=400, seconds=7)):
        seen = sandbox.invoke(PAYLOAD, fire_at=fire_at).return_value
        assert fire_at.timestamp() <= seen["time"] < fire_at.timestamp() + 1
        assert 0.2 <= seen["later"] - seen["time"] < 1.5  # ticking with real time
        for key in ("now", "utcnow"):  # TZ=UTC: naive local time is UTC
            assert_close(datetime.fromisoformat(seen[key]).replace(tzinfo=UTC), fire_at)
        assert_close(datetime.fromisoformat(seen["now_utc"]), fire_at)
        assert seen["today"] == fire_at.date().isoformat()


def assert_close(seen: datetime, fire_at: datetime) -> None:
    assert fire_at <= seen < fire_at + timedelta(seconds=2)


STATEFUL = """
    count = 0

    def handle(payload):
        global count
        count += 1
        return count

    exports = {"onScheduledEventHandler": handle}
"""


@pytest.mark.parametrize(("mode", "expected"), [("warm", [1, 2, 3]), ("fresh", [1, 1, 1])])
def test_module_state_persists_only_in_warm(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox], mode: str, expected: list[int]
) -> None:
    sandbox = sandboxes(make_app(STATEFUL), isolation=mode)
    assert [invoke(sandbox).return_value for _ in range(3)] == expected


OUTPUT = """
    import logging
    import subprocess
    import sys

    log = logging.getLogger("app")

    def handle(payload):
        print("one")
        log.info("two")
        sys.stderr.write("three\\n")
        subprocess.run(["echo", "four"], check=True)
        print("fi", end="")
        print("ve")
        return None

    exports = {"onScheduledEventHandler": handle}
"""


@pytest.mark.parametrize("mode", MODES)
def test_output_of_one_invocation_in_order(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    sandbox = sandboxes(make_app(OUTPUT), isolation=mode)
    live: list[str] = []
    expected = "one\nINFO:app:two\nthree\nfour\nfive\n"
    assert invoke(sandbox, on_output=live.append).log == expected
    assert "".join(live) == expected
    assert invoke(sandbox).log == expected  # this invocation's output only


ENVIRONMENT = """
    import os
    import sys

    def handle(payload):
        return {
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "stdin": sys.stdin.read(),
            "path0": sys.path[0],
            "pgid_is_own": os.getpgid(0) != os.getpgid(os.getppid()),
        }

    exports = {"onScheduledEventHandler": handle}
"""


def test_environment_is_clean_and_the_app_dir_is_home(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FWSCHED_TEST_SECRET", "hunter2")
    app = make_app(ENVIRONMENT)
    seen = invoke(sandboxes(app)).return_value
    assert seen["cwd"] == str(app.resolve())
    assert seen["path0"] == str(app.resolve())
    assert "FWSCHED_TEST_SECRET" not in seen["env"]
    assert seen["env"]["TZ"] == "UTC"
    assert set(seen["env"]) <= {"PATH", "HOME", "LANG", "TZ", "FWSCHED_SANDBOX", "FWSCHED_APP_DIR"}
    assert seen["stdin"] == ""
    assert seen["pgid_is_own"] is True
    assert "server" not in sys.modules  # the parent never imported the app


def test_sibling_modules_and_the_sdk_import(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox]
) -> None:
    app = make_app(
        """
        import helper
        from fwsched.sdk import ScheduleError, schedule as imported

        def handle(payload):
            return [helper.VALUE, imported is schedule, ScheduleError.__name__]

        exports = {"onScheduledEventHandler": handle}
        """
    )
    (app / "helper.py").write_text("VALUE = 42\n")
    assert invoke(sandboxes(app)).return_value == [42, True, "ScheduleError"]
    assert not (app / "__pycache__").exists()  # nothing for the reloader to trip on


def test_return_value_that_is_not_json_is_its_repr(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox]
) -> None:
    app = make_app(
        """
        def handle(payload):
            return {1, 2}

        def nan(payload):
            return float("nan")

        exports = {"onScheduledEventHandler": handle, "nan": nan}
        """
    )
    assert invoke(sandboxes(app)).return_value == "{1, 2}"
    assert invoke(sandboxes(app, "nan")).return_value == "nan"


# -- schedule RPC --------------------------------------------------------------------------

SCHEDULER = """
    from fwsched.sdk import ScheduleError

    def handle(payload):
        answers = []
        calls = [
            lambda: schedule.create(name="kw", data={"a": 1}, schedule_at="2030-01-02T11:00:00Z"),
            lambda: schedule.create({"name": "js", "data": {}, "schedule_at": "x"}),
            lambda: schedule.fetch(name="kw"),
            lambda: schedule.create(name="odd", data={1, 2}, schedule_at="2030-01-02T11:00:00Z"),
        ]
        for call in calls:
            try:
                answers.append(call())
            except ScheduleError as err:
                answers.append([err.status, err.message, str(err)])
        return answers

    exports = {"onScheduledEventHandler": handle}
"""


ISO = "The 'schedule_at' value must be an ISO string"
JSON = "The 'data' value must be of type JSON"


class FakeRules:
    """Stands for the engine's rules: records calls, rejects some the way the rules do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((op, request))
        if not isinstance(request.get("data"), dict) and op == "create":
            raise ScheduleError(400, JSON)
        if request.get("schedule_at") == "x":
            raise ScheduleError(400, ISO)
        if op == "fetch":
            return {"name": request["name"], "data": {"a": 1}, "schedule_at": "2030"}
        return {"status": 200, "message": "Schedule created"}


@pytest.mark.parametrize("mode", MODES)
def test_schedule_calls_reach_the_parent_and_errors_come_back(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    rules = FakeRules()
    result = invoke(sandboxes(make_app(SCHEDULER), isolation=mode, services={"schedule": rules}))
    assert result.outcome == Outcome.OK, result
    assert result.return_value == [
        {"status": 200, "message": "Schedule created"},
        [400, ISO, ISO],
        {"name": "kw", "data": {"a": 1}, "schedule_at": "2030"},
        [400, JSON, JSON],
    ]
    assert [op for op, _ in rules.calls] == ["create", "create", "fetch", "create"]
    assert rules.calls[0][1] == {
        "name": "kw",
        "data": {"a": 1},
        "schedule_at": "2030-01-02T11:00:00Z",
    }
    assert rules.calls[1][1]["name"] == "js"  # the one-dict spelling
    odd = rules.calls[3][1]["data"]
    assert isinstance(odd, Opaque) and repr(odd) == "{1, 2}"  # not JSON: rejected by the rules


def test_schedule_without_rpc_is_unavailable(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox]
) -> None:
    result = invoke(sandboxes(make_app(SCHEDULER)))
    unavailable = "schedule API is not available"
    assert result.return_value[0] == [500, unavailable, unavailable]


def test_a_failing_rpc_callback_is_a_500_for_the_handler(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox]
) -> None:
    def broken(op: str, request: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("oops")

    result = invoke(sandboxes(make_app(SCHEDULER), services={"schedule": broken}))
    status, message, _ = result.return_value[0]
    assert status == 500 and "KeyError" in message


def test_schedule_at_import_time_is_refused(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox]
) -> None:
    app = make_app("schedule.fetch(name='x')\nexports = {}\n")
    result = invoke(sandboxes(app, services={"schedule": FakeRules()}))
    assert result.outcome == Outcome.LOAD_ERROR
    assert result.error == "ScheduleError: schedule is only available while a handler runs"


# -- life cycle ----------------------------------------------------------------------------

VERSIONED = """
    def handle(payload):
        return "v1"

    exports = {"onScheduledEventHandler": handle}
"""


@pytest.mark.parametrize("mode", MODES)
def test_reload_uses_the_current_files(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    app = make_app(VERSIONED)
    sandbox = sandboxes(app, isolation=mode)
    assert invoke(sandbox).return_value == "v1"
    fix(app, textwrap.dedent(VERSIONED.replace('"v1"', '"v2"')))
    assert invoke(sandbox).return_value == "v1"  # no reload: the loaded module stays
    sandbox.reload()
    assert invoke(sandbox).return_value == "v2"


def test_close_interrupts_a_running_invocation_and_is_idempotent(
    behaviours: Path, sandboxes: Callable[..., Sandbox]
) -> None:
    sandbox = sandboxes(behaviours, "sleeps", timeout=30)
    assert sandbox.inspect().ok  # the worker is up
    results: list[RunResult] = []
    runner = threading.Thread(target=lambda: results.append(invoke(sandbox)))
    runner.start()
    time.sleep(0.3)
    started = time.monotonic()
    sandbox.close()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert time.monotonic() - started < 5
    assert results[0].outcome == Outcome.INTERRUPTED
    sandbox.close()
    with pytest.raises(RuntimeError, match="closed"):
        invoke(sandbox)


def test_context_manager_kills_the_worker(behaviours: Path) -> None:
    with Sandbox(behaviours, "pid", timeout=TIMEOUT) as sandbox:
        pid = invoke(sandbox).return_value
        assert invoke(sandbox).return_value == pid  # warm: the same process
    assert_gone(pid)


def test_bad_arguments_are_refused(behaviours: Path) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Sandbox(behaviours, "ok", timeout=0)
    with pytest.raises(ValueError):
        Sandbox(behaviours, "ok", isolation="lukewarm")


def test_unknown_app_dir_is_a_load_error(tmp_path: Path, sandboxes: Callable[..., Sandbox]) -> None:
    result = invoke(sandboxes(tmp_path / "nowhere"))
    assert result.outcome == Outcome.LOAD_ERROR
    assert result.error is not None and "could not start the sandbox process" in result.error


def test_worker_import_stays_light() -> None:
    """The worker's own import is paid on every start: no parent-side modules in it."""
    import subprocess

    code = (
        "import sys, json; import fwsched.sandbox.worker; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('fwsched', 'sub')))))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    loaded = json.loads(done.stdout)
    assert "subprocess" not in loaded
    assert "fwsched.sandbox.pool" not in loaded


@pytest.mark.parametrize("mode", MODES)
def test_death_while_waiting_for_a_schedule_answer(
    make_app: MakeApp, sandboxes: Callable[..., Sandbox], mode: Isolation
) -> None:
    """The answer then reaches nobody; the next invocation must not take it for its own."""
    app = make_app(
        """
        import os

        def handle(payload):
            if payload["data"].get("die"):
                schedule.create(name="x", data={"pid": os.getpid()}, schedule_at="z")
            return schedule.fetch(name="alive")

        exports = {"onScheduledEventHandler": handle}
        """
    )

    def rpc(op: str, request: dict[str, Any]) -> dict[str, Any]:
        if op == "create":
            os.kill(request["data"]["pid"], signal.SIGKILL)
        return {"op": op}

    sandbox = sandboxes(app, isolation=mode, services={"schedule": rpc})
    died = invoke(sandbox, {"data": {"die": True}})
    assert (died.outcome, died.signal) == (Outcome.CRASHED, signal.SIGKILL)
    for _ in range(2):
        assert invoke(sandbox, {"data": {}}).return_value == {"op": "fetch"}


ORPHAN_PARENT = """
import os, signal, sys
from datetime import datetime, timezone
from fwsched.sandbox import Sandbox

sandbox = Sandbox(sys.argv[1], "pgid", isolation=sys.argv[2], timeout=5)
result = sandbox.invoke({}, fire_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
print(result.return_value, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close(), no atexit: the workers must notice
"""


@pytest.mark.parametrize("mode", MODES)
def test_workers_end_when_the_parent_dies(make_app: MakeApp, mode: Isolation) -> None:
    import subprocess

    app = make_app("import os\nexports = {'pgid': lambda payload: os.getpgid(0)}\n")
    done = subprocess.run(
        [sys.executable, "-c", ORPHAN_PARENT, str(app), mode],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    pgid = int(done.stdout)
    deadline = time.monotonic() + 5
    while living_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert living_members(pgid) == []


def living_members(pgid: int) -> list[int]:
    """Pids of the processes of a process group that are still running (not zombies)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members
