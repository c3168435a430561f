"""The three web examples, started the way the README says, as real processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("starlette")
pytest.importorskip("flask")
pytest.importorskip("django")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(kind: str, port: int) -> list[str]:
    if kind == "django":
        return [
            sys.executable,
            str(EXAMPLES / "django_app" / "manage.py"),
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
        ]
    return [sys.executable, str(EXAMPLES / f"{kind}_app.py")]


@pytest.fixture(params=["starlette", "flask", "django"])
def site(request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DEMO_PORT": str(port),
        "DEMO_VISITORS": "0",
        "DEMO_FAULTS": "",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PORT", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(
        command(request.param, port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"{request.param} example exited: {process.stderr.read().decode(errors='replace')[-2000:]}"
                )
            try:
                httpx.get(f"{base}/_fault", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{request.param} example did not answer on {base} within 20 s")
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


def test_example_serves_pages_faults_notices_and_guards_the_admin_view(site: str) -> None:
    with httpx.Client(base_url=site, timeout=10) as client:
        home = client.get("/")
        assert home.status_code == 200
        assert '<script src="/health/static/overlay.js"' in home.text
        assert client.get("/media-upload").status_code == 200
        assert client.post("/media-upload").status_code == 200
        assert client.post("/_fault", params={"uploads": "fail"}).json() == {"faults": ["uploads"]}
        assert (
            500
            <= client.post("/media-upload", headers={"cookie": "demo_user=ann"}).status_code
            < 600
        )
        notices = client.get("/health/notices", params={"area": "uploads"})
        assert notices.status_code == 200
        assert isinstance(notices.json()["notices"], list)
        assert client.get("/admin/system-health").status_code in (401, 403)
