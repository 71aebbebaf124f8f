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

The parent trusts no frame from a worker: ``check_from_worker`` lets through only
the messages above with exactly their fields (types, outcomes, depth); anything else
is a ``ProtocolError``, and the run ends ``crashed`` with the worker replaced.

This module is imported by the worker, so it stays small: json, math and os only.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from fwsched import jsonsafe

Message = tuple[str, dict[str, Any]]

HEADER = 4
CHUNK = 65536
MAX_FRAME = 64 * 1024 * 1024  # a bigger frame means a broken stream, not a real message
CUT = " [truncated]"  # ends a text the worker cut at its cap (the parent masks across it)
# Request values deeper than this travel as their repr (``Opaque``): the rules refuse them.
WIRE_DEPTH = 2 * jsonsafe.MAX_DEPTH
WORKER_OUTCOMES = ("ok", "error", "load-error")  # the others are the parent's to decide

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
    except (ValueError, TypeError, RecursionError) as exc:
        raise ProtocolError(f"malformed frame: {type(exc).__name__}: {exc}") from None
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
        frame = _frame(_request.encode(["rpc", fields]))
    except (TypeError, ValueError, RecursionError):
        pass
    else:
        # Counting brackets is cheap; only a frame with many looks at the depth.
        if frame.count(b"[") + frame.count(b"{") <= WIRE_DEPTH or not jsonsafe.too_deep(
            request, WIRE_DEPTH
        ):
            return frame
    safe: dict[str, Any] = {}
    opaque: list[str] = []
    for key, value in request.items():
        try:
            _request.encode(value)
            if jsonsafe.too_deep(value, WIRE_DEPTH):
                raise ValueError("too deep")
        except (TypeError, ValueError, RecursionError):
            safe[str(key)] = safe_repr(value)
            opaque.append(str(key))
        else:
            safe[str(key)] = value
    return encode("rpc", {"service": service, "call": call, "request": safe, "opaque": opaque})


# -- what the parent accepts from a worker ----------------------------------------------------


def _fail(name: str, why: str) -> ProtocolError:
    return ProtocolError(f"bad {name!r} message: {why}")


def _is_int(value: Any) -> bool:
    return type(value) is int


def _optional_text(fields: dict[str, Any], key: str) -> bool:
    value = fields.get(key)
    return value is None or type(value) is str


def _shape(
    name: str, fields: dict[str, Any], required: frozenset[str], allowed: frozenset[str]
) -> None:
    keys = fields.keys()
    if not required <= keys:
        raise _fail(name, f"missing {', '.join(sorted(required - keys))}")
    if not keys <= allowed:
        raise _fail(name, f"unknown {', '.join(sorted(map(str, keys - allowed)))}")


_HELLO = frozenset({"pid"})
_LOADED = frozenset({"ok", "exports"})
_LOADED_ALL = _LOADED | {"error", "traceback"}
_RPC = frozenset({"service", "call", "request", "opaque"})
_RESULT = frozenset({"seq", "outcome"})
_RESULT_ALL = _RESULT | {"value", "error", "traceback", "duration_ms", "render"}
_EXITED = frozenset({"seq", "code", "signal"})


def _check_hello(fields: dict[str, Any]) -> None:
    _shape("hello", fields, _HELLO, _HELLO)
    if not _is_int(fields["pid"]):
        raise _fail("hello", "pid is not an integer")


def _check_loaded(fields: dict[str, Any]) -> None:
    _shape("loaded", fields, _LOADED, _LOADED_ALL)
    exports = fields["exports"]
    if type(fields["ok"]) is not bool:
        raise _fail("loaded", "ok is not a boolean")
    if not isinstance(exports, list) or not all(type(e) is str for e in exports):
        raise _fail("loaded", "exports is not a list of names")
    if not (_optional_text(fields, "error") and _optional_text(fields, "traceback")):
        raise _fail("loaded", "error or traceback is not text")


def _check_rpc(fields: dict[str, Any]) -> None:
    _shape("rpc", fields, _RPC, _RPC)
    request, opaque = fields["request"], fields["opaque"]
    if type(fields["service"]) is not str or type(fields["call"]) is not str:
        raise _fail("rpc", "service or call is not text")
    if not isinstance(request, dict):
        raise _fail("rpc", "request is not an object")
    if not isinstance(opaque, list) or not all(type(k) is str and k in request for k in opaque):
        raise _fail("rpc", "opaque is not a list of the request's keys")
    if jsonsafe.too_deep(request, WIRE_DEPTH + 1):
        raise _fail("rpc", "request nested too deep")


def _check_result(fields: dict[str, Any]) -> None:
    _shape("result", fields, _RESULT, _RESULT_ALL)
    if not _is_int(fields["seq"]):
        raise _fail("result", "seq is not an integer")
    if fields["outcome"] not in WORKER_OUTCOMES:
        raise _fail("result", f"outcome {fields['outcome']!r} is not one a worker reports")
    if not (_optional_text(fields, "error") and _optional_text(fields, "traceback")):
        raise _fail("result", "error or traceback is not text")
    duration = fields.get("duration_ms", 0.0)
    if type(duration) not in (int, float) or not math.isfinite(duration) or duration < 0:
        raise _fail("result", "duration_ms is not a number of milliseconds")
    render = fields.get("render")
    if render is not None and (not isinstance(render, dict) or set(render) != {"error", "data"}):
        raise _fail("result", "render is not {error, data}")
    value = fields.get("value")
    if (isinstance(value, dict | list) and jsonsafe.too_deep(value, jsonsafe.MAX_DEPTH)) or (
        render is not None and jsonsafe.too_deep(render, jsonsafe.MAX_DEPTH + 1)
    ):
        raise _fail("result", "a value nested deeper than the worker sends")


def _check_exited(fields: dict[str, Any]) -> None:
    _shape("exited", fields, _EXITED, _EXITED)
    code, signal = fields["code"], fields["signal"]
    if not _is_int(fields["seq"]):
        raise _fail("exited", "seq is not an integer")
    if not (code is None or _is_int(code)) or not (signal is None or _is_int(signal)):
        raise _fail("exited", "code or signal is not an integer")


_CHECKS = {
    "hello": _check_hello,
    "loaded": _check_loaded,
    "rpc": _check_rpc,
    "result": _check_result,
    "exited": _check_exited,
}


def check_from_worker(message: Message, *expected: str) -> Message:
    """``message`` if it is one of ``expected`` with exactly the fields the protocol
    allows; otherwise ``ProtocolError`` (the worker, or a handler writing to its pipe,
    broke the protocol)."""
    name, fields = message
    if name not in expected:
        raise ProtocolError(f"unexpected {name!r} message (expected {' or '.join(expected)})")
    _CHECKS[name](fields)
    return message


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
