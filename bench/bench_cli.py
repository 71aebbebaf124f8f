"""Command-line start-up and live-reload latency.

Measured in one run:
  start-up - `fwsched --version` and `fwsched status --json` (an app with state, no runner)
             against `python -c pass`, median of several runs each, interleaved so that
             drift of the machine hits all three alike; `python -c "import click"` is
             printed for reference (the floor of any command that parses with click)
  reload   - a live `fwsched run` fires a recurring schedule every 20 ms of real time;
             the time from writing server.py to the first invocation line printed by the
             new code, median of several edits
Targets: --version / python <= 1.5; status / python <= 2.5; reload median <= 0.5 s.

Bytecode caching is switched on for the measured processes (PYTHONDONTWRITEBYTECODE
unset), as in a normal installation.

Run: make bench   (or: .venv/bin/python bench/bench_cli.py [--quick])
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
FWSCHED = str(BIN / "fwsched")
START = "2026-01-05T09:00:00Z"
MANIFEST = {"events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}}}
SERVER = """\
MARK = {mark!r}

def handle(payload):
    print(MARK)

exports = {{"onScheduledEventHandler": handle}}
"""


def make_app(root: Path) -> Path:
    app = root / "bench_app"
    app.mkdir()
    (app / "manifest.json").write_text(json.dumps(MANIFEST))
    (app / "server.py").write_text(SERVER.format(mark="mark-0"))
    (app / "fwsched.toml").write_text(f'[simulator]\nstart = "{START}"\n')
    return app


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "NO_COLOR")}
    env["FWSCHED_HOME"] = str(root / "home")
    return env


def fwsched(app: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [FWSCHED, *args, "--app", str(app)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return done.stdout


# -- start-up -----------------------------------------------------------------------------


def startup(app: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "fwsched --version": [FWSCHED, "--version"],
        "fwsched status --json": [FWSCHED, "status", "--json", "--app", str(app)],
        'python -c "import click"': [sys.executable, "-c", "import click"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(2):  # warm-up: page cache and __pycache__
        for command in commands.values():
            subprocess.run(command, env=env, stdout=subprocess.DEVNULL, timeout=120, check=True)
    for _ in range(runs):
        for name, command in commands.items():
            began = time.perf_counter()
            subprocess.run(command, env=env, stdout=subprocess.DEVNULL, timeout=120, check=True)
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


# -- reload latency -----------------------------------------------------------------------


def reload_latency(app: Path, env: dict[str, str], edits: int) -> list[float]:
    # 3000x: the every-minute schedule fires every 20 ms of real time.
    fwsched(app, env, "schedule", "create", "--name", "tick", "--data", "{}", "--at", START,
            "--every", "1m")  # fmt: skip
    runner = subprocess.Popen(
        [FWSCHED, "run", str(app), "--speed", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def read() -> None:
        assert runner.stdout is not None
        for line in runner.stdout:
            lines.put((time.monotonic(), line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    latencies = []
    try:
        wait_for_line(lines, "mark-0", time.monotonic() + 30)
        for k in range(1, edits + 1):
            time.sleep(0.3)
            mark = f"mark-{k}"
            written = time.monotonic()
            (app / "server.py").write_text(SERVER.format(mark=mark))
            latencies.append(wait_for_line(lines, mark, written + 30) - written)
    finally:
        runner.send_signal(signal.SIGINT)
        try:
            runner.wait(30)
        except subprocess.TimeoutExpired:
            runner.kill()
            runner.wait(30)
        reader.join(5)
    return latencies


def wait_for_line(lines: queue.Queue[tuple[float, str]], mark: str, deadline: float) -> float:
    """When the first line naming ``mark`` arrived."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SystemExit(f"no invocation printed {mark!r} in time")
        try:
            arrived, line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line.rstrip().endswith(mark):
            return arrived


# -- report -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    options = parser.parse_args()
    runs, edits = (7, 3) if options.quick else (21, 9)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        app = make_app(root)
        env = environment(root)
        fwsched(app, env, "status")  # a state to report on

        medians = startup(app, env, runs)
        base = medians["python -c pass"]
        print(f"start-up, median of {runs} runs:")
        for name, seconds in medians.items():
            print(f"  {name:<26} {seconds * 1000:7.1f} ms   {seconds / base:5.2f}x python")
        version = medians["fwsched --version"] / base
        status = medians["fwsched status --json"] / base
        print(f"  ratio --version = {version:.2f}  (target <= 1.5: {verdict(version <= 1.5)})")
        print(f"  ratio status    = {status:.2f}  (target <= 2.5: {verdict(status <= 2.5)})")

        latencies = reload_latency(app, env, edits)
        median = statistics.median(latencies)
        shown = ", ".join(f"{s * 1000:.0f}" for s in latencies)
        print(f"reload latency, {edits} edits (ms): {shown}")
        print(f"  median = {median * 1000:.0f} ms  (target <= 500 ms: {verdict(median <= 0.5)})")


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
