"""What a handler's ``db`` and ``request`` calls cost, against its ``schedule.fetch`` round trip.

One run, from inside a handler, each case a loop of CALLS calls in one invocation:
  (a) schedule.fetch         one RPC round trip to the simulator: the baseline
  (b) db.get + db.set        a pair of RPCs, each a transaction of the state
  (c) request.invoke_template, answered by a [[request.stubs]] table of fwsched.toml
The cost of an invocation that makes no call is subtracted, so a case's figure is its
calls only. Each case is measured in a few rounds, interleaved, and the best round
counts (the least disturbed by the machine). Both with the state in memory and in a file.
Targets: b/a <= 2 and c/a <= 3.

The simulator runs relaxed: the strict rate limit (50 requests a simulated minute) would
refuse the 51st request of the loop. Run with `make bench` or
`python bench/bench_services.py [--strict]` (--strict: exit 1 when a target is missed).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from fwsched import Simulator

ROUNDS = 15  # short rounds, interleaved: the best one of each case escapes a busy machine
CALLS = 400  # calls per invocation

SERVER = """\
def bench(payload):
    op, calls = payload["data"]["op"], payload["data"]["calls"]
    if op == "fetch":
        for _ in range(calls):
            schedule.fetch(name="bench")
    elif op == "db":
        for i in range(calls):
            db.get("cursor")
            db.set("cursor", {"last_id": i, "page": "2026-01-05T09:00:00Z"})
    elif op == "request":
        for i in range(calls):
            request.invoke_template("getTasks", context={"since": i})

exports = {"onScheduledEventHandler": bench}
"""
MANIFEST = {
    "events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}},
    "requests": {"getTasks": {}},
}
TEMPLATES = {
    "getTasks": {
        "schema": {
            "method": "GET",
            "host": "<%= iparam.domain %>",
            "path": "/api/tasks",
            "headers": {"Authorization": "Basic <%= encode(iparam.api_key + ':X') %>"},
            "query": {"since": "<%= context.since %>"},
        }
    }
}
TOML = """\
[simulator]
start = "2026-01-05T09:00:00Z"

[iparams]
api_key = "secret-value"
domain = "acme.example.com"

[[request.stubs]]
template = "getTasks"
json = {tasks = [{id = 1, title = "call back"}], next = "2026-01-05T10:00:00Z"}
"""
IPARAMS = {"api_key": {"type": "text", "secure": True}, "domain": {"type": "text"}}
LABELS = {
    "a": "(a) schedule.fetch round trip (baseline)",
    "b": "(b) db.get + db.set pair",
    "c": "(c) stubbed request.invoke_template",
}
TARGETS = {"b": 2.0, "c": 3.0}
OPS = {"a": "fetch", "b": "db", "c": "request"}


def make_app(root: Path) -> Path:
    app = root / "services_app"
    (app / "config").mkdir(parents=True)
    (app / "manifest.json").write_text(json.dumps(MANIFEST))
    (app / "server.py").write_text(SERVER)
    (app / "fwsched.toml").write_text(TOML)
    (app / "config" / "requests.json").write_text(json.dumps(TEMPLATES))
    (app / "config" / "iparams.json").write_text(json.dumps(IPARAMS))
    return app


def invocation_seconds(sim: Simulator, op: str, calls: int) -> float:
    began = time.perf_counter()
    invocation = sim.trigger_payload({"op": op, "calls": calls})
    elapsed = time.perf_counter() - began
    if invocation.outcome != "ok":
        raise SystemExit(f"{op}: {invocation.outcome}: {invocation.error}")
    return elapsed


def measure(app: Path, state: Path | None) -> dict[str, float]:
    """Microseconds per call of each case: the best round, less an empty invocation."""
    with Simulator(app, state=state, strict=False, timeout=20) as sim:
        sim.schedule.create(name="bench", data={"task_id": 1}, schedule_at="2026-01-05T10:00:00Z")
        sim.db.set("cursor", {"last_id": 0})
        for op in ("none", *OPS.values()):  # spawn, import, first calls outside the timing
            invocation_seconds(sim, op, 20)
        best = dict.fromkeys([*OPS, "empty"], float("inf"))
        for _ in range(ROUNDS):
            best["empty"] = min(best["empty"], invocation_seconds(sim, "none", 0))
            for key, op in OPS.items():
                best[key] = min(best[key], invocation_seconds(sim, op, CALLS))
        assert len(sim.http.requests) == 20 + ROUNDS * CALLS
    return {key: (best[key] - best["empty"]) / CALLS * 1e6 for key in OPS}


def report(title: str, figures: dict[str, float]) -> bool:
    """Print one table; whether every target was met."""
    print(f"{title}")
    print(f"  {'case':<44} {'µs/call':>10}")
    for key in OPS:
        print(f"  {LABELS[key]:<44} {figures[key]:>10.1f}")
    met_all = True
    for key, target in TARGETS.items():
        ratio = figures[key] / figures["a"]
        met = ratio <= target
        met_all &= met
        print(f"  {key}/a {ratio:>8.2f}   target <= {target:g}: {'met' if met else 'MISSED'}")
    return met_all


def main() -> int:
    strict = "--strict" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        app = make_app(root)
        memory = measure(app, None)
        on_disk = measure(app, root / "state.db")
    met = report("state in memory", memory)
    print()
    met &= report("state in a file (WAL)", on_disk)
    return 1 if strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
