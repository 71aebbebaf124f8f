"""The app's data storage from the shell (SPEC §9): ``fwsched db get|set|update|delete|ls``.

Each command is one call of the same ``db`` service a handler's ``db.*`` reaches, so
the answers and messages are the platform's. The answer is printed as JSON on stdout,
a failure's ``{"status", "message"}`` too (then exit 1), as for ``fwsched schedule``.
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
    error_line,
    json_arg,
    json_option,
    print_json,
    remember_app,
    session_for,
)


def _call(
    ctx: click.Context,
    app: str | None,
    method: str,
    args: list[Any],
    kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """One db call through the session; a refusal prints its answer and exits 1."""
    session = session_for(app_from(ctx, app))
    document = session.call("db", {"method": method, "args": args, "kwargs": dict(kwargs or {})})
    if not document["ok"]:
        answer = document["answer"]
        _print(answer, bool(ctx.params.get("as_json")))
        error_line(f"{answer['message']} (status {answer['status']})")
        ctx.exit(1)
    return document["answer"]


def _print(answer: Any, as_json: bool) -> None:
    if as_json:
        print_json(answer)
    else:
        click.echo(json.dumps(answer, ensure_ascii=False))


@click.group()
@click.option("--app", "app", metavar="PATH", help="The app directory (also after the command).")
@click.pass_context
def db(ctx: click.Context, app: str | None) -> None:
    """The app's data storage ($db): get, set, update, delete, ls."""
    remember_app(ctx, app)


@db.command("get")
@click.argument("key")
@json_option
@app_option
@debug_option
@click.pass_context
def get(ctx: click.Context, key: str, as_json: bool, app: str | None) -> None:
    """Print the value stored under KEY."""
    _print(_call(ctx, app, "get", [key]), as_json)


@db.command("set")
@click.argument("key")
@click.argument("value", metavar="VALUE")
@click.option("--ttl", type=float, metavar="S", help="Seconds of simulated time to keep it.")
@click.option(
    "--set-if", "set_if", metavar="exist|not_exist", help="Only if the key exists / does not."
)
@json_option
@app_option
@debug_option
@click.pass_context
def set_(
    ctx: click.Context,
    key: str,
    value: str,
    ttl: float | None,
    set_if: str | None,
    as_json: bool,
    app: str | None,
) -> None:
    """Store VALUE (a JSON object, or @FILE) under KEY, replacing what is there."""
    options = {name: v for name, v in (("ttl", ttl), ("setIf", set_if)) if v is not None}
    args: list[Any] = [key, json_arg("VALUE", value)]
    if options:
        args.append(options)
    _print(_call(ctx, app, "set", args), as_json)


@db.command("update")
@click.argument("key")
@click.argument("action", metavar="increment|append|set|remove")
@click.argument("attributes", metavar="ATTRIBUTES")
@json_option
@app_option
@debug_option
@click.pass_context
def update(
    ctx: click.Context, key: str, action: str, attributes: str, as_json: bool, app: str | None
) -> None:
    """Change part of KEY's value: ATTRIBUTES is JSON (or @FILE), e.g. '{"runs": 1}'."""
    _print(_call(ctx, app, "update", [key, action, json_arg("ATTRIBUTES", attributes)]), as_json)


@db.command("delete")
@click.argument("key")
@json_option
@app_option
@debug_option
@click.pass_context
def delete(ctx: click.Context, key: str, as_json: bool, app: str | None) -> None:
    """Delete KEY (an absent key is fine)."""
    _print(_call(ctx, app, "delete", [key]), as_json)


@db.command("ls")
@json_option
@app_option
@debug_option
@click.pass_context
def ls(ctx: click.Context, as_json: bool, app: str | None) -> None:
    """List the live keys with their size and expiry (a simulator extra)."""
    entries = _call(ctx, app, "ls", [])
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo("No keys.")
        return
    width = max(len(entry["key"]) for entry in entries)
    for entry in entries:
        expires = f"expires {entry['expires_at']}" if entry["expires_at"] else ""
        click.echo(f"{entry['key']:<{width}}  {entry['bytes']:>6} B  {expires}".rstrip())


COMMANDS = [db]
