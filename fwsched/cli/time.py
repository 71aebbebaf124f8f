"""Commands that move simulated time or fire handlers: ``run``, ``advance``, ``trigger``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from fwsched.cli.common import (
    Finite,
    Output,
    app_from,
    app_option,
    check_duration,
    debug_option,
    echo_invocation,
    error_line,
    firing_session,
    json_arg,
    json_option,
    note,
    note_ignored_when_live,
    print_json,
    relaxed_option,
    sandbox_options,
    simulator_options,
)
from fwsched.errors import FwschedError, UsageError
from fwsched.sdk import ScheduleError

MAX_SPEED = 1e9  # simulated seconds per real second: some 31 years in one second

if TYPE_CHECKING:
    from fwsched.session import Session

# -- run ----------------------------------------------------------------------------------


@click.command()
@click.argument("app_arg", metavar="[APP]", required=False)
@app_option
@click.option(
    "--speed",
    type=Finite(min=0, min_open=True, max=MAX_SPEED),
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
@click.option(
    "--no-install",
    is_flag=True,
    help="Do not install an app that was never installed (onAppInstall) before running.",
)
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
    no_install: bool,
) -> None:
    """Run the app live: a real-time clock, a dashboard, reload on change, the control socket."""
    root = app_from(ctx, app, app_arg)
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
            note("--start ignored: the state already has a simulated time (fwsched reset)")

    from fwsched.dashboard import Dashboard, Display, PlainLog
    from fwsched.engine import Simulator
    from fwsched.live import LiveRunner
    from fwsched.render import make_console

    options = simulator_options(timeout=timeout, isolation=isolation, memory_limit=memory_limit)
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
            install=not no_install,
        )
        runner.run()


# -- moving time --------------------------------------------------------------------------


class _AdvanceCommand(click.Command):
    """``advance -1h`` must reach the DURATION check (and its message), so click may not read
    it as the options -1 and -h; ``-h`` alone is still the help, as everywhere."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, ["--help" if arg == "-h" else arg for arg in args])


@click.command(
    cls=_AdvanceCommand,
    context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]},
)
@click.argument("words", metavar="[DURATION]", nargs=-1)
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
    words: tuple[str, ...],
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
    # `advance 1h 30m` is one DURATION; `advance 1 hour` gets a suggestion, not "extra argument".
    duration = " ".join(words) if words else None
    if duration is None and to is None:
        raise click.UsageError("advance needs a DURATION (e.g. 1h30m) or --to ISO", ctx)
    if duration is not None and to is not None:
        raise click.UsageError("give a DURATION or --to ISO, not both", ctx)
    if duration is not None:
        check_duration(duration)
    else:
        from fwsched.durations import parse_instant

        try:
            parse_instant(str(to))
        except ValueError as exc:
            raise UsageError(f"--to: {exc}") from None
    session, sandbox = firing_session(ctx, app, relaxed, timeout, isolation, memory_limit)
    args = {"duration": duration, "to": to, "relaxed": relaxed}
    from fwsched.render import AdvanceProgress

    fired = 0

    def progress(fields: Mapping[str, Any]) -> None:
        nonlocal fired
        fired = int(fields.get("fired") or 0)
        bar.update(fields)

    with AdvanceProgress(enabled=sys.stderr.isatty() and not as_json) as bar:
        try:
            document = session.call("advance", args, progress)
        except KeyboardInterrupt:
            Output.hint = _where_advance_stopped(session, fired)
            raise
    note_ignored_when_live(session, sandbox)

    invocations = document["invocations"]
    if as_json:
        print_json(document)
    else:
        from fwsched.render import advance_summary, invocation_text, make_console, time_width

        console = make_console()
        times = time_width(invocations)
        for invocation in invocations:
            console.print(invocation_text(invocation, times=times))
        console.print(advance_summary(document))
    failed = [i for i in invocations if i["outcome"] != "ok"]
    if fail_on_error and failed:
        error_line(f"{len(failed)} of {len(invocations)} invocations did not end ok")
        ctx.exit(1)


def _where_advance_stopped(session: Session, fired: int) -> str:
    """After Ctrl-C: where the clock stands and what ran (each ran invocation is recorded)."""
    noun = "invocation" if fired == 1 else "invocations"
    if session.state is not None:  # this process ran the advance: its clock is saved there
        return (
            f"the clock stopped at {session.state['now']} after {fired} {noun} "
            "(fwsched history shows them)"
        )
    if session.live:  # a live runner's advance: it stops after its running handler
        return (
            f"the live runner stops the advance after its running invocation; {fired} {noun} "
            "ran before (fwsched status, fwsched history)"
        )
    return ""  # interrupted before it began


@click.command()
@click.argument("name", required=False)
@click.option("--data", metavar="JSON", help="Use this data for this run instead.")
@click.option(
    "--event",
    metavar="NAME",
    help="Fire the handler of this event of the manifest instead (onTicketCreate, ...).",
)
@click.option(
    "--payload",
    metavar="JSON|@FILE",
    help="The event's data object, or a whole payload (such as an FDK test_data file); "
    "alone, it fires onScheduledEvent with no schedule.",
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
    event: str | None,
    payload: str | None,
    fail_on_error: bool,
    as_json: bool,
    relaxed: bool,
    timeout: float | None,
    isolation: str | None,
    memory_limit: int | None,
    app: str | None,
) -> None:
    """Run schedule NAME's handler now, fire an event with --event, or an ad-hoc
    onScheduledEvent with --payload.

    The schedule is left as it is: a one-time schedule stays, a recurring one
    keeps its next time. An event's payload starts from the app's
    test_data/<event>.json when there is one.
    """
    if name is None and event is None and payload is None:
        raise click.UsageError("trigger needs a schedule NAME, --event NAME or --payload JSON", ctx)
    if name is not None and event is not None:
        raise click.UsageError("give a schedule NAME or --event NAME, not both", ctx)
    if name is not None and payload is not None:
        raise click.UsageError(
            "--payload goes without NAME; --data replaces a schedule's data", ctx
        )
    if data is not None and name is None:
        raise click.UsageError("--data goes with NAME; --payload is the whole data", ctx)
    args: dict[str, Any]
    if event is not None:
        op, args = "fire", {"event": event}
        if payload is not None:
            args["payload"] = json_arg("--payload", payload)
    elif payload is not None:
        op, args = "trigger_payload", {"data": json_arg("--payload", payload)}
    else:
        op, args = "trigger", {"name": name}
        if data is not None:
            args["data"] = json_arg("--data", data)
    args["relaxed"] = relaxed
    session, sandbox = firing_session(ctx, app, relaxed, timeout, isolation, memory_limit)
    try:
        document = session.call(op, args)
    except ScheduleError as err:
        if err.status == 404 and op == "trigger":
            raise FwschedError(f"Schedule does not exist: {name!r} (fwsched schedules)") from None
        raise
    note_ignored_when_live(session, sandbox)
    if as_json:
        print_json(document)
    else:
        echo_invocation(document)
    if fail_on_error and document["outcome"] != "ok":
        ctx.exit(1)


COMMANDS = [run, advance, trigger]
