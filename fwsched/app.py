"""The app loader: reads manifest.json, fwsched.toml and config/iparams.json into an `AppSpec`.

The manifest's events and server functions are parsed by fwsched.manifest.

It never imports server.py: the parent process must survive a broken or hostile
app, so user code only ever runs in the sandbox. The sandbox reports the names
that server.py exports and `AppSpec.check_exports` judges them here.

`load_app` raises `AppError` only when the app cannot be used at all (a missing
file, a syntax error, a setting of the wrong type); everything a developer can
still run with is collected as `Problem`s for `fwsched validate` to print.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fwsched import jsvalues
from fwsched.errors import AppError, did_you_mean
from fwsched.redaction import MASK as MASK
from fwsched.redaction import redact as redact
from fwsched.redaction import secrets_of as secrets_of

if TYPE_CHECKING:
    from fwsched.manifest import FunctionSpec
    from fwsched.platform.stubs import Stub
    from fwsched.platform.templates import RequestConfig

__all__ = [
    "REGIONS",
    "SCHEDULED_EVENT",
    "Account",
    "AppSpec",
    "Problem",
    "load_app",
]

SCHEDULED_EVENT = "onScheduledEvent"
REGIONS = ("US", "EU", "EUC", "AUS", "IND")

MANIFEST = "manifest.json"
SERVER = "server.py"
CONFIG = "fwsched.toml"
IPARAMS = "config/iparams.json"

MAX_TIMEOUT = 24 * 3600.0  # seconds a handler may be given: a day (for one in a debugger)

_ACCOUNT_KEYS = ("account_id", "domain", "region", "product")
_SIMULATOR_KEYS = ("timeout", "start")
_TOML_TABLES = ("account", "iparams", "simulator", "request")


@dataclass(frozen=True)
class Problem:
    """One finding about the app; `validate` prints it and exits 1 if any is an error."""

    severity: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        return self.message


def _error(message: str) -> Problem:
    return Problem("error", message)


def _warning(message: str) -> Problem:
    return Problem("warning", message)


def _account_field_error(key: str, value: Any) -> str | None:
    """Why `value` cannot be the account field `key` (None when it can)."""
    if key == "account_id":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"account_id must be a positive integer, got {value!r}"
    elif key == "domain":
        if not isinstance(value, str) or not value.strip():
            return f"domain must be a non-empty string, got {value!r}"
    elif key == "region":
        if value not in REGIONS:
            return f"region must be one of {', '.join(REGIONS)}, got {value!r}"
    elif key == "product" and value is not None and not isinstance(value, str):
        return f"product must be a string, got {value!r}"
    return None


@dataclass(frozen=True)
class Account:
    """The account fields of every payload (fwsched.toml [account])."""

    account_id: int = 1
    domain: str = "localhost.myfreshworks.com"
    region: str = "US"
    product: str | None = None

    def __post_init__(self) -> None:
        for key in _ACCOUNT_KEYS:
            reason = _account_field_error(key, getattr(self, key))
            if reason is not None:
                raise AppError(f"account: {reason}")

    def merged(self, values: Mapping[str, Any], *, where: str = "account:") -> Account:
        """This account with `values` laid over it; `where` prefixes error messages."""
        unknown = [key for key in values if key not in _ACCOUNT_KEYS]
        if unknown:
            raise AppError(
                f"{where} unknown key {unknown[0]!r} (expected one of {', '.join(_ACCOUNT_KEYS)})"
            )
        for key, value in values.items():
            reason = _account_field_error(key, value)
            if reason is not None:
                raise AppError(f"{where} {reason}")
        return replace(self, **dict(values))


@dataclass(frozen=True)
class AppSpec:
    """Everything fwsched knows about an app without running its code."""

    root: Path
    events: Mapping[str, str]
    scheduled_handler: str | None
    account: Account = field(default_factory=Account)
    iparams: Mapping[str, Any] = field(default_factory=dict)
    secure_iparams: frozenset[str] = frozenset()
    iparam_definitions: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    start: datetime | None = None
    problems: tuple[Problem, ...] = ()
    # The manifest's server functions; None when it has no `functions` block (older
    # apps), which lets any exported callable be invoked.
    functions: Mapping[str, FunctionSpec] | None = None
    # SPEC §10: config/requests.json's templates with the manifest's `requests` and
    # `whitelisted-domains`, and the stubs of fwsched.toml and its stubs file.
    requests: RequestConfig | None = None
    stubs: tuple[Stub, ...] = ()

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def server_path(self) -> Path:
        return self.root / SERVER

    @property
    def handlers(self) -> tuple[str, ...]:
        """The distinct handler names of the manifest, in manifest order."""
        return tuple(dict.fromkeys(self.events.values()))

    def check_exports(self, export_names: Iterable[str]) -> list[Problem]:
        """Judge the export names the sandbox found in server.py against the manifest."""
        exported = set(export_names)
        problems = [
            _error(
                f"Event callback '{handler}' is not defined in server.py exports"
                + did_you_mean(handler, exported)
            )
            for handler in self.handlers
            if handler not in exported
        ]
        problems += [
            _error(
                f"Function '{name}' is not defined in server.py exports"
                + did_you_mean(name, exported)
            )
            for name in self.functions or ()
            if name not in exported
        ]
        return problems

    def payload_iparams(self) -> dict[str, Any]:
        """The real iparam values, for the handler only (a copy: handlers may mutate it)."""
        return copy.deepcopy(dict(self.iparams))

    def mask_iparams(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` as fwsched shows and stores them: secure iparams replaced by ``****``."""
        return {
            name: MASK if name in self.secure_iparams else copy.deepcopy(value)
            for name, value in values.items()
        }

    @cached_property
    def secret_values(self) -> tuple[str, ...]:
        """The secure iparams' values as text, longest first (what ``redact`` masks)."""
        return secrets_of(self.iparams, self.secure_iparams)

    def redact(self, value: Any) -> Any:
        """``value`` with every secure iparam's value replaced by ``****``, at any depth.

        A handler may print or return a secret; like CI systems do with their
        secrets, fwsched masks it in what it stores and shows.
        """
        return redact(value, self.secret_values)

    def base_payload(
        self, data: Mapping[str, Any], timestamp_ms: int, *, copied: bool = True
    ) -> dict[str, Any]:
        """The SPEC §3 payload of an onScheduledEvent occurrence, with real iparam values.

        ``copied=False``: the caller owns ``data`` and only sends the payload to the
        sandbox (which encodes it), so neither it nor the iparams are copied.
        """
        return {
            "account_id": self.account.account_id,
            "event": SCHEDULED_EVENT,
            "region": self.account.region,
            "timestamp": timestamp_ms,
            "domain": self.account.domain,
            "data": copy.deepcopy(dict(data)) if copied else data,
            "iparams": self.payload_iparams() if copied else dict(self.iparams),
        }

    def with_overrides(
        self,
        account: Mapping[str, Any] | None = None,
        iparams: Mapping[str, Any] | None = None,
    ) -> AppSpec:
        """The library's `Simulator(account=..., iparams=...)`, which wins over fwsched.toml.

        Account keys are merged over fwsched.toml's; iparams replace its [iparams] table.
        """
        spec = self
        if account is not None:
            if not isinstance(account, Mapping):
                raise AppError(f"account must be a dict, got {type(account).__name__}")
            spec = replace(spec, account=spec.account.merged(account, where="account:"))
        if iparams is not None:
            if not isinstance(iparams, Mapping):
                raise AppError(f"iparams must be a dict, got {type(iparams).__name__}")
            values = _check_iparam_values(iparams, where="iparams:")
            stale = set(_iparam_problems(spec.iparam_definitions, spec.iparams))
            kept = tuple(p for p in spec.problems if p not in stale)
            fresh = tuple(_iparam_problems(spec.iparam_definitions, values))
            spec = replace(spec, iparams=values, problems=kept + fresh)
        return spec


def app_secrets(spec: AppSpec, installed: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Every secret of the app: fwsched.toml's secure iparams and the installation's."""
    more = secrets_of(installed, spec.secure_iparams) if installed else ()
    return tuple(sorted(set(spec.secret_values) | set(more), key=len, reverse=True))


class Redacting:
    """``target`` whose methods get every argument through ``redact`` first (a dataclass
    field by field): put in front of a display, it is that display's output boundary."""

    def __init__(self, target: Any, secrets: Callable[[], tuple[str, ...]]) -> None:
        self._target = target
        self._secrets = secrets

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            secrets = self._secrets()
            return attribute(
                *(_redact_any(arg, secrets) for arg in args),
                **{key: _redact_any(value, secrets) for key, value in kwargs.items()},
            )

        return call


def _redact_any(value: Any, secrets: tuple[str, ...]) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return replace(
            value,
            **{f.name: redact(getattr(value, f.name), secrets) for f in fields(value) if f.init},
        )
    return redact(value, secrets)


def load_app(root: str | Path) -> AppSpec:
    """Read the app at `root`; raise `AppError` only if it cannot be used at all."""
    path = Path(root).expanduser().resolve()
    if not path.exists():
        raise AppError(f"No app directory at {path} (fwsched init DIR creates one)")
    if not path.is_dir():
        raise AppError(f"{path} is not a directory: pass the app directory, not a file in it")
    if not (path / MANIFEST).is_file():
        raise AppError(
            f"No manifest.json in {path}: is this a Freshworks app directory? "
            "(fwsched init DIR creates one)"
        )
    if not (path / SERVER).is_file():
        raise AppError(
            f"No server.py in {path}: the app's handlers live there "
            "(fwsched init DIR creates an example)"
        )

    manifest = _read_json(path, MANIFEST)
    if not isinstance(manifest, dict):
        raise AppError(f"manifest.json: expected a JSON object, got {jsvalues.type_name(manifest)}")
    # Imported here, like stubs and templates below: fwsched.manifest builds on this
    # module's Problem.
    from fwsched.manifest import manifest_events, manifest_functions

    events, problems = manifest_events(manifest)
    functions, function_problems = manifest_functions(manifest)
    problems += function_problems

    definitions: dict[str, Any] = {}
    if (path / IPARAMS).is_file():
        raw = _read_json(path, IPARAMS)
        if not isinstance(raw, dict):
            raise AppError(
                f"config/iparams.json: expected a JSON object, got {jsvalues.type_name(raw)}"
            )
        definitions = raw
    secure = frozenset(name for name, spec in definitions.items() if _flag(spec, "secure"))

    account, iparams, timeout, start, request_table, config_problems = _read_config(path)
    problems += config_problems
    problems += _iparam_problems(definitions, iparams)

    # Imported here: these modules build on this one's Problem and errors.
    from fwsched.platform.stubs import load_stubs
    from fwsched.platform.templates import load_request_config

    requests = load_request_config(path, manifest)
    problems += requests.problems
    stubs, stub_problems = load_stubs(path, request_table)
    problems += stub_problems

    return AppSpec(
        root=path,
        events=events,
        scheduled_handler=events.get(SCHEDULED_EVENT),
        account=account,
        iparams=iparams,
        secure_iparams=secure,
        iparam_definitions=definitions,
        timeout=timeout,
        start=start,
        problems=tuple(problems),
        functions=functions,
        requests=requests,
        stubs=tuple(stubs),
    )


def _read_text(root: Path, name: str) -> str:
    try:
        # utf-8-sig: editors on Windows like to start JSON files with a BOM.
        return (root / name).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AppError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise AppError(f"{name}: cannot be read: {exc.strerror or exc}") from None


def _read_json(root: Path, name: str) -> Any:
    from fwsched.platform.jsonfile import read_json_file

    return read_json_file(root / name, name)[0]


def _read_config(
    root: Path,
) -> tuple[Account, dict[str, Any], float | None, datetime | None, dict[str, Any], list[Problem]]:
    """fwsched.toml: wrong types are errors (the run would be wrong), unknown keys warnings.

    The ``[request]`` table is returned as it is: ``fwsched.platform.stubs`` reads it.
    """
    problems: list[Problem] = []
    if not (root / CONFIG).is_file():
        return Account(), {}, None, None, {}, problems
    try:
        config = tomllib.loads(_read_text(root, CONFIG))
    except tomllib.TOMLDecodeError as exc:
        raise AppError(f"fwsched.toml: invalid TOML: {exc}") from None

    for key, value in config.items():
        if key not in _TOML_TABLES:
            what = f"table [{key}]" if isinstance(value, dict) else f"key '{key}'"
            problems.append(_warning(f"fwsched.toml: unknown {what} (ignored)"))
        elif not isinstance(value, dict):
            raise AppError(f"fwsched.toml: '{key}' must be a table ([{key}]), got {value!r}")

    account_table: dict[str, Any] = config.get("account", {})
    known_account = {k: v for k, v in account_table.items() if k in _ACCOUNT_KEYS}
    problems += _unknown_keys("account", account_table, _ACCOUNT_KEYS)
    account = Account().merged(known_account, where="fwsched.toml: [account]")

    iparams = _check_iparam_values(config.get("iparams", {}), where="fwsched.toml: [iparams]")

    simulator: dict[str, Any] = config.get("simulator", {})
    problems += _unknown_keys("simulator", simulator, _SIMULATOR_KEYS)
    timeout = _config_timeout(simulator.get("timeout"))
    start = _config_start(simulator.get("start"))
    request_table: dict[str, Any] = config.get("request", {})
    return account, iparams, timeout, start, request_table, problems


def _unknown_keys(table: str, values: Mapping[str, Any], known: tuple[str, ...]) -> list[Problem]:
    return [
        _warning(f"fwsched.toml: unknown key '{key}' in [{table}] (ignored)")
        for key in values
        if key not in known
    ]


def _config_timeout(value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise AppError(
            f"fwsched.toml: [simulator] timeout must be a positive number of seconds, got {value!r}"
        )
    if value > MAX_TIMEOUT:
        raise AppError(
            f"fwsched.toml: [simulator] timeout must be at most {MAX_TIMEOUT:g} seconds (a day), "
            f"got {value!r}"
        )
    return float(value)


def _config_start(value: Any) -> datetime | None:
    """An ISO string or a TOML date-time; naive means UTC. "now" is the default spelled out."""
    if value is None or value == "now":
        return None
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    if moment is None:
        raise AppError(
            "fwsched.toml: [simulator] start must be an ISO 8601 date-time "
            f'like "2026-01-05T09:00:00Z", got {value!r}'
        )
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _check_iparam_values(values: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """The payload is JSON, so iparam values must be JSON values (not TOML dates, not objects)."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if not isinstance(name, str):
            raise AppError(f"{where} iparam names must be strings, got {name!r}")
        if not _is_json_value(value):
            raise AppError(
                f"{where} '{name}' must be a JSON value (string, number, boolean, array or "
                f"object), got {value!r}; quote dates and times"
            )
        checked[name] = copy.deepcopy(value)
    return checked


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False


def _flag(definition: Any, key: str) -> bool:
    """An FDK iparam definition's boolean option (`secure`, `required`); only `true` sets it."""
    return isinstance(definition, dict) and definition.get(key) is True


def _iparam_problems(definitions: Mapping[str, Any], values: Mapping[str, Any]) -> list[Problem]:
    """Values that iparams.json does not declare, and required ones without a value."""
    if not definitions:
        return []
    problems = [
        _warning(f"iparam '{name}' has a value but is not declared in config/iparams.json")
        for name in values
        if name not in definitions
    ]
    problems += [
        _warning(
            f"iparam '{name}' is required by config/iparams.json but has no value "
            "(set it in fwsched.toml [iparams])"
        )
        for name, definition in definitions.items()
        if name not in values and _flag(definition, "required")
    ]
    return problems
