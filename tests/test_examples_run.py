"""The three web examples, started the way the README says, as real processes on loopback."""

from __future__ import annotations

import os
import re
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


class Site(str):
    """An example's base URL, with what it printed on stdout."""

    printed: Path

    def said(self) -> str:
        return self.printed.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(params=["starlette", "flask", "django"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
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
    env.pop("DEMO_ADMIN_TOKEN", None)
    printed = tmp_path / "stdout.txt"
    with printed.open("wb") as out:
        process = subprocess.Popen(
            command(request.param, port),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
        )
    base = Site(f"http://127.0.0.1:{port}")
    base.printed = printed
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"{request.param} example exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
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


def test_example_makes_its_own_admin_token_and_prints_it(site: Site) -> None:
    """No known token ships: each run makes a random one and says it; only it opens the view."""
    deadline = time.monotonic() + 10
    while not (found := re.search(r"token \(made for this run\): (\S+)", site.said())):
        assert time.monotonic() < deadline, f"no token printed: {site.said()!r}"
        time.sleep(0.05)
    token = found.group(1)
    assert len(token) >= 16 and token != "demo-admin-token-not-a-secret"
    with httpx.Client(base_url=site, timeout=10) as client:
        api = "/admin/system-health/api/alerts"
        assert client.get(api, headers={"authorization": f"Bearer {token}"}).status_code == 200
        for known in ("demo-admin-token-not-a-secret", "x" * 32):
            assert client.get(api, headers={"authorization": f"Bearer {known}"}).status_code in (401, 403)


def test_example_serves_pages_faults_notices_and_guards_the_admin_view(site: Site) -> None:
    with httpx.Client(base_url=site, timeout=10) as client:
        home = client.get("/")
        assert home.status_code == 200
        assert '<script src="/health/static/overlay.js"' in home.text
        assert client.get("/media-upload").status_code == 200
        assert client.post("/media-upload").status_code == 200
        assert client.post("/_fault", params={"uploads": "fail"}).json() == {"faults": ["uploads"]}
        assert 500 <= client.post("/media-upload", headers={"cookie": "demo_user=ann"}).status_code < 600
        notices = client.get("/health/notices", params={"area": "uploads"})
        assert notices.status_code == 200
        assert isinstance(notices.json()["notices"], list)
        assert client.get("/admin/system-health").status_code in (401, 403)
