"""The pytest plugin (entry point ``pytest11``): the ``fwsched_sim`` fixture and ``fwsched`` marker.

    @pytest.mark.fwsched(app="sample_app", start="2026-01-05T09:00:00Z", timeout=2)
    def test_reminder(fwsched_sim):
        fwsched_sim.schedule.create(name="r", data={...}, schedule_at="2026-01-05T10:00:00Z")
        assert [i.outcome for i in fwsched_sim.advance("1h")] == ["ok"]

Each test gets its own Simulator with private, in-memory state, closed after the
test whatever its result, so tests are independent and run in parallel under
pytest-xdist. ``install=True`` in the marker installs the app first (fires its
onAppInstall), as the platform does before any other event; the library itself
never installs implicitly.

The app: the marker's ``app`` (or its first argument), an absolute path or one
relative to the test file's folder, then to pytest's rootdir; without it, the ini
option ``fwsched_app``, absolute or relative to the rootdir (the ini file's
folder). The first of these that holds a manifest.json is the app; if none does,
the test fails with one line naming the paths tried. An app that cannot be opened
(a broken manifest.json) fails the test with its one-line error too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fwsched.errors import FwschedError

if TYPE_CHECKING:  # fwsched.engine is imported only when a test asks for the fixture
    from fwsched.engine import Simulator

MARKER_HELP = (
    "fwsched(app=PATH, install=False, **kwargs): the app, whether to install it first, and "
    "Simulator keyword arguments (start, timeout, isolation, strict, iparams, account, "
    "memory_limit_mb) for fwsched_sim"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("fwsched_app", "app directory for the fwsched_sim fixture (relative to rootdir)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)


def _app_path(request: pytest.FixtureRequest, marker_app: Any) -> Path:
    """The app the test asked for (see the module's docstring), or the test fails."""
    rootdir = request.config.rootpath
    if marker_app is not None:
        app = Path(str(marker_app)).expanduser()
        asked = f"@pytest.mark.fwsched(app={str(marker_app)!r})"
        # Relative to the test file first (apps shipped next to their tests), then rootdir.
        tried = [app] if app.is_absolute() else [request.path.parent / app, rootdir / app]
    else:
        ini_app = str(request.config.getini("fwsched_app") or "")
        if not ini_app:
            pytest.fail(
                "fwsched_sim needs an app: mark the test @pytest.mark.fwsched(app='path/to/app') "
                "or set fwsched_app in the pytest ini file",
                pytrace=False,
            )
        app = Path(ini_app).expanduser()
        asked = f"fwsched_app = {ini_app}"
        tried = [app if app.is_absolute() else rootdir / app]
    for path in tried:
        if (path / "manifest.json").is_file():
            return path
    paths = " and ".join(str(path.resolve()) for path in dict.fromkeys(tried))
    pytest.fail(f"fwsched_sim: no app for {asked}: no manifest.json in {paths}", pytrace=False)


@pytest.fixture
def fwsched_sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    """A started Simulator for the marked (or configured) app, with private state."""
    from fwsched.engine import Simulator

    marker = request.node.get_closest_marker("fwsched")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
    positional = marker.args[0] if marker and marker.args else None
    if "state" in kwargs:
        pytest.fail(
            "fwsched_sim keeps its state private; drop state= from the marker", pytrace=False
        )
    app = _app_path(request, kwargs.pop("app", positional))
    install = bool(kwargs.pop("install", False))
    try:
        sim = Simulator(app, **kwargs)
    except FwschedError as exc:  # a broken manifest.json, a corrupt state: one line, no trace
        pytest.fail(f"fwsched_sim: {exc}", pytrace=False)
    try:
        if install:
            _install(sim)
        yield sim
    finally:
        sim.close()


def pytest_assertrepr_compare(op: str, left: Any, right: Any) -> list[str] | None:
    """``assert run.outcome == "ok"``: say how the run ended (its error, traceback, output).

    An outcome alone says nothing of why, and pytest shows a string diff in place of the
    ``where run = ...`` lines; so the invocation whose outcome it is, looked up among the
    asserting test's local variables (also inside a list of them), is shown in full.
    """
    from fwsched.outcome import Outcome

    if op not in ("==", "!="):
        return None
    outcome = left if isinstance(left, Outcome) else right if isinstance(right, Outcome) else None
    other = right if outcome is left else left
    if outcome is None or not isinstance(other, str):
        return None
    runs = _asserted_invocations(outcome)
    if not runs:
        return None
    lines = [f"{left!r} {op} {right!r}"]
    if len(runs) > 1:
        lines.append(f"{len(runs)} invocations of the test ended {outcome}; the first:")
    lines += runs[0].explain(f"ended {outcome}").splitlines()
    return lines


def _asserted_invocations(outcome: Any) -> list[Any]:
    """The invocations with this outcome among the locals of the test making the assertion."""
    import inspect

    from fwsched.records import Invocation

    frame = inspect.currentframe()
    try:
        while frame is not None:
            found: list[Invocation] = []
            for value in frame.f_locals.values():
                items = value if isinstance(value, list | tuple) else [value]
                found += [v for v in items if isinstance(v, Invocation) and v.outcome is outcome]
            if found:
                return list({id(run): run for run in found}.values())
            frame = frame.f_back
        return []
    finally:
        del frame


def _install(sim: Simulator) -> None:
    """The marker's ``install=True``: a test that asked for an installed app needs one."""
    from fwsched.platform.events import install_failure

    reason = install_failure(sim.install())
    if reason is not None:
        pytest.fail(
            f"fwsched_sim: install=True, but the app did not install: {reason}", pytrace=False
        )
