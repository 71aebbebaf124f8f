"""Commands about the app directory itself: ``validate`` and ``init``."""

from __future__ import annotations

from pathlib import Path

import click

from fwsched.cli.common import app_from, app_option, debug_option, json_option, print_json
from fwsched.errors import FwschedError

# -- the app ------------------------------------------------------------------------------


@click.command()
@click.argument("app_arg", metavar="[APP]", required=False)
@json_option
@app_option
@debug_option
@click.pass_context
def validate(ctx: click.Context, app_arg: str | None, as_json: bool, app: str | None) -> None:
    """Check manifest.json, fwsched.toml, config/ and server.py (imported in the sandbox)."""
    from fwsched.app import Problem, load_app

    root = app_from(ctx, app, app_arg)
    problems: list[Problem] = []
    exports: list[str] = []
    load_traceback = None
    spec = None
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
    if spec is not None:  # what server.py said at import may hold a secret: shown masked
        errors, warnings, load_traceback = spec.redact([errors, warnings, load_traceback])
    if as_json:
        print_json(
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


@click.command()
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


COMMANDS = [validate, init]
