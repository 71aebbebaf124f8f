"""SPEC §2 against the platform's own answers: every line of ``shared/conformance/*.jsonl``.

The corpus lives beside the repository (``../shared/conformance``, or ``$FWSCHED_CONFORMANCE``);
its README explains the format. Every line of ``schedule_api.jsonl`` runs through the library and
every line of ``schedule_at.jsonl`` through rule 6's parser; a sample of the API lines also runs
through ``fwsched schedule ... --json`` and through a handler's ``schedule.*`` calls. A failure
lists the first mismatches with the line's id, the call, the expected and the actual answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fwsched import Simulator, iso8601
from fwsched.cli.root import cli
from fwsched.sdk import ScheduleError

CORPUS = Path(
    os.environ.get("FWSCHED_CONFORMANCE")
    or Path(__file__).resolve().parents[2] / "shared" / "conformance"
)
CHUNKS = 8  # the library run is split so that pytest-xdist spreads it over the cores
SHOWN = 15  # mismatches listed in a failure
SETUP_AT = "2026-01-05T10:00:00Z"  # the README's baseline schedule for update, fetch, delete

WITH_HANDLER = {"events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}}}
WITHOUT_HANDLER = {"events": {"onAppInstall": {"handler": "onScheduledEventHandler"}}}
# Runs every case of cases.json as its own call, with the README's state before and a clean
# state after, and returns each answer: the handler path of the same corpus.
HANDLER_SERVER = """
import json

def run_cases(payload):
    answers = []
    for case in json.load(open("cases.json")):
        name = case["input"].get("name")
        if case["needs_setup"]:
            schedule.create({"name": name, "data": {}, "schedule_at": "SETUP_AT"})
        try:
            answer = getattr(schedule, case["op"])(case["input"])
            answers.append({"ok": True} if case["op"] in ("fetch", "delete") else answer)
        except ScheduleError as err:
            answers.append({"status": err.status, "message": err.message})
        for leftover in ("extra", name):
            try:
                schedule.delete({"name": leftover})
            except ScheduleError:
                pass
    return answers

exports = {"onScheduledEventHandler": run_cases}
""".replace("SETUP_AT", SETUP_AT)


def _load(name: str) -> list[dict[str, Any]]:
    path = CORPUS / name
    if not path.is_file():
        pytest.fail(
            f"conformance corpus not found: {path} (it lives in shared/ beside the repository; "
            "set FWSCHED_CONFORMANCE to its folder)"
        )
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


API_LINES = _load("schedule_api.jsonl") if (CORPUS / "schedule_api.jsonl").is_file() else []


def _needs_setup(line: dict[str, Any]) -> bool:
    """The README's state before the call: a baseline schedule for update, fetch and delete."""
    name = line["input"].get("name")
    if not line["has_handler"] or not _can_exist(name):
        return False  # nothing can be created without a handler, or under such a name
    if line["op"] == "update":
        return True
    return line["op"] in ("fetch", "delete") and line["expect"].get("status") != 404


def _can_exist(name: Any) -> bool:
    return isinstance(name, str) and 1 <= len(name.encode("utf-16-le", "surrogatepass")) // 2 <= 30


def _answer(op: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        answer = call()
    except ScheduleError as err:
        return {"status": err.status, "message": err.message}
    return {"ok": True} if op in ("fetch", "delete") else answer


def _report(mismatches: list[tuple[dict[str, Any], Any]], total: int) -> None:
    if not mismatches:
        return
    shown = "\n".join(
        f"  id {line.get('id', '-')} {line.get('op', 'parse')} "
        f"{json.dumps(line.get('input'), ensure_ascii=True)[:160]}\n"
        f"      expected {json.dumps(line.get('expect', line.get('instant')))}\n"
        f"      got      {json.dumps(got)}"
        for line, got in mismatches[:SHOWN]
    )
    pytest.fail(f"{len(mismatches)} of {total} lines disagree with the platform:\n{shown}")


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """An app with and one without an onScheduledEvent handler."""
    made = {}
    for has_handler, manifest in ((True, WITH_HANDLER), (False, WITHOUT_HANDLER)):
        root = tmp_path_factory.mktemp("with" if has_handler else "without")
        (root / "manifest.json").write_text(json.dumps(manifest))
        (root / "server.py").write_text(
            "exports = {'onScheduledEventHandler': lambda payload: None}\n"
        )
        made[has_handler] = root
    return made


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_api_line_through_the_library(apps: dict[bool, Path], chunk: int) -> None:
    lines = API_LINES[chunk::CHUNKS] if API_LINES else _load("schedule_api.jsonl")
    mismatches = []
    for line in lines:
        with Simulator(apps[line["has_handler"]], start=line["now"], strict=True) as sim:
            if _needs_setup(line):
                name = line["input"]["name"]
                sim.schedule.create({"name": name, "data": {}, "schedule_at": SETUP_AT})
            op = line["op"]
            got = _answer(op, lambda: getattr(sim.schedule, op)(line["input"]))  # noqa: B023
        if got != line["expect"]:
            mismatches.append((line, got))
    _report(mismatches, len(lines))


def test_every_schedule_at_line_through_rule_6() -> None:
    lines = _load("schedule_at.jsonl")
    mismatches = []
    for line in lines:
        try:
            got: str | None = iso8601.format_expanded(iso8601.parse(line["input"]))
        except iso8601.InvalidInstant:
            got = None
        if got != line["instant"] or (got is not None) != line["valid"]:
            mismatches.append((line, got))
    _report(mismatches, len(lines))


# -- samples through the other two doors ------------------------------------------------------


def _sample(lines: Iterable[dict[str, Any]], keep: Callable[[dict[str, Any]], bool], every: int):
    chosen = [line for line in lines if keep(line)]
    return chosen[::every]


def _shell_expressible(line: dict[str, Any]) -> bool:
    """Inputs the command line's options can spell: string names and times, a dict repeat."""
    request = line["input"]
    if not isinstance(request.get("name", ""), str):
        return False
    at = request.get("schedule_at", "")
    if not isinstance(at, str) or at.strip().startswith("+"):  # +DURATION on the command line
        return False
    if "repeat" not in request:
        return True
    repeat = request["repeat"]
    if (
        not isinstance(repeat, dict)
        or not repeat
        or set(repeat) - {"time_unit", "frequency", "timezone"}
    ):
        return False
    return (
        isinstance(repeat.get("time_unit", ""), str)
        and isinstance(repeat.get("timezone", ""), str)
        and isinstance(repeat.get("frequency", 1), int | float)
        and not isinstance(repeat.get("frequency", 1), bool)
    )


def _cli_args(op: str, request: dict[str, Any]) -> list[str]:
    args = ["schedule", op]
    if "name" in request:
        args += ["--name", request["name"]]
    if op in ("fetch", "delete"):
        return args
    if "data" in request:
        args += ["--data", json.dumps(request["data"])]
    if "schedule_at" in request:
        args += ["--at", request["schedule_at"]]
    repeat = request.get("repeat", {})
    for key, option in (("time_unit", "--time-unit"), ("frequency", "--frequency")):
        if key in repeat:
            args += [option, str(repeat[key])]
    if "timezone" in repeat:
        args += ["--timezone", repeat["timezone"]]
    return args


def test_a_sample_through_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _sample(API_LINES or _load("schedule_api.jsonl"), _shell_expressible, every=40)
    assert len(lines) >= 60
    monkeypatch.delenv("FWSCHED_APP", raising=False)
    mismatches = []
    for number, line in enumerate(lines):
        app = tmp_path / f"app{number}"
        app.mkdir()
        manifest = WITH_HANDLER if line["has_handler"] else WITHOUT_HANDLER
        (app / "manifest.json").write_text(json.dumps(manifest))
        (app / "server.py").write_text("exports = {'onScheduledEventHandler': print}\n")
        (app / "fwsched.toml").write_text(f'[simulator]\nstart = "{line["now"]}"\n')
        run = CliRunner().invoke
        if _needs_setup(line):
            setup = ["schedule", "create", "--name", line["input"]["name"], "--data", "{}"]
            result = run(cli, [*setup, "--at", SETUP_AT, "--app", str(app)])
            assert result.exit_code == 0, result.output
        result = run(cli, [*_cli_args(line["op"], line["input"]), "--json", "--app", str(app)])
        answer = json.loads(result.stdout)
        if line["op"] in ("fetch", "delete") and result.exit_code == 0:
            answer = {"ok": True}
        expected_exit = 1 if line["expect"].get("status", 200) != 200 else 0
        if answer != line["expect"] or result.exit_code != expected_exit:
            mismatches.append((line, {"exit": result.exit_code, "answer": answer}))
    _report(mismatches, len(lines))


def test_a_sample_through_a_handler(tmp_path: Path) -> None:
    """The same answers for ``schedule.*`` inside a handler (an RPC to the simulator)."""
    lines = _sample(
        API_LINES or _load("schedule_api.jsonl"), lambda line: line["has_handler"], every=8
    )
    assert len(lines) >= 300
    app = tmp_path / "app"
    app.mkdir()
    (app / "manifest.json").write_text(json.dumps(WITH_HANDLER))
    (app / "server.py").write_text(HANDLER_SERVER)
    by_now: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_now.setdefault(line["now"], []).append(line)
    mismatches = []
    for now, group in by_now.items():
        cases = [{**line, "needs_setup": _needs_setup(line)} for line in group]
        (app / "cases.json").write_text(json.dumps(cases))
        with Simulator(app, start=now, timeout=20) as sim:
            invocation = sim.trigger_payload({})
        assert invocation.outcome == "ok", (invocation.error, invocation.traceback)
        for line, got in zip(group, invocation.return_value, strict=True):
            if got != line["expect"]:
                mismatches.append((line, got))
    _report(mismatches, len(lines))
