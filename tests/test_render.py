"""Human output at a terminal's width: tables, the dashboard, one-line formats (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
from rich.console import Console

from fwsched.dashboard import Dashboard, PlainLog, Snapshot
from fwsched.render import (
    history_table,
    invocation_line,
    print_invocation,
    schedules_table,
    time_width,
)

WIDTHS = (80, 100, 120)
LONG_LOG = "synced 250 records from the CRM; next cursor c-0000123456 saved to db; all good"


def invocation(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": n,
        "schedule": "hourly_sync",
        "source": "schedule",
        "event": "onScheduledEvent",
        "fire_at": f"2026-01-05T{n % 24:02d}:00:00Z",
        "timestamp": 1767574800000,
        "outcome": "ok",
        "duration_ms": 1234.56,
        "error": None,
        "log": f"starting\n{LONG_LOG}\n",
        **fields,
    }


SCHEDULES = [
    {
        "name": "reminder_12345678901234567890",  # 30 characters, the platform's longest
        "kind": "one-time",
        "next_fire_at": "2026-01-05T09:30:00Z",
        "repeat": None,
        "data": {"task": "call Acme about the renewal", "owner": "sam@example.com", "n": 42},
    },
    {
        "name": "digest",
        "kind": "recurring",
        "next_fire_at": "2026-01-05T10:00:00Z",
        "repeat": {"time_unit": "days", "frequency": 1, "timezone": "Europe/Berlin"},
        "data": {"task": "daily digest"},
    },
]


def render(renderable: Any, width: int, height: int = 60) -> list[str]:
    out = StringIO()
    console = Console(file=out, width=width, height=height, color_system=None, soft_wrap=True)
    console.print(renderable)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", WIDTHS)
def test_history_keeps_id_time_schedule_outcome_duration_whole(width: int) -> None:
    runs = [
        invocation(7),
        invocation(1234, outcome="error", error="ValueError: boom", source="trigger"),
        invocation(99, fire_at="2026-01-05T09:00:00.250Z", outcome="interrupted"),
    ]
    lines = render(history_table(runs), width)
    assert lines[0].split()[:6] == ["id", "fire", "time", "schedule", "outcome", "duration"]
    for line in lines:
        assert len(line) <= width and line == line.rstrip()
    for line, expected in zip(lines[1:], runs, strict=True):
        for whole in (str(expected["id"]), expected["fire_at"], "1.2 s", expected["outcome"]):
            assert whole in line
    assert "hourly_sync (trigger)" in lines[2]
    # The log shrinks, with an ellipsis, and it is the last line of the output.
    assert "starting" not in lines[1]
    if width >= 100:
        assert LONG_LOG[:20] in lines[1]
    if width < 120:
        assert lines[1].endswith("…")
    # Columns line up also when one time has milliseconds.
    starts = {line.index("hourly_sync") for line in lines[1:]}
    assert len(starts) == 1


@pytest.mark.parametrize("width", WIDTHS)
def test_schedules_keep_name_kind_time_whole_and_data_shrinks(width: int) -> None:
    lines = render(schedules_table(SCHEDULES), width)
    assert len(lines) == 3  # one line per schedule: nothing wraps
    for line in lines:
        assert len(line) <= width and line == line.rstrip()
    assert "reminder_12345678901234567890" in lines[1] and "2026-01-05T09:30:00Z" in lines[1]
    assert "digest" in lines[2] and "recurring" in lines[2] and "2026-01-05T10:00:00Z" in lines[2]
    if width == 80:
        # The data gives way first; then the repeat, as a 30-character name leaves no room.
        assert lines[1].endswith("…") and "every 1 " in lines[2] and lines[2].endswith("…")
    else:
        assert "every 1 day (Europe/Berlin)" in lines[2]
    if width == 120:
        assert '"task":"daily digest"' in lines[2]


def test_without_room_for_the_whole_columns_the_name_folds_rather_than_be_cut() -> None:
    runs = [
        invocation(1, schedule="a_schedule_name_of_thirty_chrs", source="trigger"),
        invocation(2, fire_at="2026-01-05T02:00:00.250Z", outcome="interrupted"),
    ]
    for width in (70, 76):
        lines = render(history_table(runs), width)
        assert all(len(line) <= width and line == line.rstrip() for line in lines)
        assert "2026-01-05T01:00:00Z" in lines[1] and "1.2 s" in lines[1] and " ok " in lines[1]
        column = lines[0].index("schedule")
        second = next(i for i, line in enumerate(lines) if line.startswith(" 2 "))
        folded = "".join(line[column:].split("  ")[0] for line in lines[1:second])
        assert folded.replace(" ", "") == "a_schedule_name_of_thirty_chrs(trigger)"  # all of it
        assert "interrupted" in lines[second] and "2026-01-05T02:00:00.250Z" in lines[second]


def test_one_line_formats_align_times_with_milliseconds() -> None:
    runs = [invocation(1), invocation(2, fire_at="2026-01-05T02:00:00.500Z")]
    times = time_width(runs)
    lines = [invocation_line(run, times=times) for run in runs]
    assert lines[0].index("hourly_sync") == lines[1].index("hourly_sync")
    assert all(line == line.rstrip() for line in lines)


def snapshot(**fields: Any) -> Snapshot:
    values: dict[str, Any] = {
        "app": "/home/someone/projects/freshworks/apps/my_app",
        "speed": 60,
        "paused": True,
        "reload": True,
        "socket": "/home/someone/projects/freshworks/apps/my_app/.fwsched/control.sock",
        "relaxed": True,
        "installed": False,
        "schedules": SCHEDULES,
        "schedule_count": 2,
        "recent": [invocation(n) for n in range(1, 9)],
        "load_errors": [],
        "running": {
            "id": 9,
            "schedule": "digest",
            "source": "schedule",
            "event": "onScheduledEvent",
            "fire_at": "2026-01-05T10:00:00Z",
            "started_at": datetime.now(UTC).timestamp() - 5,
        },
        **fields,
    }
    return Snapshot(**values)


def dashboard_lines(width: int, height: int = 40, **fields: Any) -> list[str]:
    out = StringIO()
    console = Console(file=out, width=width, height=height, color_system=None, soft_wrap=True)
    dashboard = Dashboard(lambda: datetime(2026, 1, 5, 9, 30, tzinfo=UTC), console)
    dashboard.update(snapshot(**fields))
    dashboard.notice("reloaded: server.py changed")
    console.print(dashboard.render())
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_dashboard_fits_the_terminal(width: int) -> None:
    lines = dashboard_lines(width)
    assert all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    for whole in (
        "2026-01-05T09:30:00Z",
        "paused (fwsched advance moves it)",
        "relaxed",
        "not installed",
        "reload on",
        "running #9 digest for 5.",  # the running handler with its elapsed time
        "reminder_12345678901234567890",
        "every 1 ",
        "reloaded: server.py changed",
    ):
        assert whole in text, whole
    if width > 80:
        assert "every 1 day (Europe/Berlin)" in text
    # A schedule is one line (its data shrinks, it does not wrap onto the next one).
    [row] = [line for line in lines if "reminder_1234" in line]
    assert "2026-01-05T09:30:00Z" in row
    # The recent invocations keep their id, time, outcome and duration.
    [recent] = [line for line in lines if "2026-01-05T08:00:00Z" in line]
    assert " 8 " in recent and "ok" in recent and "1.2 s" in recent


def test_the_dashboard_fits_80_columns_with_long_names_and_milliseconds() -> None:
    recent = [
        invocation(77, fire_at="2026-01-08T09:30:00.411Z", schedule="sync_customers_hourly"),
        invocation(78, schedule="sync_customers_hourly", source="trigger", duration_ms=8000),
    ]
    lines = dashboard_lines(80, recent=recent)
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert "8.0 s" in text and "(trigger)" in text and "2026-01-08T09:30:00.411Z" in text


def test_the_dashboard_fits_a_short_terminal_too() -> None:
    lines = dashboard_lines(80, height=24)
    assert len(lines) <= 24
    assert any("Schedules (2)" in line for line in lines)
    assert any("2026-01-05T08:00:00Z" in line for line in lines)  # the newest run stays


def test_show_labels_real_time_and_gives_timestamp_as_iso_and_precise_durations() -> None:
    out = StringIO()
    console = Console(file=out, width=100, color_system=None)
    print_invocation(
        console,
        invocation(
            3,
            timestamp=1767574800000,
            started_at="2026-04-01T12:00:00.123Z",
            duration_ms=12.3456,
            payload={},
            return_value=None,
        ),
    )
    text = out.getvalue()
    assert "1767574800000 (2026-01-05T01:00:00Z)" in text
    assert "started_at    2026-04-01T12:00:00.123Z (real time)" in text
    assert "12.3 ms" in text


def test_the_dashboard_shows_the_newest_requests_within_80_columns() -> None:
    requests = [
        {"invocation": 8, "method": "GET", "url": "https://api.example.com/tasks?key=****",
         "template": "getTasks", "status": 200, "attempts": 1, "duration_ms": 3,
         "answered_by": "stub"},
        {"invocation": 8, "method": "POST", "url": "https://api.example.com/" + "x" * 80,
         "template": None, "status": 502, "attempts": 0, "duration_ms": 0,
         "answered_by": "none"},
    ]  # fmt: skip
    recent = [invocation(7), {**invocation(8), "requests": requests}]
    lines = dashboard_lines(80, recent=recent)
    assert all(len(line) <= 80 for line in lines)
    [line] = [line for line in lines if "requests of #8" in line]
    assert "POST https://api.example.com/" in line and line.rstrip(" │").endswith("…")
    wide = "\n".join(dashboard_lines(200, recent=recent))
    assert "502 (none)" in wide and "(+1 more: fwsched show 8)" in wide
    assert not any("requests of" in line for line in dashboard_lines(80))


def test_a_piped_runner_prints_each_request_under_its_invocation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    request = {"method": "GET", "url": "https://api.example.com/t", "status": 200,
               "answered_by": "stub"}  # fmt: skip
    PlainLog().invocation({**invocation(3), "requests": [request]})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "hourly_sync" in lines[0]
    assert lines[1] == "    GET https://api.example.com/t 200 (stub)"
