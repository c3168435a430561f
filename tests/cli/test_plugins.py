"""``plugins``: bundled, installed and in-code plugins, their hooks, and the broken ones.

Installed plugins are real distributions as far as ``importlib.metadata`` can tell: a
``*.dist-info`` folder with ``METADATA`` and ``entry_points.txt`` on ``PYTHONPATH``, next to
the plugin's module — what ``pip install`` leaves behind, without installing anything.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from nextmonth_health.plugins import DEFAULT_PLUGINS

from .conftest import ROOT, Run, one_line_error, write

GOOD = """
import nextmonth_health as nmh

class QueueDepth:
    name = "queue_depth"
    def evaluate(self, view):
        return []

@nmh.hookimpl
def register_health_checks(register):
    register(QueueDepth())
"""

BROKEN_ON_IMPORT = "raise ImportError('needs libfoo 2, found libfoo 1')\n"

BROKEN_HOOK = """
import nextmonth_health as nmh

@nmh.hookimpl
def register_alert_sinks(register, monitor):
    raise RuntimeError("no webhook URL configured")
"""

MISSPELT = """
import nextmonth_health as nmh

@nmh.hookimpl
def register_health_check(register):   # missing the final "s"
    raise AssertionError("never called")
"""

UNMARKED = """
def register_alert_sinks(register):   # the decorator is missing
    raise AssertionError("never called")
"""

IN_CODE = """
import nextmonth_health as nmh

class Quiet:
    name = "upload_failures"   # replaces the bundled check of the same name
    def evaluate(self, view):
        return []

@nmh.hookimpl
def register_health_checks(register):
    register(Quiet())
"""


def distribution(folder: Path, name: str, version: str, entry: str, module: str, source: str) -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    write(info / "entry_points.txt", f"[nextmonth_health]\n{entry} = {module}\n")
    write(folder / f"{module}.py", source)


@pytest.fixture
def site_packages(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "site"
    folder.mkdir()
    distribution(folder, "acme-queue-health", "1.2.3", "queue", "acme_queue_health", GOOD)
    distribution(folder, "acme-broken-health", "0.9.0", "broken", "acme_broken_health", BROKEN_ON_IMPORT)
    distribution(folder, "acme-hook-health", "0.1.0", "hooky", "acme_hook_health", BROKEN_HOOK)
    distribution(folder, "acme-typo-health", "0.3.0", "typo", "acme_typo_health", MISSPELT)
    distribution(folder, "acme-lazy-health", "0.2.0", "lazy", "acme_lazy_health", UNMARKED)
    write(tmp_path / "site" / "acme_in_code.py", IN_CODE)
    path = os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path, "NEXTMONTH_HEALTH_LOAD_PLUGINS": "queue,broken,hooky"}


def by_name(report: dict) -> dict[str, dict]:
    return {p["name"]: p for p in report["plugins"]}


def test_bundled_plugins_with_their_hooks_and_objects(run: Run) -> None:
    result = run("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = by_name(json.loads(result.stdout))
    for module in DEFAULT_PLUGINS:
        assert plugins[module]["kind"] == "bundled" and plugins[module]["status"] == "ok"
    api = plugins["nextmonth_health.plugins.api_errors"]
    assert api["hooks"] == ["register_health_checks"]
    assert api["registers"] == {"checks": [{"name": "api_errors", "in_effect": True}]}
    assert plugins["nextmonth_health.plugins.log_sink"]["registers"]["sinks"][0]["name"] == "log"
    assert plugins["nextmonth_health.plugins.cinematic"]["hooks"] == ["register_message_renderers"]


def test_installed_plugins_their_distribution_and_the_broken_ones(run: Run, site_packages: dict[str, str]) -> None:
    result = run("plugins", "--json", env=site_packages)
    assert result.returncode == 1, "a broken plugin makes the listing exit 1"
    report = json.loads(result.stdout)
    plugins = by_name(report)
    queue = plugins["queue"]
    assert (queue["kind"], queue["distribution"], queue["version"], queue["status"]) == (
        "installed",
        "acme-queue-health",
        "1.2.3",
        "ok",
    )
    assert queue["entry_point"] == "acme_queue_health"
    assert queue["registers"] == {"checks": [{"name": "queue_depth", "in_effect": True}]}
    broken = plugins["broken"]
    assert broken["status"] == "broken" and broken["distribution"] == "acme-broken-health"
    assert "needs libfoo 2" in broken["errors"][0] and broken["errors"][0].startswith("load: ImportError")
    hooky = plugins["hooky"]
    assert hooky["status"] == "broken" and hooky["hooks"] == ["register_alert_sinks"]
    assert "no webhook URL configured" in hooky["errors"][0]
    assert report["broken"] == 2


def test_the_text_listing_marks_broken_plugins(run: Run, site_packages: dict[str, str]) -> None:
    result = run("plugins", env=site_packages)
    assert result.returncode == 1
    out = result.stdout
    assert "broken  installed from acme-broken-health 0.9.0" in out and "BROKEN" in out
    assert "error: load: ImportError: needs libfoo 2, found libfoo 1" in out
    assert "queue  installed from acme-queue-health 1.2.3 (entry point queue = acme_queue_health)" in out
    assert "checks: queue_depth" in out
    assert "Traceback" not in result.stderr


def test_disabled_plugins_show_as_skipped(run: Run, site_packages: dict[str, str]) -> None:
    env = {**site_packages, "NEXTMONTH_HEALTH_LOAD_PLUGINS": "queue"}
    result = run("plugins", "--json", env=env)
    assert result.returncode == 0, result.stdout
    plugins = by_name(json.loads(result.stdout))
    assert plugins["queue"]["status"] == "ok"
    assert plugins["broken"]["status"] == "skipped" and plugins["hooky"]["status"] == "skipped"


def test_in_code_plugins_from_the_config_replace_bundled_objects(
    run: Run, site_packages: dict[str, str], tmp_path: Path
) -> None:
    write(tmp_path / "plugins.toml", 'plugins = ["acme_in_code"]\n')
    env = {**site_packages, "NEXTMONTH_HEALTH_LOAD_PLUGINS": ""}
    result = run("plugins", "--json", "--config", str(tmp_path / "plugins.toml"), env=env)
    assert result.returncode == 0, result.stderr
    plugins = by_name(json.loads(result.stdout))
    assert plugins["acme_in_code"]["kind"] == "in-code"
    assert plugins["acme_in_code"]["registers"]["checks"] == [{"name": "upload_failures", "in_effect": True}]
    bundled = plugins["nextmonth_health.plugins.uploads"]["registers"]["checks"]
    assert bundled == [{"name": "upload_failures", "in_effect": False}]


TYPO_ERROR = "'register_health_check' is not a nextmonth_health hook; did you mean 'register_health_checks'?"


def test_a_misspelt_hook_and_a_missing_decorator_are_broken_and_the_rest_still_lists(
    run: Run, site_packages: dict[str, str]
) -> None:
    env = {**site_packages, "NEXTMONTH_HEALTH_LOAD_PLUGINS": "queue,typo,lazy"}
    result = run("plugins", env=env)
    assert result.returncode == 1, "a broken plugin makes the listing exit 1, though the host would run"
    out = result.stdout
    assert out.splitlines()[0].endswith(" in code; 2 broken.")
    assert (
        "typo  installed from acme-typo-health 0.3.0 (entry point typo = acme_typo_health)  BROKEN\n"
        f"  error: hooks: {TYPO_ERROR}\n"
    ) in out
    assert (
        "lazy  installed from acme-lazy-health 0.2.0 (entry point lazy = acme_lazy_health)  BROKEN\n"
        "  error: hooks: no hook implementation: 'register_alert_sinks' is not marked @nextmonth_health.hookimpl\n"
    ) in out
    assert "queue  installed from acme-queue-health 1.2.3 (entry point queue = acme_queue_health)\n" in out
    assert "checks: queue_depth" in out and "checks: api_errors" in out
    assert "Traceback" not in result.stderr and "AssertionError" not in result.stderr
    report = json.loads(run("plugins", "--json", env=env).stdout)
    typo = by_name(report)["typo"]
    assert (typo["status"], typo["distribution"], typo["entry_point"]) == (
        "broken",
        "acme-typo-health",
        "acme_typo_health",
    )
    assert typo["errors"] == [f"hooks: {TYPO_ERROR}"]


def test_the_docs_show_what_a_misspelt_hook_looks_like(run: Run, site_packages: dict[str, str]) -> None:
    docs = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    marker = "<!-- tested-by: tests/cli/test_plugins.py::test_the_docs_show_what_a_misspelt_hook_looks_like -->"
    [shown] = re.findall(rf"{re.escape(marker)}\n```text\n(.*?)^```", docs, re.MULTILINE | re.DOTALL)
    result = run("plugins", env={**site_packages, "NEXTMONTH_HEALTH_LOAD_PLUGINS": "typo"})
    assert result.returncode == 1
    assert shown in result.stdout


def test_a_misspelt_hook_in_a_config_file_plugin_stops_the_command(
    run: Run, site_packages: dict[str, str], tmp_path: Path
) -> None:
    write(tmp_path / "plugins.toml", 'plugins = ["acme_typo_health"]\n')
    result = run("plugins", "--config", str(tmp_path / "plugins.toml"), env=site_packages)
    one_line_error(result, f"error: plugin 'acme_typo_health': {TYPO_ERROR}")
