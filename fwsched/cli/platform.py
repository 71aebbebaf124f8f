"""Commands for the platform around the handler (SPEC §8): ``install``, ``uninstall``, ``invoke``.

``trigger --event`` (in ``time``) fires any other event. Each command prints the
invocation it caused and what changed; a blocked install, a failed function or
an error rendered by one exits 1 with its reason on one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from fwsched.cli.common import (
    app_from,
    app_option,
    debug_option,
    echo_invocation,
    firing_session,
    json_arg,
    json_option,
    network_options,
    note,
    note_ignored_when_live,
    print_json,
    sandbox_options,
    session_for,
    simulator_options,
)
from fwsched.errors import FwschedError


def _schedules(count: int) -> str:
    return f"{count} schedule{'' if count == 1 else 's'}"


@click.command()
@click.option(
    "--iparams",
    metavar="JSON|@FILE",
    help="The installation's iparams (an object) [default: fwsched.toml [iparams]].",
)
@json_option
@sandbox_options
@app_option
@debug_option
@click.pass_context
def install(
    ctx: click.Context,
    iparams: str | None,
    as_json: bool,
    timeout: float | None,
    isolation: str | None,
    memory_limit: int | None,
    app: str | None,
) -> None:
    """Install the app: fire onAppInstall and mark it installed.

    The handler must call render_data(); render_data({"message": ...}) blocks the install.
    """
    args: dict[str, Any] = {}
    if iparams is not None:
        args["iparams"] = json_arg("--iparams", iparams)
    session, sandbox = firing_session(ctx, app, False, timeout, isolation, memory_limit)
    document = session.call("install", args)
    note_ignored_when_live(session, sandbox)
    if as_json:
        print_json(document)
    elif document["invocation"] is not None:
        echo_invocation(document["invocation"])
    if not document["installed"]:
        raise FwschedError(str(document["error"]))
    if not as_json:
        created = document["created"]
        names = f" ({', '.join(created)})" if created else ""
        click.echo(f"installed; {_schedules(len(created))} created{names}")


@click.command()
@click.option(
    "--keep-data", is_flag=True, help="Keep the app's schedules (the platform deletes them)."
)
@json_option
@sandbox_options
@app_option
@debug_option
@click.pass_context
def uninstall(
    ctx: click.Context,
    keep_data: bool,
    as_json: bool,
    timeout: float | None,
    isolation: str | None,
    memory_limit: int | None,
    app: str | None,
) -> None:
    """Uninstall the app: fire onAppUninstall, then delete its schedules.

    As on the platform, the uninstall happens whatever the handler does.
    """
    session, sandbox = firing_session(ctx, app, False, timeout, isolation, memory_limit)
    document = session.call("uninstall", {"keep_data": keep_data})
    note_ignored_when_live(session, sandbox)
    if as_json:
        print_json(document)
        return
    invocation = document["invocation"]
    if invocation is not None:
        echo_invocation(invocation)
        reason = _failure(invocation)
        if reason is not None:
            note(f"onAppUninstall did not succeed ({reason}); the app is uninstalled all the same")
    if keep_data:
        click.echo("uninstalled; kept the app's data (--keep-data)")
    else:
        removed = document["removed"]
        keys = removed["db_keys"]
        click.echo(
            f"uninstalled; removed {_schedules(removed['schedules'])}, "
            f"{keys} db key{'' if keys == 1 else 's'}"
        )


@click.command()
@click.argument("function", metavar="NAME")
@click.option("--params", metavar="JSON|@FILE", help="The function's arguments (an object).")
@json_option
@network_options
@app_option
@debug_option
@click.pass_context
def invoke(
    ctx: click.Context, function: str, params: str | None, as_json: bool, app: str | None
) -> None:
    """Call server function NAME, as a button in the product does; print what it rendered.

    Its timeout is the manifest's `functions.NAME.timeout`, else 5 s.
    """
    args: dict[str, Any] = {"function": function}
    if params is not None:
        args["params"] = json_arg("--params", params)
    options = simulator_options()  # --network and --record
    session = session_for(app_from(ctx, app), **options)
    document = session.call("invoke", args)
    note_ignored_when_live(session, options)
    reason = _failure(document)
    if as_json:
        print_json(document)
    else:
        echo_invocation(document)
        if reason is None:
            response = (document.get("render") or {}).get("response")
            click.echo(json.dumps(response, ensure_ascii=False))
    if reason is not None:
        raise FwschedError(reason)


def _failure(invocation: Mapping[str, Any]) -> str | None:
    from fwsched.platform.events import failure

    return failure(invocation["outcome"], invocation.get("error"), invocation.get("render"))


COMMANDS = [install, uninstall, invoke]
