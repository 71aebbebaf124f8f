"""SPEC §10 end to end: a handler's ``request`` calls, answered by stubs or a local server.

Every request a handler makes goes through the simulator (never from the sandbox): stubs
from fwsched.toml, a stubs file and ``sim.http.stub`` answer it in that order; offline, an
unmatched one is refused with the exact message; ``network="live"`` sends it to a server
this file starts on 127.0.0.1 (never an outside address), and ``record=`` writes the
answers as stubs that a fresh offline simulator replays. Each request is recorded on its
invocation with secure iparams masked (``Invocation.requests``, ``fwsched show``, the state
file, the recorded stubs), and the strict limits apply until relaxed mode lifts them.
"""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import MakeApp

from fwsched import RequestError, Simulator
from fwsched.cli.root import cli

START = "2026-01-05T09:00:00Z"
SECRET = "s3cr3t-KEY-123"
NO_STUB = "No stub for {} (add one in fwsched.toml [[request.stubs]] or run with --network live)"

# Runs the calls listed in the payload's data and returns what each answered. A call is
# {"method", "args", "kwargs"}, optionally "body_bytes" (a body of that many bytes, too big
# for a schedule's data), "repeat" (times to make it) and "size_only" (answer the length).
SERVER = """
def run_calls(payload):
    answers = []
    for call in payload["data"]["calls"]:
        args = list(call.get("args", []))
        if "body_bytes" in call:
            args[1] = {**args[1], "body": "x" * call["body_bytes"]}
        method = getattr(request, call["method"])
        for _ in range(call.get("repeat", 1)):
            try:
                answer = method(*args, **call.get("kwargs", {}))
            except RequestError as err:
                answers.append({"error": err.status, "message": err.message, "str": str(err),
                                "attempts": err.attempts, "response": err.response})
                continue
            if call.get("size_only"):
                answers.append({"status": answer["status"], "size": len(answer["response"])})
            else:
                answers.append(answer)
    return answers

exports = {"onScheduledEventHandler": run_calls}
"""
MANIFEST = {
    "events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}},
    "requests": {"getTasks": {}, "local": {}},
}
IPARAMS = {"api_key": {"type": "text", "secure": True}, "domain": {"type": "text"}}
AUTH = "Basic <%= encode(iparam.api_key + ':X') %>"


def templates(port: int) -> dict[str, Any]:
    return {
        "getTasks": {
            "schema": {
                "method": "GET",
                "host": "<%= iparam.domain %>",
                "path": "/api/tasks",
                "headers": {"Authorization": AUTH},
                "query": {"since": "<%= context.since %>", "key": "<%= iparam.api_key %>"},
            }
        },
        "local": {
            "schema": {
                "method": "GET",
                "protocol": "http",
                "host": "127.0.0.1",
                "port": port,
                "path": "/tasks",
                "headers": {"Authorization": AUTH},
                "query": {"key": "<%= iparam.api_key %>"},
            }
        },
    }


TASKS_URL = "https://acme.example.com/api/tasks?since=2026-01-01&key=****"


def make_http_app(make_app: MakeApp, toml: str = "", port: int = 9, name: str = "app") -> Path:
    app = make_app(
        SERVER,
        manifest=MANIFEST,
        iparams=IPARAMS,
        name=name,
        toml=f"""
        [simulator]
        start = "{START}"

        [iparams]
        api_key = "{SECRET}"
        domain = "acme.example.com"
        """
        + textwrap.dedent(toml),
    )
    (app / "config" / "requests.json").write_text(json.dumps(templates(port), indent=2))
    return app


def call(method: str, *args: Any, **extra: Any) -> dict[str, Any]:
    return {"method": method, "args": list(args), **extra}


def get_tasks(since: str = "2026-01-01") -> dict[str, Any]:
    return call("invoke_template", "getTasks", {"context": {"since": since}})


def run(sim: Simulator, *calls: dict[str, Any]) -> list[Any]:
    """Fire the handler with ``calls``; what each answered."""
    invocation = sim.trigger_payload({"calls": list(calls)})
    assert invocation.outcome == "ok", (invocation.error, invocation.traceback)
    answers: list[Any] = invocation.return_value
    return answers


def without_duration(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for request in requests:
        assert isinstance(request["duration_ms"], int) and request["duration_ms"] >= 0
    return [{k: v for k, v in r.items() if k != "duration_ms"} for r in requests]


# -- a local server -----------------------------------------------------------------------


class LocalServer:
    """An HTTP server on 127.0.0.1 in a thread; it remembers what it was asked."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            assert not self.thread.is_alive()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.seen.append(
                    {"path": self.path, "authorization": self.headers.get("authorization")}
                )
                path = self.path.split("?")[0]
                status, body = 200, json.dumps({"tasks": [{"id": 7}], "path": path}).encode()
                if path == "/missing":
                    status, body = 404, b"no such thing"
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("x-served-by", "local")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def server() -> Iterator[LocalServer]:
    running = LocalServer()
    yield running
    running.close()


# -- stubs --------------------------------------------------------------------------------


def test_a_toml_stub_answers_a_handlers_template_request(make_app: MakeApp) -> None:
    app = make_http_app(
        make_app,
        """
        [[request.stubs]]
        template = "getTasks"
        json = {tasks = [1, 2]}
        headers = {x-page = "1"}
        """,
    )
    with Simulator(app) as sim:
        invocation = sim.trigger_payload({"calls": [get_tasks()]})
        assert invocation.outcome == "ok", invocation.traceback
        assert invocation.return_value == [
            {
                "status": 200,
                "headers": {"x-page": "1", "content-type": "application/json"},
                "response": '{"tasks": [1, 2]}',
                "attempts": 1,
            }
        ]
        expected = {
            "invocation": invocation.id,
            "method": "GET",
            "url": TASKS_URL,
            "template": "getTasks",
            "status": 200,
            "attempts": 1,
            "answered_by": "stub",
        }
        assert without_duration(invocation.requests) == [expected]
        assert without_duration(sim.http.requests) == [expected]
        # the history holds the same record
        [stored] = sim.history()
        assert stored.requests == invocation.requests


def test_a_stubs_file_answers_by_method_and_url(make_app: MakeApp) -> None:
    app = make_http_app(make_app, '[request]\nstubs_file = "stubs.json"\n')
    (app / "stubs.json").write_text(
        json.dumps(
            [
                {"method": "POST", "url": "https://api.example.com/items/*", "status": 201},
                {"method": "GET", "url": "https://api.example.com/items/*", "body": "from file"},
            ]
        )
    )
    with Simulator(app) as sim:
        got = run(
            sim,
            call("get", "https://api.example.com/items/7?full=1"),
            call("post", "https://api.example.com/items/8", {"json": {"a": 1}}),
            call("put", "https://api.example.com/items/9"),
        )
        assert got[0]["response"] == "from file" and got[0]["status"] == 200
        assert got[1]["status"] == 201
        assert got[2]["error"] == 502
        assert got[2]["message"] == NO_STUB.format("PUT https://api.example.com/items/9")
        assert [r["answered_by"] for r in sim.http.requests] == ["stub", "stub", "none"]


def test_stubs_answer_in_order_toml_then_file_then_code(make_app: MakeApp) -> None:
    url = "https://api.example.com/order"
    app = make_http_app(
        make_app,
        f"""
        [request]
        stubs_file = "stubs.json"

        [[request.stubs]]
        url = "{url}"
        body = "toml"
        times = 1
        """,
    )
    (app / "stubs.json").write_text(json.dumps([{"url": url, "body": "file", "times": 1}]))
    with Simulator(app) as sim:
        sim.http.stub(url=url, body="code")
        sim.http.stub(url="https://api.example.com/*", body="code, later")
        got = run(sim, call("get", url, repeat=4), call("get", "https://api.example.com/x"))
        assert [answer["response"] for answer in got] == [
            "toml",
            "file",
            "code",
            "code",
            "code, later",
        ]


def test_a_code_stub_comes_after_the_toml_ones(make_app: MakeApp) -> None:
    app = make_http_app(
        make_app,
        """
        [[request.stubs]]
        template = "getTasks"
        body = "toml"
        """,
    )
    with Simulator(app) as sim:
        sim.http.stub(template="getTasks", body="code")
        sim.http.stub(method="GET", url="https://acme.example.com/api/tasks?*", body="url")
        assert [a["response"] for a in run(sim, get_tasks())] == ["toml"]
    with Simulator(make_http_app(make_app, name="bare")) as sim:
        sim.http.stub(method="GET", url="https://acme.example.com/api/tasks?*", status=503)
        [failed] = run(sim, get_tasks())
        assert (failed["error"], failed["message"]) == (503, "503 Service Unavailable")
        assert sim.http.requests[0]["status"] == 503


# -- offline refusal -----------------------------------------------------------------------


def test_offline_a_request_without_a_stub_is_refused_with_the_exact_message(
    make_app: MakeApp,
) -> None:
    with Simulator(make_http_app(make_app)) as sim:
        assert sim.network == "offline"
        got = run(sim, get_tasks(), call("delete", "https://api.example.com/a?b=1"))
        message = NO_STUB.format(f"GET {TASKS_URL}")
        assert got[0] == {
            "error": 502,
            "message": message,
            "str": message,
            "attempts": 0,
            "response": message,
        }
        assert got[1]["message"] == NO_STUB.format("DELETE https://api.example.com/a?b=1")
        [invocation] = sim.history()
        assert without_duration(invocation.requests) == [
            {
                "invocation": invocation.id,
                "method": "GET",
                "url": TASKS_URL,
                "template": "getTasks",
                "status": 502,
                "attempts": 0,
                "answered_by": "none",
            },
            {
                "invocation": invocation.id,
                "method": "DELETE",
                "url": "https://api.example.com/a?b=1",
                "template": None,
                "status": 502,
                "attempts": 0,
                "answered_by": "none",
            },
        ]


def test_an_uncaught_refusal_fails_the_handler_with_the_message(make_app: MakeApp) -> None:
    app = make_app(
        """
        def sync(payload):
            request.get("https://api.example.com/tasks")

        exports = {"onScheduledEventHandler": sync}
        """,
        toml=f'[simulator]\nstart = "{START}"\n',
    )
    with Simulator(app) as sim:
        invocation = sim.trigger_payload({})
        assert invocation.outcome == "error"
        assert invocation.error == "RequestError: " + NO_STUB.format(
            "GET https://api.example.com/tasks"
        )
        assert invocation.requests[0]["answered_by"] == "none"


# -- live, record, replay ------------------------------------------------------------------


def test_live_with_record_then_offline_replay(
    make_app: MakeApp, server: LocalServer, tmp_path: Path
) -> None:
    toml = '[request]\nstubs_file = "recorded.json"\n'
    app = make_http_app(make_app, toml, port=server.port)
    recorded = app / "recorded.json"
    calls = [
        call("invoke_template", "local"),
        call("get", server.base + "/items?key=<%= iparam.api_key %>"),
        call("get", server.base + "/missing"),
        call("get", server.base + "/stubbed"),
    ]
    with Simulator(app, network="live", record=recorded, strict=False) as sim:
        sim.http.stub(url=server.base + "/stubbed", body="a stub wins over the network")
        live = run(sim, *calls)
        assert [r["answered_by"] for r in sim.http.requests] == ["live", "live", "live", "stub"]
    assert [a.get("status", a.get("error")) for a in live] == [200, 200, 404, 200]
    assert json.loads(live[0]["response"]) == {"tasks": [{"id": 7}], "path": "/tasks"}
    assert live[0]["headers"]["x-served-by"] == "local"
    assert live[2]["response"] == "no such thing"
    # the server got the real secret; the record and the stubs file have none of it
    assert [seen["path"] for seen in server.seen] == [
        f"/tasks?key={SECRET}",
        f"/items?key={SECRET}",
        "/missing",
    ]
    assert server.seen[0]["authorization"].startswith("Basic ")
    text = recorded.read_text()
    assert SECRET not in text
    assert [(r["method"], r["url"], r["status"]) for r in json.loads(text)] == [
        ("GET", f"{server.base}/tasks?key=*", 200),
        ("GET", f"{server.base}/items?key=*", 200),
        ("GET", f"{server.base}/missing", 404),
    ]

    server.close()  # the replay needs no network
    with Simulator(app, strict=False) as sim:
        sim.http.stub(url=server.base + "/stubbed", body="a stub wins over the network")
        replayed = run(sim, *calls)
        assert [r["answered_by"] for r in sim.http.requests] == ["stub"] * 4
    for before, after in zip(live, replayed, strict=True):
        if "headers" in before:  # the transport's own headers are not recorded
            before["headers"].pop("content-length", None)
            after["headers"].pop("content-length", None)
    assert replayed == live


def test_a_live_request_that_cannot_connect_is_a_request_error(
    make_app: MakeApp, server: LocalServer
) -> None:
    base = server.base
    server.close()  # nothing listens on its port now
    with Simulator(make_http_app(make_app), network="live", strict=False) as sim:
        [failed] = run(sim, call("get", base + "/tasks", {"maxAttempts": 2, "retryDelay": 0}))
        assert (failed["error"], failed["message"], failed["attempts"]) == (
            502,
            "Error in establishing connection",
            2,
        )
        assert sim.http.requests[0]["answered_by"] == "live"
        assert sim.trigger_payload({"calls": []}).outcome == "ok"  # the simulator carries on


def test_record_and_replay_on_the_command_line(
    make_app: MakeApp, server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    app = make_http_app(make_app, '[request]\nstubs_file = "recorded.json"\n', port=server.port)
    calls = {"calls": [call("invoke_template", "local")]}
    payload = json.dumps(calls)
    at = ["--app", str(app), "--relaxed", "--json"]
    # a scheduled run, fired by `fwsched advance --network live --record FILE`
    create = ["schedule", "create", "--name", "sync", "--data", payload]
    assert fw(*create, "--at", "2026-01-05T10:00:00Z", *at).exit_code == 0
    record = ["--network", "live", "--record", app / "recorded.json"]
    live = fw("advance", "1h", *record, *at)
    assert live.exit_code == 0, live.stderr
    [first] = json.loads(live.stdout)["invocations"]
    assert [r["answered_by"] for r in first["requests"]] == ["live"]
    assert first["requests"][0]["url"] == f"{server.base}/tasks?key=****"
    assert len(server.seen) == 1
    server.close()
    # replayed offline (the default) by `fwsched trigger`: the recorded file is the stubs file
    offline = fw("trigger", "--payload", payload, *at)
    assert offline.exit_code == 0, offline.stderr
    second = json.loads(offline.stdout)
    assert [r["answered_by"] for r in second["requests"]] == ["stub"]
    assert second["return_value"][0]["response"] == first["return_value"][0]["response"]
    # and without --network live, an unrecorded request is refused
    other = json.dumps({"calls": [call("get", server.base + "/other")]})
    refused = json.loads(fw("trigger", "--payload", other, *at).stdout)
    assert refused["return_value"][0]["message"] == NO_STUB.format(f"GET {server.base}/other")
    # --network live on trigger too: the server is gone, so it cannot connect
    gone = json.loads(fw("trigger", "--payload", other, "--network", "live", *at).stdout)
    assert gone["return_value"][0]["message"] == "Error in establishing connection"


# -- masking -------------------------------------------------------------------------------


def fw(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_secure_iparams_are_masked_in_requests_show_and_the_state_file(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    app = make_http_app(
        make_app,
        """
        [[request.stubs]]
        template = "getTasks"
        json = {tasks = []}
        """,
    )
    state = app / ".fwsched" / "state.db"
    with Simulator(app, state=state) as sim:
        got = run(
            sim,
            get_tasks(),
            call("get", f"https://api.example.com/x/{SECRET}/<%= iparam.api_key %>"),
        )
        assert got[0]["status"] == 200 and got[1]["error"] == 502
        assert SECRET not in got[1]["message"]
        [invocation] = sim.history()
        urls = [r["url"] for r in invocation.requests]
        assert urls == [TASKS_URL, "https://api.example.com/x/****/****"]
        assert SECRET not in json.dumps(sim.http.requests)
    for as_json in (["--json"], []):
        shown = fw("show", invocation.id, "--app", app, *as_json)
        assert shown.exit_code == 0, shown.stderr
        assert SECRET not in shown.stdout
    document = json.loads(fw("show", invocation.id, "--app", app, "--json").stdout)
    assert [r["url"] for r in document["requests"]] == urls
    for path in state.parent.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path


def test_show_lists_the_requests(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    app = make_http_app(
        make_app,
        """
        [[request.stubs]]
        template = "getTasks"
        status = 201
        """,
    )
    payload = json.dumps({"calls": [get_tasks(), call("get", "https://api.example.com/none")]})
    assert fw("trigger", "--payload", payload, "--app", app).exit_code == 0
    document = json.loads(fw("show", "1", "--app", app, "--json").stdout)
    assert [(r["method"], r["status"], r["answered_by"]) for r in document["requests"]] == [
        ("GET", 201, "stub"),
        ("GET", 502, "none"),
    ]
    text = fw("show", "1", "--app", app).stdout
    lines = text.splitlines()
    start = lines.index("requests")
    shown = lines[start + 1 : start + 3]
    assert shown[0].split()[:3] == ["GET", TASKS_URL, "201"]
    assert "stub" in shown[0] and "getTasks" in shown[0]
    assert shown[1].split()[:3] == ["GET", "https://api.example.com/none", "502"]
    assert "none" in shown[1]
    # the refusal the handler returned is shown whole (brackets are no markup)
    assert "fwsched.toml [[request.stubs]] or run with --network live" in text
    # an invocation without requests has no such section
    assert fw("trigger", "--payload", '{"calls": []}', "--app", app).exit_code == 0
    assert "requests" not in fw("show", "2", "--app", app).stdout.splitlines()


# -- limits ---------------------------------------------------------------------------------

RATE_LIMITED = "Rate limit exceeded: 50 requests per minute"


def test_the_rate_limit_counts_requests_per_simulated_minute(make_app: MakeApp) -> None:
    with Simulator(make_http_app(make_app)) as sim:
        sim.http.stub(url="https://api.example.com/*")
        ping = call("get", "https://api.example.com/ping")
        got = run(sim, {**ping, "repeat": 51})
        assert [a.get("status") for a in got[:50]] == [200] * 50
        assert (got[50]["error"], got[50]["message"], got[50]["attempts"]) == (
            429,
            RATE_LIMITED,
            0,
        )
        last = sim.http.requests[-1]
        assert (last["status"], last["attempts"], last["answered_by"]) == (429, 0, "none")
        sim.advance("59s")  # the first 50 are still within the minute
        assert run(sim, ping)[0]["error"] == 429
        sim.advance("1s")  # now they are a minute old
        assert [a.get("status") for a in run(sim, {**ping, "repeat": 50})] == [200] * 50
        assert run(sim, ping)[0]["error"] == 429
    with Simulator(make_http_app(make_app, name="relaxed"), strict=False) as sim:
        sim.http.stub(url="https://api.example.com/*")
        assert [a.get("status") for a in run(sim, {**ping, "repeat": 120})] == [200] * 120


def test_the_rate_limit_counts_the_requests_of_earlier_commands(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-shot commands in the same simulated minute share the app's 50 requests."""
    monkeypatch.setenv("FWSCHED_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    app = make_http_app(make_app, '[[request.stubs]]\nurl = "https://api.example.com/*"\n')
    ping = call("get", "https://api.example.com/ping")
    for repeat in (30, 21):  # the clock does not move between the two commands
        payload = json.dumps({"calls": [{**ping, "repeat": repeat}]})
        assert fw("trigger", "--payload", payload, "--app", app).exit_code == 0
    with Simulator(app, state=app / ".fwsched" / "state.db") as sim:
        first, second = sim.history()[-2:]
        assert [a.get("status") for a in first.return_value] == [200] * 30
        assert [a.get("status") for a in second.return_value[:20]] == [200] * 20
        assert (second.return_value[20]["error"], second.return_value[20]["message"]) == (
            429,
            RATE_LIMITED,
        )
        assert run(sim, ping)[0]["error"] == 429  # this process counts them too
        sim.advance("1m")  # then they are a minute old
        assert run(sim, ping)[0]["status"] == 200


def test_relax_lifts_the_rate_limit_of_a_running_simulator(make_app: MakeApp) -> None:
    with Simulator(make_http_app(make_app)) as sim:
        sim.http.stub(url="*")
        ping = call("get", "https://api.example.com/ping")
        assert run(sim, {**ping, "repeat": 51})[-1]["error"] == 429
        sim.relax()
        assert run(sim, ping)[0]["status"] == 200


def test_the_body_and_response_limits(make_app: MakeApp) -> None:
    url = "https://api.example.com/upload"
    post = call("post", url, {"headers": {"x": "1"}})
    big = 6 * 1024 * 1024 + 1
    with Simulator(make_http_app(make_app)) as sim:
        sim.http.stub(url=url)
        sim.http.stub(url="https://api.example.com/big", body="x" * big)
        got = run(
            sim,
            {**post, "body_bytes": 100 * 1024},
            {**post, "body_bytes": 100 * 1024 + 1},
            call("get", "https://api.example.com/big", size_only=True),
        )
        assert got[0]["status"] == 200
        assert (got[1]["error"], got[1]["message"], got[1]["attempts"]) == (
            413,
            "Request body exceeds the limit of 100 KB",
            0,
        )
        assert (got[2]["error"], got[2]["message"]) == (413, "Response exceeds the limit of 6 MB")
        assert [r["answered_by"] for r in sim.http.requests] == ["stub", "none", "stub"]
    with Simulator(make_http_app(make_app, name="relaxed"), strict=False) as sim:
        sim.http.stub(url=url)
        sim.http.stub(url="https://api.example.com/big", body="x" * big)
        got = run(
            sim,
            {**post, "body_bytes": 200 * 1024, "size_only": True},
            call("get", "https://api.example.com/big", size_only=True),
        )
        assert got == [{"status": 200, "size": 0}, {"status": 200, "size": big}]


def test_url_checks_apply_until_relaxed(make_app: MakeApp) -> None:
    local = call("get", "http://127.0.0.1:9/tasks")
    with Simulator(make_http_app(make_app)) as sim:
        sim.http.stub(url="http://127.0.0.1:9/*", body="local")
        got = run(sim, local, call("invoke_template", "local"))
        assert [(a["error"], a["message"]) for a in got] == [
            (400, "Invalid URL - Must be HTTPS"),
            (400, "Invalid URL - Must be HTTPS"),
        ]
        assert [r["answered_by"] for r in sim.http.requests] == ["none", "none"]
        sim.relax()
        got = run(sim, local, call("invoke_template", "local"))
        assert [a["response"] for a in got] == ["local", "local"]


def test_requests_are_answered_the_same_for_the_library(make_app: MakeApp) -> None:
    """``sim.http`` serves the library too: the same service, the same checks."""
    with Simulator(make_http_app(make_app)) as sim:
        sim.http.stub(template="getTasks", json={"n": 1})
        answer = sim.http.invoke_template("getTasks", context={"since": "2026-01-01"})
        assert answer["response"] == '{"n": 1}'
        with pytest.raises(RequestError) as info:
            sim.http.get("https://api.example.com/none")
        assert info.value.message == NO_STUB.format("GET https://api.example.com/none")
        assert [r["invocation"] for r in sim.http.requests] == [None, None]


# -- the pytest plugin ----------------------------------------------------------------------


def test_a_plugin_test_of_a_handler_that_calls_an_api_needs_only_a_stub(
    pytester: pytest.Pytester, make_app: MakeApp
) -> None:
    app = make_app(
        """
        import json

        def sync(payload):
            cursor = db.get("cursor") if payload["data"].get("resume") else {"since": "0"}
            answer = request.invoke_template("getTasks", context=cursor)
            tasks = json.loads(answer["response"])["tasks"]
            db.set("cursor", {"since": str(max(tasks))})
            return tasks

        exports = {"onScheduledEventHandler": sync}
        """,
        manifest={**MANIFEST, "requests": {"getTasks": {}}},
    )
    (app / "config").mkdir()
    (app / "config" / "requests.json").write_text(
        json.dumps(
            {
                "getTasks": {
                    "schema": {
                        "method": "GET",
                        "host": "api.example.com",
                        "path": "/tasks",
                        "query": {"since": "<%= context.since %>"},
                    }
                }
            }
        )
    )
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.fwsched(app={str(app)!r}, start="2026-01-05T09:00:00Z")
        def test_sync(fwsched_sim):
            fwsched_sim.http.stub(template="getTasks", json={{"tasks": [3, 5]}})
            run = fwsched_sim.trigger_payload({{}})
            assert run.outcome == "ok", run.error
            assert run.return_value == [3, 5]
            assert fwsched_sim.db.get("cursor") == {{"since": "5"}}
            [req] = fwsched_sim.http.requests
            assert req["url"] == "https://api.example.com/tasks?since=0"
            assert req["answered_by"] == "stub"

        @pytest.mark.fwsched(app={str(app)!r})
        def test_without_a_stub_nothing_leaves_the_machine(fwsched_sim):
            run = fwsched_sim.trigger_payload({{}})
            assert run.outcome == "error"
            assert run.error.startswith("RequestError: No stub for GET https://api.example.com/")
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
