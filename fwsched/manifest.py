"""manifest.json's events and server functions, in its three shapes, for `load_app`.

Every finding is a `Problem` (this module builds on fwsched.app's); `load_app`
imports it when it reads an app, and `AppSpec` holds what it returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fwsched.app import SCHEDULED_EVENT, Problem

__all__ = [
    "FUNCTION_TIMEOUT",
    "KNOWN_EVENTS",
    "FunctionSpec",
    "manifest_events",
    "manifest_functions",
]

# The FDK's rule for an event name: "on" followed by a CamelCase word.
EVENT_NAME = re.compile(r"^on[A-Z][A-Za-z0-9]*$")

# Events of the Freshworks products (not exhaustive: an unknown but well-formed
# name is only a warning, so an event missing here costs a line of output).
KNOWN_EVENTS = frozenset(
    {
        # platform events
        "onScheduledEvent",
        "onAppInstall",
        "onAppUninstall",
        "onExternalEvent",
        # Freshdesk / Freshservice
        "onTicketCreate",
        "onTicketUpdate",
        "onConversationCreate",
        "onConversationUpdate",
        "onContactCreate",
        "onContactUpdate",
        "onCompanyCreate",
        "onCompanyUpdate",
        "onAgentActivityCreate",
        "onTimeEntryCreate",
        "onTimeEntryUpdate",
        "onChangeCreate",
        "onChangeUpdate",
        "onProblemCreate",
        "onProblemUpdate",
        "onReleaseCreate",
        "onReleaseUpdate",
        "onAssetCreate",
        "onAssetUpdate",
        # Freshsales / CRM
        "onDealCreate",
        "onDealUpdate",
        "onLeadCreate",
        "onLeadUpdate",
        "onAccountCreate",
        "onAccountUpdate",
        "onSalesActivityCreate",
        "onSalesActivityUpdate",
        "onAppointmentCreate",
        "onAppointmentUpdate",
        "onTaskCreate",
        "onTaskUpdate",
        "onNoteCreate",
        # Freshchat / Freshcaller
        "onUserCreate",
        "onUserUpdate",
        "onMessageCreate",
        "onCallCreate",
        "onCallUpdate",
    }
)

# Server functions (SPEC §8): a timeout of their own, 5 s unless the manifest says.
FUNCTION_TIMEOUT = 5.0
FUNCTION_TIMEOUT_RANGE = (1, 20)


@dataclass(frozen=True)
class FunctionSpec:
    """A server function declared in the manifest's ``functions`` block."""

    name: str
    timeout: float = FUNCTION_TIMEOUT


def _event_tables(
    manifest: dict[str, Any], key: str = "events"
) -> tuple[list[tuple[str, Any]], list[Problem]]:
    """Every `events` (or `functions`) object of the manifest with where it was found,
    in manifest order.

    Three shapes exist: top-level `events` (platform 1.x), `product.<name>.events`
    (2.x) and `modules.<name>.events` (3.x); an app may mix them.
    """
    tables: list[tuple[str, Any]] = []
    problems: list[Problem] = []
    if key in manifest:
        tables.append((key, manifest[key]))
    for section in ("product", "modules"):
        if section not in manifest:
            continue
        parts = manifest[section]
        if not isinstance(parts, dict):
            problems.append(Problem("error", f"manifest.json: '{section}' must be an object"))
            continue
        for part_name, part in parts.items():
            if not isinstance(part, dict):
                problems.append(
                    Problem("error", f"manifest.json: '{section}.{part_name}' must be an object")
                )
            elif key in part:
                tables.append((f"{section}.{part_name}.{key}", part[key]))
    return tables, problems


def manifest_events(manifest: dict[str, Any]) -> tuple[dict[str, str], list[Problem]]:
    tables, problems = _event_tables(manifest)
    events: dict[str, str] = {}
    conflicts: set[str] = set()
    for where, table in tables:
        if not isinstance(table, dict):
            problems.append(Problem("error", f"manifest.json: '{where}' must be an object"))
            continue
        for name, entry in table.items():
            if not EVENT_NAME.match(name):
                # Not an event name at all: left out of `events`, it can never fire.
                problems.append(Problem("error", f"Invalid event: '{name}'"))
                continue
            handler = entry.get("handler") if isinstance(entry, dict) else None
            if not isinstance(handler, str) or not handler:
                problems.append(Problem("error", f"Event '{name}' has no handler in manifest.json"))
                continue
            if name in events:
                # The platform allows one callback per event; the same one twice is harmless.
                if events[name] != handler and name not in conflicts:
                    conflicts.add(name)
                    problems.append(
                        Problem("error", f"Event '{name}' is already mapped to a callback")
                    )
                continue
            if name not in KNOWN_EVENTS:
                problems.append(
                    Problem(
                        "warning",
                        f"Unknown event: '{name}' (it is loaded but never fired by fwsched)",
                    )
                )
            events[name] = handler
    if SCHEDULED_EVENT not in events:
        problems.append(
            Problem("warning", "No onScheduledEvent handler is registered in manifest.json")
        )
    return events, problems


def manifest_functions(
    manifest: dict[str, Any],
) -> tuple[dict[str, FunctionSpec] | None, list[Problem]]:
    """The `functions` blocks (SPEC §8), in the three shapes; None if there is none."""
    tables, _ = _event_tables(manifest, "functions")  # a malformed section: said for events
    if not tables:
        return None, []
    functions: dict[str, FunctionSpec] = {}
    problems: list[Problem] = []
    low, high = FUNCTION_TIMEOUT_RANGE
    for where, table in tables:
        if not isinstance(table, dict):
            problems.append(Problem("error", f"manifest.json: '{where}' must be an object"))
            continue
        for name, entry in table.items():
            if not isinstance(entry, dict):
                problems.append(
                    Problem("error", f"manifest.json: '{where}.{name}' must be an object")
                )
                continue
            timeout = entry.get("timeout", FUNCTION_TIMEOUT)
            if (
                isinstance(timeout, bool)
                or not isinstance(timeout, int | float)
                or not low <= timeout <= high
            ):
                problems.append(
                    Problem(
                        "error",
                        f"Function '{name}': timeout must be {low} to {high} seconds, "
                        f"got {timeout!r}",
                    )
                )
                continue
            if name in functions:
                if functions[name].timeout != timeout:
                    problems.append(
                        Problem("error", f"Function '{name}' is declared twice in manifest.json")
                    )
                continue
            functions[name] = FunctionSpec(name, float(timeout))
    return functions, problems
