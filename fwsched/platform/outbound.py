"""SPEC §10's requests as asked for: arguments, placeholders, URL checks -> an ``Outbound``.

``RequestBuilder`` turns what a handler (or the library) passes to ``request.*`` into a
checked ``Outbound`` request, or raises the platform's ``RequestError``. Nothing here
sends anything or keeps state between calls: ``fwsched.platform.requests`` does the
sending, the limits and the records.

Decisions where the SPEC is silent (the platform's behaviour where it is known):
- ``invoke_template(name, d)`` with a dict ``d`` whose keys are only ``context`` and
  ``body`` is the JS spelling ``{"context": ..., "body": ...}``; any other dict is the
  context.
- The older style's options may also be given as keyword arguments, and as
  ``max_attempts``/``retry_delay``; ``staticIP``, ``isOAuth``, ``cache`` and ``ttl`` are
  accepted and ignored; any other option, a bad argument type, ``body`` and ``json``
  together, or ``maxAttempts``/``retryDelay`` out of range are ``RequestError`` 400.
- The older style fills the URL and every string of the options (``json`` included)
  with iparams; it has no ``context``. The body given to ``invoke_template`` is sent as
  it is, not filled.
- A dict/list body (``json``, or a template's dict body) is sent as JSON with
  ``content-type: application/json`` unless the headers set a content type.
- Query values of a template are escaped as JavaScript's ``encodeURIComponent`` does.
- Strict mode checks a template's URL for HTTPS, IP and FQDN too (the platform checks
  templates when the app is uploaded); ``whitelisted-domains`` applies to the older
  style only (templates are platform 3.0's replacement for it); an empty list allows
  nothing. Relaxed mode skips all of these.
- Refusals by the simulated platform have ``errorSource: "PLATFORM"``, ``response`` =
  the message and ``attempts`` = the attempts made (0 when nothing was sent).
- The URL shown (records, messages) has every secure iparam masked: terms that read
  one (``****``, ``encode`` of one too) and its value wherever else it appears.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fwsched import jsonsafe
from fwsched.platform.templates import (
    MASK,
    METHODS,
    RequestConfig,
    check_retry_options,
    fill,
    fill_value,
)
from fwsched.sdk import RequestError

__all__ = [
    "IP_DISALLOWED",
    "MUST_BE_FQDN",
    "MUST_BE_HTTPS",
    "NOT_WHITELISTED",
    "PLAIN_METHODS",
    "TEMPLATE_METHODS",
    "Draft",
    "Outbound",
    "RequestBuilder",
    "bad",
    "refusal",
]

MUST_BE_HTTPS = "Invalid URL - Must be HTTPS"
IP_DISALLOWED = "Invalid URL - IP is disallowed"
MUST_BE_FQDN = "Invalid URL - Must be FQDN"
NOT_WHITELISTED = "This domain has not been whitelisted"

PLAIN_METHODS = {m.lower(): m for m in METHODS}
TEMPLATE_METHODS = ("invoke_template", "invokeTemplate")
_OPTIONS = ("headers", "body", "json", "maxAttempts", "retryDelay")
_IGNORED_OPTIONS = ("staticIP", "isOAuth", "cache", "ttl")
_ALIASES = {"max_attempts": "maxAttempts", "retry_delay": "retryDelay"}
_JS_TEMPLATE_KEYS = frozenset({"context", "body"})
# What JavaScript's encodeURIComponent leaves as it is, besides letters, digits and -_.~
_QUERY_SAFE = "!*'()"


def refusal(status: int, message: str, attempts: int = 0) -> RequestError:
    """A ``RequestError`` of the simulated platform (not of the service called)."""
    return RequestError(
        status, message, response=message, attempts=attempts, error_source="PLATFORM"
    )


def bad(message: str) -> RequestError:
    return refusal(400, message)


@dataclass(frozen=True)
class Outbound:
    """A request ready to go: ``url`` is sent, ``shown_url`` is displayed and stored."""

    method: str
    url: str
    shown_url: str
    headers: Mapping[str, str]
    body: bytes | None
    template: str | None = None
    max_attempts: int = 1
    retry_delay_ms: float = 0


class Draft:
    """What is known of a request so far, for its record if it is refused."""

    def __init__(self, method: str | None, url: str | None, template: str | None) -> None:
        self.method = method
        self.url = url
        self.template = template


def _with_json_type(headers: dict[str, str]) -> dict[str, str]:
    if not any(name.lower() == "content-type" for name in headers):
        headers["content-type"] = "application/json"
    return headers


def _body_bytes(body: Any, headers: dict[str, str]) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode("utf-8")
    _with_json_type(headers)
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


class RequestBuilder:
    """Builds checked ``Outbound`` requests for one app's templates, iparams and mode."""

    def __init__(
        self,
        config: RequestConfig,
        iparams: Mapping[str, Any],
        secure: Collection[str],
        *,
        strict: bool = True,
    ) -> None:
        self.config = config
        self.iparams = dict(iparams)
        self.secure = frozenset(secure)
        self.strict = strict
        values = {str(v) for k, v in self.iparams.items() if k in self.secure and str(v)}
        variants = {variant for v in values for variant in (v, quote(v, safe=_QUERY_SAFE))}
        self._secrets = tuple(sorted(variants, key=len, reverse=True))

    def template_call(self, args: Sequence[Any], kwargs: dict[str, Any], draft: Draft) -> Outbound:
        """``invoke_template(...)``; ``draft`` learns what is known as it goes."""
        name, context, body = _template_arguments(args, kwargs)
        draft.template = name
        return self._from_template(name, context, body, draft)

    def plain_call(
        self, method: str, args: Sequence[Any], kwargs: dict[str, Any], draft: Draft
    ) -> Outbound:
        """``get/post/put/patch/delete(url, options)``."""
        url, options = _plain_arguments(args, kwargs)
        draft.url = self.redact(url)
        return self._from_url(method, url, options, draft)

    def _fill(self, text: str, context: Mapping[str, Any] | None = None) -> tuple[str, str]:
        filled = fill(text, context=context, iparams=self.iparams, secure=self.secure)
        return filled.real, self.redact(filled.shown)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _from_template(self, name: str, context: Any, body: Any, draft: Draft) -> Outbound:
        template = self.config.template(name)
        if template is None:
            raise bad(f"Request template '{name}' is not declared")
        draft.method = template.method
        if context is not None and not isinstance(context, Mapping):
            raise bad(f"context must be an object, got {type(context).__name__}")
        if body is not None and not isinstance(body, str | dict | list):
            raise bad(f"body must be a string, an object or an array, got {type(body).__name__}")
        ctx = dict(context or {})
        protocol, _ = self._fill(template.protocol, ctx)
        host = self._fill(template.host, ctx)
        port = self._fill(template.port, ctx) if template.port is not None else ("", "")
        path = self._fill(template.path, ctx)
        headers: dict[str, str] = {}
        for key, value in template.headers.items():
            headers[key] = self._fill(value, ctx)[0]
        query = {key: self._fill(value, ctx) for key, value in template.query.items()}

        def build(index: int) -> str:
            netloc = host[index] + (f":{port[index]}" if port[index] else "")
            url = f"{protocol.lower()}://{netloc}{path[index]}"
            if query:
                pairs = {key: value[index] for key, value in query.items()}
                url += ("&" if "?" in url else "?") + urlencode(
                    pairs, quote_via=quote, safe=_QUERY_SAFE
                )
            return url

        url, shown = build(0), self.redact(build(1))
        draft.url = shown
        if self.strict:
            _check_url(url)
        return Outbound(
            method=template.method,
            url=url,
            shown_url=shown,
            headers=headers,
            body=_body_bytes(body, headers),
            template=name,
            max_attempts=template.max_attempts,
            retry_delay_ms=template.retry_delay_ms,
        )

    def _from_url(self, method: str, url: str, options: dict[str, Any], draft: Draft) -> Outbound:
        reason = check_retry_options(options.get("maxAttempts"), options.get("retryDelay"))
        if reason is not None:
            raise bad(reason)
        raw_headers = options.get("headers") or {}
        if not isinstance(raw_headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
            for k, v in raw_headers.items()
        ):
            raise bad("headers must be an object of strings")
        body = options.get("body")
        if body is not None and not isinstance(body, str):
            raise bad(f"body must be a string (use json for data), got {type(body).__name__}")
        if body is not None and options.get("json") is not None:
            raise bad("give either body or json, not both")
        real_url, shown_url = self._fill(url)
        draft.url = shown_url
        headers: dict[str, str] = fill_value(
            {k: str(v) for k, v in raw_headers.items()}, iparams=self.iparams, secure=self.secure
        )[0]
        payload: Any = None
        if body is not None:
            payload = self._fill(body)[0]
        elif options.get("json") is not None:
            payload = fill_value(options["json"], iparams=self.iparams, secure=self.secure)[0]
        if self.strict:
            _check_url(real_url)
            self._check_whitelist(real_url)
        return Outbound(
            method=method,
            url=real_url,
            shown_url=shown_url,
            headers=headers,
            body=_body_bytes(payload, headers),
            max_attempts=int(options.get("maxAttempts") or 1),
            retry_delay_ms=float(options.get("retryDelay") or 0),
        )

    def _check_whitelist(self, url: str) -> None:
        entries = self.config.whitelist
        if entries is None:
            return
        origin = _origin(url)
        for entry in entries:
            try:
                filled = fill(entry, iparams=self.iparams).real
            except RequestError:
                continue  # an entry that cannot be filled allows nothing
            if "://" not in filled:
                filled = "https://" + filled
            pattern = _origin(filled)
            if pattern and _wildcard(pattern).fullmatch(origin):
                return
        raise bad(NOT_WHITELISTED)


# -- arguments ----------------------------------------------------------------------------


def _template_arguments(
    args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[str, dict[str, Any] | None, Any]:
    unknown = [key for key in kwargs if key not in ("name", "context", "body")]
    if unknown:
        raise bad(f"invoke_template() got an unexpected argument '{unknown[0]}'")
    if len(args) > 3:
        raise bad(f"invoke_template() takes at most 3 arguments, got {len(args)}")
    values = dict(zip(("name", "context", "body"), args, strict=False))
    for key, value in kwargs.items():
        if key in values and values[key] is not None:
            raise bad(f"invoke_template() got two values for '{key}'")
        values[key] = value
    name = values.get("name")
    if not isinstance(name, str) or not name:
        raise bad(f"invoke_template() needs a template name, got {jsonsafe.shown(name)}")
    context: Any = values.get("context")
    body: Any = values.get("body")
    if body is None and _is_js_options(context):
        return name, context.get("context"), context.get("body")
    return name, context, body


def _is_js_options(value: Any) -> bool:
    """``{"context": ..., "body": ...}`` (either key, nothing else): the JS spelling."""
    return isinstance(value, Mapping) and bool(value) and set(value) <= _JS_TEMPLATE_KEYS


def _plain_arguments(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if len(args) > 2:
        raise bad(f"expected (url, options), got {len(args)} arguments")
    url = args[0] if args else kwargs.pop("url", None)
    if not isinstance(url, str) or not url:
        raise bad(f"the URL must be a non-empty string, got {jsonsafe.shown(url)}")
    options = args[1] if len(args) > 1 else None
    if options is not None and not isinstance(options, Mapping):
        raise bad(f"options must be an object, got {type(options).__name__}")
    merged: dict[str, Any] = {}
    for key, value in {**(options or {}), **kwargs}.items():
        key = _ALIASES.get(key, key)
        if key in _IGNORED_OPTIONS:
            continue
        if key not in _OPTIONS:
            raise bad(f"unknown option '{key}' (expected one of {', '.join(_OPTIONS)})")
        merged[key] = value
    return url, merged


# -- URLs ---------------------------------------------------------------------------------


def _check_url(url: str) -> None:
    """The platform's URL checks, in its order: HTTPS, not an IP, a fully qualified name."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise bad(MUST_BE_FQDN) from None
    if parts.scheme.lower() != "https":
        raise bad(MUST_BE_HTTPS)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise bad(IP_DISALLOWED)
    labels = host.rstrip(".").split(".")
    if len(labels) < 2 or not all(labels):
        raise bad(MUST_BE_FQDN)


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case ('' when it has none)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}".lower() if netloc else ""


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
