"""Where users wait (issue 13): the library's firing rate, a runner's, read commands' start-up.

Five targets, each a ratio to a baseline measured in the same run, through the public
API only (``Simulator`` and the ``fwsched`` command):
  1. memory   Simulator.advance over 3,000 one-time schedules, no-op handler, state in
              memory, sandbox warm: >= 0.5x a raw JSON round trip over a pipe to a warm
              child (bench_sandbox.py's (a): its framing and payload)
  2. file     the same with a state file: >= 0.35x that round trip
  3. runner   `fwsched advance` through a live `fwsched run` (its dashboard on a
              terminal, showing progress): >= 0.8x the same advance without a runner
  4. reads    `fwsched status --json`, `schedules --json`, `history --limit 20 --json`,
              without a runner and with one live: <= 4x `python -c pass`
  5. keep     `fwsched --version` <= 1.5x `python -c pass`; the cost per occurrence
              with 100,000 pending schedules <= 1.5x the cost with 10
Also printed, with no target: what bounds 1 and 2, namely ``Sandbox.invoke`` alone (the
handler's round trip with the sandbox's guarantees, bench_sandbox.py's (c)) against the
raw round trip, and the share of the sandbox's rate each advance keeps.
Everything is measured REPEATS times (default 3, `--repeat N`); each ratio is printed as
min / median / max of the repeats and judged on the median. Rates are the best of a few
short rounds inside a repeat (the least disturbed by the machine), start-up times the
median of several runs, interleaved with their baseline so drift hits both alike.

Run: make bench   (or: .venv/bin/python bench/bench_paths.py [--repeat N] [--strict])
--strict: exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_sandbox import PAYLOAD, RAW_CHILD, RawChild

from fwsched import Simulator, control
from fwsched.sandbox import Sandbox

BIN = Path(sys.executable).parent
FWSCHED = str(BIN / "fwsched")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MANIFEST = {"events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}}}
NOOP = "def handle(payload):\n    return None\n\nexports = {'onScheduledEventHandler': handle}\n"
ONE_TIME = 3000  # targets 1 and 2
ROUNDS = 3  # rounds of a rate inside one repeat; the best counts
RAW_CALLS = 3000  # calls of the raw round trip per round
RUNNER_DAYS = 7  # target 3: a 5-minute schedule for a week, 2,016 invocations
STARTUP_RUNS = 9  # target 4 and 5: runs of each command per repeat, the median counts
PENDING = (10, 100_000)  # target 5
PENDING_TICKS = 1500  # occurrences of a 1-minute schedule while they wait


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def make_app(root: Path, name: str) -> Path:
    app = root / name
    app.mkdir()
    (app / "manifest.json").write_text(json.dumps(MANIFEST))
    (app / "server.py").write_text(NOOP)
    (app / "fwsched.toml").write_text(f'[simulator]\nstart = "{iso(START)}"\n')
    return app


# -- 1, 2: the library ----------------------------------------------------------------------


def raw_rate(app: Path) -> float:
    """Round trips per second to a bare warm child (bench_sandbox.py's (a): the payload
    encoded, sent, decoded and answered at each call): the best of ``ROUNDS``."""
    raw = RawChild(RAW_CHILD, app)
    try:
        for _ in range(50):
            raw.call()
        best = 0.0
        for _ in range(ROUNDS):
            began = time.perf_counter()
            for _ in range(RAW_CALLS):
                raw.call()
            best = max(best, RAW_CALLS / (time.perf_counter() - began))
    finally:
        raw.close()
    return best


def sandbox_rate(app: Path) -> float:
    """Invocations per second of ``Sandbox.invoke`` alone, warm (bench_sandbox.py's (c)):
    what an advance would reach if the engine cost nothing, so the ceiling of 1 and 2."""
    sandbox = Sandbox(app, MANIFEST["events"]["onScheduledEvent"]["handler"], timeout=20)
    try:
        for _ in range(50):
            sandbox.invoke(PAYLOAD, fire_at=START)
        best = 0.0
        for _ in range(ROUNDS):
            began = time.perf_counter()
            for _ in range(RAW_CALLS):
                sandbox.invoke(PAYLOAD, fire_at=START)
            best = max(best, RAW_CALLS / (time.perf_counter() - began))
    finally:
        sandbox.close()
    return best


def advance_rate(app: Path, state: Path | None) -> float:
    """Invocations per second of ``Simulator.advance`` over ``ONE_TIME`` one-time schedules
    (one a minute), warm: the best of ``ROUNDS`` rounds on one Simulator."""
    best = 0.0
    with Simulator(app, state=state, strict=False, timeout=20) as sim:
        sim.trigger_payload({"warm": True})  # spawn and import outside the timing
        for _ in range(ROUNDS):
            first = sim.now + timedelta(minutes=6)
            for i in range(ONE_TIME):
                at = iso(first + timedelta(minutes=i))
                sim.schedule.create(name=f"once{i}", data={"i": i}, schedule_at=at)
            began = time.perf_counter()
            fired = sim.advance(timedelta(minutes=6 + ONE_TIME))
            elapsed = time.perf_counter() - began
            assert len(fired) == ONE_TIME and all(i.outcome == "ok" for i in fired)
            best = max(best, ONE_TIME / elapsed)
    return best


# -- 3: a live runner -----------------------------------------------------------------------


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "NO_COLOR")}
    env["FWSCHED_HOME"] = str(root / "home")
    env.pop("FWSCHED_APP", None)
    return env


def fwsched(env: dict[str, str], *args: str) -> float:
    """Seconds one `fwsched` command takes (its output read from a pipe)."""
    began = time.perf_counter()
    subprocess.run([FWSCHED, *args], env=env, capture_output=True, timeout=600, check=True)
    return time.perf_counter() - began


class Runner:
    """A live `fwsched run --paused` on a pseudo-terminal (so its rich dashboard shows),
    the terminal's output read and dropped as a real one would draw it."""

    def __init__(self, app: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        os.set_inheritable(slave, True)
        self.proc = subprocess.Popen(
            [FWSCHED, "run", str(app), "--paused"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "COLUMNS": "100", "LINES": "40", "TERM": "xterm-256color"},
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()
        sock = control.socket_path(app)
        deadline = time.monotonic() + 30
        while control.ping(sock, timeout=0.5) != self.proc.pid:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise SystemExit("the runner did not start")
            time.sleep(0.05)

    def _read(self) -> None:
        try:
            while os.read(self._master, 65536):
                pass
        except OSError:
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self._drain.join(5)
        os.close(self._master)


def runner_ratio(root: Path, env: dict[str, str], tag: str) -> tuple[float, float, int]:
    """(seconds without a runner, seconds through one, invocations) of the same advance."""
    seconds = {}
    for live in (False, True):
        app = make_app(root, f"runner_{tag}_{'live' if live else 'direct'}")
        fwsched(env, "schedule", "create", "--app", str(app), "--name", "every5",
                "--data", "{}", "--at", iso(START + timedelta(minutes=5)),
                "--every", "5m")  # fmt: skip
        runner = Runner(app, env) if live else None
        try:
            seconds[live] = fwsched(env, "advance", f"{RUNNER_DAYS}d", "--app", str(app))
        finally:
            if runner is not None:
                runner.stop()
    return seconds[False], seconds[True], RUNNER_DAYS * 24 * 12


# -- 4, 5: start-up -------------------------------------------------------------------------


def startup(app: Path, env: dict[str, str]) -> dict[str, float]:
    """Median seconds of each command, interleaved with ``python -c pass``."""
    where = ("--app", str(app))
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "version": [FWSCHED, "--version"],
        "status": [FWSCHED, "status", "--json", *where],
        "schedules": [FWSCHED, "schedules", "--json", *where],
        "history": [FWSCHED, "history", "--limit", "20", "--json", *where],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # warm-up: page cache, __pycache__
        subprocess.run(command, env=env, capture_output=True, timeout=120, check=True)
    for _ in range(STARTUP_RUNS):
        for name, command in commands.items():
            began = time.perf_counter()
            subprocess.run(command, env=env, capture_output=True, timeout=120, check=True)
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


def pending_state(root: Path, count: int) -> Path:
    """An app whose state holds ``count`` one-time schedules far ahead and a 1-minute one."""
    app = make_app(root, f"pending_{count}")
    state = app / ".fwsched" / "state.db"
    with Simulator(app, state=state, strict=False, timeout=20) as sim:
        far = iso(START + timedelta(days=400))
        for i in range(count):
            sim.schedule.create(name=f"p{i}", data={"i": i}, schedule_at=far)
        sim.schedule.create(
            name="tick",
            data={},
            schedule_at=iso(START + timedelta(minutes=1)),
            repeat={"time_unit": "minutes", "frequency": 1},
        )
    return app


def pending_cost(app: Path) -> float:
    """Seconds per occurrence of the 1-minute schedule, warm, state file."""
    with Simulator(app, state=app / ".fwsched" / "state.db", timeout=20) as sim:
        sim.trigger("tick")  # spawn and import outside the timing
        began = time.perf_counter()
        fired = sim.advance(timedelta(minutes=PENDING_TICKS))
        elapsed = time.perf_counter() - began
    assert len(fired) == PENDING_TICKS
    return elapsed / PENDING_TICKS


# -- report ---------------------------------------------------------------------------------


class Target:
    def __init__(self, label: str, bound: float, higher: bool) -> None:
        self.label, self.bound, self.higher = label, bound, higher
        self.values: list[float] = []

    def line(self) -> tuple[str, bool]:
        low, mid, high = min(self.values), statistics.median(self.values), max(self.values)
        met = mid >= self.bound if self.higher else mid <= self.bound
        sign = ">=" if self.higher else "<="
        spread = f"{low:6.2f} {mid:6.2f} {high:6.2f}"
        return f"  {self.label:<44} {spread}   {sign} {self.bound:<5g} {_verdict(met)}", met


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each target")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    options = parser.parse_args()
    targets = {
        "memory": Target("1 advance, state in memory / raw round trip", 0.5, True),
        "file": Target("2 advance, state file / raw round trip", 0.35, True),
        "runner": Target("3 advance through a runner / without", 0.8, True),
        "status": Target("4 status --json / python", 4.0, False),
        "schedules": Target("4 schedules --json / python", 4.0, False),
        "history": Target("4 history --limit 20 --json / python", 4.0, False),
        "status live": Target("4 status --json, runner live / python", 4.0, False),
        "schedules live": Target("4 schedules --json, runner live / python", 4.0, False),
        "history live": Target("4 history --limit 20 --json, live / python", 4.0, False),
        "version": Target("5 --version / python", 1.5, False),
        "pending": Target("5 per occurrence, 100,000 / 10 pending", 1.5, False),
    }
    figures: dict[str, list[float]] = {}
    # What bounds 1 and 2: the sandbox's own rate, and the share of it the engine keeps.
    bounds: dict[str, list[float]] = {"sandbox": [], "engine memory": [], "engine file": []}

    def note(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = environment(root)
        lib_app = make_app(root, "library")
        reads_app = make_app(root, "reads")
        fwsched(env, "schedule", "create", "--app", str(reads_app), "--name", "every5",
                "--data", '{"kind": "sync"}', "--at", iso(START + timedelta(minutes=5)),
                "--every", "5m")  # fmt: skip
        fwsched(env, "advance", "1d", "--app", str(reads_app))  # 288 invocations to read
        pending_apps = {n: pending_state(root, n) for n in PENDING}
        for k in range(options.repeat):
            raw = raw_rate(lib_app)
            memory = advance_rate(lib_app, None)
            on_file = advance_rate(lib_app, root / f"library{k}.db")
            note("raw round trip (/s)", raw)
            note("advance, state in memory (/s)", memory)
            note("advance, state file (/s)", on_file)
            sandbox = sandbox_rate(lib_app)
            note("Sandbox.invoke alone (/s)", sandbox)
            bounds["sandbox"].append(sandbox / raw)
            bounds["engine memory"].append(memory / sandbox)
            bounds["engine file"].append(on_file / sandbox)
            targets["memory"].values.append(memory / raw)
            targets["file"].values.append(on_file / raw)

            direct, live, count = runner_ratio(root, env, str(k))
            note(f"fwsched advance {RUNNER_DAYS}d, no runner (/s)", count / direct)
            note(f"fwsched advance {RUNNER_DAYS}d, runner live (/s)", count / live)
            targets["runner"].values.append(direct / live)

            medians = startup(reads_app, env)
            runner = Runner(reads_app, env)
            try:
                live_medians = startup(reads_app, env)
            finally:
                runner.stop()
            base = medians["python"]
            note("python -c pass (ms)", base * 1000)
            for name in ("version", "status", "schedules", "history"):
                note(f"{name} (ms)", medians[name] * 1000)
                targets[name].values.append(medians[name] / base)
            for name in ("status", "schedules", "history"):
                note(f"{name}, runner live (ms)", live_medians[name] * 1000)
                targets[f"{name} live"].values.append(live_medians[name] / live_medians["python"])

            costs = {n: pending_cost(pending_apps[n]) for n in PENDING}
            for n, cost in costs.items():
                note(f"per occurrence, {n:,} pending (µs)", cost * 1e6)
            targets["pending"].values.append(costs[PENDING[-1]] / costs[PENDING[0]])
            print(f"repeat {k + 1}/{options.repeat} done", file=sys.stderr, flush=True)

    print(f"{options.repeat} repeats, {time.monotonic() - began:.0f} s")
    print(f"  {'figure':<44} {'min':>8} {'median':>8} {'max':>8}")
    for name, values in figures.items():
        low, mid, high = min(values), statistics.median(values), max(values)
        print(f"  {name:<44} {low:8,.1f} {mid:8,.1f} {high:8,.1f}")
    print(f"  {'target (ratio)':<44} {'min':>6} {'median':>6} {'max':>6}   bound")
    missed = False
    for target in targets.values():
        text, met = target.line()
        missed |= not met
        print(text)
    print(f"  {'what bounds 1 and 2 (no target)':<44} {'min':>6} {'median':>6} {'max':>6}")
    for label, key in (
        ("Sandbox.invoke alone / raw round trip", "sandbox"),
        ("advance, state in memory / Sandbox alone", "engine memory"),
        ("advance, state file / Sandbox alone", "engine file"),
    ):
        values = bounds[key]
        low, mid, high = min(values), statistics.median(values), max(values)
        print(f"  {label:<44} {low:6.2f} {mid:6.2f} {high:6.2f}")
    return 1 if options.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
