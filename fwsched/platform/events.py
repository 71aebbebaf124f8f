"""SPEC §8 as pure rules: payloads of any event, setup events, server functions, render_data.

Nothing here runs a handler or touches the state: ``engine.Simulator`` does that
(``fire``, ``invoke``, ``install``, ``uninstall``) and asks this module which handler
runs, with what payload and timeout, and what the run amounts to. Kept pure so
the library, the CLI and the live runner share one set of rules and messages.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from fwsched import jsvalues
from fwsched.app import AppSpec
from fwsched.errors import AppError, FwschedError
from fwsched.manifest import FUNCTION_TIMEOUT
from fwsched.outcome import Outcome
from fwsched.records import Invocation
from fwsched.sandbox.result import RunResult

INSTALL_EVENT = "onAppInstall"
UNINSTALL_EVENT = "onAppUninstall"
SETUP_EVENTS = frozenset({INSTALL_EVENT, UNINSTALL_EVENT})

# The FDK keeps an event's sample payload here; apps ship them, so fwsched reads them.
TEST_DATA_DIRS = ("test_data", "server/test_data")
# An object with "data" and one of these is a whole payload, not a data object.
PAYLOAD_KEYS = ("account_id", "domain", "event", "region", "timestamp")

NOT_RENDERED = "render_data was not called"
BAD_ERROR = "The error should be a JSON Object with a message or a status parameter."
ALREADY_INSTALLED = "The app is already installed (fwsched uninstall first)"
NOT_INSTALLED = "The app is not installed (fwsched install first)"


# -- events -------------------------------------------------------------------------------


def event_handler(spec: AppSpec, event: str) -> str:
    """The handler registered for ``event``, or the §8 error."""
    handler = spec.events.get(event)
    if handler is None:
        raise FwschedError(f"Event '{event}' is not registered in manifest.json")
    return handler


def test_data_file(root: Path, event: str) -> Path | None:
    """``test_data/<event>.json`` or ``server/test_data/<event>.json``, the first that exists."""
    for folder in TEST_DATA_DIRS:
        path = root / folder / f"{event}.json"
        if path.is_file():
            return path
    return None


def read_test_data(root: Path, event: str) -> dict[str, Any] | None:
    """The app's sample payload of ``event`` (None without one); ``AppError`` if it is broken."""
    path = test_data_file(root, event)
    if path is None:
        return None
    name = path.relative_to(root).as_posix()
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise AppError(
            f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AppError(f"{name}: cannot be read: {exc}") from None
    if not isinstance(value, dict):
        raise AppError(f"{name}: expected a JSON object (a payload), got {type(value).__name__}")
    return value


def is_full_payload(value: Any) -> bool:
    """SPEC §8: an object with ``data`` and one of the payload's other keys is a whole payload."""
    return isinstance(value, dict) and "data" in value and any(k in value for k in PAYLOAD_KEYS)


def event_payload(
    spec: AppSpec, event: str, now_ms: int, given: Any = None
) -> tuple[dict[str, Any], int]:
    """The payload of ``event`` fired now, with real iparams, and its timestamp (epoch ms).

    It starts from the app's test_data file, else the §3 defaults; ``given`` replaces
    it when it is a full payload, else becomes its ``data``. Then ``event`` is the
    event, ``iparams`` the app's, and ``timestamp`` now unless the payload has one.
    """
    base = read_test_data(spec.root, event)
    if base is None:
        base = spec.base_payload({}, now_ms)
    if given is not None:
        if not isinstance(given, dict):
            raise FwschedError(
                f"The payload must be a JSON object (a payload or its data), "
                f"got {jsvalues.type_name(given)}"
            )
        base = copy.deepcopy(given) if is_full_payload(given) else {**base, "data": given}
    payload = {**copy.deepcopy(base), "event": event, "iparams": spec.payload_iparams()}
    payload.setdefault("timestamp", now_ms)
    timestamp = payload["timestamp"]
    # The record needs epoch ms; a sample file with another kind of timestamp keeps it.
    valid = isinstance(timestamp, int) and not isinstance(timestamp, bool)
    return payload, timestamp if valid else now_ms


# -- server functions ---------------------------------------------------------------------


def function_timeout(spec: AppSpec, name: str) -> float:
    """The function's own timeout from the manifest, else the platform's 5 s."""
    declared = spec.functions.get(name) if spec.functions is not None else None
    return declared.timeout if declared is not None else FUNCTION_TIMEOUT


def check_function(spec: AppSpec, name: str, exports: Iterable[str] | None) -> None:
    """Refuse a function the manifest does not declare, or server.py does not export.

    ``exports`` is None when server.py does not load: then the run itself says so.
    """
    if spec.functions is not None and name not in spec.functions:
        raise FwschedError(f"Function '{name}' is not declared in manifest.json functions")
    if exports is not None and name not in set(exports):
        raise FwschedError(f"Function '{name}' is not defined in server.py exports")


def function_payload(spec: AppSpec, params: Any) -> dict[str, Any]:
    """SPEC §8: ``{**params, "iparams": {...}, "isInstall": false}``, with real iparams."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise FwschedError(f"The params must be a JSON object, got {jsvalues.type_name(params)}")
    return {**copy.deepcopy(dict(params)), "iparams": spec.payload_iparams(), "isInstall": False}


# -- render_data --------------------------------------------------------------------------


def render_of(call: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The platform's response to ``render_data(error, data)`` (None: it was not called)."""
    if call is None:
        return None
    error, data = call.get("error"), call.get("data")
    if jsvalues.falsy(error):
        return {"status": 200, "response": data}
    if isinstance(error, dict) and ("message" in error or not jsvalues.falsy(error.get("status"))):
        status = error.get("status")
        return {
            "status": status if not jsvalues.falsy(status) else 500,
            "message": error.get("message"),
            "errorSource": "APP",
        }
    return {"status": 400, "message": BAD_ERROR, "errorSource": "APP"}


def must_render(source: str, event: str) -> bool:
    """Setup events and server functions must answer; other events may."""
    return source == "function" or event in SETUP_EVENTS


def settle(result: RunResult, *, required: bool) -> RunResult:
    """A handler that had to call render_data and returned without it ended in error."""
    if required and result.outcome == Outcome.OK and result.render is None:
        return replace(result, outcome=Outcome.ERROR, error=NOT_RENDERED)
    return result


def failure(outcome: str, error: str | None, render: Mapping[str, Any] | None) -> str | None:
    """Why a setup event or function did not succeed, in one line (None if it did).

    Takes the fields, not an ``Invocation``, so the CLI can judge the JSON it received.
    """
    if outcome != Outcome.OK:
        return error or str(outcome)
    if render is not None and render.get("status") != 200:
        message = render.get("message")
        return (
            f"{message if message is not None else '(no message)'} (status {render.get('status')})"
        )
    return None


def install_failure(invocation: Invocation | None) -> str | None:
    """Why an install did not happen (None: the app is installed, or has no onAppInstall)."""
    if invocation is None:
        return None
    render = invocation.render
    if invocation.outcome == Outcome.OK and render is not None and render.get("status") != 200:
        message = render.get("message")
        return f"Install blocked by the app: {message if message is not None else render}"
    reason = failure(invocation.outcome, invocation.error, render)
    return None if reason is None else f"Install failed: {reason}"


# -- helpers ------------------------------------------------------------------------------
