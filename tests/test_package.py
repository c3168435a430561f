"""What the package promises its users beyond its API: typed, and a test kit kept apart."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import nextmonth_health

SOURCE = Path(nextmonth_health.__file__).resolve().parent


def test_the_package_ships_its_type_information() -> None:
    """It says ``Typing :: Typed``: without ``py.typed`` type checkers ignore its annotations."""
    assert resources.files("nextmonth_health").joinpath("py.typed").is_file()


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against the package."""
    package = ["nextmonth_health", *path.relative_to(SOURCE).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def test_production_code_never_imports_the_test_kit() -> None:
    """``FakeClock`` lives in ``clock``; ``testing`` is for tests (and re-exports it)."""
    offenders = [
        str(path.relative_to(SOURCE))
        for path in sorted(SOURCE.rglob("*.py"))
        if path.name != "testing.py" and "nextmonth_health.testing" in imported_modules(path)
    ]
    assert offenders == []


def test_the_check_resolves_relative_imports() -> None:
    """The demo plays time on a FakeClock: found as ``nextmonth_health.clock``, so the
    check above would see ``..testing`` the same way."""
    assert "nextmonth_health.clock.FakeClock" in imported_modules(SOURCE / "cli" / "demo.py")
