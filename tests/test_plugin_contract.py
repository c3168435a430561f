"""The import contract: plugins see ``nextmonth_health`` and ``nextmonth_health.plugin`` only.

Bundled plugins and the distributions in ``plugins/`` are what third parties copy; if
they reached into internals, so would every plugin written after them, and no module
behind the public face could move again. Tests may also use ``nextmonth_health.testing``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import nextmonth_health
import nextmonth_health.plugin
import nextmonth_health.testing

SOURCE = Path(nextmonth_health.__file__).resolve().parent
ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {
    "nextmonth_health": set(nextmonth_health.__all__) | {"plugin"},
    "nextmonth_health.plugin": set(nextmonth_health.plugin.__all__),
}
FOR_TESTS = {**PUBLIC, "nextmonth_health.testing": set(nextmonth_health.testing.__all__)}


def package_imports(path: Path, package: str | None) -> Iterator[tuple[int, str, str | None]]:
    """``(line, module, name)`` for each import of the package in ``path`` (``name`` None for
    ``import module``); relative imports are resolved against ``package``, or skipped
    outside it (a distribution's own modules)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield node.lineno, module, alias.name


def breaches(path: Path, package: str | None, allowed: dict[str, set[str]]) -> list[str]:
    found = []
    for line, module, name in package_imports(path, package):
        if module.split(".")[0] != "nextmonth_health":
            continue
        if name is None:
            ok = module in allowed
        else:
            ok = module in allowed and name in allowed[module]
        if not ok:
            found.append(f"{path.relative_to(ROOT)}:{line}: {module}" + (f" import {name}" if name else ""))
    return found


def bundled() -> list[Path]:
    return sorted((SOURCE / "plugins").glob("*.py"))


def distributions() -> list[Path]:
    return sorted(p for p in (ROOT / "plugins").glob("*/src/**/*.py"))


def distribution_tests() -> list[Path]:
    return sorted((ROOT / "plugins").glob("*/tests/*.py"))


def test_bundled_plugins_import_only_the_public_face() -> None:
    assert len(bundled()) >= 7
    found = [b for path in bundled() for b in breaches(path, "nextmonth_health.plugins", PUBLIC)]
    assert found == []


def test_distributions_import_only_the_public_face() -> None:
    assert len({p.parts[len(ROOT.parts) + 1] for p in distributions()}) >= 5
    found = [b for path in distributions() for b in breaches(path, None, PUBLIC)]
    assert found == []


def test_distribution_tests_import_the_public_face_and_the_kit() -> None:
    found = [b for path in distribution_tests() for b in breaches(path, None, FOR_TESTS)]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "from nextmonth_health.signals import REQUEST",
        "from nextmonth_health import alerts",
        "import nextmonth_health.settings",
        "from nextmonth_health.plugin import not_there",
    ],
)
def test_the_contract_catches_a_reach_into_internals(source: str, tmp_path: Path) -> None:
    module = ROOT / "plugins" / f"_contract_probe_{tmp_path.name}.py"
    module.write_text(source + "\n", encoding="utf-8")
    try:
        assert breaches(module, None, PUBLIC)
    finally:
        module.unlink()


def test_the_public_face_names_only_what_exists() -> None:
    for module, names in FOR_TESTS.items():
        assert all(hasattr(__import__(module, fromlist=["_"]), name) for name in names), module


def test_the_reference_table_lists_exactly_what_the_public_face_exports() -> None:
    """docs/plugins.md's "What a plugin imports" table is the module's ``__all__``, no more."""
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    match = re.search(r"^## What a plugin imports$(.*?)^### ", docs, re.MULTILINE | re.DOTALL)
    assert match
    rows = [line for line in match.group(1).splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert documented == set(nextmonth_health.plugin.__all__)
