"""What handler code sees: ``schedule``, ``db``, ``request``, ``render_data`` and their errors.

This module is imported inside the sandbox worker, so it stays tiny and has no
heavy imports. The proxies do no validation of their own: every call is sent to
whoever installed a transport (the sandbox worker sends it to the parent
process, where the platform rules run), so there is one implementation of the
rules for handlers, the library and the command line alike.

``render_data`` is the one exception: answering is local to the invocation, so
the worker keeps what it was given and sends it back with the outcome, where
``fwsched.platform.events`` turns it into the platform's response.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "DbError",
    "PlatformError",
    "RequestError",
    "ScheduleError",
    "db",
    "render_data",
    "request",
    "request_from_call",
    "schedule",
]

OPERATIONS = ("create", "fetch", "update", "delete")

Transport = Callable[[str, dict[str, Any]], dict[str, Any]]
RenderSink = Callable[[Any, Any], None]


class PlatformError(Exception):
    """A failed platform call, as the platform reports it: an HTTP-like status and a message.

    ``str(err) == err.message``; ``to_dict()`` is the ``{"status", "message"}`` the command
    line prints and the sandbox sends across (subclasses add their fields).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.message))

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message}


class ScheduleError(PlatformError):
    """A failed ``schedule`` call (SPEC §2)."""


def request_from_call(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Accept both spellings: ``create(name=..., ...)`` and the JS-style ``create({"name": ...})``.

    A single positional dict is the request; keyword arguments are added to it
    (so ``create({"name": "a"}, data={})`` works too).
    """
    if len(args) > 1:
        raise TypeError(f"expected one request dict, got {len(args)} positional arguments")
    request: dict[str, Any] = {}
    if args:
        if not isinstance(args[0], Mapping):
            raise TypeError(
                f"expected the request as a dict or keyword arguments, got {type(args[0]).__name__}"
            )
        request.update(args[0])
    request.update(kwargs)
    return request


class ScheduleProxy:
    """``$schedule`` for Python: create/fetch/update/delete, each returning a dict or raising."""

    def __init__(self) -> None:
        self._transport: Transport | None = None

    def _install(self, transport: Transport | None) -> None:
        self._transport = transport

    def _call(self, op: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        if self._transport is None:
            raise RuntimeError(
                "fwsched.sdk.schedule works only inside a handler run by fwsched; "
                "in tests use Simulator(...).schedule instead"
            )
        return self._transport(op, request_from_call(args, kwargs))

    def create(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._call("create", args, kwargs)

    def fetch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._call("fetch", args, kwargs)

    def update(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._call("update", args, kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._call("delete", args, kwargs)


schedule = ScheduleProxy()


class RenderProxy:
    """``renderData`` for Python: ``render_data(error=None, data=None)``, as in the FDK.

    ``render_data()`` or ``render_data(None, data)`` answers with ``data``;
    ``render_data({"message": ..., "status": ...})`` answers with an error.
    """

    def __init__(self) -> None:
        self._sink: RenderSink | None = None

    def _install(self, sink: RenderSink | None) -> None:
        self._sink = sink

    def __call__(self, error: Any = None, data: Any = None) -> None:
        if self._sink is None:
            raise RuntimeError(
                "fwsched.sdk.render_data works only inside a handler run by fwsched; "
                "in tests use Simulator(...).invoke or .fire and read Invocation.render"
            )
        self._sink(error, data)


render_data = RenderProxy()


class DbError(PlatformError):
    """A failed ``db`` call (SPEC §9)."""


class RequestError(PlatformError):
    """A failed ``request`` call, as ``$request`` reports it.

    ``status`` and ``message`` as for the other services; ``headers``, ``response``
    (the body as text) and ``attempts`` as the platform's error object has them, and
    ``error_source``: ``"APP"`` when the service answered with a status of 400 or
    more, ``"PLATFORM"`` when the simulated platform refused or could not connect.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        response: str | None = None,
        attempts: int = 0,
        error_source: str | None = None,
    ) -> None:
        super().__init__(status, message)
        self.headers: dict[str, str] = dict(headers or {})
        self.response = response
        self.attempts = attempts
        self.error_source = error_source

    def __reduce__(self) -> tuple[Any, ...]:
        return (RequestError.from_dict, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "status": self.status,
            "message": self.message,
            "headers": dict(self.headers),
            "response": self.response,
            "attempts": self.attempts,
        }
        if self.error_source is not None:
            fields["errorSource"] = self.error_source
        return fields

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> RequestError:
        """The error again from ``to_dict()`` (how it crosses the process boundary)."""
        return cls(
            int(fields["status"]),
            str(fields["message"]),
            headers=fields.get("headers"),
            response=fields.get("response"),
            attempts=int(fields.get("attempts") or 0),
            error_source=fields.get("errorSource"),
        )


class ServiceProxy:
    """``$db`` and ``$request`` for Python: each method forwards its arguments as they are.

    ``db.set("k", {"v": 1}, ttl=60)`` travels as ``("set", {"args": [...], "kwargs": {...}})``
    and the parent's service (``fwsched.platform.db``/``requests``) binds and checks them,
    so a handler, ``sim.db``/``sim.http`` and the command line share one implementation.
    """

    def __init__(self, service: str, methods: tuple[str, ...], library_name: str) -> None:
        self._service = service
        self._methods = methods
        self._library_name = library_name
        self._transport: Transport | None = None

    def _install(self, transport: Transport | None) -> None:
        self._transport = transport

    def __getattr__(self, method: str) -> Callable[..., dict[str, Any]]:
        if method.startswith("_") or method not in self._methods:
            raise AttributeError(f"{self._service} has no method {method!r}")

        def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
            if self._transport is None:
                raise RuntimeError(
                    f"fwsched.sdk.{self._service} works only inside a handler run by fwsched; "
                    f"in tests use Simulator(...).{self._library_name} instead"
                )
            return self._transport(method, {"args": list(args), "kwargs": kwargs})

        call.__name__ = method
        # Kept: a handler that loops over db.get(...) builds the forwarder once, not per call.
        self.__dict__[method] = call
        return call

    def __dir__(self) -> list[str]:
        return list(self._methods)

    def __repr__(self) -> str:
        return f"<fwsched {self._service}: {', '.join(self._methods)}>"


db = ServiceProxy("db", ("set", "get", "update", "delete"), "db")
request = ServiceProxy(
    "request",
    ("invoke_template", "invokeTemplate", "get", "post", "put", "patch", "delete"),
    "http",
)
