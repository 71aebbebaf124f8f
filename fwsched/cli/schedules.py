"""The schedules and the schedule API from the shell: ``schedules`` and ``schedule ...``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from fwsched.cli.common import (
    F,
    Output,
    app_from,
    app_option,
    check_duration,
    debug_option,
    json_arg,
    json_option,
    print_json,
    relaxed_option,
    remember_app,
    session_for,
)
from fwsched.errors import UsageError
from fwsched.sdk import ScheduleError

if TYPE_CHECKING:
    from fwsched.session import Session


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


# -- schedules ----------------------------------------------------------------------------


@click.command()
@json_option
@app_option
@debug_option
@click.pass_context
def schedules(ctx: click.Context, as_json: bool, app: str | None) -> None:
    """List the schedules, soonest first (alias: ls)."""
    document = session_for(app_from(ctx, app)).call("schedules")
    if as_json:
        print_json(document["schedules"])
        return
    from fwsched.render import make_console, print_grid, schedules_table

    console = make_console()
    if document["schedules"]:
        print_grid(console, schedules_table(document["schedules"]))
    else:
        console.print("No schedules.")
    console.print(f"simulated now {document['now']}", style="dim")
    if document["relaxed"]:
        console.print("relaxed: platform limits are off until `fwsched reset`", style="yellow")
    Output.mode_shown = True


@click.group()
@click.option("--app", "app", metavar="PATH", help="The app directory (also after the command).")
@click.pass_context
def schedule(ctx: click.Context, app: str | None) -> None:
    """The schedule API from the shell: create, fetch, update, delete."""
    remember_app(ctx, app)


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
    session = session_for(app_from(ctx, app), strict=not relaxed)
    try:
        document = session.call("schedule", {"op": op, "request": request, "relaxed": relaxed})
    except ScheduleError as err:
        _print_api(err.to_dict(), as_json)
        Output.hint = _hint(err, session, request)
        raise
    _print_api(document, as_json)


def _hint(err: ScheduleError, session: Session, request: Mapping[str, Any]) -> str:
    """What the API's exact message leaves the shell user to find out (on stderr only)."""
    from fwsched import rules

    now = (session.state or {}).get("now")
    if err.message in (rules.TOO_SOON, rules.TOO_LATE) and now:
        return f"checked against the simulated now, {now}"
    if err.message == rules.NOT_ISO and "schedule_at" in request:
        return "--at takes an ISO 8601 time (2026-01-05T10:00:00Z) or +DURATION (+30m)"
    if err.message.startswith("The maximum number of recurring schedules"):
        existing = [
            s["name"]
            for s in session.call("schedules")["schedules"]
            if s["kind"] == "recurring" and s["name"] != request.get("name")
        ]
        if existing:
            return f"the recurring schedule is {', '.join(map(repr, existing))} (fwsched schedules)"
    return ""


def _print_api(document: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(document)
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
        request["data"] = json_arg("--data", data)
    if at is not None:
        if at.strip().startswith("+"):
            check_duration(at.strip()[1:], "--at")
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


COMMANDS = [schedules, schedule]
