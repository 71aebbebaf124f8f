"""A read-only view of a live runner's state, usable from any thread while the driver works.

The live runner's driver thread owns the ``Simulator`` and is busy for as long
as a handler runs (up to its timeout) or a command fires (an advance through a
month). Read-only commands (``status``, ``schedules``, ``history``, ``show``,
``db get``/``db ls``) and the dashboard need not wait for it: they read the
state file through a second, read-only SQLite connection (the state is in WAL
mode, so a reader sees the last commit and never blocks the writer) and the
runner's clock, which is thread-safe. ``StateReader`` has the members of
``operations.StateView``, so ``operations.execute`` answers those commands from
it exactly as from the Simulator.

What it sees is what is committed: the invocation a handler is running for is
recorded as running (``running()``), and its outcome appears once written.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fwsched.app import AppSpec
from fwsched.clock import SimClock
from fwsched.platform.db import DbService
from fwsched.store import StateQueries, Store


class StateReader(StateQueries):
    """Reads one state file beside its owner; every ``read()`` is one consistent snapshot."""

    def __init__(self, store: Store, clock: SimClock, spec: AppSpec) -> None:
        self.store = store
        self.clock = clock
        self.spec = spec  # its root names the app; nothing else of it is read here
        self.db = DbService(store.kv(), clock.now)
        self._lock = threading.Lock()  # one connection, many threads: one read at a time

    @classmethod
    def open(cls, path: Path, clock: SimClock, spec: AppSpec) -> StateReader:
        return cls(Store.open_reader(path), clock, spec)

    @contextlib.contextmanager
    def read(self) -> Iterator[StateReader]:
        """Hold the reader for one command: its queries see one commit, not a mix."""
        with self._lock, self.store.read_transaction():
            yield self

    def close(self) -> None:
        with self._lock:
            self.store.close()

    # -- operations.StateView -----------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.clock.now()

    # -- for the runner's display -------------------------------------------------------

    def running(self) -> dict[str, Any] | None:
        """The invocation a handler is running for right now, if any (see ``Store.running``)."""
        return self.store.running()
