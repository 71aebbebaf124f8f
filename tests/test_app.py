"""The app loader: manifest shapes, validation messages, fwsched.toml, iparams, payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fwsched.app import Account, AppSpec, Problem, load_app
from fwsched.errors import AppError
from fwsched.manifest import FunctionSpec

SAMPLE_APP = Path(__file__).resolve().parent.parent / "sample_app"

SCHEDULED = {"onScheduledEvent": {"handler": "onScheduledEventHandler"}}


def make_app(
    root: Path,
    manifest: Any = None,
    *,
    toml: str | None = None,
    iparams: Any = None,
    server: str | None = "exports = {}\n",
) -> Path:
    """Write an app; `manifest` and `iparams` are dicts or raw text."""
    root.mkdir(parents=True, exist_ok=True)
    if manifest is None:
        manifest = {"events": SCHEDULED}
    text = manifest if isinstance(manifest, str) else json.dumps(manifest, indent=2)
    (root / "manifest.json").write_text(text)
    if server is not None:
        (root / "server.py").write_text(server)
    if toml is not None:
        (root / "fwsched.toml").write_text(toml)
    if iparams is not None:
        (root / "config").mkdir(exist_ok=True)
        raw = iparams if isinstance(iparams, str) else json.dumps(iparams, indent=2)
        (root / "config" / "iparams.json").write_text(raw)
    return root


def messages(spec: AppSpec) -> list[tuple[str, str]]:
    return [(p.severity, p.message) for p in spec.problems]


def load_error(root: Path) -> str:
    with pytest.raises(AppError) as info:
        load_app(root)
    return str(info.value)


# --- manifest shapes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "manifest",
    [
        {"events": SCHEDULED},
        {"platform-version": "2.3", "product": {"freshsales": {"events": SCHEDULED}}},
        {"platform-version": "3.0", "modules": {"common": {"events": SCHEDULED}}},
    ],
    ids=["top-level", "product", "modules"],
)
def test_all_three_manifest_shapes(tmp_path: Path, manifest: dict[str, Any]) -> None:
    spec = load_app(make_app(tmp_path, manifest))
    assert spec.events == {"onScheduledEvent": "onScheduledEventHandler"}
    assert spec.scheduled_handler == "onScheduledEventHandler"
    assert spec.problems == ()


def test_events_of_several_modules_are_merged(tmp_path: Path) -> None:
    manifest = {
        "platform-version": "3.0",
        "modules": {
            "common": {"events": SCHEDULED | {"onAppInstall": {"handler": "install"}}},
            "support_ticket": {
                "location": {},
                "events": {"onTicketCreate": {"handler": "onScheduledEventHandler"}},
            },
        },
    }
    spec = load_app(make_app(tmp_path, manifest))
    assert spec.events == {
        "onScheduledEvent": "onScheduledEventHandler",
        "onAppInstall": "install",
        "onTicketCreate": "onScheduledEventHandler",
    }
    # Several events may share a handler: it is listed once.
    assert spec.handlers == ("onScheduledEventHandler", "install")
    assert spec.problems == ()


def test_root_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_app(tmp_path / "app")
    monkeypatch.chdir(tmp_path)
    spec = load_app("app")
    assert spec.root.is_absolute()
    assert spec.root == (tmp_path / "app").resolve()
    assert spec.server_path == spec.root / "server.py"


# --- manifest problems ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["onscheduledEvent", "scheduledEvent", "on", "on_ticket", "on-X"])
def test_invalid_event_name_is_an_error(tmp_path: Path, name: str) -> None:
    spec = load_app(make_app(tmp_path, {"events": SCHEDULED | {name: {"handler": "h"}}}))
    assert messages(spec) == [("error", f"Invalid event: '{name}'")]
    assert name not in spec.events


def test_unknown_well_formed_event_is_a_warning(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path, {"events": SCHEDULED | {"onFooBar": {"handler": "h"}}}))
    assert messages(spec) == [
        ("warning", "Unknown event: 'onFooBar' (it is loaded but never fired by fwsched)")
    ]
    assert spec.events["onFooBar"] == "h"
    assert spec.errors == ()


@pytest.mark.parametrize(
    "name",
    [
        "onAppInstall",
        "onAppUninstall",
        "onExternalEvent",
        "onTicketCreate",
        "onTicketUpdate",
        "onContactCreate",
        "onContactUpdate",
        "onConversationCreate",
        "onDealCreate",
        "onDealUpdate",
        "onLeadCreate",
        "onLeadUpdate",
        "onAccountCreate",
        "onAccountUpdate",
        "onSalesActivityCreate",
        "onUserCreate",
        "onAppointmentCreate",
        "onTaskCreate",
        "onTaskUpdate",
        "onCallCreate",
        "onMessageCreate",
    ],
)
def test_known_events_give_no_warning(tmp_path: Path, name: str) -> None:
    spec = load_app(make_app(tmp_path, {"events": SCHEDULED | {name: {"handler": "h"}}}))
    assert spec.problems == ()


def test_event_mapped_twice_to_different_handlers(tmp_path: Path) -> None:
    manifest = {
        "platform-version": "2.3",
        "product": {
            "freshdesk": {"events": {"onScheduledEvent": {"handler": "a"}}},
            "freshsales": {"events": {"onScheduledEvent": {"handler": "b"}}},
            "freshservice": {"events": {"onScheduledEvent": {"handler": "c"}}},
        },
    }
    spec = load_app(make_app(tmp_path, manifest))
    assert messages(spec) == [
        ("error", "Event 'onScheduledEvent' is already mapped to a callback"),
    ]
    assert spec.scheduled_handler == "a"  # the first mapping stands


def test_any_event_mapped_twice_is_an_error(tmp_path: Path) -> None:
    manifest = {
        "events": SCHEDULED | {"onTicketCreate": {"handler": "a"}},
        "modules": {"common": {"events": {"onTicketCreate": {"handler": "b"}}}},
    }
    spec = load_app(make_app(tmp_path, manifest))
    assert messages(spec) == [("error", "Event 'onTicketCreate' is already mapped to a callback")]


def test_same_handler_twice_is_fine(tmp_path: Path) -> None:
    manifest = {
        "platform-version": "3.0",
        "modules": {"common": {"events": SCHEDULED}, "deal": {"events": SCHEDULED}},
    }
    spec = load_app(make_app(tmp_path, manifest))
    assert spec.problems == ()


@pytest.mark.parametrize("entry", [{}, {"handler": ""}, {"handler": 3}, "h", None])
def test_event_without_handler(tmp_path: Path, entry: Any) -> None:
    spec = load_app(make_app(tmp_path, {"events": SCHEDULED | {"onAppInstall": entry}}))
    assert messages(spec) == [("error", "Event 'onAppInstall' has no handler in manifest.json")]
    assert "onAppInstall" not in spec.events


@pytest.mark.parametrize(
    "manifest",
    [{}, {"events": {}}, {"events": {"onAppInstall": {"handler": "i"}}}],
    ids=["no-events", "empty-events", "other-event"],
)
def test_no_scheduled_handler_is_a_warning(tmp_path: Path, manifest: dict[str, Any]) -> None:
    spec = load_app(make_app(tmp_path, manifest))
    assert messages(spec) == [
        ("warning", "No onScheduledEvent handler is registered in manifest.json")
    ]
    assert spec.scheduled_handler is None
    assert spec.errors == ()
    assert [str(w) for w in spec.warnings] == [
        "No onScheduledEvent handler is registered in manifest.json"
    ]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"events": []}, "manifest.json: 'events' must be an object"),
        ({"product": "freshsales"}, "manifest.json: 'product' must be an object"),
        ({"modules": {"common": []}}, "manifest.json: 'modules.common' must be an object"),
        (
            {"modules": {"common": {"events": 1}}},
            "manifest.json: 'modules.common.events' must be an object",
        ),
    ],
)
def test_malformed_manifest_sections(tmp_path: Path, manifest: Any, message: str) -> None:
    spec = load_app(make_app(tmp_path, manifest))
    assert ("error", message) in messages(spec)


def test_problem_str_is_its_message() -> None:
    problem = Problem("error", "Invalid event: 'x'")
    assert str(problem) == "Invalid event: 'x'"


# --- apps that cannot be loaded ------------------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    message = load_error(tmp_path / "nope")
    assert message.startswith(f"No app directory at {tmp_path / 'nope'}")
    assert "fwsched init DIR" in message


def test_file_instead_of_directory(tmp_path: Path) -> None:
    make_app(tmp_path)
    assert "is not a directory" in load_error(tmp_path / "manifest.json")


def test_missing_manifest(tmp_path: Path) -> None:
    (tmp_path / "server.py").write_text("exports = {}\n")
    assert load_error(tmp_path) == (
        f"No manifest.json in {tmp_path.resolve()}: is this a Freshworks app directory? "
        "(fwsched init DIR creates one)"
    )


def test_missing_server(tmp_path: Path) -> None:
    make_app(tmp_path, server=None)
    message = load_error(tmp_path)
    assert message.startswith(f"No server.py in {tmp_path.resolve()}")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "line", "column", "reason"),
    [
        ('{\n  "events": {\n    "onScheduledEvent": {"handler": "h",}\n  }\n}\n', 3, 41,
         "Expecting property name enclosed in double quotes"),
        ("", 1, 1, "Expecting value"),
        ('{"events": {}}\n  x', 2, 3, "Extra data"),
    ],
    ids=["trailing-comma", "empty", "extra-data"],
)  # fmt: skip
def test_manifest_json_syntax_error_has_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, reason: str
) -> None:
    make_app(tmp_path, text)
    assert load_error(tmp_path) == (
        f"manifest.json: invalid JSON at line {line} column {column}: {reason}"
    )


def test_manifest_with_bom_is_read(tmp_path: Path) -> None:
    make_app(tmp_path, "\ufeff" + json.dumps({"events": SCHEDULED}))
    assert load_app(tmp_path).scheduled_handler == "onScheduledEventHandler"


def test_manifest_not_utf8(tmp_path: Path) -> None:
    make_app(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b'{"events": "\xff"}')
    assert load_error(tmp_path).startswith("manifest.json: not UTF-8 text")


@pytest.mark.parametrize(("text", "kind"), [("[]", "an array"), ('"x"', "a string")])
def test_manifest_not_an_object(tmp_path: Path, text: str, kind: str) -> None:
    make_app(tmp_path, text)
    assert load_error(tmp_path) == f"manifest.json: expected a JSON object, got {kind}"


def test_iparams_json_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    make_app(tmp_path, iparams='{\n  "api_key": {\n    "secure": tru\n  }\n}\n')
    assert load_error(tmp_path) == (
        "config/iparams.json: invalid JSON at line 3 column 15: Expecting value"
    )


def test_iparams_json_not_an_object(tmp_path: Path) -> None:
    make_app(tmp_path, iparams="[1]")
    assert load_error(tmp_path) == "config/iparams.json: expected a JSON object, got an array"


# --- fwsched.toml --------------------------------------------------------------------------


def test_defaults_without_fwsched_toml(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path))
    assert spec.account == Account(1, "localhost.myfreshworks.com", "US", None)
    assert spec.iparams == {}
    assert spec.secure_iparams == frozenset()
    assert spec.iparam_definitions == {}
    assert spec.timeout is None
    assert spec.start is None


FULL_TOML = """
[account]
account_id = 12345
domain = "acme.myfreshworks.com"
region = "EU"
product = "freshsales"

[iparams]
api_key = "secret-value"
tags = ["a", "b"]
limits = { max = 3 }

[simulator]
timeout = 2.5
start = "2026-01-05T09:00:00Z"
"""


def test_fwsched_toml_values(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path, toml=FULL_TOML))
    assert spec.account == Account(12345, "acme.myfreshworks.com", "EU", "freshsales")
    assert spec.iparams == {"api_key": "secret-value", "tags": ["a", "b"], "limits": {"max": 3}}
    assert spec.timeout == 2.5
    assert spec.start == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert spec.problems == ()


def test_partial_account_keeps_defaults(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path, toml='[account]\nregion = "IND"\n'))
    assert spec.account == Account(region="IND")


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ('"2026-01-05T09:00:00"', datetime(2026, 1, 5, 9, tzinfo=UTC)),  # naive means UTC
        ('"2026-01-05T10:30:00+02:00"', datetime(2026, 1, 5, 8, 30, tzinfo=UTC)),
        ("2026-01-05T09:00:00Z", datetime(2026, 1, 5, 9, tzinfo=UTC)),  # a TOML date-time
        ("2026-01-05T09:00:00", datetime(2026, 1, 5, 9, tzinfo=UTC)),  # a TOML local one
        ('"now"', None),
    ],
)
def test_simulator_start(tmp_path: Path, start: str, expected: datetime | None) -> None:
    spec = load_app(make_app(tmp_path, toml=f"[simulator]\nstart = {start}\n"))
    assert spec.start == expected
    if spec.start is not None:
        assert spec.start.tzinfo is UTC


def test_timeout_integer_becomes_float(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path, toml="[simulator]\ntimeout = 20\n"))
    assert spec.timeout == 20.0
    assert isinstance(spec.timeout, float)


def test_invalid_toml(tmp_path: Path) -> None:
    make_app(tmp_path, toml="[account\nregion = 'US'\n")
    message = load_error(tmp_path)
    assert message.startswith("fwsched.toml: invalid TOML: ")
    assert "line 1" in message


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[account]\nregion = "XX"\n',
            "fwsched.toml: [account] region must be one of US, EU, EUC, AUS, IND, got 'XX'",
        ),
        (
            '[account]\naccount_id = "12345"\n',
            "fwsched.toml: [account] account_id must be a positive integer, got '12345'",
        ),
        (
            "[account]\naccount_id = true\n",
            "fwsched.toml: [account] account_id must be a positive integer, got True",
        ),
        (
            "[account]\naccount_id = 0\n",
            "fwsched.toml: [account] account_id must be a positive integer, got 0",
        ),
        (
            '[account]\ndomain = ""\n',
            "fwsched.toml: [account] domain must be a non-empty string, got ''",
        ),
        ("[account]\nproduct = 1\n", "fwsched.toml: [account] product must be a string, got 1"),
        (
            "[simulator]\ntimeout = 0\n",
            "fwsched.toml: [simulator] timeout must be a positive number of seconds, got 0",
        ),
        (
            '[simulator]\ntimeout = "20"\n',
            "fwsched.toml: [simulator] timeout must be a positive number of seconds, got '20'",
        ),
        (
            "[simulator]\ntimeout = inf\n",
            "fwsched.toml: [simulator] timeout must be a positive number of seconds, got inf",
        ),
        (
            '[simulator]\nstart = "tomorrow"\n',
            "fwsched.toml: [simulator] start must be an ISO 8601 date-time like "
            "\"2026-01-05T09:00:00Z\", got 'tomorrow'",
        ),
        ("account = 5\n", "fwsched.toml: 'account' must be a table ([account]), got 5"),
        (
            "[iparams]\nwhen = 2026-01-05\n",
            "fwsched.toml: [iparams] 'when' must be a JSON value (string, number, boolean, "
            "array or object), got datetime.date(2026, 1, 5); quote dates and times",
        ),
    ],
)
def test_wrong_values_in_fwsched_toml(tmp_path: Path, toml: str, message: str) -> None:
    make_app(tmp_path, toml=toml)
    assert load_error(tmp_path) == message


def test_unknown_toml_tables_and_keys_are_warnings(tmp_path: Path) -> None:
    toml = """
debug = true
[acount]
region = 'EU'
[account]
regoin = 'EU'
[simulator]
speed = 2
"""
    spec = load_app(make_app(tmp_path, toml=toml))
    assert messages(spec) == [
        ("warning", "fwsched.toml: unknown key 'debug' (ignored)"),
        ("warning", "fwsched.toml: unknown table [acount] (ignored)"),
        ("warning", "fwsched.toml: unknown key 'regoin' in [account] (ignored)"),
        ("warning", "fwsched.toml: unknown key 'speed' in [simulator] (ignored)"),
    ]
    assert spec.account == Account()


# --- iparams -------------------------------------------------------------------------------

IPARAM_DEFINITIONS = {
    "api_key": {"display_name": "API key", "type": "text", "required": True, "secure": True},
    "base_url": {"display_name": "Base URL", "type": "text", "required": True},
    "note": {"display_name": "Note", "type": "text", "secure": False},
}
IPARAM_TOML = '[iparams]\napi_key = "secret-value"\nbase_url = "https://x.test"\nnote = "hi"\n'


def test_secure_iparams_are_masked(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path, toml=IPARAM_TOML, iparams=IPARAM_DEFINITIONS))
    assert spec.secure_iparams == frozenset({"api_key"})
    assert spec.iparam_definitions == IPARAM_DEFINITIONS
    assert spec.payload_iparams() == {
        "api_key": "secret-value",
        "base_url": "https://x.test",
        "note": "hi",
    }
    assert spec.mask_iparams(spec.iparams) == {
        "api_key": "****",
        "base_url": "https://x.test",
        "note": "hi",
    }
    assert spec.problems == ()


def test_payload_iparams_is_a_copy(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path, toml='[iparams]\ntags = ["a"]\n'))
    spec.payload_iparams()["tags"].append("b")
    assert spec.iparams == {"tags": ["a"]}


def test_iparam_value_problems_are_warnings(tmp_path: Path) -> None:
    toml = '[iparams]\napi_key = "k"\nextra = 1\n'
    spec = load_app(make_app(tmp_path, toml=toml, iparams=IPARAM_DEFINITIONS))
    assert messages(spec) == [
        ("warning", "iparam 'extra' has a value but is not declared in config/iparams.json"),
        (
            "warning",
            "iparam 'base_url' is required by config/iparams.json but has no value "
            "(set it in fwsched.toml [iparams])",
        ),
    ]


# --- overrides (the library's Simulator(account=..., iparams=...)) -------------------------


def test_with_overrides_merges_account_and_replaces_iparams(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path, toml=FULL_TOML))
    over = spec.with_overrides(account={"region": "AUS", "product": None}, iparams={"x": 1})
    assert over.account == Account(12345, "acme.myfreshworks.com", "AUS", None)
    assert over.iparams == {"x": 1}
    assert over.timeout == spec.timeout and over.start == spec.start
    assert spec.account.region == "EU"  # the original is untouched
    assert spec.with_overrides() == spec


def test_with_overrides_validates(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path))
    with pytest.raises(AppError, match=r"^account: region must be one of US, EU, EUC, AUS, IND"):
        spec.with_overrides(account={"region": "us"})
    with pytest.raises(AppError, match=r"^account: unknown key 'regoin'"):
        spec.with_overrides(account={"regoin": "US"})
    with pytest.raises(AppError, match=r"^account: account_id must be a positive integer"):
        spec.with_overrides(account={"account_id": "7"})
    with pytest.raises(AppError, match=r"^iparams: 'when' must be a JSON value"):
        spec.with_overrides(iparams={"when": datetime(2026, 1, 1)})
    with pytest.raises(AppError, match=r"^iparams must be a dict"):
        spec.with_overrides(iparams=["x"])  # type: ignore[arg-type]


def test_with_overrides_recomputes_iparam_warnings(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path, toml=IPARAM_TOML, iparams=IPARAM_DEFINITIONS))
    over = spec.with_overrides(iparams={"api_key": "other"})
    assert messages(over) == [
        (
            "warning",
            "iparam 'base_url' is required by config/iparams.json but has no value "
            "(set it in fwsched.toml [iparams])",
        )
    ]
    assert over.mask_iparams(over.iparams) == {"api_key": "****"}
    assert over.payload_iparams() == {"api_key": "other"}


def test_account_validates_itself() -> None:
    with pytest.raises(AppError, match=r"^account: region must be one of"):
        Account(region="XX")


# --- payload and exports -------------------------------------------------------------------


def test_base_payload_shape(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path, toml=FULL_TOML, iparams=IPARAM_DEFINITIONS))
    data = {"task_id": 100001}
    payload = spec.base_payload(data, 1767261600000)
    assert list(payload) == [
        "account_id",
        "event",
        "region",
        "timestamp",
        "domain",
        "data",
        "iparams",
    ]
    assert payload == {
        "account_id": 12345,
        "event": "onScheduledEvent",
        "region": "EU",
        "timestamp": 1767261600000,
        "domain": "acme.myfreshworks.com",
        "data": {"task_id": 100001},
        "iparams": {"api_key": "secret-value", "tags": ["a", "b"], "limits": {"max": 3}},
    }
    payload["data"]["task_id"] = 0
    assert data == {"task_id": 100001}
    assert spec.mask_iparams(payload["iparams"])["api_key"] == "****"
    json.dumps(payload)


def test_base_payload_defaults(tmp_path: Path) -> None:
    spec = load_app(make_app(tmp_path))
    assert spec.base_payload({}, 0) == {
        "account_id": 1,
        "event": "onScheduledEvent",
        "region": "US",
        "timestamp": 0,
        "domain": "localhost.myfreshworks.com",
        "data": {},
        "iparams": {},
    }


def test_check_exports(tmp_path: Path) -> None:
    manifest = {
        "events": {
            "onScheduledEvent": {"handler": "onScheduledEventHandler"},
            "onAppInstall": {"handler": "install"},
            "onAppUninstall": {"handler": "install"},
        }
    }
    spec = load_app(make_app(tmp_path, manifest))
    assert spec.check_exports(["onScheduledEventHandler", "install", "extra"]) == []
    assert [str(p) for p in spec.check_exports(iter(["extra"]))] == [
        "Event callback 'onScheduledEventHandler' is not defined in server.py exports",
        "Event callback 'install' is not defined in server.py exports",
    ]
    assert {p.severity for p in spec.check_exports([])} == {"error"}


# --- the sample app ------------------------------------------------------------------------


def test_sample_app_loads_cleanly() -> None:
    spec = load_app(SAMPLE_APP)
    assert spec.problems == ()
    assert spec.events == {
        "onAppInstall": "onAppInstallHandler",
        "onAppUninstall": "onAppUninstallHandler",
        "onScheduledEvent": "onScheduledEventHandler",
        "onTaskCreate": "onTaskCreateHandler",
    }
    assert spec.functions == {"bookReminder": FunctionSpec("bookReminder", 10.0)}
    assert spec.account == Account(12345, "acme.myfreshworks.com", "US", "freshsales")
    assert spec.secure_iparams == frozenset({"api_key"})
    assert set(spec.iparams) == {"api_key", "crm_domain"}
    assert spec.requests is not None and spec.requests.declared == {"getUpdatedTasks"}
    assert spec.requests.template("getUpdatedTasks") is not None
    assert len(spec.stubs) == 3
    assert spec.timeout == 20.0
    assert spec.start == datetime(2026, 1, 5, 9, tzinfo=UTC)
    handlers = ["onAppInstallHandler", "onAppUninstallHandler", "onScheduledEventHandler"]
    assert spec.check_exports([*handlers, "onTaskCreateHandler", "bookReminder"]) == []


# -- server functions (SPEC §8) -----------------------------------------------------------


@pytest.mark.parametrize(
    "manifest",
    [
        {"events": SCHEDULED, "functions": {"book": {"timeout": 10}, "ping": {}}},
        {
            "product": {"freshdesk": {"events": SCHEDULED, "functions": {"book": {"timeout": 10}}}},
            "modules": {"x": {"functions": {"ping": {}}}},
        },
        {
            "modules": {
                "common": {"events": SCHEDULED},
                "crm": {"functions": {"book": {"timeout": 10}, "ping": {}}},
            }
        },
    ],
)
def test_functions_are_read_in_all_three_shapes(tmp_path: Path, manifest: dict[str, Any]) -> None:
    spec = load_app(make_app(tmp_path, manifest))
    assert spec.errors == ()
    assert spec.functions == {"book": FunctionSpec("book", 10.0), "ping": FunctionSpec("ping", 5.0)}


def test_no_functions_block_is_none_and_bad_entries_are_errors(tmp_path: Path) -> None:
    assert load_app(make_app(tmp_path / "a", {"events": SCHEDULED})).functions is None
    manifest = {
        "events": SCHEDULED,
        "functions": {"a": [], "b": {"timeout": 0.5}, "c": {"timeout": True}, "d": {}},
        "modules": {"m": {"functions": {"d": {"timeout": 6}}}},
    }
    spec = load_app(make_app(tmp_path / "b", manifest))
    assert [str(p) for p in spec.errors] == [
        "manifest.json: 'functions.a' must be an object",
        "Function 'b': timeout must be 1 to 20 seconds, got 0.5",
        "Function 'c': timeout must be 1 to 20 seconds, got True",
        "Function 'd' is declared twice in manifest.json",
    ]
