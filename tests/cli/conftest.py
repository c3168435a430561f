"""Run ``nextmonth-health`` as a subprocess, as a user or a CI job would.

Every command runs as ``python -m nextmonth_health`` in a fresh process, in a temporary
working directory, with the ``NEXTMONTH_HEALTH_*`` environment cleared (the suite's
conftest points in-process monitors at ``memory://``; subprocesses get only what a test
gives them) and installed plugins switched off unless a test asks for them.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMONTH_HEALTH_")}
    env["PYTHONIOENCODING"] = "utf-8"
    env["NEXTMONTH_HEALTH_LOAD_PLUGINS"] = ""
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(extra or {})
    return env


Run = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m nextmonth_health ARGS`` in ``cwd``; the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "nextmonth_health", *args],
        check=False,
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        input=stdin,
    )


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """``run("selfcheck", "--json", env={...}, timeout=60)``: the finished process."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=tmp_path, env=env, timeout=timeout, stdin=stdin)

    return run


@pytest.fixture
def run_all(tmp_path: Path) -> Callable[..., list[subprocess.CompletedProcess[str]]]:
    """Run several commands at once (each a tuple of arguments); their finished processes, in order.

    For the many short commands that only check an answer: started together, they cost
    one interpreter start-up of wall time instead of one each.
    """

    def run_all(
        *commands: tuple[str, ...], env: Mapping[str, str] | None = None
    ) -> list[subprocess.CompletedProcess[str]]:
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "nextmonth_health", *args],
                cwd=tmp_path,
                env=cli_env(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
            for args in commands
        ]
        results = []
        for args, process in zip(commands, processes, strict=True):
            out, err = process.communicate(timeout=120)
            results.append(subprocess.CompletedProcess(list(args), process.returncode, out, err))
        return results

    return run_all


class Background:
    """A command left running, whose stdout is read line by line by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.out: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """Wait for a stdout line containing ``text``; returns that line."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.out.append(line)
            if text in line:
                return line
        stderr = self.process.stderr.read() if self.process.poll() is not None and self.process.stderr else ""
        raise AssertionError(f"no line with {text!r} within {timeout} s; stdout so far:\n{''.join(self.out)}\n{stderr}")

    def stop(self, signal_number: int, timeout: float = 30) -> tuple[int, str, str]:
        """Send a signal; returns (exit status, all of stdout, stderr)."""
        self.process.send_signal(signal_number)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        while (line := self._lines.get_nowait() if not self._lines.empty() else None) is not None:
            self.out.append(line)
        err = self.process.stderr.read() if self.process.stderr else ""
        return code, "".join(self.out), err


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Background]]:
    """Start a long-running command (serve, the live demo); killed at teardown if still up."""
    started: list[Background] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> Background:
        process = subprocess.Popen(
            [sys.executable, "-m", "nextmonth_health", *args],
            cwd=tmp_path,
            env=cli_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        background = Background(process)
        started.append(background)
        return background

    yield start
    for background in started:
        if background.process.poll() is None:
            background.process.kill()
            background.process.wait(timeout=10)
        background._reader.join(timeout=10)
        for stream in (background.process.stdout, background.process.stderr):
            if stream is not None:
                stream.close()


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str, code: int = 2) -> str:
    """Assert the command failed with exit ``code`` and a single ``error: …`` line, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def fields(mapping: Any, *names: str) -> tuple[Any, ...]:
    return tuple(mapping[name] for name in names)


def usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Assert click's usage error: exit 2, ``Error: …`` after the usage line, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("Usage: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    [said] = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    for needle in needles:
        assert needle in said, (needle, said)
    return said


@pytest.fixture(params=["sqlite", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL several processes share: a real SQLite file, or a real Redis (the
    session's private server, flushed)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'health.db'}"
    return request.getfixturevalue("redis_db").url()  # type: ignore[no-any-return]
