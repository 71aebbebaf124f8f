"""SPEC §10's ``request`` service: checks, limits and where each request goes.

``HttpService`` serves a handler's ``request.*`` calls (forwarded by the sandbox as
``call(method, args, kwargs)``) and the library's ``sim.http`` alike: it has the
request built and checked (``fwsched.platform.outbound``, from a template of
``fwsched.platform.templates`` or the older ``get/post/...(url, options)`` style),
applies the limits, and answers it with a stub (``fwsched.platform.stubs``), a live
call through httpx when ``network="live"``, or a refusal. Outbound HTTP is made here,
in the parent process, never in the sandbox. Every request is recorded, refused ones
too.

Decisions where the SPEC is silent (the platform's behaviour where it is known; how
arguments, placeholders and URL checks are judged is in ``fwsched.platform.outbound``):
- Retries: an attempt that cannot connect or times out, or answers 5xx, is retried
  while attempts are left, ``retryDelay`` ms apart (real time, through the injectable
  ``sleep``). 429 is not retried (the SPEC lists network errors and 5xx). Each attempt
  takes one answer of a stub with ``times``.
- Errors: a service answer of 400 or more is ``RequestError(status, "<status> <reason>")``
  with ``headers``, ``response``, ``attempts`` and ``errorSource: "APP"``; refusals by
  the simulated platform (checks, limits, no stub, no connection) have
  ``errorSource: "PLATFORM"``.
- Limits (strict mode): a body over 100 KB is refused before sending and a response
  over 6 MB after it, both ``RequestError`` 413; the rate limit counts calls (not
  attempts) that passed the checks, in a sliding minute of simulated time; its window
  (``rate_window``) is the caller's to keep across processes (the Simulator keeps it
  in the state, so one-shot commands share it).
- Redirects are not followed (a 3xx is an answer like any other). The 15 s per attempt
  bound the whole attempt, body included.
- A live answer's body is decoded with its charset (UTF-8 when it has none, undecodable
  bytes replaced).
- Records: ``url`` is shown with every secure iparam masked (``****``, also where a
  secret came in through ``encode``); a request refused before its URL was known has
  ``url`` None (older style: the URL as given, unfilled). ``duration_ms`` is real time,
  retries included, as an integer. ``answered_by`` is the last answer's source:
  "stub", "live" (a connection failure too) or "none".
- ``--record``: every live answer is appended as an exact-URL stub whose masked parts
  are ``*`` (so no secret is written and it still matches on replay); an answer cut at
  the 6 MB limit is not.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal

import httpx

from fwsched.platform.outbound import (
    PLAIN_METHODS,
    TEMPLATE_METHODS,
    Draft,
    Outbound,
    RequestBuilder,
    bad,
    refusal,
)
from fwsched.platform.stubs import Stub, StubRecorder, StubRegistry, make_stub
from fwsched.platform.templates import MASK, RequestConfig
from fwsched.sdk import RequestError

__all__ = [
    "BODY_LIMIT",
    "RATE_LIMIT",
    "RESPONSE_LIMIT",
    "TIMEOUT",
    "HttpService",
    "Network",
    "RequestError",
]

Network = Literal["offline", "live"]
NETWORKS = ("offline", "live")

TIMEOUT = 15.0  # seconds per attempt
BODY_LIMIT = 100 * 1024
RESPONSE_LIMIT = 6 * 1024 * 1024
RATE_LIMIT = 50
RATE_WINDOW = timedelta(minutes=1)

NO_CONNECTION = "Error in establishing connection"
RATE_LIMITED = f"Rate limit exceeded: {RATE_LIMIT} requests per minute"
BODY_TOO_LARGE = "Request body exceeds the limit of 100 KB"
RESPONSE_TOO_LARGE = "Response exceeds the limit of 6 MB"


def no_stub_message(method: str, url: str) -> str:
    return (
        f"No stub for {method} {url} "
        "(add one in fwsched.toml [[request.stubs]] or run with --network live)"
    )


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    text: str
    size: int
    by: Literal["stub", "live"]


class _NoConnection(Exception):
    pass


class HttpService:
    """``request`` for one app: ``call`` for handlers, ``stub``/``requests`` for ``sim.http``.

    ``now`` gives the simulated time (for the rate limit), ``sleep`` waits between
    attempts (inject a no-op in tests), ``client`` replaces the httpx client made on
    the first live call (closed by ``close`` only if made here).
    """

    def __init__(
        self,
        config: RequestConfig | None = None,
        *,
        iparams: Mapping[str, Any] | None = None,
        secure_iparams: Collection[str] = (),
        stubs: Iterable[Stub] = (),
        network: Network = "offline",
        record: str | Path | None = None,
        strict: bool = True,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = TIMEOUT,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if network not in NETWORKS:
            raise ValueError(f"network must be 'offline' or 'live', got {network!r}")
        self.network: Network = network
        self._builder = RequestBuilder(
            config or RequestConfig(), iparams or {}, secure_iparams, strict=strict
        )
        self._stubs = StubRegistry(stubs)
        self._recorder = StubRecorder(record) if record is not None else None
        self._now = now or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: deque[datetime] = deque()  # admissions the rate limit counts
        self.admissions = 0  # calls admitted so far: tells a caller the window changed
        self._log: list[dict[str, Any]] = []
        self._by_invocation: dict[Any, list[dict[str, Any]]] = {}

    # -- configuration ------------------------------------------------------------------

    @property
    def strict(self) -> bool:
        return self._builder.strict

    def reconfigure(
        self,
        *,
        config: RequestConfig | None = None,
        stubs: Iterable[Stub] | None = None,
        iparams: Mapping[str, Any] | None = None,
        secure_iparams: Collection[str] | None = None,
        strict: bool | None = None,
    ) -> None:
        """After a reload: new templates, toml/file stubs or iparams (code stubs stay);
        ``strict=False`` when the simulator turns relaxed."""
        old = self._builder
        if (
            config is None
            and secure_iparams is None
            and strict is None
            and (iparams is None or iparams == old.iparams)
        ):
            if stubs is None:
                return  # nothing changed (the common case: one run's iparams again)
        else:
            self._builder = RequestBuilder(
                old.config if config is None else config,
                old.iparams if iparams is None else iparams,
                old.secure if secure_iparams is None else secure_iparams,
                strict=old.strict if strict is None else strict,
            )
        if stubs is not None:
            self._stubs.replace_configured(stubs)

    def stub(
        self,
        template: str | None = None,
        method: str | None = None,
        url: str | None = None,
        status: int = 200,
        json: Any = None,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Stub:
        """Add a stub after those of fwsched.toml and the stubs file (``ValueError`` if bad)."""
        values: dict[str, Any] = {"status": status}
        given = {"template": template, "method": method, "url": url, "json": json, "body": body}
        values.update({k: v for k, v in given.items() if v is not None})
        if headers is not None:
            values["headers"] = headers
        if times is not None:
            values["times"] = times
        return self._stubs.add(make_stub(values, source="code"))

    @property
    def stubs(self) -> list[Stub]:
        return list(self._stubs)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request so far, in order, as ``sim.http.requests`` lists them."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    @property
    def rate_window(self) -> list[datetime]:
        """When the calls the rate limit still counts were admitted (simulated time), oldest
        first: what another process needs to go on counting (``restore_rate_window``)."""
        with self._lock:
            return list(self._sent)

    def restore_rate_window(self, admitted: Iterable[datetime]) -> None:
        """Count the calls an earlier process admitted: a one-shot command's predecessors
        share the app's 50 requests a simulated minute (older ones drop out as time moves)."""
        with self._lock:
            self._sent = deque(sorted(admitted)[-RATE_LIMIT:])

    def requests_for(self, invocation: Any) -> list[dict[str, Any]]:
        """The requests of one invocation (without copying the whole log at each one)."""
        with self._lock:
            return [dict(entry) for entry in self._by_invocation.get(invocation, ())]

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    def __enter__(self) -> HttpService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the calls ----------------------------------------------------------------------

    def call(
        self,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        invocation: Any = None,
    ) -> dict[str, Any]:
        """One ``request.<method>(*args, **kwargs)`` call, as a handler's proxy forwards it."""
        kwargs = dict(kwargs or {})
        if method in TEMPLATE_METHODS:
            return self._template_call(args, kwargs, invocation)
        if method in PLAIN_METHODS:
            return self._plain_call(PLAIN_METHODS[method], args, kwargs, invocation)
        expected = ", ".join((TEMPLATE_METHODS[0], *PLAIN_METHODS))
        raise bad(f"request.{method} is not a function (expected one of {expected})")

    def invoke_template(
        self,
        name: str,
        context: Any = None,
        body: Any = None,
        *,
        invocation: Any = None,
    ) -> dict[str, Any]:
        return self.call("invoke_template", (name, context, body), invocation=invocation)

    def get(
        self, url: str, options: Any = None, *, invocation: Any = None, **more: Any
    ) -> dict[str, Any]:
        return self.call("get", (url, options), more, invocation=invocation)

    def post(
        self, url: str, options: Any = None, *, invocation: Any = None, **more: Any
    ) -> dict[str, Any]:
        return self.call("post", (url, options), more, invocation=invocation)

    def put(
        self, url: str, options: Any = None, *, invocation: Any = None, **more: Any
    ) -> dict[str, Any]:
        return self.call("put", (url, options), more, invocation=invocation)

    def patch(
        self, url: str, options: Any = None, *, invocation: Any = None, **more: Any
    ) -> dict[str, Any]:
        return self.call("patch", (url, options), more, invocation=invocation)

    def delete(
        self, url: str, options: Any = None, *, invocation: Any = None, **more: Any
    ) -> dict[str, Any]:
        return self.call("delete", (url, options), more, invocation=invocation)

    def _template_call(
        self, args: Sequence[Any], kwargs: dict[str, Any], invocation: Any
    ) -> dict[str, Any]:
        draft = Draft(None, None, None)
        try:
            outbound = self._builder.template_call(args, kwargs, draft)
        except RequestError as err:
            self._record(draft, invocation, err.status, 0, self._clock(), "none")
            raise
        return self._send(outbound, invocation)

    def _plain_call(
        self, method: str, args: Sequence[Any], kwargs: dict[str, Any], invocation: Any
    ) -> dict[str, Any]:
        draft = Draft(method, None, None)
        try:
            outbound = self._builder.plain_call(method, args, kwargs, draft)
        except RequestError as err:
            self._record(draft, invocation, err.status, 0, self._clock(), "none")
            raise
        return self._send(outbound, invocation)

    # -- sending ------------------------------------------------------------------------

    def _admit(self, outbound: Outbound) -> None:
        """The limits that refuse a request before it is sent (strict mode only)."""
        if not self.strict:
            return
        if outbound.body is not None and len(outbound.body) > BODY_LIMIT:
            raise refusal(413, BODY_TOO_LARGE)
        now = self._now()
        with self._lock:
            while self._sent and self._sent[0] <= now - RATE_WINDOW:
                self._sent.popleft()
            if len(self._sent) >= RATE_LIMIT:
                raise refusal(429, RATE_LIMITED)
            self._sent.append(now)
            self.admissions += 1

    def _send(self, outbound: Outbound, invocation: Any) -> dict[str, Any]:
        started = self._clock()
        draft = Draft(outbound.method, outbound.shown_url, outbound.template)
        try:
            self._admit(outbound)
        except RequestError as err:
            self._record(draft, invocation, err.status, 0, started, "none")
            raise
        attempts = 0
        while True:
            attempts += 1
            try:
                answer = self._attempt(outbound)
            except _NoConnection:
                if attempts < outbound.max_attempts:
                    self._wait(outbound)
                    continue
                self._record(draft, invocation, 502, attempts, started, "live")
                raise refusal(502, NO_CONNECTION, attempts) from None
            if answer is None:
                attempts -= 1
                self._record(draft, invocation, 502, attempts, started, "none")
                raise refusal(502, no_stub_message(outbound.method, outbound.shown_url), attempts)
            retry = answer.status >= 500 and attempts < outbound.max_attempts
            cut = self.strict and answer.size > RESPONSE_LIMIT  # the text is not all of it
            if answer.by == "live" and self._recorder is not None and not cut:
                self._recorder.record(
                    outbound.method,
                    outbound.shown_url.replace(MASK, "*"),
                    answer.status,
                    answer.headers,
                    answer.text,
                    retried=retry,
                )
            if not retry:
                break
            self._wait(outbound)
        if cut:
            self._record(draft, invocation, 413, attempts, started, answer.by)
            raise refusal(413, RESPONSE_TOO_LARGE, attempts)
        self._record(draft, invocation, answer.status, attempts, started, answer.by)
        if answer.status >= 400:
            raise RequestError(
                answer.status,
                _status_text(answer.status),
                headers=answer.headers,
                response=answer.text,
                attempts=attempts,
                error_source="APP",
            )
        return {
            "status": answer.status,
            "headers": answer.headers,
            "response": answer.text,
            "attempts": attempts,
        }

    def _wait(self, outbound: Outbound) -> None:
        if outbound.retry_delay_ms > 0:
            self._sleep(outbound.retry_delay_ms / 1000)

    def _attempt(self, outbound: Outbound) -> _Answer | None:
        """One attempt's answer; None when no stub answers offline."""
        stub = self._stubs.answer(outbound.method, outbound.url, outbound.template)
        if stub is not None:
            text = stub.response_text()
            return _Answer(
                stub.status, stub.response_headers(), text, len(text.encode("utf-8")), "stub"
            )
        if self.network != "live":
            return None
        return self._live(outbound)

    def _live(self, outbound: Outbound) -> _Answer:
        """One attempt on the network; ``_NoConnection`` if it fails or takes too long.

        httpx's timeout bounds each network operation; the loop bounds the whole body.
        """
        deadline = self._clock() + self._timeout
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self._timeout, follow_redirects=False)
            client = self._client
        try:
            with client.stream(
                outbound.method,
                outbound.url,
                headers=dict(outbound.headers),
                content=outbound.body,
                timeout=self._timeout,
                follow_redirects=False,
            ) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    if self._clock() > deadline:
                        raise _NoConnection("the answer took longer than the timeout")
                    size += len(chunk)
                    if self.strict and size > RESPONSE_LIMIT:
                        break
                    chunks.append(chunk)
                raw = b"".join(chunks)
                try:
                    text = raw.decode(response.encoding or "utf-8", errors="replace")
                except LookupError:
                    text = raw.decode("utf-8", errors="replace")
                return _Answer(response.status_code, dict(response.headers), text, size, "live")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _NoConnection(str(exc)) from exc

    def _record(
        self,
        draft: Draft,
        invocation: Any,
        status: int,
        attempts: int,
        started: float,
        by: str,
    ) -> None:
        entry = {
            "invocation": invocation,
            "method": draft.method,
            "url": draft.url,
            "template": draft.template,
            "status": status,
            "attempts": attempts,
            "duration_ms": max(0, round((self._clock() - started) * 1000)),
            "answered_by": by,
        }
        with self._lock:
            self._log.append(entry)
            self._by_invocation.setdefault(invocation, []).append(entry)


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
