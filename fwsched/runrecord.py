"""What an invocation's record holds: its start, and the finished run as it is stored and
shown, with every secure iparam masked (SPEC §5).

The ``Simulator`` writes these records (``store.begin_invocation`` before the handler
runs, ``finish_invocation`` after); this module only says what goes in them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from fwsched.app import SCHEDULED_EVENT, AppSpec, redact
from fwsched.outcome import Outcome
from fwsched.platform import events
from fwsched.records import Invocation, Source
from fwsched.sandbox.result import RunResult


@dataclass(frozen=True)
class Started:
    """An invocation whose start is recorded: what running and finishing it need."""

    id: int
    name: str | None
    source: Source
    fire_at: datetime
    timestamp_ms: int
    payload: dict[str, Any]  # real iparams: for the handler only
    shown: dict[str, Any]  # secure iparams masked: what is stored and returned
    started_at: datetime
    event: str = SCHEDULED_EVENT
    handler: str | None = None  # the export to call; None: the scheduled-event handler
    spec: AppSpec | None = None  # the app with the iparams this run got (for redaction)


def run_secrets(spec: AppSpec, app: AppSpec) -> tuple[str, ...]:
    """What a run's record is masked with, its payload as its outcome: the secrets of
    the iparams it got (``spec``'s: the installation's, say) and fwsched.toml's (``app``)."""
    if spec is app:
        return spec.secret_values
    return tuple(sorted({*spec.secret_values, *app.secret_values}, key=len, reverse=True))


def shown_payload(payload: dict[str, Any], spec: AppSpec, app: AppSpec) -> dict[str, Any]:
    """The payload as it is stored and shown: secure iparams masked, and their values
    wherever else they appear."""
    masked = {**payload, "iparams": spec.mask_iparams(payload["iparams"])}
    return cast(dict[str, Any], redact(masked, run_secrets(spec, app)))


def finished(
    started: Started, result: RunResult, app: AppSpec, requests: list[dict[str, Any]]
) -> Invocation:
    """The record of a finished run, secure iparams masked in everything it shows."""
    result = events.settle(result, required=events.must_render(started.source, started.event))
    secrets = run_secrets(started.spec or app, app)

    def mask(value: Any) -> Any:
        return redact(value, secrets)

    return Invocation(
        id=started.id,
        schedule=started.name,
        fire_at=started.fire_at,
        timestamp=started.timestamp_ms,
        outcome=Outcome(result.outcome),
        duration_ms=result.duration_ms,
        error=mask(result.error),
        log=mask(result.log),
        return_value=mask(result.return_value),
        payload=started.shown,
        traceback=mask(result.traceback),
        started_at=started.started_at,
        source=started.source,
        event=started.event,
        render=mask(events.render_of(result.render)),
        requests=requests,
    )
