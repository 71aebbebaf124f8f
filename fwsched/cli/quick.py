"""The read-only JSON commands without click: ``status --json``, ``schedules --json`` and
``history --json`` answered at the cost of a few imports (json, socket or sqlite3).

Scripts and editors poll these, so their start-up is what users wait on. ``answer``
takes the command line as ``fwsched.cli.main`` got it and answers only when it has
exactly one of these shapes (``--app PATH`` before or after the command, ``history``
with ``--limit N``, ``--name X``, ``--outcome O``) and everything is as usual:

- a live runner listening on the app's socket: the same request the full command
  sends, its document printed the same way;
- else the state file, read-only, only when the full path would only read it too:
  the lock free (it is taken, as the Simulator takes it, while reading), the files
  private and regular, no ``-wal`` left by a killed owner, the current schema, the
  quick check passing, no invocation left ``running``, and the app known to load
  without errors (that verdict alone is cached in ``.fwsched/app-check.json``, keyed by
  the identity of every file the app's settings come from, and redone when one
  changes; the secure iparams to mask are read from fwsched.toml, config/iparams.json
  and the state each time, so no secret is written there).

Anything else (an error, a fresh or older state, a busy lock, an odd value read back)
returns False and the click command runs as always, so every message, exit code and
side effect stays the one place's. The documents are the ones ``operations`` builds
(``tests/test_quick.py`` compares the two paths), masked with the same ``redact``.

The command line and the runner are handled here; ``quickstate`` reads the state file.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (as fwsched/__init__)
if TYPE_CHECKING:
    from typing import Any

COMMANDS = {"status": "status", "schedules": "schedules", "ls": "schedules", "history": "history"}
OUTCOMES = ("ok", "error", "timeout", "crashed", "load-error", "interrupted")
STATUS_KEYS = (
    "app",
    "live",
    "now",
    "schedules",
    "invocations",
    "state_file",
    "relaxed",
    "installed",
)
_SUN_PATH_MAX = 100  # control._SUN_PATH_MAX: longer socket paths take the full path


class Defer(Exception):
    """Not a case for the quick path: the click command answers."""


def answer(args: list[str]) -> bool:
    """Print the answer to ``args`` and return True, or return False having printed nothing."""
    try:
        parsed = _parse(args)
    except Defer:
        return False
    try:
        document = _document(*parsed)
    except KeyboardInterrupt as exc:
        from fwsched.cli.common import Output
        from fwsched.cli.root import _report

        Output.start(args)
        sys.exit(_report(exc))
    except Exception:  # Defer, or anything unexpected: the full command says what it is
        return False
    import json

    for stream in (sys.stdout, sys.stderr):  # as the click path does (root)
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:  # noqa: SIM105 - contextlib is one more import
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return True


# -- the command line ---------------------------------------------------------------------


def _parse(args: list[str]) -> tuple[str, str, dict[str, Any]]:
    """(the app directory, the operation, its arguments); ``Defer`` for any other shape."""
    outer: str | None = None
    position = 0
    while position < len(args) and args[position].startswith("--app"):
        outer, position = _option_value(args, position, "--app")
    if position >= len(args) or args[position] not in COMMANDS:
        raise Defer
    operation = COMMANDS[args[position]]
    values: dict[str, str] = {}
    as_json = False
    position += 1
    allowed = ("--app", "--limit", "--name", "--outcome") if operation == "history" else ("--app",)
    while position < len(args):
        arg = args[position]
        if arg == "--json" and not as_json:
            as_json = True
            position += 1
            continue
        name = arg.split("=", 1)[0]
        if name not in allowed or name in values:
            raise Defer
        values[name], position = _option_value(args, position, name)
    if not as_json:
        raise Defer
    arguments: dict[str, Any] = {}
    if operation == "history":
        limit = values.get("--limit")
        if limit is not None and not (limit.isascii() and limit.isdigit() and int(limit) >= 1):
            raise Defer
        outcome = values.get("--outcome")
        if outcome is not None and outcome not in OUTCOMES:
            raise Defer
        arguments = {
            "name": values.get("--name"),
            "outcome": outcome,
            "limit": None if limit is None else int(limit),
        }
    return _app(values.get("--app"), outer), operation, arguments


def _option_value(args: list[str], position: int, name: str) -> tuple[str, int]:
    arg = args[position]
    if arg.startswith(name + "="):
        return arg[len(name) + 1 :], position + 1
    if arg != name or position + 1 >= len(args) or args[position + 1].startswith("-"):
        raise Defer
    return args[position + 1], position + 2


def _app(inner: str | None, outer: str | None) -> str:
    """``common.app_from``: the command's --app, else the group's, else FWSCHED_APP, else the
    current directory or the nearest parent with a manifest.json (a live app: Defer)."""
    given = inner or outer or os.environ.get("FWSCHED_APP") or None
    if (inner is not None and not inner) or (outer is not None and not outer):
        raise Defer
    if given is not None:
        path = os.path.realpath(os.path.expanduser(given))
        if not os.path.isfile(os.path.join(path, "manifest.json")):
            raise Defer  # the full command says what is wrong with it
        return path
    directory = os.path.realpath(os.getcwd())
    while True:
        if os.path.isfile(os.path.join(directory, "manifest.json")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            raise Defer
        directory = parent


# -- the answer -----------------------------------------------------------------------------


def _document(root: str, operation: str, arguments: dict[str, Any]) -> Any:
    """What the click command prints, from a live runner or the state file."""
    folder = os.path.join(root, ".fwsched")
    document = _from_runner(os.path.join(folder, "control.sock"), operation, arguments)
    if document is None:
        from fwsched.cli.quickstate import from_state

        document = from_state(root, folder, operation, arguments)
    if operation == "status":
        return {key: document[key] for key in STATUS_KEYS}
    if operation == "schedules":
        return document["schedules"]
    return document["invocations"]


def _from_runner(path: str, operation: str, arguments: dict[str, Any]) -> Any:
    """The runner's answer (``control.request``); None when no runner listens there."""
    for candidate in (os.path.dirname(path), path):
        if os.path.islink(candidate):
            raise Defer
    if not os.path.lexists(path):
        return None  # nobody listens (control._connect: NotLive); socket is not imported
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise Defer
    import json
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)  # control.CONNECT_TIMEOUT
        try:
            sock.connect(path)
        except OSError:
            return None  # control.NotLive: the state directly
        line = json.dumps({"op": operation, "args": arguments}, ensure_ascii=False).encode()
        sock.sendall(line + b"\n")
        sock.settimeout(30.0)  # control.IDLE_TIMEOUT
        with sock.makefile("rb") as reader:
            reply = json.loads(reader.readline())
    finally:
        sock.close()
    if not isinstance(reply, dict) or "result" not in reply:
        raise Defer  # a heartbeat (the runner is busy) or an error: the full command
    return reply["result"]
