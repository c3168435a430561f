"""Real servers on loopback and a real headless Chromium for the web tests.

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it when absent);
Playwright drives it through ``executable_path`` and never downloads a browser. When it
is missing the tests fail with the command that installs it, rather than skipping.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots and measurements are kept: ``artifacts/`` in pytest's temporary
    directory for this run (``pytest --basetemp=DIR`` to choose it); never in the repository."""
    folder = tmp_path_factory.getbasetemp() / "artifacts"
    folder.mkdir(exist_ok=True)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium (Debian's package)")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Playwright's sync API holds an event loop open in this thread while it runs, so the
    browser lives per module: tests after it can use ``anyio.run`` again."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, artifacts: Path) -> Iterator[Any]:
    """A fresh page; its screenshot is kept in ``artifacts`` as a record of the run."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    try:
        yield page
    finally:
        name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
        with contextlib.suppress(Exception):  # the page may be gone; the screenshot is only a record
            page.screenshot(path=str(artifacts / f"{name}.png"))
        context.close()


@pytest.fixture
def serve_asgi() -> Iterator[Callable[[Any], str]]:
    """Start an ASGI app under a real uvicorn on 127.0.0.1; returns its base URL."""
    import uvicorn

    servers: list[tuple[Any, threading.Thread]] = []

    def start(app: Any) -> str:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)
