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


def layer_of(path: Path) -> str:
    """``web`` (the web adapters, ``asgi``/``wsgi`` beside them), ``cli``, ``store``,
    ``testing``, or ``core``."""
    rel = path.relative_to(SOURCE)
    if rel.parts[0] in ("web", "cli", "store"):
        return rel.parts[0]
    if rel.name in ("asgi.py", "wsgi.py"):
        return "web"
    if rel.name in ("testing.py", "__main__.py"):
        return rel.stem
    return "core"


NEVER = {
    "core": ("nextmonth_health.web", "nextmonth_health.cli", "nextmonth_health.asgi", "nextmonth_health.wsgi"),
    "store": ("nextmonth_health.runner", "nextmonth_health.incidents", "nextmonth_health.monitor"),
}


def test_the_layers_import_only_downwards() -> None:
    """The core never imports the web or the command line; the stores never import what
    judges (the runner, the incident tracker, the monitor)."""
    broken = []
    for path in sorted(SOURCE.rglob("*.py")):
        forbidden = NEVER.get(layer_of(path), ())
        for module in imported_modules(path):
            if module.startswith(forbidden):
                broken.append(f"{path.relative_to(SOURCE)} imports {module}")
    assert broken == []


def test_the_web_reads_state_only_through_public_methods() -> None:
    """No ``monitor._x`` or ``store._x`` in the web layer: what it shows goes through the
    Monitor's and the Store's public API, which the other layers keep."""
    broken = []
    for path in sorted(SOURCE.rglob("*.py")):
        if layer_of(path) != "web":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                if name in ("monitor", "store"):
                    broken.append(f"{path.relative_to(SOURCE)}:{node.lineno} {name}.{node.attr}")
    assert broken == []


def test_the_evaluator_is_given_its_collaborators_not_the_monitor() -> None:
    """The runner never names the Monitor, not even for types: no circle through it."""
    assert not any(m.startswith("nextmonth_health.monitor") for m in imported_modules(SOURCE / "runner.py"))
