"""Where a command runs: through the app's live ``fwsched run``, or on its state directly.

One process owns an app's state at a time (``statelock.StateLock``). When a
runner is live the command goes to it over the control socket; otherwise this
process opens the state, runs the command with ``operations.execute`` and closes
it. Both paths answer the same JSON document.

The lock can be busy without a runner to talk to: another one-shot command is
running, or a runner is starting and not yet listening. Then the command waits,
a bounded time, for either to change.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwsched import control
from fwsched.durations import format_instant
from fwsched.errors import StateBusyError
from fwsched.operations import Document, Progress, StateView

STATE_DIR = ".fwsched"
STATE_FILE = "state.db"
LOCK_WAIT = 10.0  # seconds to wait for a busy state to become free or reachable
LOCK_POLL = 0.05


def state_path(app_root: Path) -> Path:
    return app_root / STATE_DIR / STATE_FILE


@dataclass
class Session:
    """Runs commands for one app; ``simulator`` holds the keyword arguments of a direct open."""

    app_root: Path
    simulator: dict[str, Any] = field(default_factory=dict)
    live: bool = False  # set once a command went (or failed) through a live runner
    # Told what the live runner is busy with while a command waits its turn (the CLI
    # says so on stderr); called with None once the command has its answer.
    waiting: Callable[[str | None], None] | None = None
    # The state as the last command saw it: {"relaxed": bool, "now": ISO} (None before).
    state: dict[str, Any] | None = None

    @property
    def socket(self) -> Path:
        return control.socket_path(self.app_root)

    @property
    def state_file(self) -> Path:
        return state_path(self.app_root)

    def call(
        self, name: str, args: Mapping[str, Any] | None = None, progress: Progress | None = None
    ) -> Document:
        args = dict(args or {})
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                document: Document = control.request(
                    self.socket,
                    name,
                    args,
                    on_progress=progress,
                    on_wait=self.waiting,
                    on_state=self._seen,
                )
            except control.NotLive:
                pass
            except BaseException:
                self.live = True  # the runner had it (a failure, or Ctrl-C while it ran)
                raise
            else:
                self.live = True
                return document
            finally:
                if self.waiting is not None:
                    self.waiting(None)
            try:
                return self._direct(name, args, progress)
            except StateBusyError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(LOCK_POLL)

    def _direct(self, name: str, args: Mapping[str, Any], progress: Progress | None) -> Document:
        from fwsched.engine import Simulator
        from fwsched.operations import execute

        sim = Simulator(self.app_root, state=self.state_file, **self.simulator)
        with contextlib.closing(sim):
            try:
                return execute(sim, name, args, progress)
            finally:
                self._seen(state_of(sim))

    def _seen(self, state: dict[str, Any]) -> None:
        self.state = state


def state_of(sim: StateView) -> dict[str, Any]:
    """What a command's answer says of the state besides its document: the mode and clock."""
    return {"relaxed": not sim.strict, "now": format_instant(sim.now)}
