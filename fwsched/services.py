"""The platform services as the ``Simulator`` offers them: ``sim.db`` over the state, and the
arguments a handler's ``db``/``request`` proxy sends (SPEC §9, §10).

The rules themselves are ``fwsched.platform.db`` and ``fwsched.platform.requests``; this is
the glue between them, the state's transactions and the sandbox's RPC.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from fwsched.errors import StateError
from fwsched.platform.db import DbEntry, DbService
from fwsched.sdk import DbError, RequestError
from fwsched.statefile import corrupt_error
from fwsched.store import Store


class StoredDb:
    """``sim.db``: the app's data storage (SPEC §9), each call in a transaction of the state.

    The same ``DbService`` answers a handler's ``db.*`` calls, so the rules are one.
    """

    def __init__(self, store: Store, service: DbService) -> None:
        self._store = store
        self.service = service

    def call(
        self, method: str, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            if method == "get":
                # One SELECT, atomic on its own: no write transaction (half a get's cost).
                return self.service.call(method, args, kwargs)
            with self._store.transaction():
                return self.service.call(method, args, kwargs)
        except (json.JSONDecodeError, RecursionError) as exc:  # _checked's, inline: per call
            raise self._unreadable(exc) from None

    @contextlib.contextmanager
    def _checked(self) -> Iterator[None]:
        """A stored value that is not the JSON fwsched wrote means the file was changed."""
        try:
            yield
        except (json.JSONDecodeError, RecursionError) as exc:
            raise self._unreadable(exc) from None

    def _unreadable(self, exc: Exception) -> StateError:
        return corrupt_error(self._store.label, f"a db value does not read back: {exc}")

    def get(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.call("get", args, kwargs)

    def set(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.call("set", args, kwargs)

    def update(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.call("update", args, kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.call("delete", args, kwargs)

    def keys(self) -> list[str]:
        """Every live key, sorted (a simulator extra)."""
        with self._store.transaction(), self._checked():
            return self.service.keys()

    def entries(self) -> list[DbEntry]:
        """Every live record's key, size and expiry (``fwsched db ls``)."""
        with self._store.transaction(), self._checked():
            return self.service.entries()


SHOWN_ARGUMENTS = 200  # characters of refused arguments quoted in the error


def call_arguments(
    request: Mapping[str, Any], error: type[DbError] | type[RequestError], called: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The ``(args, kwargs)`` a service proxy sent for ``called`` (``db.set``); a value that
    was not JSON is refused, quoting what the handler passed."""
    args, kwargs = request.get("args", []), request.get("kwargs", {})
    for given, kind in ((args, list), (kwargs, dict)):
        if not isinstance(given, kind):
            # protocol.Opaque: the handler passed something that cannot travel as JSON.
            shown = str(given)
            if len(shown) > SHOWN_ARGUMENTS:
                shown = shown[:SHOWN_ARGUMENTS] + "..."
            raise error(
                400,
                f"{called}: arguments must be JSON values (dict, list, str, int, float, "
                f"bool, None), not {shown}",
            )
    return tuple(args), kwargs
