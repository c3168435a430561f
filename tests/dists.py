"""Throwaway installed distributions for plugin tests: the ``make_dist`` fixture."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nextmonth_health.hooks.manager import ENTRY_POINT_GROUP

Dist = Callable[..., Path]


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dist]:
    """Build a throwaway installed distribution: modules plus a ``.dist-info``."""
    modules: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(dist: str, entry_points: dict[str, str], sources: dict[str, str]) -> Path:
        for module, source in sources.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            modules.append(module)
        info = tmp_path / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
        importlib.invalidate_caches()
        return info

    yield make
    for module in modules:
        sys.modules.pop(module, None)
