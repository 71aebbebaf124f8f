"""The ``fwsched`` group: its commands, aliases, and every error as one line and an exit code.

Errors: ours (``FwschedError``, ``ScheduleError``) and click's usage errors become
one line on stderr and the exit code of SPEC §5 (1 failed, 2 usage); ``--debug``
adds the traceback. With ``--json`` a failure still prints one JSON document on
stdout (``{"error": ...}``, or an API failure's ``{"status", "message"}``), so a
pipe into ``jq`` never reads nothing. After any command on a relaxed state, one
line on stderr says that the platform limits are off. The commands live in one
module per group (``time``, ``schedules``, ``platform``, ``state``, ``app``);
each parses, calls a session or the library, and renders.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, ClassVar

import click

from fwsched import __version__
from fwsched.cli import app, db, platform, schedules, state, time
from fwsched.cli.common import (
    Debug,
    Output,
    debug_option,
    error_line,
    one_line,
    print_json,
    remember_app,
)
from fwsched.errors import FwschedError
from fwsched.sdk import ScheduleError

EXIT_INTERRUPTED = 130


class _NoSuchError(click.ClickException):
    """Stands for an exception class that this click version does not have."""


# `fwsched` alone prints the help (click >= 8.2 raises this for it; older ones exit at once).
_NO_ARGS_IS_HELP: type[click.ClickException] = getattr(
    click.exceptions, "NoArgsIsHelpError", _NoSuchError
)


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
        Debug.on = bool(os.environ.get("FWSCHED_DEBUG"))  # --debug sets it again, per run
        _escape_unencodable()
        Output.start(sys.argv[1:] if args is None else list(args))
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except BaseException as exc:  # every error becomes one line and an exit code
            code = _report(exc)
        else:
            code = result if isinstance(result, int) else 0
        _relaxed_line()
        if not standalone_mode:
            return code
        sys.exit(code)


RELAXED_LINE = "relaxed: platform limits are off until `fwsched reset`"


def _relaxed_line() -> None:
    """Relaxed mode is remembered in the state: say so after every command on it (stderr, so
    the JSON the schedule commands print stays clean), unless its output said so already."""
    if Output.json or Output.mode_shown:
        return
    if any(session.state and session.state.get("relaxed") for session in Output.sessions):
        click.echo(RELAXED_LINE, err=True)


def _fail(message: str, document: dict[str, Any] | None = None) -> None:
    """The error line on stderr, and with --json a JSON document on stdout (once)."""
    error_line(message + (f"; {Output.hint}" if Output.hint else ""))
    if Output.json and not Output.printed_json:
        print_json(document if document is not None else {"error": message})


def _escape_unencodable() -> None:
    """Text UTF-8 cannot carry (a lone surrogate, valid in JSON and in JavaScript) is
    printed as its ``\\udXXX`` escape, which in a JSON document is the same string."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def _report(exc: BaseException) -> int:
    """Print ``exc`` for the user; the exit code."""
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, click.Abort):
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        _fail("interrupted" if interrupted else "aborted")
        return EXIT_INTERRUPTED if interrupted else 1
    if isinstance(exc, KeyboardInterrupt):
        _fail("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, _NO_ARGS_IS_HELP):
        exc.show()  # the help text, as click prints it
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        message = one_line(exc.format_message())
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message += f" (see '{exc.ctx.command_path} --help')"
        _fail(message)
        return exc.exit_code
    if Debug.on:
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, ScheduleError):
        _fail(f"{exc.message} (status {exc.status})", exc.to_dict())
        return 1
    if isinstance(exc, FwschedError):
        _fail(one_line(str(exc)))
        return exc.exit_code
    detail = one_line(str(exc))
    hint = "" if Debug.on else " (run with --debug for the traceback)"
    _fail(f"internal error: {type(exc).__name__}: {detail}{hint}")
    return 1


# -- the group ----------------------------------------------------------------------------


@click.group(
    "fwsched",
    cls=FwschedGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="fwsched", message="%(prog)s %(version)s")
@click.option(
    "--app",
    "app",
    metavar="PATH",
    help="The app directory, for the command that follows (which also takes --app).",
)
@debug_option
@click.pass_context
def cli(ctx: click.Context, app: str | None) -> None:
    """Local simulator for Freshworks scheduled events, for apps written in Python.

    Start `fwsched run` in an app directory, then drive it from another shell
    with the other commands (or use them without a runner: they act on the
    state in <app>/.fwsched/ directly).
    """
    remember_app(ctx, app)


for _group in (time, schedules, platform, db, state, app):
    for _command in _group.COMMANDS:
        cli.add_command(_command)
