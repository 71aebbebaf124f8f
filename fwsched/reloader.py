"""Watching an app directory for changes: an iterator of debounced batches, after uvicorn's.

    reloader = Reloader(app_root)
    for changed in reloader:      # a set of paths, once a burst of writes is over
        restart()
    reloader.stop()               # from any thread (a signal handler, a test)

watchdog reports every write; an editor's save is several (truncate, write,
rename, a backup file), so a batch is yielded once no relevant event has come
for ``debounce`` seconds, or ``max_delay`` after the first one. Only files that
change what the app does count (``is_relevant``): Python files anywhere,
manifest.json, fwsched.toml and config/. fwsched's own ``.fwsched/`` directory,
caches, VCS metadata and editor temp files never do.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

# watchdog logs a harmless race when it stops ("queue_events() called when the thread
# is inactive"); without a handler of its own, logging's last resort prints it.
logging.getLogger("watchdog").addHandler(logging.NullHandler())

DEBOUNCE = 0.05
MAX_DELAY = 0.5
WAIT_BOUND = 1.0  # seconds between checks of the stop event while nothing happens
STOP_BOUND = 2.0

IGNORED_DIRS = frozenset(
    {
        ".fwsched",
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".venv",
        "venv",
        "node_modules",
        ".idea",
        ".vscode",
    }
)
TEMP_SUFFIXES = (".swp", ".swo", ".swx", ".swpx", ".tmp", ".bak", ".orig", ".pyc", "~")
CONFIG_FILES = frozenset({"manifest.json", "fwsched.toml"})
# Event types that mean content changed (watchdog also reports opens and reads).
CHANGES = frozenset({"created", "modified", "deleted", "moved", "closed"})


def is_relevant(path: str | os.PathLike[str], root: Path) -> bool:
    """Does a change to ``path`` change what the app at ``root`` does?"""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return False
    if not parts or any(part in IGNORED_DIRS for part in parts[:-1]):
        return False
    name = parts[-1]
    if name.startswith((".#", "#")) or name.endswith(TEMP_SUFFIXES) or name == "4913":
        return False  # emacs locks and autosaves, vim swap files and its write probe
    if name.endswith(".py"):
        return True
    if len(parts) == 1 and name in CONFIG_FILES:
        return True
    return parts[0] == "config" and len(parts) > 1


class Reloader:
    """Iterate over it to receive batches of changed paths until ``stop()``."""

    def __init__(
        self, root: Path, *, debounce: float = DEBOUNCE, max_delay: float = MAX_DELAY
    ) -> None:
        self.root = root.resolve()
        self.debounce = debounce
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._pending: set[Path] = set()
        self._first = 0.0
        self._last = 0.0
        self._event = threading.Event()
        self._stop = threading.Event()
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        """Begin watching now (iterating starts it too): a change made from here on counts.

        The live runner calls it before it answers on its socket, so an edit made as soon
        as ``fwsched run`` answers is not missed.
        """
        if self._observer is None:
            observer = Observer()
            observer.schedule(_Handler(self), str(self.root), recursive=True)
            observer.daemon = True
            observer.start()
            self._observer = observer

    def stop(self) -> None:
        self._stop.set()
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def notify(self, path: str | os.PathLike[str]) -> None:
        """Record a change (watchdog's thread calls this; tests may too)."""
        if not is_relevant(path, self.root):
            return
        now = time.monotonic()
        with self._lock:
            if not self._pending:
                self._first = now
            self._pending.add(Path(path))
            self._last = now
        self._event.set()

    def __iter__(self) -> Iterator[set[Path]]:
        self.start()
        try:
            while not self._stop.is_set():
                batch = self._next_batch()
                if batch:
                    yield batch
        finally:
            self.close()

    def close(self) -> None:
        """Stop watching (after ``stop()``; iterating to the end does it too)."""
        with self._lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(STOP_BOUND)

    def _next_batch(self) -> set[Path]:
        """Wait for a change, then for the burst to end; empty if stopped meanwhile."""
        if not self._event.wait(WAIT_BOUND):
            return set()
        while not self._stop.is_set():
            with self._lock:
                if not self._pending:
                    self._event.clear()
                    return set()
                now = time.monotonic()
                quiet_at = self._last + self.debounce
                latest = self._first + self.max_delay
                if now >= quiet_at or now >= latest:
                    batch, self._pending = self._pending, set()
                    self._event.clear()
                    return batch
                remaining = min(quiet_at, latest) - now
            self._stop.wait(remaining)
        return set()


class _Handler(FileSystemEventHandler):
    """The watchdog event handler: forwards content changes to the reloader."""

    def __init__(self, reloader: Reloader) -> None:
        super().__init__()
        self._reloader = reloader

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGES or event.is_directory:
            return
        self._reloader.notify(os.fsdecode(event.src_path))
        dest = getattr(event, "dest_path", "")
        if dest:
            self._reloader.notify(os.fsdecode(dest))
