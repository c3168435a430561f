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
        if layer_of(path) != "testing" and any(m.startswith("nextmonth_health.testing") for m in imported_modules(path))
    ]
    assert offenders == []


def test_the_check_resolves_relative_imports() -> None:
    """The demo plays time on a FakeClock: found as ``nextmonth_health.clock``, so the
    check above would see ``..testing`` the same way."""
    assert "nextmonth_health.clock.FakeClock" in imported_modules(SOURCE / "cli" / "demo.py")


#: The root modules every part may use: the words the parts speak to each other.
VOCABULARY = {"values", "signals", "sketch", "codec", "clock", "errors", "logs", "forking"}


def layer_of(path: Path) -> str:
    """The part of the house a source file belongs to: its folder (``record``, ``store``,
    ``judge``, ``tell``, ``hooks``, ``plugins``, ``web``, ``cli``, ``testing``), or at the
    root ``vocabulary``, ``settings`` or ``face`` (the monitor, the public modules)."""
    rel = path.relative_to(SOURCE)
    if len(rel.parts) > 1:
        return rel.parts[0]
    if rel.stem == "__main__":
        return "cli"
    if rel.stem in VOCABULARY:
        return "vocabulary"
    return "settings" if rel.stem == "settings" else "face"


def never(*parts: str) -> tuple[str, ...]:
    return tuple(f"nextmonth_health.{part}" for part in parts)


#: What each part must never import. Data flows record -> store -> judge -> tell; the
#: monitor (the face) wires the four; hooks let plugins in; the web and the command line
#: stand on top, and bundled plugins use the public plugin module like anyone else's.
NEVER = {
    "vocabulary": never(
        "record", "store", "judge", "tell", "hooks", "plugins", "monitor", "settings", "web", "cli", "testing"
    ),
    "settings": never("store", "judge", "tell", "hooks", "plugins", "monitor", "web", "cli", "testing"),
    "store": never("record", "judge", "tell", "hooks", "plugins", "monitor", "web", "cli", "testing"),
    "record": never("judge", "tell", "hooks", "plugins", "monitor", "web", "cli", "testing"),
    "judge": never("hooks", "plugins", "monitor", "web", "cli", "testing"),
    "tell": never("record", "judge", "hooks", "plugins", "monitor", "web", "cli", "testing"),
    "hooks": never("web", "cli", "testing"),
    "plugins": never("record", "store", "judge", "tell", "hooks", "monitor", "settings", "web", "cli", "testing"),
    "face": never("web", "cli", "testing"),
    "web": never("cli", "testing"),
    "cli": never("testing"),
}


def test_every_source_file_belongs_to_a_part_with_rules() -> None:
    assert {layer_of(path) for path in SOURCE.rglob("*.py")} - {"testing"} <= set(NEVER)


def breaches() -> list[str]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        forbidden = NEVER.get(layer_of(path), ())
        for module in imported_modules(path):
            if module.startswith(forbidden) and not allowed(path, module):
                found.append(f"{path.relative_to(SOURCE).as_posix()} imports {module}")
    return found


def test_the_layers_import_only_downwards() -> None:
    """The stages import only the stages before them; none reaches the monitor, the web or
    the command line; production code never imports the test kit."""
    assert breaches() == []


def allowed(path: Path, module: str) -> bool:
    """The two crossings the house allows: the public ``asgi``/``wsgi`` modules re-export
    the web's middleware, and the hook specs name the Monitor they are handed (for types)."""
    rel = path.relative_to(SOURCE).as_posix()
    return (rel in ("asgi.py", "wsgi.py") and module.startswith("nextmonth_health.web")) or (
        rel.startswith("hooks/") and module.startswith("nextmonth_health.monitor")
    )


def test_the_contract_sees_a_breach() -> None:
    """A stage that imported the monitor would be named (the check above can fail)."""
    probe = SOURCE / "judge" / "_probe_breach.py"
    probe.write_text("from ..monitor import Monitor\n", encoding="utf-8")
    try:
        assert "judge/_probe_breach.py imports nextmonth_health.monitor" in breaches()
    finally:
        probe.unlink()


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
    assert not any(m.startswith("nextmonth_health.monitor") for m in imported_modules(SOURCE / "judge" / "runner.py"))
