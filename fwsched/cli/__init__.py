"""The ``fwsched`` console script.

``main`` answers ``--version`` before anything else is imported, since people and
scripts call it to probe the installation. ``quick`` answers the read-only JSON
commands that scripts poll (``status``, ``schedules``, ``history`` with ``--json``)
without click when it can, and leaves every other case to it. Everything else goes to
the click commands in ``fwsched.cli.root``, which import what each command needs when
it runs. This package's own import stays that light: ``fwsched.cli.cli`` is the click
group, loaded on first use.
"""

from __future__ import annotations

import sys

from fwsched import __version__


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        sys.stdout.write(f"fwsched {__version__}\n")
        return
    from fwsched.cli import quick

    if quick.answer(args):  # status, schedules, history --json: without click
        return
    from fwsched.cli.root import cli

    cli.main(args=args, prog_name="fwsched")


def __getattr__(name: str) -> object:
    if name == "cli":
        from fwsched.cli.root import cli

        return cli
    raise AttributeError(f"module 'fwsched.cli' has no attribute {name!r}")


if __name__ == "__main__":
    main()
