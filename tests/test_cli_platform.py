"""SPEC §8 on the command line: trigger --event, install, uninstall, invoke, and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import MakeApp
from test_platform import IPARAMS, MANIFEST, SERVER, TOML

from fwsched.cli.root import cli

START = "2026-01-05T09:00:00Z"
FDK_SCHEDULED = {
    "account_id": 12345,
    "event": "onScheduledEvent",
    "region": "US",
    "timestamp": 1767261600000,
    "domain": "acme.myfreshworks.com",
    "data": {"task_id": 100001},
    "iparams": {"api_key": "secret-value"},
}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    monkeypatch.delenv("FWSCHED_DEBUG", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    yield


@pytest.fixture
def app(make_app: MakeApp) -> Path:
    return make_app(
        SERVER,
        manifest=MANIFEST,
        toml=TOML + f'\n[simulator]\nstart = "{START}"\n',
        iparams=IPARAMS,
    )


def fw(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def ok(*args: Any) -> Result:
    result = fw(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def doc(*args: Any) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def fails(*args: Any, code: int = 1) -> str:
    """The one error line of a command that must fail with ``code``."""
    result = fw(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0].removeprefix("Error: ")


def history(app: Path) -> list[dict[str, Any]]:
    return list(doc("history", "--app", app))


# -- trigger --event and full payloads ----------------------------------------------------


def test_trigger_event_with_a_payload_file(app: Path, tmp_path: Path) -> None:
    payload = tmp_path / "ticket.json"
    payload.write_text(json.dumps({"ticket": {"id": 9}}))
    run = doc("trigger", "--event", "onTicketCreate", "--payload", f"@{payload}", "--app", app)
    assert (run["source"], run["event"], run["schedule"]) == ("event", "onTicketCreate", None)
    assert run["payload"]["data"] == {"ticket": {"id": 9}}
    assert run["payload"]["iparams"] == {"api_key": "****"}
    human = ok("trigger", "--event", "onTicketCreate", "--app", app).stdout
    assert "onTicketCreate (event)" in human and " ok " in human


def test_trigger_payload_file_with_a_full_fdk_payload(app: Path, tmp_path: Path) -> None:
    sample = tmp_path / "onScheduledEvent.json"
    sample.write_text(json.dumps(FDK_SCHEDULED, indent=2))
    run = doc("trigger", "--payload", f"@{sample}", "--app", app)
    assert run["outcome"] == "ok", run["error"]
    assert run["return_value"] == {"task_id": 100001}  # not {"account_id": ..., "data": ...}
    assert run["timestamp"] == 1767261600000 and run["source"] == "payload"


def test_an_unregistered_event_is_one_line_and_changes_nothing(app: Path) -> None:
    assert fails("trigger", "--event", "onDealCreate", "--app", app) == (
        "Event 'onDealCreate' is not registered in manifest.json"
    )
    assert history(app) == []


def test_a_broken_test_data_file_names_line_and_column(app: Path) -> None:
    (app / "server" / "test_data").mkdir(parents=True)
    (app / "server" / "test_data" / "onTicketCreate.json").write_text('{"data": }')
    message = fails("trigger", "--event", "onTicketCreate", "--app", app)
    assert message.startswith(
        "server/test_data/onTicketCreate.json: invalid JSON at line 1 column 10"
    )
    assert history(app) == []


def test_trigger_usage_errors(app: Path) -> None:
    assert "needs a schedule NAME, --event NAME or --payload" in fails(
        "trigger", "--app", app, code=2
    )
    fails("trigger", "r", "--event", "onTicketCreate", "--app", app, code=2)
    fails("trigger", "--event", "onTicketCreate", "--payload", "{nope", "--app", app, code=2)
    assert "must be a JSON object" in fails(
        "trigger", "--event", "onTicketCreate", "--payload", "[1]", "--app", app
    )


# -- install and uninstall ----------------------------------------------------------------


def test_install_then_uninstall(app: Path) -> None:
    assert doc("status", "--app", app)["installed"] is False
    out = ok("install", "--app", app).stdout.splitlines()
    assert "onAppInstall (install)" in out[0] and " ok " in out[0]
    assert out[-1] == "installed; 1 schedule created (sync)"
    assert doc("status", "--app", app)["installed"] is True
    assert "installed      yes" in ok("status", "--app", app).stdout
    assert "already installed" in fails("install", "--app", app)

    ok("schedule", "create", "--name", "r", "--data", "{}", "--at", "+1h", "--app", app)
    out = ok("uninstall", "--app", app).stdout.splitlines()
    assert "onAppUninstall (uninstall)" in out[0]
    assert out[-1] == "uninstalled; removed 2 schedules, 0 db keys"  # one by the handler, one after
    assert doc("schedules", "--app", app) == []
    assert "not installed" in fails("uninstall", "--app", app)
    assert [i["source"] for i in history(app)] == ["install", "uninstall"]


def test_a_blocked_install_exits_1_and_leaves_the_app_not_installed(app: Path) -> None:
    iparams = '{"api_key": "install-key", "block": true}'
    result = fw("install", "--iparams", iparams, "--app", app)
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: Install blocked by the app: the API key is not valid"
    assert "onAppInstall (install)" in result.stdout  # the invocation is shown
    assert doc("status", "--app", app)["installed"] is False
    [run] = history(app)
    assert run["render"] == {
        "status": 401,
        "message": "the API key is not valid",
        "errorSource": "APP",
    }


def test_an_install_without_render_data_fails(app: Path) -> None:
    message = fails("install", "--iparams", '{"api_key": "k-123", "silent": true}', "--app", app)
    assert message == "Install failed: render_data was not called"


def test_install_iparams_must_be_an_object(app: Path) -> None:
    assert "iparams must be a dict" in fails("install", "--iparams", "[1]", "--app", app)
    fails("install", "--iparams", "{", "--app", app, code=2)
    assert history(app) == []


def test_uninstall_keep_data(app: Path) -> None:
    ok("install", "--app", app)
    ok("schedule", "create", "--name", "r", "--data", "{}", "--at", "+1h", "--app", app)
    assert ok("uninstall", "--keep-data", "--app", app).stdout.splitlines()[-1] == (
        "uninstalled; kept the app's data (--keep-data)"
    )
    assert [s["name"] for s in doc("schedules", "--app", app)] == ["r"]
    document = doc("install", "--app", app)
    assert document["installed"] is True and document["created"] == ["sync"]


# -- invoke -------------------------------------------------------------------------------


def test_invoke_prints_the_response_and_its_schedule_fires(app: Path) -> None:
    params = json.dumps({"name": "remind_7", "task": 7, "at": "2026-01-05T09:30:00Z"})
    out = ok("invoke", "bookReminder", "--params", params, "--app", app).stdout.splitlines()
    assert "bookReminder (function)" in out[0]
    assert json.loads(out[-1]) == {"booked": "remind_7", "isInstall": False, "key": "****"}
    fired = doc("advance", "1h", "--app", app)["invocations"]
    assert [i["schedule"] for i in fired] == ["remind_7"]


def test_invoke_json_is_the_invocation(app: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"how": "nothing"}')
    run = doc("invoke", "answer", "--params", f"@{params}", "--app", app)
    assert (run["source"], run["event"]) == ("function", "answer")
    assert run["render"] == {"status": 200, "response": None}
    shown = ok("show", str(run["id"]), "--app", app).stdout
    assert "answer (function)" in shown and '"response": null' in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["answer", "--params", '{"how": "none"}'], "render_data was not called"),
        (["answer", "--params", '{"how": "error_only_status"}'], "(no message) (status 403)"),
        (
            ["answer", "--params", '{"how": "bad_error"}'],
            "The error should be a JSON Object with a message or a status parameter. (status 400)",
        ),
        (
            ["sleepy"],
            "killed after 1 s timeout (the limit is set by functions.sleepy.timeout in "
            "manifest.json, 5 s if not given)",
        ),
    ],
)
def test_a_function_that_fails_or_renders_an_error_exits_1(
    app: Path, args: list[str], message: str
) -> None:
    assert fails("invoke", *args, "--app", app) == message
    assert len(history(app)) == 1  # recorded, like any invocation


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["notDeclared"], "Function 'notDeclared' is not declared in manifest.json functions", 1),
        (["answer", "--params", "[1]"], "The params must be a JSON object, got an array", 1),
    ],
)
def test_bad_invocations_change_nothing(
    app: Path, args: list[str], message: str, code: int
) -> None:
    assert fails("invoke", *args, "--app", app, code=code) == message
    assert history(app) == []


def test_invoke_params_file_that_is_not_json(app: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text('{\n  "how": nothing\n}')
    message = fails("invoke", "answer", "--params", f"@{params}", "--app", app, code=2)
    assert f"invalid JSON in {params} at line 2 column 10" in message
    assert history(app) == []


# -- validate -----------------------------------------------------------------------------


def test_validate_checks_the_functions_block(make_app: MakeApp) -> None:
    manifest = {
        "product": {
            "freshdesk": {
                "events": {"onScheduledEvent": {"handler": "h"}},
                "functions": {"missing": {}, "slow": {"timeout": 30}, "fine": {"timeout": 20}},
            }
        }
    }
    app = make_app("def h(p):\n    pass\n\nexports = {'h': h, 'fine': h}\n", manifest=manifest)
    result = fw("validate", "--json", "--app", app)
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["errors"]
    assert errors == [
        "Function 'slow': timeout must be 1 to 20 seconds, got 30",
        "Function 'missing' is not defined in server.py exports",
    ]
