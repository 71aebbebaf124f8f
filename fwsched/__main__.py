"""``python -m fwsched``: the same as the ``fwsched`` command."""

from __future__ import annotations

from fwsched.cli import main

if __name__ == "__main__":
    main()
