"""Errors meant for the user: the CLI turns each into one line on stderr and an exit code."""

from __future__ import annotations


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
