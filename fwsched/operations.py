"""The commands that work on an app's state, as one dispatch table over a ``Simulator``.

``execute(sim, name, args)`` runs one command and returns a JSON document. The
CLI calls it on a Simulator of its own when no ``fwsched run`` is live, and the
live runner calls it on *its* Simulator for requests that arrive on the control
socket; the CLI renders only these documents, so the output is the same either
way. ``args`` and the documents are plain JSON values, since they cross the socket.

The read-only commands (``is_read_only``) need only a ``StateView``: the live
runner answers them from a ``reader.StateReader`` while its Simulator is busy
running a handler, through this same table.

Errors are raised, never returned: ``ScheduleError`` for the schedule API,
``FwschedError`` subclasses for the rest (a bad DURATION is a ``UsageError``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from fwsched.durations import format_instant, parse_duration, parse_instant, parse_when
from fwsched.errors import FwschedError, UsageError
from fwsched.sdk import OPERATIONS, PlatformError

if TYPE_CHECKING:
    from fwsched.app import AppSpec
    from fwsched.engine import Simulator
    from fwsched.platform.db import DbEntry
    from fwsched.records import Invocation, Schedule
    from fwsched.store import Store

Document = dict[str, Any]
Progress = Callable[[Document], None]
"""Receives ``{"fired", "at", "fraction"}`` after each invocation of a long command."""

Operation = Callable[["Simulator", Mapping[str, Any], Progress], Document]

STATUS_KEYS = (
    "app",
    "live",
    "now",
    "schedules",
    "invocations",
    "state_file",
    "relaxed",
    "installed",
)


class DbReads(Protocol):
    def call(
        self, method: str, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]: ...

    def entries(self) -> list[DbEntry]: ...


class StateView(Protocol):
    """What the read-only commands use: a ``Simulator`` has it, and so does a ``StateReader``."""

    spec: AppSpec
    store: Store

    @property
    def db(self) -> DbReads: ...

    @property
    def now(self) -> datetime: ...

    @property
    def strict(self) -> bool: ...

    @property
    def installed(self) -> bool: ...

    def counts(self) -> tuple[int, int]: ...

    def schedules(self) -> list[Schedule]: ...

    def history(
        self,
        *,
        name: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[Invocation]: ...

    def invocation(self, invocation_id: int) -> Invocation | None: ...

    def next_fire_time(self) -> datetime | None: ...


# Commands that change nothing (their functions take a StateView), and the db's such calls.
READ_ONLY = frozenset({"schedules", "history", "show", "status"})
DB_READS = frozenset({"get", "ls"})


def is_read_only(name: str, args: Mapping[str, Any]) -> bool:
    """Whether ``name`` only reads the state (a live runner answers it while a handler runs)."""
    if name == "db":
        return args.get("method") in DB_READS
    return name in READ_ONLY


def _ignore(_: Document) -> None:
    pass


def execute(
    sim: Simulator | StateView,
    name: str,
    args: Mapping[str, Any],
    progress: Progress | None = None,
) -> Document:
    """Run the command ``name`` with ``args`` on ``sim``; the JSON document it answers.

    A read-only command runs on any ``StateView``; the others need the Simulator.
    The document and any error's message leave with the app's secrets masked
    (``app.redact``): schedule data, names and everything a handler left are shown
    through here, by the command line and by the live runner alike.
    """
    try:
        document = _execute(sim, name, args, progress)
    except (FwschedError, PlatformError) as exc:
        masked = _masked(exc, _secrets(sim))
        if masked is exc:
            raise
        raise masked from None
    from fwsched.app import redact

    return cast(Document, redact(document, _secrets(sim)))


def _secrets(sim: Simulator | StateView) -> tuple[str, ...]:
    from fwsched.app import app_secrets

    return app_secrets(sim.spec, sim.store.install_iparams())


def _masked(exc: Exception, secrets: tuple[str, ...]) -> Exception:
    """``exc``, or a copy of it whose message has the secrets masked."""
    from fwsched.app import redact

    text = str(exc)
    shown = redact(text, secrets)
    if shown == text:
        return exc
    masked = copy.copy(exc)
    masked.args = (shown,)
    if isinstance(masked, PlatformError):
        masked.message = shown
    return masked


def _execute(
    sim: Simulator | StateView,
    name: str,
    args: Mapping[str, Any],
    progress: Progress | None,
) -> Document:
    operation = OPERATIONS_BY_NAME.get(name)
    if operation is None:
        raise UsageError(f"unknown command {name!r}")
    if is_read_only(name, args):
        # Their signatures take a StateView: the cast only fits the table's one type.
        return operation(cast("Simulator", sim), args, progress or _ignore)
    from fwsched.engine import Simulator

    if not isinstance(sim, Simulator):
        raise TypeError(f"{name!r} changes the state: it runs on the Simulator, not a view")
    if args.get("relaxed"):
        # --relaxed is remembered in the state until `fwsched reset` (SPEC §5).
        sim.relax()
    return operation(sim, args, progress or _ignore)


# -- moving time --------------------------------------------------------------------------


def advance_target(now: datetime, args: Mapping[str, Any]) -> datetime:
    """Where ``advance`` goes: ``now + duration`` or ``to``; raises ``UsageError``."""
    duration, to = args.get("duration"), args.get("to")
    if (duration is None) == (to is None):
        raise UsageError("advance needs a DURATION or --to ISO (one of them, not both)")
    try:
        if duration is not None:
            return now + parse_duration(str(duration))
        target = parse_instant(str(to))
    except OverflowError:
        raise UsageError(
            f"advance {duration if duration is not None else f'--to {to}'} from "
            f"{format_instant(now)} goes past the year 9999, the last time fwsched knows"
        ) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if target < now:
        raise UsageError(
            f"--to {format_instant(target)} is before the simulated now "
            f"({format_instant(now)}): time can't go backwards"
        )
    return target


def _advance(sim: Simulator, args: Mapping[str, Any], progress: Progress) -> Document:
    start = sim.now
    target = advance_target(start, args)
    span = (target - start).total_seconds()
    count = 0

    def report(invocation: Invocation) -> None:
        nonlocal count
        count += 1
        done = (invocation.fire_at - start).total_seconds()
        progress(
            {
                "fired": count,
                "at": format_instant(invocation.fire_at),
                "fraction": min(done / span, 1.0) if span > 0 else 1.0,
            }
        )

    fired = sim.advance_to(target, on_fired=report)
    return {
        "from": format_instant(start),
        "to": format_instant(target),
        "invocations": [invocation.to_json() for invocation in fired],
    }


def _trigger(sim: Simulator, args: Mapping[str, Any], progress: Progress) -> Document:
    return sim.trigger(str(args["name"]), args.get("data")).to_json()


def _trigger_payload(sim: Simulator, args: Mapping[str, Any], progress: Progress) -> Document:
    return sim.trigger_payload(args["data"]).to_json()


# -- the app around the handler (SPEC §8) ---------------------------------------------------


def _fire(sim: Simulator, args: Mapping[str, Any], progress: Progress) -> Document:
    return sim.fire(str(args["event"]), args.get("payload")).to_json()


def _invoke(sim: Simulator, args: Mapping[str, Any], progress: Progress) -> Document:
    return sim.invoke(str(args["function"]), args.get("params")).to_json()


def _install(sim: Simulator, args: Mapping[str, Any], progress: Progress) -> Document:
    """``{"installed", "invocation", "error", "created"}``: what the install did."""
    from fwsched.platform import events

    before = {schedule.name for schedule in sim.schedules()}
    invocation = sim.install(args.get("iparams"))
    created = [s.name for s in sim.schedules() if s.name not in before]
    return {
        "installed": sim.installed,
        "invocation": None if invocation is None else invocation.to_json(),
        "error": events.install_failure(invocation),
        "created": created,
    }


def _uninstall(sim: Simulator, args: Mapping[str, Any], progress: Progress) -> Document:
    """``{"installed", "invocation", "removed": {"schedules", "db_keys"}}``: what it did."""
    schedules, keys = len(sim.schedules()), len(sim.db.keys())
    invocation = sim.uninstall(keep_data=bool(args.get("keep_data")))
    # Gone through the uninstall: deleted by the handler, or by the platform after it.
    return {
        "installed": sim.installed,
        "invocation": None if invocation is None else invocation.to_json(),
        "removed": {
            "schedules": schedules - len(sim.schedules()),
            "db_keys": keys - len(sim.db.keys()),
        },
    }


# -- schedules ----------------------------------------------------------------------------


def resolve_at(value: Any, now: datetime) -> Any:
    """``--at now`` and ``--at +DURATION`` are relative to the simulated now of the owner.

    A running clock has milliseconds; the result is rounded up to the whole second
    (up: ``+5m`` must stay at least 5 minutes ahead). An ISO string is passed to the
    API unchanged, so ``fetch`` returns it as given.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() == "now" or text.startswith("+"):
        try:
            when = parse_when(text, now)
        except ValueError as exc:
            raise UsageError(f"--at: {exc}") from None
        if when.microsecond:
            when = when.replace(microsecond=0) + timedelta(seconds=1)
        return format_instant(when)
    return value


def _schedule(sim: Simulator, args: Mapping[str, Any], progress: Progress) -> Document:
    op = str(args["op"])
    if op not in OPERATIONS:
        raise UsageError(f"unknown schedule operation {op!r}")
    request = dict(args.get("request") or {})
    if "schedule_at" in request:
        request["schedule_at"] = resolve_at(request["schedule_at"], sim.now)
    return sim.schedule.call(op, request)


def _db(sim: StateView, args: Mapping[str, Any], progress: Progress) -> Document:
    """``{"ok", "answer"}``: the db call's answer, or a refusal's ``{"status", "message"}``."""
    from fwsched.sdk import DbError

    method = str(args.get("method"))
    if method == "ls":
        return {"ok": True, "answer": [entry.to_dict() for entry in sim.db.entries()]}
    try:
        answer = sim.db.call(method, tuple(args.get("args") or ()), args.get("kwargs") or {})
    except DbError as err:
        return {"ok": False, "answer": err.to_dict()}
    return {"ok": True, "answer": answer}


def _schedules(sim: StateView, args: Mapping[str, Any], progress: Progress) -> Document:
    return {
        "schedules": [schedule.to_json() for schedule in sim.schedules()],
        "now": format_instant(sim.now),
        "relaxed": not sim.strict,
    }


# -- history ------------------------------------------------------------------------------


def _history(sim: StateView, args: Mapping[str, Any], progress: Progress) -> Document:
    """``{"invocations", "older"}``: the newest ``limit`` (all without), and how many more."""
    limit = args.get("limit")
    name, outcome = args.get("name"), args.get("outcome")
    invocations = sim.history(
        name=name, outcome=outcome, limit=None if limit is None else int(limit)
    )
    older = 0
    if limit is not None and len(invocations) == int(limit):
        older = sim.store.matching_count(name=name, outcome=outcome) - len(invocations)
    return {"invocations": [invocation.to_json() for invocation in invocations], "older": older}


def _show(sim: StateView, args: Mapping[str, Any], progress: Progress) -> Document:
    invocation_id = int(args["id"])
    invocation = sim.invocation(invocation_id)
    if invocation is None:
        raise FwschedError(f"No invocation with id {invocation_id} (fwsched history lists them)")
    return invocation.to_json()


def _status(sim: StateView, args: Mapping[str, Any], progress: Progress) -> Document:
    schedules, invocations = sim.counts()
    return {
        "app": str(sim.spec.root),
        "live": False,  # the live runner says True on its own answers
        "now": format_instant(sim.now),
        "schedules": schedules,
        "invocations": invocations,
        "state_file": sim.store.label,
        "relaxed": not sim.strict,
        "installed": sim.installed,
        "next_fire_at": _maybe_instant(sim.next_fire_time()),
    }


def _maybe_instant(moment: datetime | None) -> str | None:
    return None if moment is None else format_instant(moment)


OPERATIONS_BY_NAME: dict[str, Operation] = {
    "advance": _advance,
    "trigger": _trigger,
    "trigger_payload": _trigger_payload,
    "fire": _fire,
    "invoke": _invoke,
    "install": _install,
    "uninstall": _uninstall,
    "schedule": _schedule,
    "schedules": _schedules,
    "db": _db,
    "history": _history,
    "show": _show,
    "status": _status,
}
