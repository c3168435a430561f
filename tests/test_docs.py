"""The docs cannot drift from the code: settings, hooks, env vars, commands and examples."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest

import nextmonth_health as nmh
from nextmonth_health import hookspecs, plugin_manager
from nextmonth_health.settings import MONITOR_WIDE, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of a ``## heading`` section, up to the next level-2 heading."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table row whose first cell is a backticked name."""
    rows = []
    for line in text.splitlines():
        if re.match(r"^\|\s*`[^`]+`\s*\|", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def literal(value: Any) -> str:
    """How configuration.md shows a default: the Python literal (mappings as plain dicts)."""
    if isinstance(value, MappingProxyType):
        value = dict(value)
    return repr(value)


def code_blocks(text: str, language: str = "python") -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


# Settings and Monitor arguments -------------------------------------------------------


def settings_rows() -> dict[str, list[str]]:
    rows = table_rows(section(read(DOCS / "configuration.md"), "Settings reference"))
    names = [row[0].strip("`") for row in rows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"documented twice in configuration.md: {duplicates}"
    return {row[0].strip("`"): row for row in rows}


def test_every_setting_is_documented_with_its_default_and_help() -> None:
    documented = settings_rows()
    for field in attrs.fields(Settings):
        assert field.name in documented, f"setting {field.name!r} is missing from docs/configuration.md"
        row = documented[field.name]
        assert row[1] == f"`{literal(field.default)}`", (
            f"{field.name}: docs say default {row[1]}, the code says `{literal(field.default)}`"
        )
        assert row[2].startswith(field.metadata["help"]), (
            f"{field.name}: the description should start with the field's help text: {field.metadata['help']!r}"
        )


def test_no_documented_setting_is_made_up() -> None:
    real = {f.name for f in attrs.fields(Settings)}
    extra = sorted(set(settings_rows()) - real)
    assert not extra, f"docs/configuration.md documents settings that do not exist: {extra}"


def test_monitor_wide_settings_are_listed() -> None:
    body = section(read(DOCS / "configuration.md"), "Settings reference")
    listed = body[body.index("### Per-site or monitor-wide") :]
    missing = sorted(name for name in MONITOR_WIDE if f"`{name}`" not in listed)
    assert not missing, f"docs/configuration.md does not say these are monitor-wide: {missing}"


def test_every_monitor_argument_is_documented() -> None:
    params = inspect.signature(nmh.Monitor.__init__).parameters
    real = {name for name, p in params.items() if name != "self" and p.kind is not p.VAR_KEYWORD}
    documented = {row[0].strip("`") for row in table_rows(section(read(DOCS / "configuration.md"), "Monitor arguments"))}
    documented.discard("**settings")
    assert real == documented


# Hooks ---------------------------------------------------------------------------------


def hookspec_functions() -> dict[str, Any]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    specs = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker)}
    assert specs, "found no hookspecs"
    return specs


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_every_hook_is_documented_with_its_signature(name: str) -> None:
    docs = read(DOCS / "plugins.md")
    signature = inspect.signature(hookspec_functions()[name])
    short = f"{name}({', '.join(signature.parameters)})"
    typed = f"def {name}{signature}".replace("'", "")
    assert short in docs, f"docs/plugins.md lacks {short}"
    assert typed in docs, f"docs/plugins.md lacks the exact signature {typed}"


def test_no_documented_hook_is_made_up() -> None:
    mentioned = set(re.findall(r"\b(register_\w+)\(", read(DOCS / "plugins.md")))
    assert mentioned - set(hookspec_functions()) == set()


# Environment variables -------------------------------------------------------------------


SOURCE = ROOT / "src" / "nextmonth_health"


def env_vars_read() -> set[str]:
    """Every ``NEXTMONTH_HEALTH_*`` variable the package reads (named as a string literal)."""
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        found |= set(re.findall(r"[\"'](NEXTMONTH_HEALTH_[A-Z_]+)[\"']", read(path)))
    return found


def test_every_env_var_is_documented() -> None:
    names = env_vars_read()
    assert {"NEXTMONTH_HEALTH_STORE", "NEXTMONTH_HEALTH_LOAD_PLUGINS"} <= names
    documented = {row[0].strip("`") for row in table_rows(section(read(DOCS / "configuration.md"), "Environment variables and the config file"))}
    assert names == documented, f"docs/configuration.md: missing {sorted(names - documented)}, made up {sorted(documented - names)}"


def test_no_documented_env_var_is_made_up() -> None:
    real = env_vars_read()
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for name in set(re.findall(r"NEXTMONTH_HEALTH_[A-Z_]+", read(page))):
            assert name in real, f"{page.name} mentions {name}, which the code never reads"


# Log events ------------------------------------------------------------------------------


def test_every_log_event_is_documented() -> None:
    """Each event the package logs appears in configuration.md's Logging table."""
    documented = section(read(DOCS / "configuration.md"), "Logging")
    events: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for name in re.findall(r"\blog\.(?:debug|info|warning|error|critical)\(\s*f?\"(nextmonth_health\.[a-z_{}.]+)\"", read(path)):
            events.add(name)
    assert "nextmonth_health.internal_error" in events
    names = set()
    for name in events:
        if "{" in name:  # the log sink's nextmonth_health.incident_{transition.kind}
            names |= {name.split("{")[0] + kind.value for kind in nmh.TransitionKind}
        else:
            names.add(name)
    for name in sorted(names):
        # The table may name a family once: `nextmonth_health.incident_opened`, `_resolved`
        short = "_" + name.rsplit("_", 1)[-1] if name.startswith("nextmonth_health.incident_") else name
        assert f"`{name}`" in documented or f"`{short}`" in documented, (
            f"docs/configuration.md's Logging section lacks {name}"
        )


# Checks ----------------------------------------------------------------------------------


def test_every_bundled_check_and_status_is_described() -> None:
    docs = read(DOCS / "checks.md")
    monitor = nmh.Monitor("docs", store="memory://", load_entrypoints=False)
    for check in monitor.checks:
        assert f"`{check.name}`" in docs, f"docs/checks.md does not describe check {check.name!r}"
    for health in nmh.Health:
        assert f"`{health.value}`" in docs


# README, Makefile and CI -----------------------------------------------------------------


def test_readme_has_the_two_commands() -> None:
    body = section(read(README), "Two commands")
    commands = [line.split("#")[0].strip() for block in code_blocks(body, "sh") for line in block.splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    assert "3.11" in body and "venv" in body


def test_makefile_has_the_readme_targets() -> None:
    makefile = read(ROOT / "Makefile")
    for target in ("demo", "test", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no {target} target"


def test_ci_runs_the_readme_test_command() -> None:
    script = read(CI_RUN)
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    assert os.access(CI_RUN, os.X_OK), ".ci/run must be executable"
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert any(re.search(r"\bmake test$", line) for line in commands), ".ci/run must run `make test`"


def test_make_test_gets_what_the_tests_need_first() -> None:
    makefile = read(ROOT / "Makefile")
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "no test target"
    lines = [line.strip().lstrip("@") for line in recipe.group(1).splitlines()]
    assert lines[0] == ".ci/test-deps" and "pytest" in lines[-1], lines
    assert os.access(ROOT / ".ci" / "test-deps", os.X_OK)


def run_test_deps(tools: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    """``.ci/test-deps`` as an ordinary user (``nobody`` when the suite runs as root) on a
    machine whose PATH has only ``tools``: the fresh Debian machine of the README."""
    import shutil

    folder = Path(tempfile.mkdtemp(dir=tmp))
    folder.chmod(0o755)  # mkdtemp makes it its owner's only
    (folder / "bin").mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found, tool
        (folder / "bin" / tool).symlink_to(found)
    script = folder / "test-deps"
    shutil.copy(ROOT / ".ci" / "test-deps", script)
    script.chmod(0o755)
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*as_user, "/usr/bin/env", "-i", f"PATH={folder / 'bin'}", "bash", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def tmp() -> Iterator[Path]:
    """A temporary folder an ordinary user can read (pytest's tmp_path is its owner's only)."""
    with tempfile.TemporaryDirectory() as name:
        Path(name).chmod(0o755)
        yield Path(name)


def test_make_test_on_a_fresh_machine_says_in_one_line_what_to_run(tmp: Path) -> None:
    basics = ["bash", "env", "id"]
    said = run_test_deps([*basics, "apt-get"], tmp)
    assert said.returncode == 1, said
    assert said.stderr.splitlines() == [
        "make test needs redis-server chromium: run  sudo apt-get install -y redis-server chromium  then make test again"
    ]
    elsewhere = run_test_deps([*basics, "redis-server"], tmp)  # not Debian, Chromium missing
    assert elsewhere.returncode == 1 and len(elsewhere.stderr.splitlines()) == 1
    assert "needs chromium" in elsewhere.stderr and "package manager" in elsewhere.stderr
    ready = run_test_deps([*basics, "redis-server", "chromium"], tmp)
    assert (ready.returncode, ready.stdout, ready.stderr) == (0, "", "")


def test_doc_links_point_at_files() -> None:
    pages = [README, *sorted(DOCS.glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", read(page)):
            if "://" in target or (page == README and not target.startswith("docs/")):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


# Examples in the docs run ----------------------------------------------------------------


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NEXTMONTH_HEALTH_LOAD_PLUGINS": ""}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=120
    )


@pytest.mark.parametrize("page", ["README.md", "docs/quickstart.md"])
def test_runnable_snippets_run(page: str, tmp_path: Path) -> None:
    snippets = [block for block in code_blocks(read(ROOT / page)) if "anyio.run(" in block]
    assert snippets, f"{page} has no runnable snippet"
    for snippet in snippets:
        result = run_python(snippet, tmp_path)
        assert result.returncode == 0, result.stderr


def test_the_plugin_example_and_its_test_pass(tmp_path: Path) -> None:
    docs = read(DOCS / "plugins.md")
    plugin = next(b for b in code_blocks(section(docs, "A complete plugin")) if "@nmh.hookimpl" in b)
    test = next(b for b in code_blocks(section(docs, "Testing a plugin")) if "def test_" in b)
    (tmp_path / "acme_health.py").write_text(plugin, encoding="utf-8")
    (tmp_path / "test_acme_health.py").write_text(test, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
