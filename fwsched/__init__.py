"""fwsched: a local simulator for Freshworks scheduled events, for apps written in Python."""

from __future__ import annotations

from fwsched.sdk import ScheduleError

__version__ = "0.1.0"

__all__ = ["ScheduleError", "__version__"]
