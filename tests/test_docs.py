"""The docs cannot drift from the code: settings, hooks, env vars, commands and examples."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest

import nextmonth_health as nmh
from nextmonth_health.hooks import specs as hookspecs
from nextmonth_health.settings import MONITOR_WIDE, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of a ``## heading`` section, up to the next level-2 heading."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
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
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


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
    documented = {
        row[0].strip("`") for row in table_rows(section(read(DOCS / "configuration.md"), "Monitor arguments"))
    }
    documented.discard("**settings")
    assert real == documented


def test_every_middleware_option_is_documented_with_its_default() -> None:
    import ast

    from nextmonth_health.web.public import HealthMiddlewareBase, PublicEndpoints

    options: dict[str, Any] = {}
    for cls in (HealthMiddlewareBase, PublicEndpoints):
        for name, p in inspect.signature(cls.__init__).parameters.items():
            if p.kind is p.KEYWORD_ONLY:
                options.setdefault(name, p.default)
    rows = {
        row[0].strip("`"): row for row in table_rows(section(read(DOCS / "configuration.md"), "Middleware options"))
    }
    assert set(rows) == set(options), (
        f"missing {sorted(set(options) - set(rows))}, made up {sorted(set(rows) - set(options))}"
    )
    for name, default in options.items():
        shown = re.match(r"`([^`]+)`", rows[name][1])
        if shown:  # a literal default must be the code's; others are described in words
            assert ast.literal_eval(shown.group(1)) == default, (
                f"{name}: docs say {shown.group(1)}, the code {default!r}"
            )


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
    docs = read(DOCS / "plugins.md")
    mentioned = set(re.findall(r"\b(register_\w+)\(", docs))
    misspelt = set(re.findall(r"'(register_\w+)' is not a nextmonth_health hook", docs))  # shown as the mistake it is
    assert mentioned - misspelt - set(hookspec_functions()) == set()


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
    documented = {
        row[0].strip("`")
        for row in table_rows(section(read(DOCS / "configuration.md"), "Environment variables and the config file"))
    }
    assert names == documented, (
        f"docs/configuration.md: missing {sorted(names - documented)}, made up {sorted(documented - names)}"
    )


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
        for name in re.findall(
            r"\blog\.(?:debug|info|warning|error|critical)\(\s*f?\"(nextmonth_health\.[a-z_{}.]+)\"", read(path)
        ):
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
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"Makefile has no {target} target"


def test_ci_runs_the_readme_test_command() -> None:
    script = read(CI_RUN)
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    assert os.access(CI_RUN, os.X_OK), ".ci/run must be executable"
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert any(re.search(r"\bmake test$", line) for line in commands), ".ci/run must run `make test`"


def test_make_test_gets_what_the_tests_need_first() -> None:
    makefile = read(ROOT / "Makefile")
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "no test target"
    lines = [line.strip().lstrip("@") for line in recipe.group(1).splitlines()]
    assert lines[0] == ".ci/test-deps" and "pytest" in lines[-1], lines
    assert any(line.endswith(" lint") for line in lines), "make test must run the gates"
    assert os.access(ROOT / ".ci" / "test-deps", os.X_OK)


def test_make_lint_holds_the_lint_format_and_type_gates() -> None:
    """CI runs ``make test``, which runs these: a gate left out here goes unheld."""
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", read(ROOT / "Makefile"), re.MULTILINE)
    assert recipe, "no lint target"
    lines = [line.strip() for line in recipe.group(1).splitlines()]
    assert lines == ["$(BIN)/ruff check .", "$(BIN)/ruff format --check .", "$(BIN)/mypy"]
    pins = read(ROOT / "pyproject.toml")
    assert re.search(r'"ruff==[\d.]+"', pins) and re.search(r'"mypy==[\d.]+"', pins), "the gates' versions are pinned"


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
        check=False,
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


# Every code block of the README and docs/ runs, or says why not --------------------------
#
# The collector reads every fenced block. Python blocks of a page run in order in one fresh
# interpreter (a reader's session), in an empty working directory with no NEXTMONTH_HEALTH_*
# variables; ``<!-- invisible-code-block: python ... -->`` comments add setup or checks a
# reader need not see. TOML and JSON blocks are parsed (and a config file validated as the
# command line would). A block marked ``<!-- output -->`` must be exactly what the Python
# block before it printed. Anything else carries a mark just before it:
# ``<!-- tested-by: tests/file.py::test_name -->`` (that test exercises it) or
# ``<!-- illustrative: why it is not run -->``.

PAGES = [README, *sorted(DOCS.glob("*.md"))]
_ELEMENT = re.compile(
    r"^```(?P<info>[^\n`]*)\n(?P<code>.*?)^```[ \t]*$"
    r"|^<!--[ \t]*invisible-code-block:[ \t]*python[ \t]*\n(?P<hidden>.*?)^-->[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_MARK = re.compile(r"<!--\s*(?P<kind>illustrative|tested-by|output)\b:?\s*(?P<text>.*?)\s*-->\s*\Z", re.DOTALL)
_RUNNER = """
import contextlib, io, json, sys, traceback
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
outputs = []
for name, code in blocks:
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, name, "exec"), namespace)
    except BaseException:
        print(json.dumps({"failed": name, "error": traceback.format_exc(), "outputs": outputs}))
        raise SystemExit(1)
    outputs.append(printed.getvalue())
print(json.dumps({"outputs": outputs}))
"""


def python_in(
    cwd: Path, args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """This interpreter run with ``args`` in ``cwd``; its finished process, output as text."""
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        input=stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )


@attrs.frozen
class Block:
    page: str
    line: int
    language: str
    code: str
    mark: str | None = None
    note: str = ""
    hidden: bool = False

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def doc_blocks(page: Path) -> list[Block]:
    text = read(page)
    name = str(page.relative_to(ROOT))
    blocks: list[Block] = []
    end = 0
    for match in _ELEMENT.finditer(text):
        line = text.count("\n", 0, match.start()) + 2  # the first line of code
        if match.group("hidden") is not None:
            blocks.append(Block(name, line, "python", match.group("hidden"), hidden=True))
        else:
            mark = _MARK.search(text[end : match.start()])
            blocks.append(
                Block(
                    name,
                    line,
                    match.group("info").split()[0] if match.group("info").strip() else "",
                    match.group("code"),
                    mark.group("kind") if mark else None,
                    mark.group("text") if mark else "",
                )
            )
        end = match.end()
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in doc_blocks(page)]


def runs_as_python(block: Block) -> bool:
    return block.language == "python" and block.mark is None


def test_every_code_block_is_run_or_says_why_not() -> None:
    assert len(ALL_BLOCKS) > 50
    unmarked = [b.name for b in ALL_BLOCKS if b.mark is None and b.language not in ("python", "toml", "json")]
    assert not unmarked, (
        f"blocks the suite does not run, with no <!-- illustrative: why --> or <!-- tested-by: -->: {unmarked}"
    )
    for block in ALL_BLOCKS:
        if block.mark == "illustrative":
            assert len(block.note) > 10, f"{block.name}: say why the block is not run"
        elif block.mark == "tested-by":
            path, _, test = block.note.partition("::")
            assert (ROOT / path).is_file() and re.search(
                rf"^(async )?def {re.escape(test)}\(", read(ROOT / path), re.MULTILINE
            ), f"{block.name}: no test {block.note}"
        elif block.mark == "output":
            page = [b for b in ALL_BLOCKS if b.page == block.page and b.line < block.line]
            assert page and runs_as_python(page[-1]), f"{block.name}: an output block follows the Python that prints it"


def python_pages() -> list[str]:
    return sorted({b.page for b in ALL_BLOCKS if runs_as_python(b)})


@pytest.mark.parametrize("page", python_pages())
def test_the_python_of_a_page_runs_and_prints_what_it_says(page: str, tmp_path: Path) -> None:
    blocks = [b for b in ALL_BLOCKS if b.page == page]
    python = [b for b in blocks if runs_as_python(b)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMONTH_HEALTH_")}
    env.update(NEXTMONTH_HEALTH_LOAD_PLUGINS="", PYTHONIOENCODING="utf-8")
    result = python_in(
        tmp_path,
        ["-c", _RUNNER],
        env,
        stdin=json.dumps([(b.name + (" (hidden)" if b.hidden else ""), b.code) for b in python]),
    )
    report = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert result.returncode == 0, f"{report.get('failed')} failed:\n{report.get('error', '')}{result.stderr}"
    printed = dict(zip((b.name for b in python), report["outputs"], strict=True))
    for i, block in enumerate(blocks):
        if block.mark == "output":
            before = [b for b in blocks[:i] if runs_as_python(b)][-1]
            assert printed[before.name].rstrip() == block.code.rstrip(), (
                f"{block.name} is not what {before.name} prints"
            )


@pytest.mark.parametrize(
    "block", [b for b in ALL_BLOCKS if b.language in ("toml", "json") and b.mark is None], ids=lambda b: b.name
)
def test_toml_and_json_blocks_are_valid(block: Block, tmp_path: Path) -> None:
    if block.language == "json":
        json.loads(block.code)
        return
    data = tomllib.loads(block.code)
    if not {"project", "build-system"} & set(data):  # a --config file: validated as the command line does
        from nextmonth_health.cli._common import load_config

        path = tmp_path / "health.toml"
        path.write_text(block.code, encoding="utf-8")
        load_config(str(path))


def test_admin_headers_are_the_documented_ones() -> None:
    from nextmonth_health.web import HealthApp, Request
    from nextmonth_health.web.admin import admin_routes

    [block] = [b for b in ALL_BLOCKS if b.page == "docs/admin.md" and b.language == "text" and b.mark == "tested-by"]
    monitor = nmh.Monitor("docs", store="memory://", load_entrypoints=False)
    response = HealthApp(monitor, authorize=lambda request: True, admin_routes=admin_routes()).handle(
        Request("GET", "/admin/system-health/")
    )
    assert response.status == 200
    for line in block.code.strip().splitlines():
        header, _, value = line.partition(": ")
        assert response.header(header) == value, header


def test_the_plugin_example_and_its_test_pass(tmp_path: Path) -> None:
    docs = read(DOCS / "plugins.md")
    plugin = next(b for b in code_blocks(section(docs, "A complete plugin")) if "@nmh.hookimpl" in b)
    test = next(b for b in code_blocks(section(docs, "Testing a plugin")) if "def test_" in b)
    (tmp_path / "acme_health.py").write_text(plugin, encoding="utf-8")
    (tmp_path / "test_acme_health.py").write_text(test, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONIOENCODING": "utf-8"}
    result = python_in(tmp_path, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(tmp_path)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
