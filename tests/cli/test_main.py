"""The command line as a whole: entry points, help, and mistakes as one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import ROOT, Run, cli_env, one_line_error, write

COMMANDS = ("demo", "selfcheck", "serve", "status", "maintenance", "silence", "ack", "replay", "plugins")


def test_help_lists_every_command(run: Run) -> None:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert f"  {name} " in result.stdout, name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_takes_the_global_options(name: str) -> None:
    from click.testing import CliRunner

    from nextmonth_health.cli import cli

    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "--store URL" in result.output and "--config FILE" in result.output and "--site NAME" in result.output


def test_version(run: Run) -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("nextmonth-health, version ")


def test_the_console_script_is_the_same_command(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("nextmonth-health")
    if not script.exists():
        found = shutil.which("nextmonth-health")
        if found is None:
            pytest.fail("the nextmonth-health console script is not installed: pip install -e . (make install)")
        script = Path(found)
    result = subprocess.run(
        [str(script), "--help"], check=False, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "selfcheck" in result.stdout


def test_bad_input_is_one_line_saying_what_to_fix(run_all: Callable[..., list], tmp_path: Path) -> None:
    """Every mistake a user can make at the door: exit 2, one ``error:`` line, no traceback.

    ``status`` says 3 instead: as a health check it follows the Nagios convention, where
    2 means critical and 3 means it could not tell.
    """
    write(tmp_path / "bad.toml", "tick_seconds = = 3\n")
    write(tmp_path / "misspelt.toml", "upload_failure_rate = 0.2\n")
    write(tmp_path / "value.toml", "upload_failure_ratio = 3\n")
    write(tmp_path / "site.toml", "[sites.tiny-shop]\ntick_seconds = 1\n")
    write(tmp_path / "plugins.toml", "plugins = 'acme'\n")
    write(tmp_path / "import.toml", "plugins = ['no_such_plugin_module']\n")
    cases = {
        ("status", "--store", "postgres://db/health"): ("postgres://db/health", "sqlite://"),
        ("--store", "postgres://db/health", "status"): ("postgres://db/health", "sqlite://"),
        ("selfcheck", "--config", "nope.toml"): ("nope.toml", "no such file"),
        ("selfcheck", "--config", "bad.toml"): ("bad.toml", "not valid TOML"),
        ("--config", "misspelt.toml", "selfcheck"): ("misspelt.toml", "did you mean 'upload_failure_ratio'"),
        ("selfcheck", "--config", "value.toml"): ("upload_failure_ratio must be a ratio",),
        ("selfcheck", "--config", "site.toml"): ("sites['tiny-shop']", "whole monitor"),
        ("selfcheck", "--config", "plugins.toml"): ("plugins must be a list",),
        ("plugins", "--config", "import.toml"): ("no_such_plugin_module",),
        ("selfcheck", "--store", "sqlite:////no/such/dir/h.db"): ("does not exist",),
        ("replay", "--config", str(tmp_path), "x.log"): ("directory",),
    }
    for (args, needles), result in zip(cases.items(), run_all(*cases), strict=True):
        try:
            one_line_error(result, *needles, code=3 if "status" in args else 2)
        except AssertionError as exc:
            raise AssertionError(f"nextmonth-health {' '.join(args)}: {exc}") from None


def test_store_from_the_environment(run: Run) -> None:
    one_line_error(run("status", env={"NEXTMONTH_HEALTH_STORE": "ftp://nowhere"}), "ftp://nowhere", code=3)


def test_a_store_that_cannot_be_reached_is_one_line(run_all: Callable[..., list]) -> None:
    commands = [
        (*command, "--store", "redis://127.0.0.1:1/0")
        for command in (
            ("status",),
            ("selfcheck",),
            ("serve",),
            ("maintenance", "list"),
            ("silence", "end", "abcd"),
            ("ack", "abcd"),
        )
    ]
    for (command, *_), result in zip(commands, run_all(*commands), strict=True):
        code = 3 if command == "status" else 2  # status: Nagios's UNKNOWN
        one_line_error(result, "cannot use the store redis://127.0.0.1:1/0", "running", code=code)


def test_usage_mistakes_exit_2(run_all: Callable[..., list]) -> None:
    option, command = run_all(("selfcheck", "--no-such-option"), ("no-such-command",))
    assert option.returncode == 2
    assert "No such option" in option.stderr and "Traceback" not in option.stderr
    assert command.returncode == 2


def test_module_and_package_entry_agree() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from nextmonth_health.cli import main; main(['--help'])"],
        check=False, env=cli_env(), capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0 and "replay" in result.stdout, result.stderr


def test_without_click_the_command_says_what_to_install() -> None:
    code = "import sys; sys.modules['click'] = None; from nextmonth_health.cli import main; main(['--help'])"
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, env=cli_env(), capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "error: the nextmonth-health command needs click: pip install 'nextmonth-health[cli]'"
    )


def test_nothing_is_written_to_the_working_directory(run_all: Callable[..., list], tmp_path: Path) -> None:
    before = set(os.listdir(tmp_path))
    assert [r.returncode for r in run_all(("selfcheck", "--json"), ("plugins", "--json"))] == [0, 0]
    assert set(os.listdir(tmp_path)) == before
