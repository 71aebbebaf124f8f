"""What the commands share: error lines, JSON output, common options, finding the app,
the session a command runs in, and reading JSON arguments.

Each command imports what it needs when it runs (rich, sqlite3, the engine,
watchdog), so a command pays only for itself; this module imports click and
nothing heavy.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from fwsched.errors import UsageError

if TYPE_CHECKING:
    from fwsched.session import Session

F = TypeVar("F", bound=Callable[..., Any])

NO_APP = "No app found: pass --app PATH or run inside an app directory"


class Debug:
    """Whether errors show their traceback (``--debug`` or ``FWSCHED_DEBUG=1``), per run."""

    on = bool(os.environ.get("FWSCHED_DEBUG"))


class Output:
    """What one run of the command line printed and used, for what the root prints after
    the command: a JSON error document, the relaxed-mode line. Reset by ``start``."""

    json = False  # --json was given: stdout gets exactly one JSON document, also on failure
    printed_json = False  # it has been printed
    sessions: list[Session] = []  # noqa: RUF012 - reset per run, like Debug.on
    mode_shown = False  # the command's own output says whether the state is relaxed
    hint = ""  # appended to the error line (e.g. the simulated now a rule was checked at)

    @classmethod
    def start(cls, args: list[str]) -> None:
        cls.json = "--json" in args[: args.index("--")] if "--" in args else "--json" in args
        cls.printed_json = cls.mode_shown = False
        cls.sessions = []
        cls.hint = ""


# -- errors -------------------------------------------------------------------------------


def stderr_colour() -> bool:
    return "NO_COLOR" not in os.environ and sys.stderr.isatty()


def error_line(message: str) -> None:
    prefix = click.style("Error:", fg="red", bold=True) if stderr_colour() else "Error:"
    click.echo(f"{prefix} {message}", err=True, color=stderr_colour())


def print_json(document: Any) -> None:
    """Exactly one JSON document on stdout: no colour, no progress (and no rich to import)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    Output.printed_json = True


def one_line(text: str) -> str:
    return " ".join(text.split())


# -- shared options -----------------------------------------------------------------------


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        Debug.on = True


def debug_option(f: F) -> F:
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show the traceback of an error (env FWSCHED_DEBUG=1).",
    )(f)


def app_option(f: F) -> F:
    return click.option(
        "--app",
        "app",
        envvar="FWSCHED_APP",
        metavar="PATH",
        help="The app directory [env FWSCHED_APP; default: the current directory if it "
        "has a manifest.json, else the app of the only live `fwsched run`].",
    )(f)


def json_option(f: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(f)


MAX_TIMEOUT = 24 * 3600.0  # app.MAX_TIMEOUT, without importing fwsched.app here


class Finite(click.FloatRange):
    """A float range that also refuses NaN (which compares false to any bound)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number.", param, ctx)
        return number


def relaxed_option(f: F) -> F:
    return click.option(
        "--relaxed",
        is_flag=True,
        help="Lift the platform limits (5 min to 1 year ahead, 1000 one-time and 1 "
        "recurring schedule); remembered until `fwsched reset`.",
    )(f)


def sandbox_options(f: F) -> F:
    options = [
        click.option(
            "--timeout",
            type=Finite(min=0, min_open=True, max=MAX_TIMEOUT),
            metavar="S",
            help="Seconds a handler may run [default: fwsched.toml, else 20].",
        ),
        click.option(
            "--isolation",
            type=click.Choice(["warm", "fresh"]),
            help="warm: reuse the sandbox process [default]; fresh: a clean module per run.",
        ),
        click.option(
            "--memory-limit",
            "memory_limit",
            type=click.IntRange(min=0),
            metavar="MB",
            help="Memory limit of the sandbox in MiB (0: none) [default: 512].",
        ),
    ]
    for option in reversed(options + _network_options()):
        f = option(f)
    return f


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    # --network and --record reach the Simulator through simulator_options(), so the
    # commands that take the sandbox options need no parameters of their own for them.
    if value is not None:
        ctx.meta[f"fwsched.{param.name}"] = value


def _network_options() -> list[Callable[[F], F]]:
    """SPEC §10: where a handler's requests go."""
    return [
        click.option(
            "--network",
            type=click.Choice(["offline", "live"]),
            expose_value=False,
            callback=_remember,
            help="offline: only stubs answer requests [default]; live: unmatched ones go out.",
        ),
        click.option(
            "--record",
            type=click.Path(dir_okay=False, resolve_path=True),
            metavar="FILE",
            expose_value=False,
            callback=_remember,
            help="Append every live answer to FILE as a stub (replay it as stubs_file).",
        ),
    ]


def network_options(f: F) -> F:
    """``--network`` and ``--record`` alone, for a command without the sandbox options."""
    for option in reversed(_network_options()):
        f = option(f)
    return f


def simulator_options(
    *, timeout: float | None = None, isolation: str | None = None, memory_limit: int | None = None
) -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    options: dict[str, Any] = {
        "timeout": timeout,
        "isolation": isolation,
        "memory_limit_mb": memory_limit,
        "network": meta.get("fwsched.network"),
        "record": meta.get("fwsched.record"),
    }
    return {key: value for key, value in options.items() if value is not None}


# -- finding the app ----------------------------------------------------------------------


def find_app(app: str | None) -> Path:
    """SPEC §5: --app (or FWSCHED_APP); else the current directory or its nearest parent
    with a manifest.json (as git finds its repository); else the only live app, said on
    stderr so that nobody drives another app unawares."""
    if app:
        return checked_app(Path(app))
    cwd = Path.cwd().resolve()
    for directory in (cwd, *cwd.parents):
        if (directory / "manifest.json").is_file():
            return directory
    from fwsched import control

    runners = control.live_runners()
    if len(runners) == 1:
        click.echo(f"using the live app {runners[0].app}", err=True)
        return Path(runners[0].app)
    if runners:
        raise UsageError(f"{NO_APP} (live apps: {', '.join(r.app for r in runners)})")
    raise UsageError(NO_APP)


def checked_app(given: Path) -> Path:
    """An app directory named by --app, FWSCHED_APP or [APP]; anything else is a usage error."""
    path = given.expanduser().resolve()
    if not path.exists():
        raise UsageError(f"No app directory at {path} (fwsched init DIR creates one)")
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory: pass the app directory, not a file in it")
    if not (path / "manifest.json").is_file():
        above = next((p for p in path.parents if (p / "manifest.json").is_file()), None)
        hint = f" (the app may be {above})" if above else " (fwsched init DIR creates one)"
        raise UsageError(f"{path} is not an app directory: it has no manifest.json{hint}")
    return path


def remember_app(ctx: click.Context, app: str | None) -> None:
    """``fwsched --app X ...`` and ``fwsched schedule --app X ...``: the app for the command
    below, unless it names one itself (the innermost wins)."""
    ctx.ensure_object(dict)
    if app is not None:
        ctx.obj["app"] = app


def app_from(ctx: click.Context, app: str | None, positional: str | None = None) -> Path:
    """The app of a command, also from ``[APP]`` or from ``fwsched [schedule] --app``."""
    from_env = ctx.get_parameter_source("app") is ParameterSource.ENVIRONMENT
    if positional is not None:
        if app is not None and not from_env and Path(app).resolve() != Path(positional).resolve():
            raise UsageError(f"APP ({positional}) and --app ({app}) name different apps")
        return find_app(positional)
    parent_app = ctx.obj.get("app") if isinstance(ctx.obj, dict) else None
    if parent_app is not None and (app is None or from_env):
        return find_app(parent_app)
    return find_app(app)


def session_for(app_root: Path, **simulator: Any) -> Session:
    from fwsched.session import Session

    options = {k: v for k, v in simulator.items() if v is not None}
    session = Session(app_root, options, waiting=WaitNotice(sys.stderr))
    Output.sessions.append(session)
    return session


class WaitNotice:
    """``waiting for the running handler (5 s)…`` on stderr while a command waits its turn.

    On a terminal the line counts up in place and is erased once the answer comes; in
    a log it is written once per cause.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._tty = _isatty(stream)
        self._began: float | None = None
        self._shown: str | None = None

    def __call__(self, behind: str | None) -> None:
        import time

        if behind is None:  # answered
            if self._tty and self._shown is not None:
                self._stream.write("\r\x1b[2K")
                self._stream.flush()
            self._began = self._shown = None
            return
        if self._began is None:
            self._began = time.monotonic()
        seconds = round(time.monotonic() - self._began) + 1  # the first heartbeat is 1 s in
        line = f"waiting for {behind} ({seconds} s)…"
        if self._tty:
            self._stream.write("\r\x1b[2K" + line)
        elif behind != self._shown:
            self._stream.write(line + "\n")
        else:
            return
        self._shown = behind
        self._stream.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def firing_session(
    ctx: click.Context,
    app: str | None,
    relaxed: bool,
    timeout: float | None,
    isolation: str | None,
    memory_limit: int | None,
) -> tuple[Session, dict[str, Any]]:
    """The session of ``advance`` and ``trigger``, and the sandbox options it was given."""
    sandbox = simulator_options(timeout=timeout, isolation=isolation, memory_limit=memory_limit)
    return session_for(app_from(ctx, app), strict=not relaxed, **sandbox), sandbox


def note_ignored_when_live(session: Session, options: Mapping[str, Any]) -> None:
    """``options`` are the Simulator's (from ``simulator_options``), named as options here."""
    names = {
        "timeout": "--timeout",
        "isolation": "--isolation",
        "memory_limit_mb": "--memory-limit",
        "network": "--network",
        "record": "--record",
    }
    given = [names[name] for name in options]
    if session.live and given:
        note(
            f"{', '.join(given)} ignored: the live `fwsched run` owns the sandbox "
            "(give the option to `fwsched run`)"
        )


def note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


# -- arguments ----------------------------------------------------------------------------


def json_arg(option: str, text: str) -> Any:
    """The JSON value of ``--data``/``--payload``; ``@FILE`` reads it from a file."""
    source = "text"
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{option}: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        source = str(path)
    try:
        return json.loads(text)
    except RecursionError:
        raise UsageError(f"{option}: the JSON is nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        where = "" if source == "text" else f" in {source}"
        example = JSON_EXAMPLES.get(option, _EXAMPLE)
        if option.startswith("--"):  # an option's example names it; an argument's is the value
            example = f"{option} {example}"
        raise UsageError(
            f"{option}: invalid JSON{where} at line {exc.lineno} column {exc.colno}: {exc.msg}"
            f" (quote it for the shell, e.g. {example})"
        ) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise UsageError(f"{option}: {' '.join(str(exc).split())}") from None


_EXAMPLE = """'{"task_id": 1}'"""
# What each JSON option usually holds, so that its error shows an example of its own.
JSON_EXAMPLES = {
    "--data": _EXAMPLE,
    "--payload": """'{"task_id": 1}' or @test_data/onScheduledEvent.json""",
    "--params": """'{"task_id": 1, "in_minutes": 30}'""",
    "--iparams": """'{"api_key": "k-123"}'""",
}


def check_duration(text: str, option: str | None = None) -> None:
    """A usage error for a DURATION that does not parse, naming ``option`` if given."""
    from fwsched.durations import parse_duration

    try:
        parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}" if option else str(exc)) from None


# -- output -------------------------------------------------------------------------------


def echo_invocation(document: Mapping[str, Any]) -> None:
    """One invocation as a line, then the output the line does not show, and the traceback.

    The line shows the first log line of an invocation that ended ``ok`` (the rest
    follows, indented) and the error of one that did not (its whole output follows).
    """
    from fwsched.render import invocation_summary, invocation_text, make_console

    console = make_console()
    console.print(invocation_text(document))
    lines = (document.get("log") or "").rstrip("\n").splitlines()
    while lines and not lines[0].strip():
        lines = lines[1:]
    if lines and lines[0].strip() == invocation_summary(document):
        lines = lines[1:]  # already on the line above
    for line in lines:
        console.print("  " + line, markup=False, highlight=False)
    if document.get("traceback"):
        console.print(document["traceback"].rstrip(), markup=False, style="red")
