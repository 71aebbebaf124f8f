"""Messages between the parent and a sandbox worker, and how they travel.

A message is ``(name, fields)``: a name that says what it is and a dict of JSON
values. On the wire it is a frame: a 4-byte big-endian length, then the message
as compact UTF-8 JSON ``[name, fields]``. Frames travel on dedicated pipes (never
on stdout/stderr, which carry the handler's output), so nothing a handler prints
can corrupt them.

Parent to worker: ``invoke {seq, handler, payload, fire_at}``, ``reply {response}``
or ``reply {error: {status, message}}``.
Worker to parent: ``hello {pid}``, ``loaded {ok, exports, error, traceback}``,
``rpc {service, call, request, opaque}`` (``service`` is the platform service the
handler called: ``schedule`` today), ``result {seq, outcome, value, error, traceback,
duration_ms, render}`` (``render`` is ``{error, data}`` of the first ``render_data``
call, or null), and in fresh isolation ``exited {seq, code, signal}`` from the
zygote when the child that ran invocation ``seq`` died before sending its result.

This module is imported by the worker, so it stays small: json and os only.
"""

from __future__ import annotations

import json
import os
from typing import Any

Message = tuple[str, dict[str, Any]]

HEADER = 4
CHUNK = 65536
MAX_FRAME = 64 * 1024 * 1024  # a bigger frame means a broken stream, not a real message

# Requests keep Python's lenient JSON (NaN allowed) so the parent's rules see what
# the handler passed; results must be strict JSON because they are stored and printed.
_lenient = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr)
_request = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_strict = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_decode = json.JSONDecoder().decode


class ProtocolError(Exception):
    """The other side sent something that is not a frame of this protocol."""


class Opaque:
    """A request value a handler passed that is not JSON: only its ``repr`` crosses the pipe.

    The parent's rules see an object that is neither a dict nor a str nor a number,
    so they reject it exactly as they would reject the original value.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _frame(body: str) -> bytes:
    data = body.encode("utf-8", "surrogatepass")
    return len(data).to_bytes(HEADER, "big") + data


def encode(name: str, fields: dict[str, Any]) -> bytes:
    """A frame for a message whose fields are known to be JSON (unknown values become repr)."""
    return _frame(_lenient.encode([name, fields]))


def encode_strict(name: str, fields: dict[str, Any]) -> bytes:
    """A frame, or ``TypeError``/``ValueError`` if some field is not strict JSON."""
    return _frame(_strict.encode([name, fields]))


def json_copy(value: Any, *, strict: bool) -> Any:
    """``value`` as JSON would carry it; strict raises ``TypeError``/``ValueError`` for
    what is not JSON, lenient turns it into its repr."""
    return _decode((_strict if strict else _lenient).encode(value))


def decode(body: bytes) -> Message:
    try:
        name, fields = _decode(body.decode("utf-8", "surrogatepass"))
    except ValueError as exc:
        raise ProtocolError(f"malformed frame: {exc}") from None
    if not isinstance(name, str) or not isinstance(fields, dict):
        raise ProtocolError("malformed frame: expected [name, fields]")
    return name, fields


def encode_rpc(call: str, request: dict[str, Any], service: str = "schedule") -> bytes:
    """The ``rpc`` frame for ``<service>.<call>(request)`` made by a handler.

    A top-level value that is not JSON travels as its repr and is listed in
    ``opaque``, so the parent can rebuild it as an ``Opaque`` (see ``decode_request``).
    """
    try:
        fields = {"service": service, "call": call, "request": request, "opaque": []}
        return _frame(_request.encode(["rpc", fields]))
    except (TypeError, ValueError):
        pass
    safe: dict[str, Any] = {}
    opaque: list[str] = []
    for key, value in request.items():
        try:
            _request.encode(value)
        except (TypeError, ValueError):
            safe[str(key)] = safe_repr(value)
            opaque.append(str(key))
        else:
            safe[str(key)] = value
    return encode("rpc", {"service": service, "call": call, "request": safe, "opaque": opaque})


def decode_request(fields: dict[str, Any]) -> dict[str, Any]:
    """The request of an ``rpc`` message, with its non-JSON values rebuilt as ``Opaque``."""
    request: dict[str, Any] = dict(fields.get("request") or {})
    for key in fields.get("opaque") or ():
        request[key] = Opaque(str(request.get(key)))
    return request


def safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not break the schedule call
        return f"<{type(value).__name__} object (repr failed: {type(exc).__name__})>"


class FrameReader:
    """Blocking reads of frames from a pipe (the worker's side).

    It reads greedily, which is safe because the parent never sends a message
    before the previous one is answered: at most one frame is ever in flight.
    (In fresh isolation a child hands the pipe to the next one; nothing may be
    left in its buffer then, and by that rule nothing is.)
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._frames = FrameBuffer()
        self._ready: list[Message] = []

    def read(self) -> Message | None:
        """The next message, or None when the other side closed the pipe."""
        while not self._ready:
            chunk = os.read(self.fd, CHUNK)
            if not chunk:
                if self._frames.pending:
                    raise ProtocolError("pipe closed in the middle of a frame")
                return None
            self._ready = self._frames.feed(chunk)
        return self._ready.pop(0)


def write_all(fd: int, data: bytes) -> None:
    """Write a whole frame to a blocking pipe."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FrameBuffer:
    """Incremental decoding of frames from a byte stream read in chunks."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, chunk: bytes) -> list[Message]:
        if self._data:
            self._data += chunk
            data: bytes | bytearray = self._data
        else:
            data = chunk  # the usual case: whole frames, no copy
        messages: list[Message] = []
        start = 0
        while len(data) - start >= HEADER:
            size = int.from_bytes(data[start : start + HEADER], "big")
            if size > MAX_FRAME:
                raise ProtocolError(f"frame of {size} bytes is larger than {MAX_FRAME}")
            end = start + HEADER + size
            if len(data) < end:
                break
            messages.append(decode(bytes(data[start + HEADER : end])))
            start = end
        if data is self._data:
            del self._data[:start]
        else:
            self._data = bytearray(chunk[start:])
        return messages

    @property
    def pending(self) -> bool:
        """True while part of a frame is buffered (the stream ended mid-frame if it stops here)."""
        return bool(self._data)
