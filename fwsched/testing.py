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
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

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
    if marker_app is not None:
        app = Path(marker_app)
        # Relative to the test file first (apps shipped next to their tests), then rootdir.
        near_test = request.path.parent / app
        return near_test if near_test.exists() else request.config.rootpath / app
    ini_app = request.config.getini("fwsched_app")
    if not ini_app:
        pytest.fail(
            "fwsched_sim needs an app: mark the test @pytest.mark.fwsched(app='path/to/app') "
            "or set fwsched_app in the pytest ini file",
            pytrace=False,
        )
    return request.config.rootpath / str(ini_app)


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
    sim = Simulator(app, **kwargs)
    try:
        if install:
            _install(sim)
        yield sim
    finally:
        sim.close()


def _install(sim: Simulator) -> None:
    """The marker's ``install=True``: a test that asked for an installed app needs one."""
    from fwsched.platform.events import install_failure

    reason = install_failure(sim.install())
    if reason is not None:
        pytest.fail(
            f"fwsched_sim: install=True, but the app did not install: {reason}", pytrace=False
        )
