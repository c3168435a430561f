"""A real gunicorn with ``--preload`` and three workers, set up the way docs/deployment.md says.

The app module builds its monitor before the fork; either it calls ``start()`` itself, or
``gunicorn.conf.py`` starts it in ``post_fork`` and stops it in ``worker_exit``. Requests
spread over the workers; the store must hold every one of them once, and the site one
incident and one alert, whichever process led each pass.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from nextmonth_health.signals import REQUEST
from nextmonth_health.store import Store, open_store

from .redis_server import RedisServer, free_port

pytest.importorskip("gunicorn")

APP = """
import os
import time

import nextmonth_health as nmh

monitor = nmh.Monitor(
    "gsite",
    store=os.environ["NMH_TEST_STORE"],
    load_entrypoints=False,
    flush_seconds=0.05,
    tick_seconds=0.2,
)
if os.environ.get("NMH_TEST_START_AT_IMPORT"):
    monitor.start()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    status = 503 if path == "/media-upload" else 200
    if path != "/ping":  # the test's readiness probe is not traffic
        time.sleep(0.02)  # a request that takes a moment, so that concurrent ones spread
        monitor.record_request(path, status, 0.02, user=environ.get("HTTP_X_USER"))
    start_response(f"{status} Status", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""

HOOKS = """
def post_fork(server, worker):
    from healthapp import monitor
    monitor.start()


def worker_exit(server, worker):
    from healthapp import monitor
    monitor.stop()
"""

UPLOADS, PAGES = 30, 10


def wait_for(what: str, condition: Callable[[], object], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'health.db'}"
    server: RedisServer = request.getfixturevalue("redis_db")
    return server.url()


@pytest.fixture(params=["start() at import", "post_fork hook"])
def gunicorn(
    request: pytest.FixtureRequest, tmp_path: Path, store_url: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    (tmp_path / "healthapp.py").write_text(APP, encoding="utf-8")
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "--preload", "--workers", "3", "--bind", f"127.0.0.1:{port}"]
    env = {**os.environ, "NMH_TEST_STORE": store_url, "PYTHONUNBUFFERED": "1"}
    if request.param == "post_fork hook":
        (tmp_path / "gunicorn.conf.py").write_text(HOOKS, encoding="utf-8")
        args += ["--config", "gunicorn.conf.py"]
    else:
        env["NMH_TEST_START_AT_IMPORT"] = "1"
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*args, "healthapp:app"], cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:

        def answers() -> bool:
            assert process.poll() is None, f"gunicorn exited: {log.read_text(errors='replace')}"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("gunicorn to answer", answers)
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_workers_of_a_preloaded_app_count_every_request_once_and_alert_once(
    gunicorn: tuple[str, subprocess.Popen[bytes], Path], store_url: str
) -> None:
    base, process, log = gunicorn

    def get(path: str, user: str) -> int:
        with httpx.Client(base_url=base, timeout=10) as client:  # a connection per request
            return int(client.get(path, headers={"X-User": user}).text)

    with ThreadPoolExecutor(6) as pool:
        pids = set(pool.map(get, ["/media-upload"] * UPLOADS, [f"u{n}" for n in range(UPLOADS)]))
        pids |= set(pool.map(get, ["/portal"] * PAGES, [f"p{n}" for n in range(PAGES)]))
    assert len(pids) >= 2, "the requests were served by more than one worker"

    store: Store = open_store(store_url)
    try:

        def requests() -> tuple[int, int]:
            rows = store.read("gsite", REQUEST, 0, 2**40)
            return sum(b.total for b in rows), sum(b.bad for b in rows)

        wait_for("every request in the store", lambda: requests()[0] >= UPLOADS + PAGES)
        wait_for("an incident", lambda: bool(store.incidents("gsite")))
        [incident] = store.incidents("gsite")
        opened = incident.opened_at
        wait_for(
            "passes after the incident opened",
            lambda: store.last_evaluations().get("gsite", opened) > opened + timedelta(seconds=1),
        )
        assert requests() == (UPLOADS + PAGES, UPLOADS), "each request counted once"
        [incident] = store.incidents("gsite")
        assert (incident.check, incident.key, incident.affected_users) == ("api_errors", "/media-upload", UPLOADS)
        [alert] = store.alerts("gsite")
        assert f"Impact detected for {UPLOADS} users" in alert.message
    finally:
        store.close()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    said = log.read_text(errors="replace")
    assert "Traceback" not in said and "internal_error" not in said, said
