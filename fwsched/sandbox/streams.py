"""The sandbox worker's output: fds 1 and 2 are the output pipe the parent reads.

Prints, logging, C code and subprocesses all reach the parent through them; these
helpers keep what Python buffers in order and on time: stdout line-buffered like
stderr, logging's records that the app routes nowhere on stderr, and everything
flushed before a result is sent or the zygote forks.

Imported by the worker (worker.py): its imports are paid on every worker start, so
they stay light (sys; faulthandler, io and logging only when used).
"""

from __future__ import annotations

import sys


def setup_output() -> None:
    """Make stdout line-buffered like stderr, so the two interleave in the order written."""
    import faulthandler
    import io

    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    faulthandler.enable()  # a segfault leaves a Python traceback in the log


def capture_logging() -> bool:
    """Once the app uses ``logging``: records it has not routed anywhere reach the log.

    INFO and up, as ``LEVEL:logger:message`` on stderr. An app that configures its
    own handlers (basicConfig, ...) keeps full control. Done only when the app has
    imported logging: importing it here would make every fresh fork dearer.
    """
    if "logging" not in sys.modules:
        return False
    import logging

    root = logging.getLogger()
    if not root.handlers:
        fallback = logging.StreamHandler(sys.stderr)
        fallback.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
        logging.lastResort = fallback
        if root.level == logging.WARNING:  # the default, not a choice of the app
            root.setLevel(logging.INFO)
    return True


def flush() -> None:
    streams = [sys.stdout, sys.stderr]
    if sys.stdout is not sys.__stdout__ or sys.stderr is not sys.__stderr__:
        streams += [sys.__stdout__, sys.__stderr__]  # a handler replaced them
    for stream in streams:
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # or closed them
            pass
