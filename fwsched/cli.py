"""The ``fwsched`` console script.

``main`` answers ``--version`` before anything else is imported, since people and
scripts call it to probe the installation; everything else goes to the click
commands in ``fwsched.commands``, which import what each command needs when it runs.
"""

from __future__ import annotations

import sys

from fwsched import __version__


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        sys.stdout.write(f"fwsched {__version__}\n")
        return
    from fwsched.commands import cli

    cli.main(args=args, prog_name="fwsched")


if __name__ == "__main__":
    main()
