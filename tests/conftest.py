"""Shared helpers: write throwaway apps into tmp_path."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

MANIFEST = {"events": {"onScheduledEvent": {"handler": "onScheduledEventHandler"}}}

MakeApp = Callable[..., Path]

BOUND = 20.0  # seconds any wait on a process, thread or file may take in these tests


def wait_for(condition: Callable[[], Any], what: str, bound: float = BOUND) -> Any:
    """Poll ``condition`` until it is truthy (returned) or ``bound`` seconds pass (fail)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {bound:g} s waiting for {what}")


@pytest.fixture
def make_app(tmp_path: Path) -> MakeApp:
    """``make_app(server_code, manifest=..., toml=..., iparams=..., name="app")`` -> app dir."""

    def make(
        server: str,
        *,
        manifest: dict[str, Any] | None = None,
        toml: str = "",
        iparams: dict[str, Any] | None = None,
        name: str = "app",
    ) -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "manifest.json").write_text(json.dumps(manifest or MANIFEST))
        (root / "server.py").write_text(textwrap.dedent(server))
        if toml:
            (root / "fwsched.toml").write_text(textwrap.dedent(toml))
        if iparams is not None:
            (root / "config").mkdir()
            (root / "config" / "iparams.json").write_text(json.dumps(iparams))
        return root

    return make
