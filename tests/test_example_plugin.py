"""The guide's example distribution (docs/example-plugin) is built, installed and tested
for real, so the walk-through in docs/plugins.md cannot rot.

It goes into a throwaway virtual environment layered on this one (a ``.pth`` file adds
this environment's site-packages, as ``.ci/plugins`` does for the broken example): never
into this environment, where every monitor loading entry points would find it. pip
installs it with ``--no-deps --no-build-isolation``, so nothing is downloaded. A sibling
entry point with a misspelt hook is added to the copy, to show it reported and skipped
while the example loads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "example-plugin"
GUIDE = ROOT / "docs" / "plugins.md"

TYPO = '''"""A sibling plugin whose hook name is misspelt: reported and left out, never fatal."""

import nextmonth_health as nmh


@nmh.hookimpl
def register_health_check(register):
    raise AssertionError("never called")
'''

INSTALLED = """
import json

import anyio

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock, run_passes

import acme_queue_health

monitor = nmh.Monitor("acme", store="memory://", clock=FakeClock(),
                      plugin_settings={"acme_queues": {"wait_seconds": 5.0}})
for n in range(8):
    acme_queue_health.record_wait(monitor, "confirmations", 40.0, user=f"u-{n}")
passes = anyio.run(run_passes, monitor, 1)
print(json.dumps({
    "signals": list(monitor.signals),
    "checks": [c.name for c in monitor.checks],
    "opened": [[t.incident.check, t.incident.key] for t in passes.of("opened")],
    "notices": [n.title for n in monitor.notices("bookings")],
    "failures": {f.name: f.message for f in monitor.plugin_failures},
    "drops": dict(monitor.status().drops),
}))
"""


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, check=False, cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=300
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """``(python, distribution, env)``: the copy installed in a throwaway environment."""
    scratch = tmp_path_factory.mktemp("example-plugin")
    dist = scratch / "acme-queue-health"
    shutil.copytree(EXAMPLE, dist, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    (dist / "src" / "acme_queue_health" / "typo.py").write_text(TYPO, encoding="utf-8")
    pyproject = dist / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace(
            'acme_queues = "acme_queue_health"\n',
            'acme_queues = "acme_queue_health"\nacme_typo = "acme_queue_health.typo"\n',
        ),
        encoding="utf-8",
    )
    venv = scratch / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], scratch, dict(os.environ))
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], scratch, dict(os.environ)
    )
    Path(site.stdout.strip(), "_nextmonth_health_main_venv.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXTMONTH_HEALTH_", "PYTHON"))}
    env["PYTHONIOENCODING"] = "utf-8"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(dist),
        ],
        scratch,
        env,
    )
    return python, dist, env


def test_the_example_installs_and_its_own_tests_pass(installed: tuple[Path, Path, dict[str, str]]) -> None:
    python, dist, env = installed
    result = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "tests"], dist, env)
    assert re.search(r"\b\d+ passed\b", result.stdout) and "failed" not in result.stdout


def test_installed_it_declares_records_and_words_its_incident_while_a_misspelt_sibling_is_skipped(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    python, dist, env = installed
    env = {**env, "NEXTMONTH_HEALTH_LOAD_PLUGINS": "acme_queues,acme_typo"}
    found = json.loads(run([str(python), "-c", INSTALLED], dist.parent, env).stdout.strip().splitlines()[-1])
    assert "acme.queue_wait" in found["signals"]
    assert "slow_queue" in found["checks"]
    assert found["opened"] == [["slow_queue", "confirmations"]]
    assert found["notices"] == ["Confirmations are running late"]
    assert found["drops"].get("undeclared_signal", 0) == 0
    assert list(found["failures"]) == ["acme_typo"]
    assert "did you mean 'register_health_checks'?" in found["failures"]["acme_typo"]
    assert "distribution acme-queue-health" in found["failures"]["acme_typo"]


def test_the_guide_shows_the_example_as_it_is() -> None:
    """Each file of the example the guide quotes is quoted whole, as it is on disk."""
    quoted = re.findall(
        r"^`docs/example-plugin/(?P<path>[^`]+)`:\n\n"
        r"<!-- tested-by: tests/test_example_plugin.py::test_the_guide_shows_the_example_as_it_is -->\n"
        r"```\w*\n(?P<code>.*?)^```$",
        GUIDE.read_text(encoding="utf-8"),
        re.MULTILINE | re.DOTALL,
    )
    files = sorted(
        str(p.relative_to(EXAMPLE)) for p in EXAMPLE.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    assert sorted(path for path, _ in quoted) == files
    for path, code in quoted:
        assert code == (EXAMPLE / path).read_text(encoding="utf-8"), f"docs/plugins.md quotes {path} out of date"
