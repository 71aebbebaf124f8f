"""The schedule API of SPEC §2 over a store: validate with ``rules``, then apply in one transaction.

This is the single implementation behind ``schedule.*`` in a handler (via the
sandbox's RPC), ``Simulator.schedule`` in the library and ``fwsched schedule``
on the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fwsched import rules
from fwsched.recurrence import first_occurrence, next_occurrence
from fwsched.sdk import OPERATIONS, ScheduleError, request_from_call
from fwsched.store import Store


class ScheduleAPI:
    """``create``, ``fetch``, ``update`` and ``delete``, each taking keywords or one dict.

    ``context`` is asked at every call, because "now" depends on the caller: the
    simulated clock for the library and the CLI, the occurrence's time inside a handler.
    """

    def __init__(self, store: Store, context: Callable[[], rules.Context]) -> None:
        self._store = store
        self._context = context

    def call(self, op: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Run one operation by name; raises ``ScheduleError`` and then changes nothing.

        The error's traceback starts here: where a rule was checked inside fwsched is of
        no use to the caller, and pytest (``__tracebackhide__``) shows the caller's line.
        """
        __tracebackhide__ = True
        try:
            return self._call(op, request)
        except ScheduleError as err:
            raise err.with_traceback(None) from None

    def _call(self, op: str, request: Mapping[str, Any]) -> dict[str, Any]:
        if op not in OPERATIONS:
            raise ScheduleError(400, f"Unknown schedule operation '{op}'")
        store = self._store
        with store.transaction():
            if op in ("fetch", "delete"):
                name = rules.check_existing(request, store)
                if op == "fetch":
                    entry = store.get(name)
                    assert entry is not None  # check_existing saw it in this transaction
                    return entry.spec.fetched()
                store.delete(name)
                return dict(rules.RESPONSES["delete"])
            ctx = self._context()
            check = rules.check_create if op == "create" else rules.check_update
            spec = check(request, store, ctx)
            try:
                if spec.repeat is not None and ctx.in_handler:
                    first = next_occurrence(spec.at, spec.repeat, ctx.now)
                else:
                    first = first_occurrence(spec.at, spec.repeat, ctx.now)
            except OverflowError:
                # A series at the very edge of the years 1-9999 whose local wall time in its
                # zone falls outside them: it could never fire, like a year outside them.
                raise ScheduleError(400, rules.NOT_ISO) from None
            store.put(spec, first)
            return dict(rules.RESPONSES[op])

    def create(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        __tracebackhide__ = True
        return self.call("create", request_from_call(args, kwargs))

    def fetch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        __tracebackhide__ = True
        return self.call("fetch", request_from_call(args, kwargs))

    def update(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        __tracebackhide__ = True
        return self.call("update", request_from_call(args, kwargs))

    def delete(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        __tracebackhide__ = True
        return self.call("delete", request_from_call(args, kwargs))
