"""The click commands of ``fwsched`` (SPEC §5): parse, call a session or the library, render.

Each command imports what it needs when it runs (rich, sqlite3, the engine,
watchdog), so a command pays only for itself. Commands that work on the state
go through ``Session`` (the live runner when there is one, the state directly
otherwise) and render the JSON document it answers: with rich for people, as is
with ``--json``.

Errors: ours (``FwschedError``, ``ScheduleError``) and click's usage errors become
one line on stderr and the exit code of SPEC §5 (1 failed, 2 usage); ``--debug``
adds the traceback.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import click
from click.core import ParameterSource

from fwsched import __version__
from fwsched.errors import FwschedError, UsageError
from fwsched.sdk import ScheduleError

if TYPE_CHECKING:
    from fwsched.session import Session

F = TypeVar("F", bound=Callable[..., Any])

NO_APP = "No app found: pass --app PATH or run inside an app directory"
OUTCOMES = ("ok", "error", "timeout", "crashed", "load-error", "interrupted")
EXIT_INTERRUPTED = 130


class _NoSuchError(click.ClickException):
    """Stands for an exception class that this click version does not have."""


# `fwsched` alone prints the help (click >= 8.2 raises this for it; older ones exit at once).
_NO_ARGS_IS_HELP: type[click.ClickException] = getattr(
    click.exceptions, "NoArgsIsHelpError", _NoSuchError
)

_debug = bool(os.environ.get("FWSCHED_DEBUG"))


# -- errors -------------------------------------------------------------------------------


def _stderr_colour() -> bool:
    return "NO_COLOR" not in os.environ and sys.stderr.isatty()


def _error_line(message: str) -> None:
    prefix = click.style("Error:", fg="red", bold=True) if _stderr_colour() else "Error:"
    click.echo(f"{prefix} {message}", err=True, color=_stderr_colour())


def _print_json(document: Any) -> None:
    """Exactly one JSON document on stdout: no colour, no progress (and no rich to import)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _one_line(text: str) -> str:
    return " ".join(text.split())


class FwschedGroup(click.Group):
    """The top-level group: aliases, and every error turned into one line and an exit code."""

    aliases: ClassVar[dict[str, str]] = {"ls": "schedules"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        global _debug
        _debug = bool(os.environ.get("FWSCHED_DEBUG"))  # --debug sets it again, per run
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except BaseException as exc:  # every error becomes one line and an exit code
            code = _report(exc)
        else:
            code = result if isinstance(result, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def _report(exc: BaseException) -> int:
    """Print ``exc`` for the user; the exit code."""
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, click.Abort):
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        _error_line("interrupted" if interrupted else "aborted")
        return EXIT_INTERRUPTED if interrupted else 1
    if isinstance(exc, KeyboardInterrupt):
        _error_line("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, _NO_ARGS_IS_HELP):
        exc.show()  # the help text, as click prints it
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        message = _one_line(exc.format_message())
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message += f" (see '{exc.ctx.command_path} --help')"
        _error_line(message)
        return exc.exit_code
    if _debug:
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, ScheduleError):
        _error_line(f"{exc.message} (status {exc.status})")
        return 1
    if isinstance(exc, FwschedError):
        _error_line(_one_line(str(exc)))
        return exc.exit_code
    detail = _one_line(str(exc))
    hint = "" if _debug else " (run with --debug for the traceback)"
    _error_line(f"internal error: {type(exc).__name__}: {detail}{hint}")
    return 1


# -- shared options -----------------------------------------------------------------------


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    global _debug
    if value:
        _debug = True


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
            type=click.FloatRange(min=0, min_open=True),
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
    for option in reversed(options):
        f = option(f)
    return f


def _simulator_options(
    *, timeout: float | None = None, isolation: str | None = None, memory_limit: int | None = None
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "timeout": timeout,
        "isolation": isolation,
        "memory_limit_mb": memory_limit,
    }
    return {key: value for key, value in options.items() if value is not None}


# -- finding the app ----------------------------------------------------------------------


def find_app(app: str | None) -> Path:
    """SPEC §5: --app (or FWSCHED_APP), else the current directory, else the only live app."""
    if app:
        return Path(app).expanduser().resolve()
    cwd = Path.cwd()
    if (cwd / "manifest.json").is_file():
        return cwd.resolve()
    from fwsched import control

    runners = control.live_runners()
    if len(runners) == 1:
        return Path(runners[0].app)
    if runners:
        raise UsageError(f"{NO_APP} (live apps: {', '.join(r.app for r in runners)})")
    raise UsageError(NO_APP)


def _app_from(ctx: click.Context, app: str | None, positional: str | None = None) -> Path:
    """The app of a command, also from ``[APP]`` or from ``fwsched schedule --app``."""
    from_env = ctx.get_parameter_source("app") is ParameterSource.ENVIRONMENT
    if positional is not None:
        if app is not None and not from_env and Path(app).resolve() != Path(positional).resolve():
            raise UsageError(f"APP ({positional}) and --app ({app}) name different apps")
        return find_app(positional)
    parent_app = ctx.obj.get("app") if isinstance(ctx.obj, dict) else None
    if parent_app is not None and (app is None or from_env):
        return find_app(parent_app)
    return find_app(app)


def _session(app_root: Path, **simulator: Any) -> Session:
    from fwsched.session import Session

    return Session(app_root, {k: v for k, v in simulator.items() if v is not None})


def _firing_session(
    ctx: click.Context,
    app: str | None,
    relaxed: bool,
    timeout: float | None,
    isolation: str | None,
    memory_limit: int | None,
) -> tuple[Session, dict[str, Any]]:
    """The session of ``advance`` and ``trigger``, and the sandbox options it was given."""
    sandbox = _simulator_options(timeout=timeout, isolation=isolation, memory_limit=memory_limit)
    return _session(_app_from(ctx, app), strict=not relaxed, **sandbox), sandbox


def _note_ignored_when_live(session: Session, options: Mapping[str, Any]) -> None:
    """``options`` are the Simulator's (from ``_simulator_options``), named as options here."""
    names = {
        "timeout": "--timeout",
        "isolation": "--isolation",
        "memory_limit_mb": "--memory-limit",
    }
    given = [names[name] for name in options]
    if session.live and given:
        _note(
            f"{', '.join(given)} ignored: the live `fwsched run` owns the sandbox "
            "(give the option to `fwsched run`)"
        )


def _note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


# -- arguments ----------------------------------------------------------------------------


def _json_arg(option: str, text: str) -> Any:
    """The JSON value of ``--data``/``--payload``; ``@FILE`` reads it from a file."""
    source = "text"
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
        source = str(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = "" if source == "text" else f" in {source}"
        raise UsageError(
            f"{option}: invalid JSON{where} at line {exc.lineno} column {exc.colno}: {exc.msg}"
            " (quote it for the shell, e.g. --data '{\"task_id\": 1}')"
        ) from None


def _duration(text: str) -> None:
    from fwsched.durations import parse_duration

    try:
        parse_duration(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _every_to_repeat(text: str) -> dict[str, Any]:
    """``--every 15m`` as ``repeat``: the largest unit that divides it (minutes, hours, days)."""
    from fwsched.durations import parse_duration

    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError as exc:
        raise UsageError(f"--every: {exc}") from None
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return {"time_unit": unit, "frequency": int(seconds // size)}
    raise UsageError(
        f"--every {text}: schedules repeat in whole minutes, hours or days (e.g. 15m, 2h, 1d)"
    )


def _frequency(text: str) -> Any:
    # Shell text read as a JSON number would be (2, 2.0, 2.5, 1e20); anything else goes to the
    # API as the string it is, and the API answers rule 9.
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


# -- the group ----------------------------------------------------------------------------


@click.group(
    "fwsched",
    cls=FwschedGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="fwsched", message="%(prog)s %(version)s")
@debug_option
def cli() -> None:
    """Local simulator for Freshworks scheduled events, for apps written in Python.

    Start `fwsched run` in an app directory, then drive it from another shell
    with the other commands (or use them without a runner: they act on the
    state in <app>/.fwsched/ directly).
    """


# -- run ----------------------------------------------------------------------------------


@cli.command()
@click.argument("app_arg", metavar="[APP]", required=False)
@app_option
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="X",
    help="Simulated seconds per real second.",
)
@click.option("--paused", is_flag=True, help="The clock moves only with `fwsched advance`.")
@click.option(
    "--start",
    metavar="ISO|now",
    help="Simulated time of a fresh state [default: fwsched.toml, else now].",
)
@sandbox_options
@relaxed_option
@click.option("--no-reload", is_flag=True, help="Do not reload the app when its files change.")
@debug_option
@click.pass_context
def run(
    ctx: click.Context,
    app_arg: str | None,
    app: str | None,
    speed: float,
    paused: bool,
    start: str | None,
    timeout: float | None,
    isolation: str | None,
    memory_limit: int | None,
    relaxed: bool,
    no_reload: bool,
) -> None:
    """Run the app live: a real-time clock, a dashboard, reload on change, the control socket."""
    root = _app_from(ctx, app, app_arg)
    from fwsched import control
    from fwsched.session import state_path

    pid = control.runner_pid(root)
    if pid is not None:
        raise FwschedError(
            f"fwsched run is already live for {root} (pid {pid}); other fwsched commands "
            "act through it"
        )
    start_at = None
    if start is not None:
        from datetime import UTC, datetime

        from fwsched.durations import parse_when

        try:
            start_at = parse_when(start, datetime.now(UTC).replace(microsecond=0))
        except ValueError as exc:
            raise UsageError(f"--start: {exc}") from None
        if state_path(root).exists():
            _note("--start ignored: the state already has a simulated time (fwsched reset)")

    from fwsched.dashboard import Dashboard, Display, PlainLog
    from fwsched.engine import Simulator
    from fwsched.live import LiveRunner
    from fwsched.render import make_console

    options = _simulator_options(timeout=timeout, isolation=isolation, memory_limit=memory_limit)
    sim = Simulator(root, state=state_path(root), start=start_at, strict=not relaxed, **options)
    with sim:
        console = make_console()
        display: Display
        if console.is_terminal and not console.is_dumb_terminal:
            display = Dashboard(sim.clock.now, console)
        else:
            display = PlainLog()
        runner = LiveRunner(
            sim,
            display,
            speed=speed,
            paused=paused,
            reload=not no_reload,
            fixed_timeout=timeout is not None,
        )
        runner.run()


# -- moving time --------------------------------------------------------------------------


# `advance -1h` must reach the DURATION check (and its message), not become options -1 -h.
@cli.command(context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]})
@click.argument("duration", required=False)
@click.option("--to", "to", metavar="ISO", help="Advance to this instant instead.")
@click.option("--fail-on-error", is_flag=True, help="Exit 1 if any invocation did not end `ok`.")
@json_option
@relaxed_option
@sandbox_options
@app_option
@debug_option
@click.pass_context
def advance(
    ctx: click.Context,
    duration: str | None,
    to: str | None,
    fail_on_error: bool,
    as_json: bool,
    relaxed: bool,
    timeout: float | None,
    isolation: str | None,
    memory_limit: int | None,
    app: str | None,
) -> None:
    """Fast-forward the clock by DURATION (90s, 1h30m, 2d, 1w, PT1H) or --to ISO.

    Every occurrence due up to the target (inclusive) fires, in order.
    """
    if duration is None and to is None:
        raise click.UsageError("advance needs a DURATION (e.g. 1h30m) or --to ISO", ctx)
    if duration is not None and to is not None:
        raise click.UsageError("give a DURATION or --to ISO, not both", ctx)
    if duration is not None:
        _duration(duration)
    else:
        from fwsched.durations import parse_instant

        try:
            parse_instant(str(to))
        except ValueError as exc:
            raise UsageError(f"--to: {exc}") from None
    session, sandbox = _firing_session(ctx, app, relaxed, timeout, isolation, memory_limit)
    args = {"duration": duration, "to": to, "relaxed": relaxed}
    if as_json:
        document = session.call("advance", args)
    else:
        from fwsched.render import AdvanceProgress

        with AdvanceProgress(enabled=sys.stderr.isatty()) as bar:
            document = session.call("advance", args, bar.update)
    _note_ignored_when_live(session, sandbox)

    invocations = document["invocations"]
    if as_json:
        _print_json(document)
    else:
        from fwsched.render import advance_summary, invocation_text, make_console

        console = make_console()
        for invocation in invocations:
            console.print(invocation_text(invocation))
        console.print(advance_summary(document))
    failed = [i for i in invocations if i["outcome"] != "ok"]
    if fail_on_error and failed:
        _error_line(f"{len(failed)} of {len(invocations)} invocations did not end ok")
        ctx.exit(1)


@cli.command()
@click.argument("name", required=False)
@click.option("--data", metavar="JSON", help="Use this data for this run instead.")
@click.option(
    "--payload",
    metavar="JSON|@FILE",
    help="Fire onScheduledEvent with this ad-hoc data object (no schedule needed).",
)
@click.option("--fail-on-error", is_flag=True, help="Exit 1 if the invocation did not end `ok`.")
@json_option
@relaxed_option
@sandbox_options
@app_option
@debug_option
@click.pass_context
def trigger(
    ctx: click.Context,
    name: str | None,
    data: str | None,
    payload: str | None,
    fail_on_error: bool,
    as_json: bool,
    relaxed: bool,
    timeout: float | None,
    isolation: str | None,
    memory_limit: int | None,
    app: str | None,
) -> None:
    """Run schedule NAME's handler now, or fire an ad-hoc event with --payload.

    The schedule is left as it is: a one-time schedule stays, a recurring one
    keeps its next time.
    """
    if (name is None) == (payload is None):
        raise click.UsageError("trigger needs a schedule NAME or --payload JSON (one)", ctx)
    if payload is not None and data is not None:
        raise click.UsageError("--data goes with NAME; --payload is the whole data", ctx)
    if payload is not None:
        op, args = "trigger_payload", {"data": _json_arg("--payload", payload)}
    else:
        op, args = "trigger", {"name": name}
        if data is not None:
            args["data"] = _json_arg("--data", data)
    args["relaxed"] = relaxed
    session, sandbox = _firing_session(ctx, app, relaxed, timeout, isolation, memory_limit)
    try:
        document = session.call(op, args)
    except ScheduleError as err:
        if err.status == 404:
            raise FwschedError(f"Schedule does not exist: {name!r} (fwsched schedules)") from None
        raise
    _note_ignored_when_live(session, sandbox)
    if as_json:
        _print_json(document)
    else:
        from fwsched.render import invocation_text, make_console

        console = make_console()
        console.print(invocation_text(document))
        lines = (document.get("log") or "").splitlines()
        if len([line for line in lines if line.strip()]) > 1:  # else the summary shows it all
            for line in lines:
                console.print("  " + line, markup=False)
        if document.get("traceback"):
            console.print(document["traceback"].rstrip(), markup=False, style="red")
    if fail_on_error and document["outcome"] != "ok":
        ctx.exit(1)


# -- schedules ----------------------------------------------------------------------------


@cli.command()
@json_option
@app_option
@debug_option
@click.pass_context
def schedules(ctx: click.Context, as_json: bool, app: str | None) -> None:
    """List the schedules, soonest first (alias: ls)."""
    document = _session(_app_from(ctx, app)).call("schedules")
    if as_json:
        _print_json(document["schedules"])
        return
    from fwsched.render import make_console, schedules_table

    console = make_console()
    if document["schedules"]:
        console.print(schedules_table(document["schedules"]))
    else:
        console.print("No schedules.")
    console.print(f"simulated now {document['now']}", style="dim")
    if document["relaxed"]:
        console.print("relaxed: platform limits are off until `fwsched reset`", style="yellow")


@cli.group()
@click.option("--app", "app", metavar="PATH", help="The app directory (also after the command).")
@click.pass_context
def schedule(ctx: click.Context, app: str | None) -> None:
    """The schedule API from the shell: create, fetch, update, delete."""
    ctx.ensure_object(dict)
    ctx.obj["app"] = app


def _schedule_call(
    ctx: click.Context,
    op: str,
    request: dict[str, Any],
    *,
    app: str | None,
    as_json: bool,
    relaxed: bool = False,
) -> None:
    """Call the API; print its answer (also a failure's) as JSON on stdout (SPEC §2, §5)."""
    session = _session(_app_from(ctx, app), strict=not relaxed)
    try:
        document = session.call("schedule", {"op": op, "request": request, "relaxed": relaxed})
    except ScheduleError as err:
        _print_api(err.to_dict(), as_json)
        raise
    _print_api(document, as_json)


def _print_api(document: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(document)
    else:
        click.echo(json.dumps(document, ensure_ascii=False))


def _write_options(f: F) -> F:
    options = [
        click.option("--name", help="The schedule's name (1-30 characters)."),
        click.option("--data", metavar="JSON", help="The data object passed to the handler."),
        click.option(
            "--at",
            metavar="ISO|+DURATION",
            help="schedule_at: an ISO date-time, or +DURATION from the simulated now.",
        ),
        click.option(
            "--every",
            metavar="DURATION",
            help="Recurring: 15m, 2h, 1d (or --time-unit and --frequency).",
        ),
        click.option("--time-unit", metavar="UNIT", help="repeat.time_unit: minutes, hours, days."),
        click.option("--frequency", metavar="N", help="repeat.frequency."),
        click.option("--timezone", metavar="TZ", help="repeat.timezone (IANA) [default: UTC]."),
        relaxed_option,
        json_option,
        app_option,
        debug_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _write_request(
    name: str | None,
    data: str | None,
    at: str | None,
    every: str | None,
    time_unit: str | None,
    frequency: str | None,
    timezone: str | None,
) -> dict[str, Any]:
    """The API request; a missing option is a missing key, which the API answers (rule 1)."""
    request: dict[str, Any] = {}
    if name is not None:
        request["name"] = name
    if data is not None:
        request["data"] = _json_arg("--data", data)
    if at is not None:
        if at.strip().startswith("+"):
            _duration(at.strip()[1:])
        request["schedule_at"] = at  # +DURATION is resolved by the clock's owner
    repeat: dict[str, Any] = {}
    if every is not None:
        if time_unit is not None or frequency is not None:
            raise UsageError("--every replaces --time-unit and --frequency: give one or the other")
        repeat = _every_to_repeat(every)
    if time_unit is not None:
        repeat["time_unit"] = time_unit
    if frequency is not None:
        repeat["frequency"] = _frequency(frequency)
    if timezone is not None:
        repeat["timezone"] = timezone
    if repeat:
        request["repeat"] = repeat
    return request


def _write_command(op: str, summary: str) -> None:
    """``schedule create`` and ``schedule update``: the same options, a different API call."""

    @_write_options
    @click.pass_context
    def command(
        ctx: click.Context,
        name: str | None,
        data: str | None,
        at: str | None,
        every: str | None,
        time_unit: str | None,
        frequency: str | None,
        timezone: str | None,
        relaxed: bool,
        as_json: bool,
        app: str | None,
    ) -> None:
        request = _write_request(name, data, at, every, time_unit, frequency, timezone)
        _schedule_call(ctx, op, request, app=app, as_json=as_json, relaxed=relaxed)

    command.__doc__ = summary
    schedule.command(op)(command)


_write_command("create", "Create a schedule (prints the API's answer).")
_write_command("update", "Replace a schedule (prints the API's answer).")


def _name_command(op: str, summary: str) -> None:
    """``schedule fetch`` and ``schedule delete``: a name in, the API's answer out."""

    @click.option("--name", help="The schedule's name.")
    @json_option
    @app_option
    @debug_option
    @click.pass_context
    def command(ctx: click.Context, name: str | None, as_json: bool, app: str | None) -> None:
        request = {} if name is None else {"name": name}
        _schedule_call(ctx, op, request, app=app, as_json=as_json)

    command.__doc__ = summary
    schedule.command(op)(command)


_name_command("fetch", "Print a schedule as stored: name, data, schedule_at, repeat.")
_name_command("delete", "Delete a schedule (prints the API's answer).")


# -- history ------------------------------------------------------------------------------


@cli.command()
@click.option("--name", help="Only this schedule's invocations.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only invocations with this outcome.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="The newest N only.")
@json_option
@app_option
@debug_option
@click.pass_context
def history(
    ctx: click.Context,
    name: str | None,
    outcome: str | None,
    limit: int | None,
    as_json: bool,
    app: str | None,
) -> None:
    """Past invocations, newest last."""
    args = {"name": name, "outcome": outcome, "limit": limit}
    invocations = _session(_app_from(ctx, app)).call("history", args)["invocations"]
    if as_json:
        _print_json(invocations)
        return
    from fwsched.render import history_table, make_console

    console = make_console()
    console.print(history_table(invocations) if invocations else "No invocations.")


@cli.command()
@click.argument("invocation_id", metavar="ID", type=int)
@json_option
@app_option
@debug_option
@click.pass_context
def show(ctx: click.Context, invocation_id: int, as_json: bool, app: str | None) -> None:
    """One invocation in full: payload, outcome, error, output, return value, timings."""
    document = _session(_app_from(ctx, app)).call("show", {"id": invocation_id})
    if as_json:
        _print_json(document)
        return
    from fwsched.render import make_console, print_invocation

    print_invocation(make_console(), document)


@cli.command()
@json_option
@app_option
@debug_option
@click.pass_context
def status(ctx: click.Context, as_json: bool, app: str | None) -> None:
    """The app, its live runner, the simulated now, counts and the state file."""
    document = _session(_app_from(ctx, app)).call("status")
    if as_json:
        from fwsched.operations import STATUS_KEYS

        _print_json({key: document[key] for key in STATUS_KEYS})
        return
    from fwsched.render import make_console, print_status

    print_status(make_console(), document)


# -- the app ------------------------------------------------------------------------------


@cli.command()
@click.argument("app_arg", metavar="[APP]", required=False)
@json_option
@app_option
@debug_option
@click.pass_context
def validate(ctx: click.Context, app_arg: str | None, as_json: bool, app: str | None) -> None:
    """Check manifest.json, fwsched.toml, config/ and server.py (imported in the sandbox)."""
    from fwsched.app import Problem, load_app

    root = _app_from(ctx, app, app_arg)
    problems: list[Problem] = []
    exports: list[str] = []
    load_traceback = None
    try:
        spec = load_app(root)
    except FwschedError as exc:
        problems.append(Problem("error", str(exc)))
    else:
        from fwsched.engine import DEFAULT_TIMEOUT
        from fwsched.sandbox import Sandbox

        problems += spec.problems
        with Sandbox(
            spec.root, spec.scheduled_handler, timeout=spec.timeout or DEFAULT_TIMEOUT
        ) as sandbox:
            report = sandbox.inspect()
        if report.ok:
            exports = list(report.exports)
            problems += spec.check_exports(exports)
        else:
            problems.append(Problem("error", f"server.py: {report.error}"))
            load_traceback = report.traceback
    errors = [p.message for p in problems if p.severity == "error"]
    warnings = [p.message for p in problems if p.severity == "warning"]
    if as_json:
        _print_json(
            {
                "app": str(root),
                "ok": not errors,
                "errors": errors,
                "warnings": warnings,
                "exports": exports,
                "traceback": load_traceback,
            }
        )
    else:
        from fwsched.render import make_console

        console = make_console()
        for message in errors:
            console.print(f"[red]error:[/red] {_escape(message)}")
        if load_traceback:
            console.print(load_traceback.rstrip(), markup=False, style="dim")
        for message in warnings:
            console.print(f"[yellow]warning:[/yellow] {_escape(message)}")
        if errors:
            noun = "error" if len(errors) == 1 else "errors"
            console.print(f"{root}: {len(errors)} {noun}", markup=False)
        else:
            console.print(f"{root}: OK (exports: {', '.join(exports) or 'none'})", markup=False)
    if errors:
        ctx.exit(1)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@cli.command()
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@debug_option
def init(directory: Path) -> None:
    """Create a working example app in DIR (a new or empty directory)."""
    from fwsched.scaffold import create_app

    written = create_app(directory)
    click.echo(f"Created an example app in {directory}:")
    for path in written:
        click.echo(f"  {path.relative_to(directory)}")
    click.echo(f"Next: cd {directory} && fwsched validate && fwsched run")


@cli.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@app_option
@debug_option
@click.pass_context
def reset(ctx: click.Context, yes: bool, app: str | None) -> None:
    """Delete the app's state: clock, schedules and history."""
    from fwsched import control
    from fwsched.session import state_path

    root = _app_from(ctx, app)
    state = state_path(root)
    pid = control.runner_pid(root)
    if pid is not None:
        raise FwschedError(
            f"fwsched run is live for {root} (pid {pid}): stop it first (Ctrl-C), then reset"
        )
    files = [state.with_name(state.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    if not any(path.exists() for path in files):
        click.echo(f"No state to delete for {root}.")
        return
    if not yes and not _confirm(f"Delete the state of {root}? [y/N]"):
        click.echo("Kept the state.", err=True)
        return
    from fwsched.engine import StateLock

    lock = StateLock(state)  # refuses while another command is using the state
    try:
        for path in files:
            path.unlink(missing_ok=True)
        lock.path.unlink(missing_ok=True)
    finally:
        lock.release()
    click.echo(f"Deleted the state of {root}.")


def _confirm(question: str) -> bool:
    """``y`` or ``yes`` confirms; anything else, end of input included, keeps it."""
    try:
        answer = click.prompt(question, default="", show_default=False, prompt_suffix=" ", err=True)
    except click.Abort:
        return False
    return str(answer).strip().lower() in ("y", "yes")
