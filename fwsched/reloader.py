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

The ignored folders at the top of the app are not watched at all: the root is watched
alone and each other folder in it as a tree (one added or removed later too), so the
state's own writes (``.fwsched/state.db-wal``, several per invocation) do not wake the
watcher's threads, which cost a runner's advance a quarter of its rate otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

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
        self._handler = _Handler(self)
        self._trees: dict[str, ObservedWatch] = {}  # the folders at the top, watched whole

    def start(self) -> None:
        """Begin watching now (iterating starts it too): a change made from here on counts.

        The live runner calls it before it answers on its socket, so an edit made as soon
        as ``fwsched run`` answers is not missed.
        """
        with self._lock:
            if self._observer is not None:
                return
            observer = Observer()
            observer.daemon = True
            observer.schedule(self._handler, str(self.root), recursive=False)
            self._observer = observer
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    self._watch_tree(entry.path)
        observer.start()

    def _watch_tree(self, path: str) -> None:
        """Watch a folder at the top of the app, and everything in it (not an ignored one)."""
        if os.path.basename(path) in IGNORED_DIRS:
            return
        with self._lock:
            observer = self._observer
            if observer is None or path in self._trees:
                return
            try:
                self._trees[path] = observer.schedule(self._handler, path, recursive=True)
            except OSError:  # gone already
                return

    def _unwatch_tree(self, path: str) -> None:
        with self._lock:
            watch = self._trees.pop(path, None)
            if watch is not None and self._observer is not None:
                with contextlib.suppress(KeyError):
                    self._observer.unschedule(watch)

    def folder_changed(self, event_type: str, path: str, dest: str) -> None:
        """A folder at the top of the app was created, deleted or renamed: watch what is
        there now; the files a new one brings count as changed (they came before its watch)."""
        if os.path.dirname(path) == str(self.root) and event_type in ("deleted", "moved"):
            self._unwatch_tree(path)
        new = dest if event_type == "moved" else path if event_type == "created" else ""
        if not new or os.path.dirname(new) != str(self.root):
            return
        self._watch_tree(new)
        for folder, subfolders, files in os.walk(new):
            subfolders[:] = [name for name in subfolders if name not in IGNORED_DIRS]
            for name in files:
                self.notify(os.path.join(folder, name))

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
        if event.event_type not in CHANGES:
            return
        if event.is_directory:
            dest = getattr(event, "dest_path", "")
            self._reloader.folder_changed(
                event.event_type, os.fsdecode(event.src_path), os.fsdecode(dest) if dest else ""
            )
            return
        self._reloader.notify(os.fsdecode(event.src_path))
        dest = getattr(event, "dest_path", "")
        if dest:
            self._reloader.notify(os.fsdecode(dest))
