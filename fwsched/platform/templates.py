"""SPEC §10's app side of ``request``: request templates, their declarations, placeholders.

``config/requests.json`` holds the templates, the manifest's ``requests`` blocks declare
which ones the app uses, and ``whitelisted-domains`` lists where the older
``request.get(url, ...)`` style may go. ``load_request_config`` reads all three (it never
imports user code); ``fill`` and ``fill_value`` put values into ``<%= EXPR %>``
placeholders without evaluating anything.

Decisions where the SPEC is silent (the platform's behaviour where it is known):
- A template is ``{"schema": {...}, "options": {...}}``. ``schema.method`` (GET, POST,
  PUT, PATCH, DELETE; any case) and ``schema.host`` are required; ``protocol`` defaults
  to "https" (only "http" and "https" are accepted), ``path`` to "/" and must start
  with "/", ``port`` is optional, ``headers`` and ``query`` are objects of strings
  (numbers and booleans are taken as their text). ``options.maxAttempts`` (1-5,
  default 1) and ``options.retryDelay`` (0-1500 ms, default 0) as in the older style.
- A malformed requests.json (bad JSON, a template of the wrong shape) is an
  ``AppError`` naming the file, the template, its line and column. What an app can
  still run with is a ``Problem``: a declared template that requests.json lacks (an
  error, invoking it fails), a defined one the manifest does not declare, an unknown
  key, ``options.oauth`` (not simulated), a placeholder that can never be filled, more
  than the platform's 100 templates (warnings).
- Declarations are collected from the manifest's top-level ``requests`` and every
  ``product.<name>.requests`` / ``modules.<name>.requests`` block.
- ``whitelisted-domains`` entries may hold placeholders (``https://<%= iparam.domain %>``,
  filled with the iparams; an entry that cannot be filled allows nothing) and ``*``
  wildcards; an entry allows a URL whose scheme, host and port match it (its path is
  not compared).
- A placeholder value is turned into text as JavaScript would for strings, numbers,
  booleans and null; an object or array becomes its JSON. Nothing is HTML-escaped.
- A quoted string in EXPR takes backslash escapes (``\\n``, ``\\t``, ``\\"``, ``\\\\``).
- Values shown for display (``Filled.shown``) have every term that reads a secure iparam
  replaced by ``****``; ``encode(...)`` of anything secret shows as ``****`` too.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwsched import jsonsafe
from fwsched.app import Problem
from fwsched.errors import AppError
from fwsched.jsvalues import type_name as json_type
from fwsched.platform.jsonfile import json_member_positions, read_json_file
from fwsched.sdk import RequestError

__all__ = [
    "MASK",
    "METHODS",
    "REQUESTS_FILE",
    "SUBSTITUTION_ERROR",
    "Filled",
    "RequestConfig",
    "Template",
    "check_placeholders",
    "fill",
    "fill_value",
    "load_request_config",
]

REQUESTS_FILE = "config/requests.json"
MANIFEST = "manifest.json"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MASK = "****"
SUBSTITUTION_ERROR = "Error while substituting the templates"
MAX_TEMPLATES = 100  # the platform's limit per requests.json
MAX_ATTEMPTS = (1, 5)
RETRY_DELAY_MS = (0, 1500)

_SCHEMA_KEYS = ("protocol", "method", "host", "port", "path", "headers", "query")
_OPTION_KEYS = ("maxAttempts", "retryDelay", "oauth")
_ROOTS = ("context", "iparam")
_OPEN, _CLOSE = "<%=", "%>"


# -- placeholders -------------------------------------------------------------------------


class _BadExpression(Exception):
    """EXPR is not one of the forms of SPEC §10, or names a value that is not there."""


# An EXPR parsed: ("name", root, keys), ("str", text), ("encode", node), ("concat", nodes).
_Node = tuple[Any, ...]


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0

    def parse(self) -> _Node:
        node = self._concat()
        self._skip()
        if self.pos != len(self.source):
            raise _BadExpression(f"unexpected {self.source[self.pos :]!r}")
        return node

    def _skip(self) -> None:
        while self.pos < len(self.source) and self.source[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        self._skip()
        return self.source[self.pos] if self.pos < len(self.source) else ""

    def _concat(self) -> _Node:
        terms = [self._term()]
        while self._peek() == "+":
            self.pos += 1
            terms.append(self._term())
        return terms[0] if len(terms) == 1 else ("concat", tuple(terms))

    def _term(self) -> _Node:
        char = self._peek()
        if char in ("'", '"'):
            return ("str", self._string(char))
        names = self._dotted()
        if names == ["encode"] and self._peek() == "(":
            self.pos += 1
            inner = self._concat()
            if self._peek() != ")":
                raise _BadExpression("encode( is not closed")
            self.pos += 1
            return ("encode", inner)
        if len(names) < 2 or names[0] not in _ROOTS:
            raise _BadExpression(f"{'.'.join(names)!r} is not a name under context or iparam")
        return ("name", names[0], tuple(names[1:]))

    def _identifier(self) -> str:
        self._skip()
        match = _IDENTIFIER.match(self.source, self.pos)
        if match is None:
            raise _BadExpression(f"expected a name at {self.source[self.pos :]!r}")
        self.pos = match.end()
        return match.group()

    def _dotted(self) -> list[str]:
        names = [self._identifier()]
        while self._peek() == ".":
            self.pos += 1
            names.append(self._identifier())
        return names

    def _string(self, quote: str) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.source):
            char = self.source[self.pos]
            self.pos += 1
            if char == quote:
                return "".join(out)
            if char == "\\" and self.pos < len(self.source):
                escaped = self.source[self.pos]
                self.pos += 1
                out.append(_ESCAPES.get(escaped, escaped))
            else:
                out.append(char)
        raise _BadExpression("a quoted string is not closed")


_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _to_text(value: Any) -> str:
    """A value as JavaScript's template filling writes it (objects as JSON)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Filled:
    """A filled string: ``real`` is what is sent, ``shown`` what fwsched displays and stores."""

    real: str
    shown: str


def _evaluate(node: _Node, scope: Mapping[str, Any], secure: Collection[str]) -> tuple[str, str]:
    kind = node[0]
    if kind == "str":
        return node[1], node[1]
    if kind == "name":
        root, keys = node[1], node[2]
        value: Any = scope.get(root)
        for key in keys:
            if not isinstance(value, Mapping) or key not in value:
                raise _BadExpression(f"{root}.{'.'.join(keys)} is not there")
            value = value[key]
        text = _to_text(value)
        secret = root == "iparam" and keys[0] in secure
        return text, (MASK if secret else text)
    if kind == "encode":
        real, shown = _evaluate(node[1], scope, secure)
        encoded = base64.b64encode(real.encode("utf-8")).decode("ascii")
        return encoded, (encoded if shown == real else MASK)
    parts = [_evaluate(term, scope, secure) for term in node[1]]
    return "".join(p[0] for p in parts), "".join(p[1] for p in parts)


def _placeholders(text: str) -> Iterable[tuple[int, int, str]]:
    """(start, end, EXPR) of every ``<%= EXPR %>`` in ``text``; an unclosed one is bad."""
    pos = 0
    while True:
        start = text.find(_OPEN, pos)
        if start < 0:
            return
        end = text.find(_CLOSE, start + len(_OPEN))
        if end < 0:
            raise _BadExpression("'<%=' without a closing '%>'")
        yield start, end + len(_CLOSE), text[start + len(_OPEN) : end]
        pos = end + len(_CLOSE)


def fill(
    text: str,
    *,
    context: Mapping[str, Any] | None = None,
    iparams: Mapping[str, Any] | None = None,
    secure: Collection[str] = (),
) -> Filled:
    """``text`` with every placeholder filled, or ``RequestError`` 400 as the platform says."""
    if _OPEN not in text:
        return Filled(text, text)
    scope = {"context": dict(context or {}), "iparam": dict(iparams or {})}
    real: list[str] = []
    shown: list[str] = []
    pos = 0
    try:
        for start, end, source in _placeholders(text):
            value, display = _evaluate(_Parser(source).parse(), scope, secure)
            real += [text[pos:start], value]
            shown += [text[pos:start], display]
            pos = end
    except _BadExpression:
        raise RequestError(
            400, SUBSTITUTION_ERROR, response=SUBSTITUTION_ERROR, error_source="PLATFORM"
        ) from None
    real.append(text[pos:])
    shown.append(text[pos:])
    return Filled("".join(real), "".join(shown))


def fill_value(
    value: Any,
    *,
    context: Mapping[str, Any] | None = None,
    iparams: Mapping[str, Any] | None = None,
    secure: Collection[str] = (),
) -> tuple[Any, Any]:
    """(real, shown) of a JSON value with ``fill`` applied to every string in it (keys too)."""
    if isinstance(value, str):
        filled = fill(value, context=context, iparams=iparams, secure=secure)
        return filled.real, filled.shown
    if isinstance(value, Mapping):
        real: dict[Any, Any] = {}
        shown: dict[Any, Any] = {}
        for key, item in value.items():
            real_key, shown_key = fill_value(key, context=context, iparams=iparams, secure=secure)
            real[real_key], shown[shown_key] = fill_value(
                item, context=context, iparams=iparams, secure=secure
            )
        return real, shown
    if isinstance(value, list | tuple):
        pairs = [fill_value(v, context=context, iparams=iparams, secure=secure) for v in value]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return value, value


def check_placeholders(text: str, roots: Collection[str] = _ROOTS) -> str | None:
    """Why a placeholder of ``text`` can never be filled (None when each may be).

    Only the form is checked (values arrive at call time); ``roots`` limits the names
    that can be there (a whitelist entry has no ``context``).
    """
    try:
        for _, _, source in _placeholders(text):
            stack = [_Parser(source).parse()]
            while stack:
                node = stack.pop()
                if node[0] == "name" and node[1] not in roots:
                    return f"'<%={source}%>' reads {node[1]}, which is not there"
                if node[0] == "encode":
                    stack.append(node[1])
                elif node[0] == "concat":
                    stack.extend(node[1])
    except _BadExpression as exc:
        return f"'{text}' has a placeholder that can never be filled ({exc})"
    return None


# -- templates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """One template of config/requests.json, checked; strings still hold placeholders."""

    name: str
    method: str
    host: str
    protocol: str = "https"
    port: str | None = None
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    max_attempts: int = 1
    retry_delay_ms: int = 0
    where: str = REQUESTS_FILE

    def strings(self) -> Iterable[str]:
        """Every string that may hold a placeholder."""
        yield from (self.protocol, self.host, self.path)
        if self.port is not None:
            yield self.port
        yield from self.headers.values()
        yield from self.query.values()


@dataclass(frozen=True)
class RequestConfig:
    """What the app declares about its outbound requests (SPEC §10)."""

    templates: Mapping[str, Template] = field(default_factory=dict)
    # Template names declared in the manifest's `requests` blocks.
    declared: frozenset[str] = frozenset()
    # The manifest's `whitelisted-domains` (None: it has none, any domain is allowed).
    whitelist: tuple[str, ...] | None = None
    problems: tuple[Problem, ...] = ()

    def template(self, name: str) -> Template | None:
        """The template ``name`` if it is both declared and defined (else None)."""
        return self.templates.get(name) if name in self.declared else None


def check_retry_options(max_attempts: Any, retry_delay: Any) -> str | None:
    """Why ``maxAttempts``/``retryDelay`` are not acceptable (None when they are)."""
    low, high = MAX_ATTEMPTS
    if max_attempts is not None and (
        isinstance(max_attempts, bool)
        or not isinstance(max_attempts, int)
        or not low <= max_attempts <= high
    ):
        return f"maxAttempts must be an integer from {low} to {high}, got {jsonsafe.shown(max_attempts)}"
    low, high = RETRY_DELAY_MS
    if retry_delay is not None and (
        isinstance(retry_delay, bool)
        or not isinstance(retry_delay, int | float)
        or not math.isfinite(retry_delay)
        or not low <= retry_delay <= high
    ):
        return f"retryDelay must be {low} to {high} milliseconds, got {jsonsafe.shown(retry_delay)}"
    return None


def _string_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object, got {json_type(value)}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, str):
            out[key] = item
        elif isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float):
            out[key] = _to_text(item)
        else:
            raise ValueError(f"{what}.{key} must be a string, got {json_type(item)}")
    return out


def _template(name: str, entry: Any, where: str) -> tuple[Template, list[str]]:
    """The template, and warnings about it; ``ValueError`` with the reason if unusable."""
    warnings: list[str] = []
    if not isinstance(entry, dict):
        raise ValueError(f"expected an object with 'schema', got {json_type(entry)}")
    warnings += [f"unknown key '{k}' (ignored)" for k in entry if k not in ("schema", "options")]
    schema = entry.get("schema")
    if not isinstance(schema, dict):
        raise ValueError(f"'schema' must be an object, got {json_type(schema)}")
    warnings += [f"unknown key 'schema.{k}' (ignored)" for k in schema if k not in _SCHEMA_KEYS]
    method = schema.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValueError(f"schema.method must be one of {', '.join(METHODS)}, got {method!r}")
    host = schema.get("host")
    if not isinstance(host, str) or not host.strip():
        raise ValueError(f"schema.host must be a non-empty string, got {host!r}")
    protocol = schema.get("protocol", "https")
    if not isinstance(protocol, str) or protocol.lower() not in ("http", "https"):
        raise ValueError(f'schema.protocol must be "https" (or "http"), got {protocol!r}')
    path = schema.get("path", "/")
    if not isinstance(path, str) or not path.startswith(("/", _OPEN)):
        raise ValueError(f"schema.path must be a string starting with '/', got {path!r}")
    port = schema.get("port")
    if port is not None and (
        isinstance(port, bool)
        or not isinstance(port, int | str)
        or (isinstance(port, int) and not 0 < port < 65536)
    ):
        raise ValueError(f"schema.port must be a port number, got {port!r}")
    headers = _string_map(schema.get("headers", {}), "schema.headers")
    query = _string_map(schema.get("query", {}), "schema.query")

    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(f"'options' must be an object, got {json_type(options)}")
    warnings += [f"unknown key 'options.{k}' (ignored)" for k in options if k not in _OPTION_KEYS]
    if "oauth" in options:
        warnings.append("options.oauth is not simulated: <%= access_token %> cannot be filled")
    reason = check_retry_options(options.get("maxAttempts"), options.get("retryDelay"))
    if reason is not None:
        raise ValueError(f"options.{reason}")
    template = Template(
        name=name,
        method=method.upper(),
        host=host.strip(),
        protocol=protocol.lower(),
        port=None if port is None else str(port),
        path=path,
        headers=headers,
        query=query,
        max_attempts=int(options.get("maxAttempts", 1)),
        retry_delay_ms=int(options.get("retryDelay", 0)),
        where=where,
    )
    warnings += [reason for text in template.strings() if (reason := check_placeholders(text))]
    return template, warnings


def _load_templates(root: Path) -> tuple[dict[str, Template], list[Problem]]:
    path = root / REQUESTS_FILE
    if not path.is_file():
        return {}, []
    raw, text = read_json_file(path, REQUESTS_FILE)
    if not isinstance(raw, dict):
        raise AppError(
            f"{REQUESTS_FILE}: expected a JSON object of templates, got {json_type(raw)}"
        )
    positions = json_member_positions(text)
    templates: dict[str, Template] = {}
    problems: list[Problem] = []
    for name, entry in raw.items():
        line, column = positions.get(name, (1, 1))
        where = f"{REQUESTS_FILE}: template '{name}' at line {line} column {column}"
        try:
            template, warnings = _template(name, entry, where)
        except ValueError as exc:
            raise AppError(f"{where}: {exc}") from None
        templates[name] = template
        problems += [Problem("warning", f"{where}: {w}") for w in warnings]
    if len(templates) > MAX_TEMPLATES:
        problems.append(
            Problem(
                "warning",
                f"{REQUESTS_FILE}: {len(templates)} templates, the platform allows {MAX_TEMPLATES}",
            )
        )
    return templates, problems


def _declared(manifest: Mapping[str, Any]) -> tuple[list[str], list[Problem]]:
    """Template names of every `requests` block of the manifest, in manifest order."""
    blocks: list[tuple[str, Any]] = []
    if "requests" in manifest:
        blocks.append(("requests", manifest["requests"]))
    for section in ("product", "modules"):
        parts = manifest.get(section)
        if isinstance(parts, dict):  # a malformed section is reported by the app loader
            blocks += [
                (f"{section}.{name}.requests", part["requests"])
                for name, part in parts.items()
                if isinstance(part, dict) and "requests" in part
            ]
    names: list[str] = []
    problems: list[Problem] = []
    for where, block in blocks:
        if not isinstance(block, dict):
            problems.append(Problem("error", f"{MANIFEST}: '{where}' must be an object"))
            continue
        names += [name for name in block if name not in names]
    return names, problems


def _whitelist(manifest: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, list[Problem]]:
    entries = manifest.get("whitelisted-domains")
    if entries is None:
        return None, []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        return None, [
            Problem("error", f"{MANIFEST}: 'whitelisted-domains' must be an array of strings")
        ]
    problems = [
        Problem("warning", f"{MANIFEST}: whitelisted-domains: {reason}")
        for entry in entries
        if (reason := check_placeholders(entry, roots=("iparam",)))
    ]
    return tuple(entries), problems


def load_request_config(root: str | Path, manifest: Mapping[str, Any]) -> RequestConfig:
    """Templates of ``<root>/config/requests.json``, declarations and whitelist of ``manifest``.

    ``manifest`` is the parsed manifest.json. Raises ``AppError`` for a file that cannot
    be used (bad JSON, a malformed template); other findings are ``problems``.
    """
    templates, problems = _load_templates(Path(root))
    declared, declared_problems = _declared(manifest)
    whitelist, whitelist_problems = _whitelist(manifest)
    problems += declared_problems + whitelist_problems
    problems += [
        Problem(
            "error",
            f"Request template '{name}' is declared in {MANIFEST} "
            f"but not defined in {REQUESTS_FILE}",
        )
        for name in declared
        if name not in templates
    ]
    problems += [
        Problem(
            "warning",
            f"Request template '{name}' is defined in {REQUESTS_FILE} "
            f"but not declared in {MANIFEST} (invoking it fails)",
        )
        for name in templates
        if name not in declared
    ]
    return RequestConfig(
        templates=templates,
        declared=frozenset(declared),
        whitelist=whitelist,
        problems=tuple(problems),
    )
