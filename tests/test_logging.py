"""The SDK logs like a library: through ``logging``, under ``nextmonth_health.*``, never on stdout.

Each host runs in a fresh interpreter (logging and structlog are process-wide), records an
unmistakable upload outage on a fake clock and evaluates once; the tests read what reached
stdout, stderr and the host's own log.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import nextmonth_health
from nextmonth_health.logs import Event, get_logger

OUTAGE = """
import anyio
import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock

monitor = nmh.Monitor("acme-studio", store="memory://", clock=FakeClock(), load_entrypoints=False)
for n in range(12):
    monitor.record_request("/media-upload", status=503, duration=0.2, user=f"u-{n}")
    monitor.record_upload(ok=False, user=f"u-{n}")
anyio.run(monitor.evaluate)
"""


def host(setup: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(setup) + OUTAGE
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMONTH_HEALTH_")}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


def test_a_basic_config_host_captures_the_incident_and_stdout_stays_empty(tmp_path: Path) -> None:
    result = host(
        """
        import logging
        logging.basicConfig(filename="app.log", level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
    lines = (tmp_path / "app.log").read_text(encoding="utf-8").splitlines()
    opened = [line for line in lines if "nextmonth_health.incident_opened" in line]
    assert opened, lines
    assert all(
        line.startswith("WARNING nextmonth_health.incidents nextmonth_health.incident_opened ") for line in opened
    )
    assert any("check='upload_failures'" in line and "Impact detected for 12 users" in line for line in opened)


def test_with_no_logging_configured_only_warnings_reach_stderr(tmp_path: Path) -> None:
    result = host("", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    said = result.stderr.splitlines()
    assert said and all(line.startswith("nextmonth_health.incident_opened ") for line in said), said
    assert "severity='critical'" in said[0]
    # an info event (an SQLite store's first migration) stays quiet
    quiet = host(
        'import nextmonth_health as nmh\nnmh.Monitor(store="sqlite:///h.db", load_entrypoints=False)\n', tmp_path
    )
    assert "sqlite_migrated" not in quiet.stderr


def test_a_dictconfig_host_routes_and_silences_the_sdk(tmp_path: Path) -> None:
    result = host(
        """
        import logging.config
        logging.config.dictConfig({
            "version": 1,
            "handlers": {"file": {"class": "logging.FileHandler", "filename": "health.log"}},
            "loggers": {
                "nextmonth_health": {"handlers": ["file"], "level": "INFO", "propagate": False},
                "nextmonth_health.incidents": {"level": "ERROR"},
            },
        })
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert "incident_" not in (tmp_path / "health.log").read_text(encoding="utf-8")


def test_a_structlog_host_renders_the_events_with_their_fields(tmp_path: Path) -> None:
    """The docs' recipe: structlog configured for the app, ``ProcessorFormatter`` on ``logging``."""
    result = host(
        """
        import logging, sys
        import structlog

        structlog.configure(processors=[structlog.processors.JSONRenderer()])  # the app's own choice
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.JSONRenderer()],
        ))
        logging.getLogger("nextmonth_health").addHandler(handler)
        logging.getLogger("nextmonth_health").setLevel(logging.INFO)
        logging.getLogger("nextmonth_health").propagate = False
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    events = [json.loads(line) for line in result.stderr.splitlines()]
    opened = [e for e in events if e["event"] == "nextmonth_health.incident_opened"]
    assert opened and {e["check"] for e in opened} == {"api_errors", "upload_failures"}
    assert all(e["level"] == "warning" and e["logger"] == "nextmonth_health.incidents" for e in opened)
    assert all(e["affected_users"] == 12 and "timestamp" in e for e in opened)


def test_an_event_reads_as_one_line_and_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("nextmonth_health.test")
    with caplog.at_level("INFO", logger="nextmonth_health"):
        try:
            raise ValueError("boom")
        except ValueError as exc:
            log.warning("nextmonth_health.something_failed", where="here", exc_info=exc)
        log.debug("nextmonth_health.too_quiet")
    [record] = caplog.records
    assert (record.name, record.levelname) == ("nextmonth_health.test", "WARNING")
    assert record.getMessage() == "nextmonth_health.something_failed where='here'"
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert isinstance(record.msg, Event) and record.msg["where"] == "here"


EVENT_NAME = re.compile(r"nextmonth_health\.[a-z]+(?:_[a-z]+)*")


def sdk_modules() -> list[Any]:
    names = [m.name for m in pkgutil.walk_packages(nextmonth_health.__path__, "nextmonth_health.")]
    modules = []
    for name in names:
        try:
            modules.append(__import__(name, fromlist=["_"]))
        except ImportError:  # an optional extra that is not installed
            continue
    return modules


def test_every_module_that_logs_uses_the_logging_module_and_one_naming_scheme() -> None:
    """No module prints through an unconfigured structlog (which writes to stdout), and
    every event is named ``nextmonth_health.<snake_case>``."""
    for module in sdk_modules():
        source = inspect.getsource(module)
        calls = [
            node
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "log"
            and node.func.attr in ("debug", "info", "warning", "error", "exception", "critical")
        ]
        if not calls:
            continue
        assert module.log._logger.name.startswith("nextmonth_health"), module.__name__
        assert (
            module.log._processors is not None and module.log._processors[-1].__module__ == "nextmonth_health.logs"
        ), f"{module.__name__} logs through structlog's global configuration; use nextmonth_health.logs.get_logger"
        for call in calls:
            name = call.args[0]
            text = name.value if isinstance(name, ast.Constant) else ast.unparse(name)
            pattern = (
                EVENT_NAME if isinstance(name, ast.Constant) else re.compile(r"f?['\"]nextmonth_health\.[a-z_]+\{.*")
            )
            assert pattern.fullmatch(text), (
                f"{module.__name__}: event name {text!r} is not nextmonth_health.<snake_case>"
            )


CLI_LOGGING = """
import logging, sys
from nextmonth_health.cli._common import configure_logging
from nextmonth_health.logs import get_logger

configure_logging(int(sys.argv[1]), drop=sys.argv[2] == "drop")
get_logger("nextmonth_health_cdn._probe").debug("nextmonth_health_cdn.probed", url="https://cdn.example")
get_logger("nextmonth_health_email._outbox").warning("nextmonth_health_email.dropped", emails=2)
get_logger("nextmonth_health.judge.runner").info("nextmonth_health.pass", sites=3)
logging.getLogger("urllib3").warning("someone else's warning")
logging.getLogger("urllib3").info("someone else's info")
"""


@pytest.mark.parametrize(
    ("verbosity", "drop", "shown"),
    [
        (0, "drop", []),
        (0, "keep", ["nextmonth_health_email.dropped emails=2"]),
        (
            2,
            "keep",
            [
                "nextmonth_health_cdn.probed    url=https://cdn.example",
                "nextmonth_health_email.dropped emails=2",
                "nextmonth_health.pass          sites=3",
            ],
        ),
    ],
)
def test_the_command_line_renders_the_plugins_events_like_the_sdks(verbosity: int, drop: str, shown: list[str]) -> None:
    """Plugin distributions log under their own package (``nextmonth_health_cdn``...): the
    CLI's verbosity and rendering apply to them too, and others' warnings still show."""
    done = subprocess.run(
        [sys.executable, "-c", CLI_LOGGING, str(verbosity), drop], capture_output=True, text=True, check=True
    )
    lines = done.stderr.splitlines()
    assert [line.split("] ", 1)[1] for line in lines if line.startswith("[")] == shown, done.stderr
    assert [line for line in lines if not line.startswith("[")] == ["someone else's warning"]
    assert done.stdout == ""
