"""Stubs: canned answers for ``request`` calls (SPEC §10), and the recorder that writes them.

Stubs are data, matched in order like a ``responses``/``respx`` registry: the
``[[request.stubs]]`` tables of fwsched.toml, then the JSON array of ``[request]
stubs_file``, then stubs added in code (``sim.http.stub``). The first stub that
matches a request and still has answers left answers it. Record-then-replay is
vcrpy's idea reduced to "write the live answers as stubs": ``StubRecorder`` appends
each live answer to a stubs file as an exact-URL stub.

Decisions where the SPEC is silent:
- A stub matches on every criterion it gives: ``template`` (the template's name),
  ``method`` (any method when absent) and ``url`` (the whole URL, query string
  included; ``*`` matches any run of characters, everything else is literal). It must
  give ``template`` or ``url``.
- ``status`` defaults to 200; ``json`` and ``body`` (text) are exclusive and the answer
  is empty without either; ``json`` adds ``content-type: application/json`` unless the
  stub's ``headers`` set one. ``times`` (a positive integer) limits the answers; each
  attempt of a retried request takes one.
- A malformed stub is an ``AppError`` naming fwsched.toml's table (``[[request.stubs]]
  #N``) or the stubs file, the stub's index, line and column; a bad ``sim.http.stub``
  call is a ``ValueError``. A ``stubs_file`` that does not exist yet is a warning (it
  may be the file a ``--record`` run is about to write); unknown keys of ``[request]``
  are warnings.
- The recorder writes ``method``, the exact ``url`` (a secure iparam value in it
  becomes ``*``, so no secret is written and the stub still matches), ``status``,
  ``headers`` (without the transport's own: content-length, content-encoding,
  transfer-encoding, connection, keep-alive) and ``body`` verbatim (exact replay). An
  answer that was retried gets ``"times": 1``, so a replay retries the same way.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwsched.app import Problem
from fwsched.errors import AppError
from fwsched.jsvalues import type_name as json_type
from fwsched.platform.jsonfile import json_member_positions, read_json_file
from fwsched.platform.templates import METHODS

__all__ = [
    "STUB_KEYS",
    "Stub",
    "StubRecorder",
    "StubRegistry",
    "load_stubs",
    "make_stub",
]

CONFIG = "fwsched.toml"
STUB_KEYS = ("template", "method", "url", "status", "json", "body", "headers", "times")
_REQUEST_KEYS = ("stubs", "stubs_file")
_TRANSPORT_HEADERS = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}
)
_NO_JSON = object()


@dataclass
class Stub:
    """One canned answer; ``answered`` counts the answers given so far."""

    template: str | None = None
    method: str | None = None
    url: str | None = None
    status: int = 200
    json: Any = _NO_JSON
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    times: int | None = None
    source: str = "code"
    answered: int = 0

    def __post_init__(self) -> None:
        self._pattern = _url_pattern(self.url) if self.url is not None else None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.answered >= self.times

    def matches(self, method: str, url: str, template: str | None) -> bool:
        if self.template is not None and self.template != template:
            return False
        if self.method is not None and self.method != method:
            return False
        return self._pattern is None or self._pattern.fullmatch(url) is not None

    def response_text(self) -> str:
        if self.json is not _NO_JSON:
            return json.dumps(self.json)
        return self.body or ""

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.json is not _NO_JSON and not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "application/json"
        return headers

    def to_dict(self) -> dict[str, Any]:
        """The stub as a stubs file holds it (only the keys it gives)."""
        out: dict[str, Any] = {}
        for key in ("template", "method", "url"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["status"] = self.status
        if self.json is not _NO_JSON:
            out["json"] = self.json
        if self.body is not None:
            out["body"] = self.body
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.times is not None:
            out["times"] = self.times
        return out


def _url_pattern(url: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in url.split("*")), re.DOTALL)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def make_stub(values: Mapping[str, Any], source: str = "code") -> Stub:
    """A checked ``Stub`` from its keys; ``ValueError`` with the reason if it is malformed."""
    unknown = [key for key in values if key not in STUB_KEYS]
    if unknown:
        raise ValueError(f"unknown key '{unknown[0]}' (expected one of {', '.join(STUB_KEYS)})")
    template = values.get("template")
    if template is not None and (not isinstance(template, str) or not template):
        raise ValueError(f"template must be a template name, got {template!r}")
    method = values.get("method")
    if method is not None and (not isinstance(method, str) or method.upper() not in METHODS):
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    url = values.get("url")
    if url is not None and (not isinstance(url, str) or not url):
        raise ValueError(f"url must be a non-empty string, got {url!r}")
    if template is None and url is None:
        raise ValueError("a stub needs 'template' or 'url' to match requests")
    status = values.get("status", 200)
    if not _is_int(status) or not 100 <= status <= 599:
        raise ValueError(f"status must be an HTTP status from 100 to 599, got {status!r}")
    body = values.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"body must be a string (use json for data), got {json_type(body)}")
    if body is not None and "json" in values:
        raise ValueError("give either json or body, not both")
    answer_json = values.get("json", _NO_JSON)
    if answer_json is not _NO_JSON:
        try:
            json.dumps(answer_json, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(f"json must be a JSON value, got {answer_json!r}") from None
    headers = values.get("headers", {})
    if not isinstance(headers, Mapping):
        raise ValueError(f"headers must be a table of strings, got {headers!r}")
    checked_headers: dict[str, str] = {}
    for name, value in headers.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"headers.{name} must be a string, got {value!r}")
        checked_headers[str(name)] = value if isinstance(value, str) else str(value)
    times = values.get("times")
    if times is not None and (not _is_int(times) or times < 1):
        raise ValueError(f"times must be a positive integer, got {times!r}")
    return Stub(
        template=template,
        method=None if method is None else method.upper(),
        url=url,
        status=status,
        json=answer_json,
        body=body,
        headers=checked_headers,
        times=times,
        source=source,
    )


def _file_stubs(path: Path, label: str) -> list[Stub]:
    raw, text = read_json_file(path, label)
    if not isinstance(raw, list):
        raise AppError(f"{label}: expected a JSON array of stubs, got {json_type(raw)}")
    positions = json_member_positions(text)
    stubs: list[Stub] = []
    for index, entry in enumerate(raw):
        line, column = positions.get(index, (1, 1))
        where = f"{label}: stub {index + 1} at line {line} column {column}"
        if not isinstance(entry, dict):
            raise AppError(f"{where}: expected an object, got {json_type(entry)}")
        try:
            stubs.append(make_stub(entry, source=where))
        except ValueError as exc:
            raise AppError(f"{where}: {exc}") from None
    return stubs


def load_stubs(
    root: str | Path, request_table: Mapping[str, Any] | None
) -> tuple[list[Stub], list[Problem]]:
    """The stubs of fwsched.toml's parsed ``[request]`` table, then of its ``stubs_file``.

    Raises ``AppError`` for a malformed stub (fwsched.toml's table number, or the stubs
    file's stub number, line and column) or stubs file; other findings are problems.
    """
    if request_table is None:
        return [], []
    if not isinstance(request_table, Mapping):
        raise AppError(f"{CONFIG}: 'request' must be a table ([request]), got {request_table!r}")
    problems = [
        Problem("warning", f"{CONFIG}: unknown key '{key}' in [request] (ignored)")
        for key in request_table
        if key not in _REQUEST_KEYS
    ]
    tables = request_table.get("stubs", [])
    if not isinstance(tables, list):
        raise AppError(f"{CONFIG}: request.stubs must be an array of tables ([[request.stubs]])")
    stubs: list[Stub] = []
    for number, table in enumerate(tables, start=1):
        where = f"{CONFIG}: [[request.stubs]] #{number}"
        if not isinstance(table, Mapping):
            raise AppError(f"{where}: expected a table, got {table!r}")
        try:
            stubs.append(make_stub(table, source=where))
        except ValueError as exc:
            raise AppError(f"{where}: {exc}") from None
    name = request_table.get("stubs_file")
    if name is not None:
        if not isinstance(name, str) or not name:
            raise AppError(f"{CONFIG}: [request] stubs_file must be a file name, got {name!r}")
        path = Path(root) / name
        if path.is_file():
            stubs += _file_stubs(path, name)
        else:
            problems.append(
                Problem(
                    "warning",
                    f"{CONFIG}: [request] stubs_file '{name}' does not exist (no stubs from it)",
                )
            )
    return stubs, problems


class StubRegistry:
    """Stubs in definition order: configured ones (toml, then file), then code ones."""

    def __init__(self, configured: Iterable[Stub] = ()) -> None:
        self._lock = threading.Lock()
        self._configured = list(configured)
        self._code: list[Stub] = []

    def __iter__(self) -> Iterator[Stub]:
        with self._lock:
            return iter([*self._configured, *self._code])

    def replace_configured(self, stubs: Iterable[Stub]) -> None:
        """New toml/file stubs (a reload); stubs added in code stay, after them."""
        with self._lock:
            self._configured = list(stubs)

    def add(self, stub: Stub) -> Stub:
        with self._lock:
            self._code.append(stub)
        return stub

    def answer(self, method: str, url: str, template: str | None) -> Stub | None:
        """The first matching stub with answers left, counted as having answered (or None)."""
        with self._lock:
            for stub in (*self._configured, *self._code):
                if not stub.exhausted and stub.matches(method, url, template):
                    stub.answered += 1
                    return stub
        return None


class StubRecorder:
    """Appends live answers to a stubs file (a JSON array, created if absent)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if self.path.exists():
            _file_stubs(self.path, str(path))  # refuse a file that is not a stubs file now

    def record(
        self,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: str,
        *,
        retried: bool = False,
    ) -> dict[str, Any]:
        """Append one answer as an exact-URL stub; returns what was written.

        ``url`` is the URL as it may be written: the caller puts ``*`` where a secret was.
        """
        entry: dict[str, Any] = {
            "method": method,
            "url": url,
            "status": status,
            "headers": {k: v for k, v in headers.items() if k.lower() not in _TRANSPORT_HEADERS},
            "body": body,
        }
        if retried:
            entry["times"] = 1
        with self._lock:
            entries: list[Any] = []
            if self.path.exists() and self.path.stat().st_size:
                raw, _ = read_json_file(self.path, str(self.path))
                entries = raw if isinstance(raw, list) else []
            entries.append(entry)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".stubs-", suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(entries, out, indent=2, ensure_ascii=False)
                    out.write("\n")
                os.replace(temp, self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        return entry
