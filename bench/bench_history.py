"""Printing a long history: `fwsched history --all` over 10,000 invocations.

Measured in one run, on a state made by a real advance (a handler that prints a
line every 3 minutes of simulated time, 10,000 invocations):
  baseline - `fwsched history` (the default: the newest 50, and a line saying how many
             more there are), median of several runs
  all      - `fwsched history --all` piped (plain text), with FORCE_COLOR and 80
             columns (what a terminal gets: colours, widths fitted), and with --json
Each is printed in ms and as a ratio to the baseline; the ratio shows what the 9,950
rows beyond the first 50 cost on top of starting a command and reading the state.
Target (issue 12): every --all variant under 1 s.

Run: make bench   (or: .venv/bin/python bench/bench_history.py [--quick])
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fwsched import Simulator

BIN = Path(sys.executable).parent
FWSCHED = str(BIN / "fwsched")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ROWS = 10_000
STEP_MINUTES = 3
MANIFEST = {"events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}}}
SERVER = """\
def handle(payload):
    print("synced batch", payload["data"]["batch"], "at", payload["timestamp"])

exports = {"onScheduledEventHandler": handle}
"""


def make_app(root: Path) -> Path:
    app = root / "history_app"
    app.mkdir()
    (app / "manifest.json").write_text(json.dumps(MANIFEST))
    (app / "server.py").write_text(SERVER)
    return app


def fill(app: Path) -> int:
    """A state with ``ROWS`` invocations, made the way a user makes one: an advance."""
    state = app / ".fwsched" / "state.db"
    with Simulator(app, start=START, state=state, timeout=20) as sim:
        sim.schedule.create(
            name="sync_customers",
            data={"batch": 250, "cursor": "c-000000"},
            schedule_at=(START + timedelta(minutes=STEP_MINUTES)).isoformat(),
            repeat={"time_unit": "minutes", "frequency": STEP_MINUTES},
        )
        fired = sim.advance(timedelta(minutes=STEP_MINUTES * ROWS))
    return len(fired)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Seconds to run ``command`` to the end (its output read from a pipe), and its lines."""
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, timeout=300, check=True)
    return time.perf_counter() - began, done.stdout.count(b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    runs = 3 if parser.parse_args().quick else 7

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        app = make_app(root)
        began = time.perf_counter()
        count = fill(app)
        print(f"state: {count} invocations (advance took {time.perf_counter() - began:.1f} s)")

        plain = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
        plain["FWSCHED_HOME"] = str(root / "home")
        plain.pop("COLUMNS", None)
        terminal = {**plain, "FORCE_COLOR": "1", "COLUMNS": "80"}
        history = [FWSCHED, "history", "--app", str(app)]
        variants = {
            "history (newest 50)": (history, plain),
            "history --all, piped": ([*history, "--all"], plain),
            "history --all, colour, 80 columns": ([*history, "--all"], terminal),
            "history --all --json": ([*history, "--all", "--json"], plain),
        }
        for command, env in variants.values():  # warm-up: page cache, __pycache__
            timed(command, env)
        times: dict[str, list[float]] = {name: [] for name in variants}
        lines: dict[str, int] = {}
        for _ in range(runs):  # interleaved, so drift of the machine hits all alike
            for name, (command, env) in variants.items():
                seconds, lines[name] = timed(command, env)
                times[name].append(seconds)

    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["history (newest 50)"]
    print(f"median of {runs} runs:")
    for name, seconds in medians.items():
        print(
            f"  {name:<36} {seconds * 1000:7.0f} ms  {seconds / base:5.2f}x baseline"
            f"  ({lines[name]} lines)"
        )
    slowest = max(seconds for name, seconds in medians.items() if "--all" in name)
    met = "met" if slowest < 1.0 else "MISSED"
    print(f"  slowest --all = {slowest * 1000:.0f} ms  (target < 1000 ms: {met})")


if __name__ == "__main__":
    main()
