"""Errors meant for the user: the CLI turns each into one line on stderr and an exit code."""

from __future__ import annotations

from collections.abc import Iterable


class FwschedError(Exception):
    """Base of every error fwsched reports to a user; ``str(err)`` is the one-line message."""

    exit_code = 1


class AppError(FwschedError):
    """The app directory cannot be used: missing or invalid manifest.json, fwsched.toml, iparams."""


class StateError(FwschedError):
    """The state file is corrupt, from an unknown schema, or owned by another process."""


class StateBusyError(StateError):
    """Another process owns the state right now (it may be a live runner still starting)."""


class UsageError(FwschedError):
    """The command was called wrongly (bad DURATION, no app found, ...)."""

    exit_code = 2


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options`` to a misspelt ``name``, or ``""``."""
    import difflib  # only on an error's path

    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
