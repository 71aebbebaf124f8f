"""Commands that read or delete the state: ``history``, ``show``, ``status``, ``reset``."""

from __future__ import annotations

import os

import click

from fwsched.cli.common import (
    Output,
    app_from,
    app_option,
    debug_option,
    json_option,
    print_json,
    session_for,
)
from fwsched.errors import FwschedError

OUTCOMES = ("ok", "error", "timeout", "crashed", "load-error", "interrupted")

# -- history ------------------------------------------------------------------------------


HISTORY_DEFAULT = 50  # rows a plain `fwsched history` shows: a long history takes seconds


@click.command()
@click.option("--name", help="Only this schedule's (or event's, or function's) invocations.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only invocations with this outcome.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help=f"The newest N only [default: {HISTORY_DEFAULT}; with --json: all].",
)
@click.option("--all", "show_all", is_flag=True, help="Every invocation.")
@json_option
@app_option
@debug_option
@click.pass_context
def history(
    ctx: click.Context,
    name: str | None,
    outcome: str | None,
    limit: int | None,
    show_all: bool,
    as_json: bool,
    app: str | None,
) -> None:
    """Past invocations, newest last (the newest 50 unless --limit N or --all)."""
    if show_all and limit is not None:
        raise click.UsageError("give --limit N or --all, not both", ctx)
    if limit is None and not show_all and not as_json:
        limit = HISTORY_DEFAULT
    args = {"name": name, "outcome": outcome, "limit": limit}
    document = session_for(app_from(ctx, app)).call("history", args)
    invocations = document["invocations"]
    if as_json:
        print_json(invocations)
        return
    from fwsched.render import history_table, make_console, print_grid

    console = make_console()
    if not invocations:
        console.print("No invocations.")
        return
    print_grid(console, history_table(invocations))
    older = int(document.get("older") or 0)
    if older:
        noun = "invocation" if older == 1 else "invocations"
        console.print(
            f"… {older:,} older {noun} not shown (--limit N for more, --all for every one)",
            style="dim",
        )


@click.command()
@click.argument("invocation_id", metavar="ID", type=int)
@json_option
@app_option
@debug_option
@click.pass_context
def show(ctx: click.Context, invocation_id: int, as_json: bool, app: str | None) -> None:
    """One invocation in full: payload, outcome, error, output, return value, timings."""
    document = session_for(app_from(ctx, app)).call("show", {"id": invocation_id})
    if as_json:
        print_json(document)
        return
    from fwsched.render import make_console, print_invocation

    print_invocation(make_console(), document)


@click.command()
@json_option
@app_option
@debug_option
@click.pass_context
def status(ctx: click.Context, as_json: bool, app: str | None) -> None:
    """The app, its live runner, the simulated now, counts and the state file."""
    document = session_for(app_from(ctx, app)).call("status")
    if as_json:
        from fwsched.operations import STATUS_KEYS

        print_json({key: document[key] for key in STATUS_KEYS})
        return
    from fwsched.render import make_console, print_status

    print_status(make_console(), document)
    Output.mode_shown = True  # its mode line


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@app_option
@debug_option
@click.pass_context
def reset(ctx: click.Context, yes: bool, app: str | None) -> None:
    """Delete the app's state: clock, schedules and history."""
    from fwsched import control
    from fwsched.session import state_path

    root = app_from(ctx, app)
    state = state_path(root)
    pid = control.runner_pid(root)
    if pid is not None:
        raise FwschedError(
            f"fwsched run is live for {root} (pid {pid}): stop it first (Ctrl-C), then reset"
        )
    suffixes = ("", "-wal", "-shm", "-journal", ".lock")
    files = [state.with_name(state.name + suffix) for suffix in suffixes]
    if not state.parent.is_symlink() and not any(os.path.lexists(path) for path in files):
        click.echo(f"No state to delete for {root}.")
        return
    if not yes and not _confirm(f"Delete the state of {root}? [y/N]"):
        click.echo("Kept the state.", err=True)
        return
    # Links are removed, never followed (a cloned repository can ship one).
    if state.parent.is_symlink():
        state.parent.unlink()
        click.echo(f"Deleted the state of {root} (a link, not what it pointed to).")
        return
    for path in files:
        if path.is_symlink():
            path.unlink()
    if state.is_dir():
        raise FwschedError(f"{state} is a directory, not a state file: remove it yourself")
    from fwsched.statelock import StateLock

    lock = StateLock(state)  # refuses while another command is using the state
    try:
        for path in files:
            path.unlink(missing_ok=True)
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


COMMANDS = [history, show, status, reset]
