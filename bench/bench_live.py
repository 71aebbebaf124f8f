"""A live runner's answers to read-only commands while a handler runs.

Measured in one run, against a real `fwsched run --paused` in its own process:
  idle - status, schedules, history and show over the control socket, the runner
         waiting for work (the baseline)
  busy - the same while the runner's handler sleeps for the whole measurement (the
         driver thread is inside the sandbox call all along)
The time is one request's round trip in this process (no command start-up), as
median and 95th percentile per command, and busy/idle as a ratio.
Target (issue 12): busy p95 < 100 ms for every read-only command.

Run: make bench   (or: .venv/bin/python bench/bench_live.py [--quick])
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fwsched import control

BIN = Path(sys.executable).parent
FWSCHED = str(BIN / "fwsched")
MANIFEST = {"events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}}}
SERVER = """\
import time

def handle(payload):
    print("working on", payload["data"])
    time.sleep(payload["data"].get("sleep", 0))

exports = {"onScheduledEventHandler": handle}
"""
TOML = '[simulator]\nstart = "2026-01-05T09:00:00Z"\ntimeout = 120\n'
READS: dict[str, dict[str, Any]] = {
    "status": {},
    "schedules": {},
    "history": {"limit": 50},
    "show": {"id": 1},
}


def make_app(root: Path) -> Path:
    app = root / "live_app"
    app.mkdir()
    (app / "manifest.json").write_text(json.dumps(MANIFEST))
    (app / "server.py").write_text(SERVER)
    (app / "fwsched.toml").write_text(TOML)
    return app


def sample(sock: Path, samples: int) -> dict[str, list[float]]:
    """Round trips of each read-only request, interleaved."""
    times: dict[str, list[float]] = {name: [] for name in READS}
    for _ in range(samples):
        for name, args in READS.items():
            began = time.perf_counter()
            control.request(sock, name, args)
            times[name].append(time.perf_counter() - began)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[max(int(len(values) * 0.95) - 1, 0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    samples = 20 if parser.parse_args().quick else 100

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        app = make_app(root)
        env = {**os.environ, "FWSCHED_HOME": str(root / "home")}
        runner = subprocess.Popen(
            [FWSCHED, "run", str(app), "--paused"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        sock = control.socket_path(app)
        try:
            deadline = time.monotonic() + 30
            while control.ping(sock, timeout=0.5) != runner.pid:
                if time.monotonic() > deadline or runner.poll() is not None:
                    raise SystemExit("the runner did not start")
                time.sleep(0.05)
            control.request(sock, "trigger_payload", {"data": {}})  # invocation 1, for show
            idle = sample(sock, samples)

            busy_for = 2.0 + samples * 0.05  # longer than the busy sampling takes
            handler = threading.Thread(
                target=control.request,
                args=(sock, "trigger_payload", {"data": {"sleep": busy_for}}),
                daemon=True,
            )
            handler.start()
            while not control.request(sock, "status").get("runner", {}).get("running"):
                time.sleep(0.01)
            began = time.monotonic()
            busy = sample(sock, samples)
            still_running = control.request(sock, "status")["runner"].get("running")
            sampled_for = time.monotonic() - began
        finally:
            runner.send_signal(signal.SIGINT)
            try:
                runner.wait(30)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait(30)

    assert still_running, "the handler ended before the busy sampling did"
    print(f"{samples} samples per command; busy sampling took {sampled_for:.1f} s")
    print(f"  {'command':<10} {'idle median':>12} {'busy median':>12} {'busy p95':>9} {'ratio':>6}")
    worst = 0.0
    for name in READS:
        idle_median = statistics.median(idle[name])
        busy_median = statistics.median(busy[name])
        worst = max(worst, p95(busy[name]))
        print(
            f"  {name:<10} {idle_median * 1000:9.1f} ms {busy_median * 1000:9.1f} ms"
            f" {p95(busy[name]) * 1000:6.1f} ms {busy_median / idle_median:5.2f}x"
        )
    met = "met" if worst < 0.1 else "MISSED"
    print(f"  worst busy p95 = {worst * 1000:.1f} ms  (target < 100 ms: {met})")


if __name__ == "__main__":
    main()
