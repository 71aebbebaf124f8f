"""SPEC §10's request service on its own: templates, placeholders, stubs, live calls, limits."""

from __future__ import annotations

import base64
import functools
import json
import pickle
import socket
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from fwsched.errors import AppError
from fwsched.platform.jsonfile import json_member_positions
from fwsched.platform.requests import HttpService, no_stub_message
from fwsched.platform.stubs import StubRecorder, load_stubs
from fwsched.platform.templates import (
    SUBSTITUTION_ERROR,
    RequestConfig,
    fill,
    load_request_config,
)
from fwsched.sdk import RequestError

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
IPARAMS = {"domain": "acme.example.com", "api_key": "s3cr3t-KEY", "region": "eu"}
SECURE = ("api_key",)
MANIFEST: dict[str, Any] = {"modules": {"common": {"requests": {"getTasks": {}, "postTask": {}}}}}
TEMPLATES: dict[str, Any] = {
    "getTasks": {
        "schema": {
            "method": "GET",
            "host": "<%= iparam.domain %>",
            "path": "/api/tasks",
            "headers": {"Authorization": "Basic <%= encode(iparam.api_key + ':X') %>"},
            "query": {"since": "<%= context.since %>"},
        },
        "options": {"maxAttempts": 3, "retryDelay": 500},
    },
    "postTask": {"schema": {"method": "post", "host": "api.example.com", "path": "/tasks"}},
}


# -- helpers ------------------------------------------------------------------------------


class Clock:
    """The simulated now, moved by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def write_app(root: Path, templates: Any = TEMPLATES, raw: str | None = None) -> Path:
    (root / "config").mkdir(parents=True, exist_ok=True)
    text = raw if raw is not None else json.dumps(templates, indent=2)
    (root / "config" / "requests.json").write_text(text)
    return root


@pytest.fixture
def config(tmp_path: Path) -> RequestConfig:
    return load_request_config(write_app(tmp_path), MANIFEST)


Make = Callable[..., HttpService]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(config: RequestConfig, sleeps: list[float], clock: Clock) -> Iterator[Make]:
    """``make(**overrides)`` -> an HttpService with the test's config, closed afterwards."""
    made: list[HttpService] = []

    def build(**overrides: Any) -> HttpService:
        options: dict[str, Any] = {
            "config": config,
            "iparams": IPARAMS,
            "secure_iparams": SECURE,
            "now": clock,
            "sleep": sleeps.append,
            "timeout": 5.0,
        }
        options.update(overrides)
        service = HttpService(**options)
        made.append(service)
        return service

    yield build
    for service in made:
        service.close()


def refused(call: Callable[[], Any]) -> RequestError:
    with pytest.raises(RequestError) as info:
        call()
    return info.value


# -- a local HTTP server ------------------------------------------------------------------


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) is no news


class Server:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.closed = False
        self.httpd = QuietServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                path = self.path.split("?")[0]
                with server.lock:
                    server.hits[path] = server.hits.get(path, 0) + 1
                    hits = server.hits[path]
                    server.seen.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "body": body,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                        }
                    )
                status, payload, kind = 200, b"", "application/json"
                if path == "/echo":
                    payload = json.dumps(
                        {"method": self.command, "path": self.path, "body": body}
                    ).encode()
                elif path == "/flaky":
                    status = 503 if hits <= 2 else 200
                    payload = b'{"ok": %d}' % hits
                elif path.startswith("/status/"):
                    status = int(path.rsplit("/", 1)[1])
                    payload, kind = b"nope", "text/plain"
                elif path == "/big":
                    payload, kind = b"x" * (6 * 1024 * 1024 + 1), "text/plain"
                elif path == "/slow":
                    time.sleep(1.0)
                    payload = b"{}"
                elif path == "/drip":  # each byte in time, the whole too slow
                    self.send_response(200)
                    self.send_header("content-length", "20")
                    self.end_headers()
                    for _ in range(20):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("x-served-by", "test")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- placeholders -------------------------------------------------------------------------


CTX = {
    "since": "2026-01-01",
    "n": 5,
    "flag": True,
    "none": None,
    "f": 1.5,
    "obj": {"a": [1]},
    "user": {"name": "ann", "tags": ["x"]},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("<%= context.since %>", "2026-01-01"),
        ("<%=context.since%>", "2026-01-01"),
        ("a=<%= context.n %>&b=<%= context.flag %>", "a=5&b=true"),
        ("<%= context.none %>|<%= context.f %>", "null|1.5"),
        ("<%= context.obj %>", '{"a":[1]}'),
        ("<%= context.user.name %>", "ann"),
        ("<%= iparam.domain %>", "acme.example.com"),
        ("<%= 'quoted' %>-<%= \"double\" %>", "quoted-double"),
        ("<%= 'it\\'s' %>", "it's"),
        ("<%= encode('user:pw') %>", base64.b64encode(b"user:pw").decode()),
        ("<%= encode(iparam.api_key + ':X') %>", base64.b64encode(b"s3cr3t-KEY:X").decode()),
        ("<%= context.user.name + '@' + iparam.domain %>", "ann@acme.example.com"),
        ("<%= encode(encode('a')) %>", base64.b64encode(base64.b64encode(b"a")).decode()),
        ("<%= encode('é') %>", base64.b64encode("é".encode()).decode()),
    ],
)
def test_placeholders_fill_every_form(text: str, expected: str) -> None:
    assert fill(text, context=CTX, iparams=IPARAMS).real == expected


@pytest.mark.parametrize(
    "text",
    [
        "<%= context.missing %>",
        "<%= context.user.name.first %>",
        "<%= iparam.nope %>",
        "<%= context %>",
        "<%= foo.bar %>",
        "<%= access_token %>",
        "<%= 1 + 2 %>",
        "<%= context.n - 1 %>",
        "<%= context['since'] %>",
        "<%= JSON.stringify(context) %>",
        "<%= encode(context.since %>",
        "<%= encode %>",
        "<%= 'unclosed %>",
        "<%= context.since + %>",
        "<%= %>",
        "<%= context.since",
    ],
)
def test_anything_else_is_a_substitution_error(text: str) -> None:
    err = refused(lambda: fill(text, context=CTX, iparams=IPARAMS))
    assert (err.status, err.message, str(err)) == (400, SUBSTITUTION_ERROR, SUBSTITUTION_ERROR)


def test_shown_values_mask_secure_iparams_even_encoded() -> None:
    filled = fill(
        "k=<%= iparam.api_key %>;b=<%= encode(iparam.api_key + ':X') %>;d=<%= iparam.domain %>"
        ";e=<%= encode('open') %>",
        iparams=IPARAMS,
        secure=SECURE,
    )
    assert "s3cr3t" in filled.real
    assert (
        filled.shown == "k=****;b=****;d=acme.example.com;e=" + base64.b64encode(b"open").decode()
    )


# -- templates and their declarations -----------------------------------------------------


def test_templates_load_with_defaults_and_declarations(config: RequestConfig) -> None:
    template = config.template("postTask")
    assert template is not None
    assert (template.method, template.protocol, template.path, template.max_attempts) == (
        "POST",
        "https",
        "/tasks",
        1,
    )
    assert config.template("getTasks") is not None
    assert config.template("getTasks").retry_delay_ms == 500  # type: ignore[union-attr]
    assert config.declared == {"getTasks", "postTask"}
    assert config.whitelist is None
    assert config.problems == ()


def test_declarations_come_from_every_manifest_shape(tmp_path: Path) -> None:
    manifest = {
        "requests": {"a": {}},
        "product": {"freshdesk": {"requests": {"b": {}}}},
        "modules": {"common": {"requests": {"c": {}}}},
    }
    templates = {n: {"schema": {"method": "GET", "host": "x.example.com"}} for n in "abcd"}
    config = load_request_config(write_app(tmp_path, templates), manifest)
    assert config.declared == {"a", "b", "c"}
    assert [(p.severity, p.message) for p in config.problems] == [
        (
            "warning",
            "Request template 'd' is defined in config/requests.json but not declared "
            "in manifest.json (invoking it fails)",
        ),
    ]


def test_missing_requests_json_means_no_templates(tmp_path: Path) -> None:
    config = load_request_config(tmp_path, MANIFEST)
    assert config.templates == {}
    assert [p.message for p in config.problems] == [
        "Request template 'getTasks' is declared in manifest.json but not defined in "
        "config/requests.json",
        "Request template 'postTask' is declared in manifest.json but not defined in "
        "config/requests.json",
    ]


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    write_app(tmp_path, raw='{\n  "getTasks": {\n    "schema": {,}\n  }\n}')
    with pytest.raises(AppError) as info:
        load_request_config(tmp_path, MANIFEST)
    assert str(info.value) == (
        "config/requests.json: invalid JSON at line 3 column 16: "
        "Expecting property name enclosed in double quotes"
    )


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ([], "expected an object with 'schema', got an array"),
        ({"options": {}}, "'schema' must be an object, got null"),
        (
            {"schema": {"host": "a.example.com"}},
            "schema.method must be one of GET, POST, PUT, PATCH, DELETE, got None",
        ),
        (
            {"schema": {"method": "FETCH", "host": "a.example.com"}},
            "schema.method must be one of GET, POST, PUT, PATCH, DELETE, got 'FETCH'",
        ),
        ({"schema": {"method": "GET"}}, "schema.host must be a non-empty string, got None"),
        (
            {"schema": {"method": "GET", "host": "a.b", "protocol": "ftp"}},
            'schema.protocol must be "https" (or "http"), got \'ftp\'',
        ),
        (
            {"schema": {"method": "GET", "host": "a.b", "path": "api"}},
            "schema.path must be a string starting with '/', got 'api'",
        ),
        (
            {"schema": {"method": "GET", "host": "a.b", "headers": {"X": {"y": 1}}}},
            "schema.headers.X must be a string, got an object",
        ),
        (
            {"schema": {"method": "GET", "host": "a.b", "query": []}},
            "schema.query must be an object, got an array",
        ),
        (
            {"schema": {"method": "GET", "host": "a.b"}, "options": {"maxAttempts": 6}},
            "options.maxAttempts must be an integer from 1 to 5, got 6",
        ),
        (
            {"schema": {"method": "GET", "host": "a.b"}, "options": {"retryDelay": 1501}},
            "options.retryDelay must be 0 to 1500 milliseconds, got 1501",
        ),
    ],
)
def test_a_malformed_template_names_it_with_line_and_column(
    tmp_path: Path, entry: Any, reason: str
) -> None:
    write_app(
        tmp_path,
        raw='{\n  "ok": {"schema": {"method": "GET", "host": "a.b"}},\n'
        f'  "bad": {json.dumps(entry)}\n}}',
    )
    with pytest.raises(AppError) as info:
        load_request_config(tmp_path, {"requests": {"ok": {}, "bad": {}}})
    assert str(info.value) == f"config/requests.json: template 'bad' at line 3 column 3: {reason}"


def test_requests_json_must_be_an_object(tmp_path: Path) -> None:
    write_app(tmp_path, raw="[]")
    with pytest.raises(
        AppError, match=r"^config/requests.json: expected a JSON object of templates, got an array$"
    ):
        load_request_config(tmp_path, MANIFEST)


def test_template_warnings(tmp_path: Path) -> None:
    templates = {
        "t": {
            "schema": {
                "method": "GET",
                "host": "a.example.com",
                "body": "x",
                "path": "/<%= context.id + %>",
            },
            "options": {"oauth": "google", "cache": True},
            "extra": 1,
        }
    }
    config = load_request_config(write_app(tmp_path, templates), {"requests": {"t": {}}})
    where = "config/requests.json: template 't' at line 2 column 3"
    assert [(p.severity, p.message) for p in config.problems] == [
        ("warning", f"{where}: unknown key 'extra' (ignored)"),
        ("warning", f"{where}: unknown key 'schema.body' (ignored)"),
        ("warning", f"{where}: unknown key 'options.cache' (ignored)"),
        (
            "warning",
            f"{where}: options.oauth is not simulated: <%= access_token %> cannot be filled",
        ),
        (
            "warning",
            f"{where}: '/<%= context.id + %>' has a placeholder that can never be filled "
            "(expected a name at '')",
        ),
    ]


def test_member_positions_of_objects_and_arrays() -> None:
    assert json_member_positions('{"a": 1,\n "b": {"c": [1, 2]}}') == {"a": (1, 2), "b": (2, 2)}
    assert json_member_positions('[\n  {"x": 1},\n  2\n]') == {0: (2, 3), 1: (3, 3)}
    assert json_member_positions("[]") == {}


# -- stub definitions ---------------------------------------------------------------------


def toml_table(text: str) -> Any:
    return tomllib.loads(text).get("request")


def test_stubs_come_from_toml_then_the_stubs_file(tmp_path: Path) -> None:
    (tmp_path / "stubs.json").write_text(
        json.dumps([{"url": "https://a.example.com/*", "json": {"from": "file"}}])
    )
    table = toml_table(
        """
        [request]
        stubs_file = "stubs.json"
        [[request.stubs]]
        template = "getTasks"
        json = {tasks = []}
        times = 1
        [[request.stubs]]
        method = "post"
        url = "https://a.example.com/x"
        status = 201
        body = "made"
        headers = {x-count = 5}
        """.replace("\n        ", "\n")
    )
    stubs, problems = load_stubs(tmp_path, table)
    assert problems == []
    assert [s.to_dict() for s in stubs] == [
        {"template": "getTasks", "status": 200, "json": {"tasks": []}, "times": 1},
        {
            "method": "POST",
            "url": "https://a.example.com/x",
            "status": 201,
            "body": "made",
            "headers": {"x-count": "5"},
        },
        {"url": "https://a.example.com/*", "status": 200, "json": {"from": "file"}},
    ]
    assert [s.source for s in stubs] == [
        "fwsched.toml: [[request.stubs]] #1",
        "fwsched.toml: [[request.stubs]] #2",
        "stubs.json: stub 1 at line 1 column 2",
    ]


@pytest.mark.parametrize(
    ("stub", "reason"),
    [
        (
            {"url": "https://a.b/", "staus": 500},
            "unknown key 'staus' (expected one of template, method, url, status, json, body, "
            "headers, times)",
        ),
        ({"status": 200}, "a stub needs 'template' or 'url' to match requests"),
        (
            {"url": "https://a.b/", "status": 42},
            "status must be an HTTP status from 100 to 599, got 42",
        ),
        (
            {"url": "https://a.b/", "method": "FETCH"},
            "method must be one of GET, POST, PUT, PATCH, DELETE, got 'FETCH'",
        ),
        ({"url": "https://a.b/", "json": {}, "body": "x"}, "give either json or body, not both"),
        (
            {"url": "https://a.b/", "body": {"a": 1}},
            "body must be a string (use json for data), got an object",
        ),
        ({"url": "https://a.b/", "times": 0}, "times must be a positive integer, got 0"),
        ({"template": ""}, "template must be a template name, got ''"),
    ],
)
def test_a_malformed_stub_in_the_file_names_it_with_line_and_column(
    tmp_path: Path, stub: dict[str, Any], reason: str
) -> None:
    (tmp_path / "stubs.json").write_text(
        '[\n  {"url": "https://ok.example.com/"},\n  ' + json.dumps(stub) + "\n]"
    )
    with pytest.raises(AppError) as info:
        load_stubs(tmp_path, {"stubs_file": "stubs.json"})
    assert str(info.value) == f"stubs.json: stub 2 at line 3 column 3: {reason}"


def test_a_malformed_toml_stub_names_its_table(tmp_path: Path) -> None:
    with pytest.raises(AppError, match=r"^fwsched.toml: \[\[request.stubs\]\] #2: times must be"):
        load_stubs(
            tmp_path, {"stubs": [{"url": "https://a.b/"}, {"url": "https://a.b/", "times": -1}]}
        )


def test_stubs_file_errors_and_warnings(tmp_path: Path) -> None:
    (tmp_path / "stubs.json").write_text('[{"url": "https://a.b/"},\n  oops]')
    with pytest.raises(AppError) as info:
        load_stubs(tmp_path, {"stubs_file": "stubs.json"})
    assert str(info.value) == "stubs.json: invalid JSON at line 2 column 3: Expecting value"
    (tmp_path / "stubs.json").write_text('{"url": "x"}')
    with pytest.raises(AppError, match="expected a JSON array of stubs, got an object"):
        load_stubs(tmp_path, {"stubs_file": "stubs.json"})
    stubs, problems = load_stubs(tmp_path, {"stubs_file": "later.json", "network": "live"})
    assert stubs == []
    assert [p.message for p in problems] == [
        "fwsched.toml: unknown key 'network' in [request] (ignored)",
        "fwsched.toml: [request] stubs_file 'later.json' does not exist (no stubs from it)",
    ]
    assert load_stubs(tmp_path, None) == ([], [])


# -- templates through the service --------------------------------------------------------


def test_invoke_template_fills_the_template_and_a_stub_answers(make: Make) -> None:
    http = make()
    http.stub(template="getTasks", json={"tasks": [1]})
    result = http.invoke_template("getTasks", context={"since": "2026-01-01 10:00"}, invocation=7)
    assert result == {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "response": '{"tasks": [1]}',
        "attempts": 1,
    }
    assert http.requests == [
        {
            "invocation": 7,
            "method": "GET",
            "url": "https://acme.example.com/api/tasks?since=2026-01-01%2010%3A00",
            "template": "getTasks",
            "status": 200,
            "attempts": 1,
            "duration_ms": 0,
            "answered_by": "stub",
        }
    ]
    assert http.requests_for(7) == http.requests
    assert http.requests_for(8) == []


def test_js_spelling_and_positional_context(make: Make) -> None:
    http = make()
    http.stub(url="https://acme.example.com/api/tasks?since=a")
    http.stub(url="https://acme.example.com/api/tasks?since=b")
    http.stub(url="https://acme.example.com/api/tasks?since=c")
    assert http.call("invokeTemplate", ["getTasks", {"context": {"since": "a"}}])["status"] == 200
    assert http.call("invoke_template", ["getTasks", {"since": "b"}])["status"] == 200
    assert http.call("invoke_template", ["getTasks"], {"context": {"since": "c"}})["status"] == 200
    assert [r["url"].rsplit("=", 1)[1] for r in http.requests] == ["a", "b", "c"]


def test_an_undeclared_or_unknown_template_is_refused_and_recorded(
    tmp_path: Path, make: Make
) -> None:
    config = load_request_config(write_app(tmp_path), {"requests": {"getTasks": {}, "ghost": {}}})
    http = make(config=config)
    for name in ("postTask", "ghost", "nothing"):
        err = refused(functools.partial(http.invoke_template, name))
        assert (err.status, err.message) == (400, f"Request template '{name}' is not declared")
        assert err.to_dict() == {
            "status": 400,
            "message": f"Request template '{name}' is not declared",
            "headers": {},
            "response": f"Request template '{name}' is not declared",
            "attempts": 0,
            "errorSource": "PLATFORM",
        }
    assert [(r["template"], r["url"], r["status"], r["answered_by"]) for r in http.requests] == [
        ("postTask", None, 400, "none"),
        ("ghost", None, 400, "none"),
        ("nothing", None, 400, "none"),
    ]


def test_a_missing_context_value_is_a_substitution_error(make: Make) -> None:
    err = refused(lambda: make().invoke_template("getTasks", context={}))
    assert (err.status, err.message) == (400, SUBSTITUTION_ERROR)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ([], {}, "invoke_template() needs a template name, got None"),
        ([1], {}, "invoke_template() needs a template name, got 1"),
        (["getTasks", [1]], {}, "context must be an object, got list"),
        (["getTasks", None, 5], {}, "body must be a string, an object or an array, got int"),
        (["getTasks"], {"ctx": {}}, "invoke_template() got an unexpected argument 'ctx'"),
        (["a", None, None, None], {}, "invoke_template() takes at most 3 arguments, got 4"),
    ],
)
def test_bad_template_arguments(
    make: Make, args: list[Any], kwargs: dict[str, Any], message: str
) -> None:
    err = refused(lambda: make().call("invoke_template", args, kwargs))
    assert (err.status, err.message) == (400, message)


def test_template_url_checks_apply_in_strict_mode_only(tmp_path: Path, make: Make) -> None:
    templates = {
        "local": {
            "schema": {
                "method": "GET",
                "protocol": "http",
                "host": "127.0.0.1",
                "port": 8080,
                "path": "/x",
            }
        }
    }
    config = load_request_config(write_app(tmp_path, templates), {"requests": {"local": {}}})
    err = refused(lambda: make(config=config).invoke_template("local"))
    assert (err.status, err.message) == (400, "Invalid URL - Must be HTTPS")
    relaxed = make(config=config, strict=False)
    relaxed.stub(url="http://127.0.0.1:8080/x")
    assert relaxed.invoke_template("local")["status"] == 200


# -- the older style ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://api.example.com/x", "Invalid URL - Must be HTTPS"),
        ("ftp://api.example.com/x", "Invalid URL - Must be HTTPS"),
        ("api.example.com/x", "Invalid URL - Must be HTTPS"),
        ("https://10.0.0.1/x", "Invalid URL - IP is disallowed"),
        ("https://[::1]:8443/x", "Invalid URL - IP is disallowed"),
        ("https://localhost/x", "Invalid URL - Must be FQDN"),
        ("https:///x", "Invalid URL - Must be FQDN"),
        ("https://a..b/x", "Invalid URL - Must be FQDN"),
    ],
)
def test_url_checks(make: Make, url: str, message: str) -> None:
    http = make()
    http.stub(url="*")
    err = refused(lambda: http.get(url))
    assert (err.status, err.message, err.attempts, err.error_source) == (
        400,
        message,
        0,
        "PLATFORM",
    )
    assert http.requests[0]["answered_by"] == "none"
    assert http.requests[0]["status"] == 400
    relaxed = make(strict=False)
    relaxed.stub(url="*")
    assert relaxed.get(url)["status"] == 200


def test_whitelist_problems(tmp_path: Path) -> None:
    bad_entries = load_request_config(tmp_path, {"whitelisted-domains": "https://a.b"})
    assert [p.message for p in bad_entries.problems] == [
        "manifest.json: 'whitelisted-domains' must be an array of strings"
    ]
    config = load_request_config(tmp_path, {"whitelisted-domains": ["https://<%= context.d %>"]})
    assert [(p.severity, p.message) for p in config.problems] == [
        (
            "warning",
            "manifest.json: whitelisted-domains: '<%= context.d %>' reads context, "
            "which is not there",
        ),
    ]


def test_whitelisted_domains(tmp_path: Path, make: Make) -> None:
    manifest = {
        "whitelisted-domains": [
            "https://*.freshdesk.com",
            "https://<%= iparam.domain %>",
            "https://<%= iparam.missing %>.example.com",
        ]
    }
    http = make(config=load_request_config(tmp_path, manifest))
    http.stub(url="*")
    assert http.get("https://acme.freshdesk.com/api/v2/tickets")["status"] == 200
    assert http.get("https://acme.example.com/anything?x=1")["status"] == 200
    for url in (
        "https://other.example.com/",
        "https://freshdesk.com.evil.net/",
        "https://acme.example.com:8443/",
    ):
        err = refused(functools.partial(http.get, url))
        assert (err.status, err.message) == (400, "This domain has not been whitelisted")
    nothing = make(config=load_request_config(tmp_path, {"whitelisted-domains": []}))
    nothing.stub(url="*")
    assert refused(lambda: nothing.get("https://a.example.com/")).message == (
        "This domain has not been whitelisted"
    )
    relaxed = make(config=load_request_config(tmp_path, {"whitelisted-domains": []}), strict=False)
    relaxed.stub(url="*")
    assert relaxed.get("https://a.example.com/")["status"] == 200


def test_older_style_fills_url_headers_and_body(make: Make, server: Server) -> None:
    http = make(strict=False, network="live")
    base = server.base
    result = http.post(
        base + "/echo?d=<%= iparam.domain %>",
        {
            "headers": {"Authorization": "Basic <%= encode(iparam.api_key) %>", "X-N": 3},
            "body": "key=<%= iparam.region %>",
        },
    )
    assert json.loads(result["response"]) == {
        "method": "POST",
        "path": "/echo?d=acme.example.com",
        "body": "key=eu",
    }
    seen = server.seen[-1]["headers"]
    assert seen["authorization"] == "Basic " + base64.b64encode(b"s3cr3t-KEY").decode()
    assert seen["x-n"] == "3"
    http.put(base + "/echo", json={"k": "<%= iparam.domain %>", "n": [1]})
    assert json.loads(server.seen[-1]["body"]) == {"k": "acme.example.com", "n": [1]}
    assert server.seen[-1]["headers"]["content-type"] == "application/json"
    http.patch(
        base + "/echo", {"json": [1], "headers": {"Content-Type": "application/vnd.api+json"}}
    )
    assert server.seen[-1]["headers"]["content-type"] == "application/vnd.api+json"
    http.delete(base + "/echo", {"staticIP": True})
    assert [r["method"] for r in http.requests] == ["POST", "PUT", "PATCH", "DELETE"]


def test_template_body_is_sent_as_text_or_json(make: Make, server: Server, tmp_path: Path) -> None:
    port = server.base.rsplit(":", 1)[1]
    templates = {
        "t": {
            "schema": {
                "method": "POST",
                "protocol": "http",
                "host": "127.0.0.1",
                "port": port,
                "path": "/echo",
                "headers": {"X-Ctx": "<%= context.who %>"},
            }
        }
    }
    http = make(
        config=load_request_config(write_app(tmp_path, templates), {"requests": {"t": {}}}),
        strict=False,
        network="live",
    )
    http.invoke_template("t", context={"who": "ann"}, body="<%= iparam.domain %> stays")
    assert server.seen[-1]["body"] == "<%= iparam.domain %> stays"
    assert server.seen[-1]["headers"]["x-ctx"] == "ann"
    http.invoke_template("t", {"context": {"who": "bob"}, "body": {"a": 1}})
    assert json.loads(server.seen[-1]["body"]) == {"a": 1}
    assert server.seen[-1]["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"maxAttempts": 0}, "maxAttempts must be an integer from 1 to 5, got 0"),
        ({"maxAttempts": 6}, "maxAttempts must be an integer from 1 to 5, got 6"),
        ({"maxAttempts": 2.5}, "maxAttempts must be an integer from 1 to 5, got 2.5"),
        ({"retryDelay": 1501}, "retryDelay must be 0 to 1500 milliseconds, got 1501"),
        ({"retryDelay": -1}, "retryDelay must be 0 to 1500 milliseconds, got -1"),
        (
            {"timeout": 3},
            "unknown option 'timeout' (expected one of headers, body, json, "
            "maxAttempts, retryDelay)",
        ),
        ({"body": "a", "json": {}}, "give either body or json, not both"),
        ({"body": {"a": 1}}, "body must be a string (use json for data), got dict"),
        ({"headers": {"a": None}}, "headers must be an object of strings"),
        ({"headers": "x"}, "headers must be an object of strings"),
    ],
)
def test_bad_options(make: Make, options: dict[str, Any], message: str) -> None:
    http = make()
    http.stub(url="*")
    err = refused(lambda: http.get("https://a.example.com/", options))
    assert (err.status, err.message) == (400, message)


def test_bad_plain_arguments_and_unknown_methods(make: Make) -> None:
    http = make()
    assert refused(lambda: http.call("get", [])).message == (
        "the URL must be a non-empty string, got None"
    )
    assert refused(lambda: http.call("get", ["https://a.b/", "x"])).message == (
        "options must be an object, got str"
    )
    assert refused(lambda: http.call("head", ["https://a.b/"])).message == (
        "request.head is not a function "
        "(expected one of invoke_template, get, post, put, patch, delete)"
    )


def test_options_as_keywords_and_snake_case(make: Make) -> None:
    http = make()
    http.stub(url="https://a.example.com/", status=503, times=1)
    http.stub(url="https://a.example.com/")
    result = http.call("get", ["https://a.example.com/"], {"max_attempts": 2, "retry_delay": 10})
    assert result["attempts"] == 2


# -- stub matching ------------------------------------------------------------------------


def test_first_match_in_definition_order_wins(tmp_path: Path, make: Make) -> None:
    (tmp_path / "stubs.json").write_text(
        json.dumps(
            [
                {"url": "https://api.example.com/*", "body": "file"},
                {"url": "https://api.example.com/only-file", "body": "file-only"},
            ]
        )
    )
    stubs, _ = load_stubs(
        tmp_path,
        {
            "stubs_file": "stubs.json",
            "stubs": [{"method": "GET", "url": "https://api.example.com/toml/*", "body": "toml"}],
        },
    )
    http = make(stubs=stubs)
    http.stub(url="https://api.example.com/*", body="code")
    http.stub(url="https://other.example.com/*", body="code-other")
    assert http.get("https://api.example.com/toml/1")["response"] == "toml"
    assert http.post("https://api.example.com/toml/1")["response"] == "file"  # toml is GET only
    assert http.get("https://api.example.com/only-file")["response"] == "file"
    assert http.get("https://other.example.com/x")["response"] == "code-other"
    assert [s.answered for s in http.stubs] == [1, 2, 0, 0, 1]


def test_matching_by_template_method_and_wildcards(make: Make) -> None:
    http = make()
    http.stub(template="postTask", url="https://api.example.com/other", body="never")
    http.stub(template="postTask", body="by template")
    http.stub(method="GET", url="https://*.example.com/a*c", body="wild")
    http.stub(url="https://x.example.com/literal.(x)+?", body="literal")
    assert http.invoke_template("postTask")["response"] == "by template"
    assert http.get("https://q.example.com/abbbc")["response"] == "wild"
    assert http.get("https://x.example.com/literal.(x)+?")["response"] == "literal"
    err = refused(lambda: http.get("https://q.example.com/abbbcd"))
    assert (err.status, err.message) == (
        502,
        "No stub for GET https://q.example.com/abbbcd (add one in fwsched.toml "
        "[[request.stubs]] or run with --network live)",
    )
    assert err.attempts == 0
    # a url stub answers template requests too; the template name is not needed
    http.stub(url="https://acme.example.com/api/tasks?since=1", body="by url")
    assert http.invoke_template("getTasks", {"since": 1})["response"] == "by url"


def test_times_limits_the_answers_then_the_next_match_answers(make: Make) -> None:
    http = make()
    http.stub(url="https://a.example.com/x", body="first", times=2)
    http.stub(url="https://a.example.com/*", body="then")
    assert [http.get("https://a.example.com/x")["response"] for _ in range(3)] == [
        "first",
        "first",
        "then",
    ]
    only = make()
    only.stub(url="https://a.example.com/x", times=1)
    only.get("https://a.example.com/x")
    err = refused(lambda: only.get("https://a.example.com/x"))
    assert err.message == no_stub_message("GET", "https://a.example.com/x")
    assert only.requests[-1]["answered_by"] == "none"
    assert only.requests[-1]["status"] == 502


def test_bad_code_stubs_raise_value_error(make: Make) -> None:
    with pytest.raises(ValueError, match="a stub needs 'template' or 'url'"):
        make().stub(method="GET")
    with pytest.raises(ValueError, match="status must be an HTTP status"):
        make().stub(url="*", status=700)


def test_stub_headers_and_json_content_type(make: Make) -> None:
    http = make()
    http.stub(url="https://a.example.com/j", json=[1], headers={"Content-Type": "text/x"})
    http.stub(url="https://a.example.com/b", body="hi", headers={"x-a": "1"})
    assert http.get("https://a.example.com/j")["headers"] == {"Content-Type": "text/x"}
    assert http.get("https://a.example.com/b") == {
        "status": 200,
        "headers": {"x-a": "1"},
        "response": "hi",
        "attempts": 1,
    }


# -- error shapes and retries -------------------------------------------------------------


def test_a_status_of_400_or_more_raises_with_the_answer(make: Make) -> None:
    http = make()
    http.stub(
        url="https://a.example.com/missing",
        status=404,
        json={"error": "no"},
        headers={"x-req": "9"},
    )
    err = refused(lambda: http.get("https://a.example.com/missing"))
    assert (err.status, err.message, str(err)) == (404, "404 Not Found", "404 Not Found")
    assert err.headers == {"x-req": "9", "content-type": "application/json"}
    assert err.response == '{"error": "no"}'
    assert err.attempts == 1
    assert err.to_dict() == {
        "status": 404,
        "message": "404 Not Found",
        "headers": {"x-req": "9", "content-type": "application/json"},
        "response": '{"error": "no"}',
        "attempts": 1,
        "errorSource": "APP",
    }
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, RequestError)
    assert again.to_dict() == err.to_dict()
    assert RequestError.from_dict(err.to_dict()).to_dict() == err.to_dict()
    assert http.requests[-1]["status"] == 404
    assert http.requests[-1]["answered_by"] == "stub"
    http.stub(url="https://a.example.com/odd", status=499)
    assert refused(lambda: http.get("https://a.example.com/odd")).message == "499"


def test_5xx_is_retried_per_max_attempts_and_retry_delay(make: Make, sleeps: list[float]) -> None:
    http = make()
    http.stub(template="getTasks", status=503, times=2)
    http.stub(template="getTasks", json={"ok": True})
    result = http.invoke_template("getTasks", {"since": "x"})
    assert (result["status"], result["attempts"]) == (200, 3)
    assert sleeps == [0.5, 0.5]
    assert http.requests[-1]["attempts"] == 3


def test_retries_give_up_after_max_attempts(make: Make, sleeps: list[float]) -> None:
    http = make()
    http.stub(url="https://a.example.com/down", status=500)
    err = refused(lambda: http.get("https://a.example.com/down", {"maxAttempts": 4}))
    assert (err.status, err.attempts, err.error_source) == (500, 4, "APP")
    assert sleeps == []  # retryDelay 0: no wait
    assert http.requests[-1]["attempts"] == 4


def test_4xx_and_429_are_not_retried(make: Make) -> None:
    http = make()
    http.stub(url="https://a.example.com/busy", status=429, times=1)
    http.stub(url="https://a.example.com/busy")
    err = refused(lambda: http.get("https://a.example.com/busy", {"maxAttempts": 3}))
    assert (err.status, err.attempts) == (429, 1)


def test_no_stub_part_way_through_retries(make: Make) -> None:
    http = make()
    http.stub(url="https://a.example.com/x", status=502, times=1)
    err = refused(lambda: http.get("https://a.example.com/x", {"maxAttempts": 2}))
    assert (err.status, err.attempts) == (502, 1)
    assert err.message.startswith("No stub for GET https://a.example.com/x")


# -- live calls, recording, replay --------------------------------------------------------


def test_offline_never_calls_the_network(make: Make, server: Server) -> None:
    http = make(strict=False)
    err = refused(lambda: http.get(server.base + "/echo"))
    assert err.status == 502
    assert server.seen == []


def test_live_answers_and_errors(make: Make, server: Server) -> None:
    http = make(strict=False, network="live")
    result = http.get(server.base + "/echo?q=1")
    assert result["status"] == 200
    assert result["headers"]["x-served-by"] == "test"
    assert result["attempts"] == 1
    assert json.loads(result["response"])["path"] == "/echo?q=1"
    err = refused(lambda: http.get(server.base + "/status/404"))
    assert (err.status, err.response, err.error_source) == (404, "nope", "APP")
    assert err.headers["content-type"] == "text/plain"
    assert [r["answered_by"] for r in http.requests] == ["live", "live"]
    # a stub still wins over the network
    http.stub(url=server.base + "/echo*", body="stubbed")
    assert http.get(server.base + "/echo")["response"] == "stubbed"


def test_live_retries_5xx(make: Make, server: Server, sleeps: list[float]) -> None:
    http = make(strict=False, network="live")
    result = http.get(server.base + "/flaky", {"maxAttempts": 3, "retryDelay": 200})
    assert (result["status"], result["attempts"], result["response"]) == (200, 3, '{"ok": 3}')
    assert sleeps == [0.2, 0.2]
    assert server.hits["/flaky"] == 3


def test_no_connection_is_a_502_after_every_attempt(make: Make, sleeps: list[float]) -> None:
    http = make(strict=False, network="live")
    url = f"http://127.0.0.1:{closed_port()}/x"
    err = refused(lambda: http.get(url, {"maxAttempts": 2, "retryDelay": 100}))
    assert (err.status, err.message, err.attempts, err.error_source) == (
        502,
        "Error in establishing connection",
        2,
        "PLATFORM",
    )
    assert sleeps == [0.1]
    assert http.requests[-1] | {"duration_ms": 0} == {
        "invocation": None,
        "method": "GET",
        "url": url,
        "template": None,
        "status": 502,
        "attempts": 2,
        "duration_ms": 0,
        "answered_by": "live",
    }


def test_a_timeout_is_a_502(make: Make, server: Server) -> None:
    http = make(strict=False, network="live", timeout=0.2)
    started = time.monotonic()
    err = refused(lambda: http.get(server.base + "/slow"))
    assert (err.status, err.message) == (502, "Error in establishing connection")
    assert time.monotonic() - started < 1.0


def without_length(result: dict[str, Any]) -> dict[str, Any]:
    headers = {k: v for k, v in result["headers"].items() if k != "content-length"}
    return {**result, "headers": headers}


def test_the_timeout_bounds_the_whole_attempt(make: Make, server: Server) -> None:
    http = make(strict=False, network="live", timeout=0.3)
    started = time.monotonic()
    err = refused(lambda: http.get(server.base + "/drip"))
    assert (err.status, err.message) == (502, "Error in establishing connection")
    assert time.monotonic() - started < 0.9


def test_record_then_replay_offline(make: Make, server: Server, tmp_path: Path) -> None:
    port = server.base.rsplit(":", 1)[1]
    templates = {
        "t": {
            "schema": {
                "method": "GET",
                "protocol": "http",
                "host": "127.0.0.1",
                "port": port,
                "path": "/echo",
                "query": {"key": "<%= iparam.api_key %>", "d": "<%= context.d %>"},
            }
        }
    }
    config = load_request_config(write_app(tmp_path / "app", templates), {"requests": {"t": {}}})
    record = tmp_path / "app" / "recorded.json"
    live = make(config=config, strict=False, network="live", record=record)
    first = live.invoke_template("t", {"d": "1"})
    flaky = live.get(server.base + "/flaky", {"maxAttempts": 3})
    err = refused(lambda: live.get(server.base + "/status/500"))
    assert err.status == 500

    recorded = json.loads(record.read_text())
    assert not [r["url"] for r in recorded if "s3cr3t" in r["url"]]
    assert [(r["method"], r["url"], r["status"], r.get("times")) for r in recorded] == [
        ("GET", f"{server.base}/echo?key=*&d=1", 200, None),
        ("GET", f"{server.base}/flaky", 503, 1),
        ("GET", f"{server.base}/flaky", 503, 1),
        ("GET", f"{server.base}/flaky", 200, None),
        ("GET", f"{server.base}/status/500", 500, None),
    ]
    assert "content-length" not in recorded[0]["headers"]
    assert recorded[0]["headers"]["x-served-by"] == "test"

    server.close()  # the replay must not need it
    stubs, problems = load_stubs(tmp_path / "app", {"stubs_file": "recorded.json"})
    assert problems == []
    offline = make(config=config, stubs=stubs, strict=False)
    assert offline.invoke_template("t", {"d": "1"}) == without_length(first)
    assert offline.get(server.base + "/flaky", {"maxAttempts": 3}) == without_length(flaky)
    assert refused(lambda: offline.get(server.base + "/status/500")).status == 500
    assert {r["answered_by"] for r in offline.requests} == {"stub"}
    assert refused(lambda: offline.invoke_template("t", {"d": "2"})).status == 502


def test_recording_appends_to_an_existing_stubs_file(tmp_path: Path) -> None:
    path = tmp_path / "rec.json"
    path.write_text('[{"url": "https://a.example.com/", "body": "old"}]')
    recorder = StubRecorder(path)
    recorder.record("GET", "https://b.example.com/", 201, {"x": "1"}, "new")
    assert json.loads(path.read_text()) == [
        {"url": "https://a.example.com/", "body": "old"},
        {
            "method": "GET",
            "url": "https://b.example.com/",
            "status": 201,
            "headers": {"x": "1"},
            "body": "new",
        },
    ]
    path.write_text("not json")
    with pytest.raises(AppError, match="invalid JSON at line 1 column 1"):
        StubRecorder(path)


# -- limits -------------------------------------------------------------------------------


def test_body_limit(make: Make) -> None:
    http = make()
    http.stub(url="*")
    big = "x" * (100 * 1024 + 1)
    err = refused(lambda: http.post("https://a.example.com/", {"body": big}))
    assert (err.status, err.message, err.attempts) == (
        413,
        "Request body exceeds the limit of 100 KB",
        0,
    )
    assert http.requests[-1]["answered_by"] == "none"
    assert http.post("https://a.example.com/", {"body": big[:-1]})["status"] == 200
    relaxed = make(strict=False)
    relaxed.stub(url="*")
    assert relaxed.post("https://a.example.com/", {"body": big})["status"] == 200


def test_response_limit(make: Make, server: Server) -> None:
    http = make()
    http.stub(url="https://a.example.com/big", body="x" * (6 * 1024 * 1024 + 1))
    err = refused(lambda: http.get("https://a.example.com/big"))
    assert (err.status, err.message, err.attempts) == (413, "Response exceeds the limit of 6 MB", 1)
    assert http.requests[-1]["answered_by"] == "stub"
    relaxed = make(strict=False, network="live")
    assert len(relaxed.get(server.base + "/big")["response"]) == 6 * 1024 * 1024 + 1
    # strict mode stops reading a live answer past the limit
    chunks: list[bytes] = []

    def big(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            for _ in range(100):  # 100 MB if nothing stopped reading
                chunks.append(b"")
                yield b"x" * (1024 * 1024)

        return httpx.Response(200, content=body())

    with httpx.Client(transport=httpx.MockTransport(big)) as client:
        live = make(network="live", client=client)
        err = refused(lambda: live.get("https://big.example.com/"))
    assert (err.status, err.message) == (413, "Response exceeds the limit of 6 MB")
    assert len(chunks) <= 8
    assert live.requests[-1]["answered_by"] == "live"


def test_rate_limit_over_simulated_minutes(make: Make, clock: Clock) -> None:
    http = make()
    http.stub(url="*")
    for second in range(50):
        clock.now = T0 + timedelta(seconds=second)
        http.get("https://a.example.com/")
    err = refused(lambda: http.get("https://a.example.com/"))
    assert (err.status, err.message) == (429, "Rate limit exceeded: 50 requests per minute")
    assert http.requests[-1] | {"duration_ms": 0} == {
        "invocation": None,
        "method": "GET",
        "url": "https://a.example.com/",
        "template": None,
        "status": 429,
        "attempts": 0,
        "duration_ms": 0,
        "answered_by": "none",
    }
    clock.now = T0 + timedelta(seconds=60)  # the first request leaves the window
    http.get("https://a.example.com/")
    assert refused(lambda: http.get("https://a.example.com/")).status == 429
    clock.now = T0 + timedelta(minutes=5)
    for _ in range(50):
        http.get("https://a.example.com/")
    relaxed = make(strict=False)
    relaxed.stub(url="*")
    for _ in range(120):
        relaxed.get("https://a.example.com/")


def test_refused_requests_do_not_count_toward_the_rate_limit(make: Make) -> None:
    http = make()
    http.stub(url="*")
    for _ in range(60):
        refused(lambda: http.get("http://a.example.com/"))
    assert http.get("https://a.example.com/")["status"] == 200


# -- masking ------------------------------------------------------------------------------


def test_secure_iparams_are_masked_in_records_and_messages(tmp_path: Path, make: Make) -> None:
    templates = {
        "t": {
            "schema": {
                "method": "GET",
                "host": "api.example.com",
                "path": "/v1",
                "query": {
                    "key": "<%= iparam.api_key %>",
                    "b": "<%= encode(iparam.api_key) %>",
                    "c": "<%= context.copy %>",
                },
            }
        }
    }
    config = load_request_config(write_app(tmp_path, templates), {"requests": {"t": {}}})
    http = make(config=config)
    err = refused(lambda: http.invoke_template("t", {"copy": "s3cr3t-KEY"}))
    assert err.message == no_stub_message(
        "GET", "https://api.example.com/v1?key=****&b=****&c=****"
    )
    http.stub(template="t")
    http.invoke_template("t", {"copy": "x"})
    http.stub(url="*")
    http.get("https://api.example.com/q?k=<%= iparam.api_key %>&raw=s3cr3t-KEY")
    refused(lambda: http.get("http://api.example.com/q?k=<%= iparam.api_key %>"))
    refused(lambda: http.get("https://api.example.com/<%= context.x %>?k=s3cr3t-KEY"))
    urls = [r["url"] for r in http.requests]
    assert urls == [
        "https://api.example.com/v1?key=****&b=****&c=****",
        "https://api.example.com/v1?key=****&b=****&c=x",
        "https://api.example.com/q?k=****&raw=****",
        "http://api.example.com/q?k=****",
        "https://api.example.com/<%= context.x %>?k=****",
    ]
    assert "s3cr3t" not in json.dumps(http.requests)


def test_request_error_from_dict_defaults() -> None:
    err = RequestError.from_dict({"status": 502, "message": "x"})
    assert (err.headers, err.response, err.attempts, err.error_source) == ({}, None, 0, None)
    assert err.to_dict() == {
        "status": 502,
        "message": "x",
        "headers": {},
        "response": None,
        "attempts": 0,
    }
    assert repr(err) == "RequestError(status=502, message='x')"


def test_reconfigure_keeps_code_stubs(make: Make, tmp_path: Path) -> None:
    http = make(
        stubs=load_stubs(tmp_path, {"stubs": [{"url": "https://a.example.com/", "body": "toml"}]})[
            0
        ]
    )
    http.stub(url="https://a.example.com/*", body="code")
    assert http.get("https://a.example.com/")["response"] == "toml"
    http.reconfigure(stubs=[], iparams={"api_key": "new"})
    assert http.get("https://a.example.com/")["response"] == "code"
    http.get("https://a.example.com/?k=new")
    assert http.requests[-1]["url"] == "https://a.example.com/?k=****"


def test_network_must_be_known() -> None:
    with pytest.raises(ValueError, match="network must be 'offline' or 'live'"):
        HttpService(network="online")  # type: ignore[arg-type]
