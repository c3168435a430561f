"""One line is enough: a site wrapped in the middleware, served as usual, shows the notice.

Journey 1 as a site developer walks it: an app module that builds a monitor and wraps its
app in ``HealthMiddleware`` — no lifespan wiring, no ``start()``, no gunicorn hooks, no user
extractor — served by a real uvicorn or a real gunicorn with several workers on loopback.
Twelve people (twelve browsers) find every upload failing with 503 for several minutes;
the notices endpoint must show the uploads notice, the incident must count twelve people,
the notice must go once the route is fixed, and every request must be in the store once
the server has stopped.

Time is a shared fake clock (``tests/file_clock.py``): the test moves it, so minutes of
traffic take a moment and the fault is unmistakable whatever the detection statistics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from attrs import define

from nextmonth_health.signals import REQUEST
from nextmonth_health.store import Store, open_store
from nextmonth_health.testing import START

from .file_clock import set_time
from .redis_server import free_port

TESTS = Path(__file__).resolve().parent
T = TypeVar("T")
PEOPLE = 12
TICK = 15.0

MONITOR = """
import os
import sys

sys.path.insert(0, os.environ["NMH_TEST_HELPERS"])
from file_clock import FileClock

import nextmonth_health as nmh

monitor = nmh.Monitor("acme-studio", store=os.environ["NMH_TEST_STORE"], clock=FileClock(os.environ["NMH_TEST_CLOCK"]))
"""

ASGI_APP = (
    MONITOR
    + """
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from nextmonth_health.asgi import HealthMiddleware


async def upload(request):
    if os.path.exists("fixed"):  # the developer fixes the route
        return JSONResponse({"ok": True})
    return JSONResponse({"error": "the upload service is down"}, status_code=503)


async def portal(request):
    return PlainTextResponse("portal")


app = HealthMiddleware(Starlette(routes=[Route("/media-upload", upload, methods=["POST"]), Route("/portal", portal)]), monitor)
"""
)

WSGI_APP = (
    MONITOR
    + """
from nextmonth_health.wsgi import HealthMiddleware


def site(environ, start_response):
    if environ["PATH_INFO"] == "/media-upload" and not os.path.exists("fixed"):
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'{"error": "the upload service is down"}']
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


app = HealthMiddleware(site, monitor)
"""
)


@define
class Site:
    """A server process on loopback, the shared clock it runs on, and what was sent to it."""

    base: str
    process: subprocess.Popen[bytes]
    clock: Path
    store: str
    log: Path
    now: float = START
    sent: int = 0
    reader: Store | None = None

    def advance(self, seconds: float) -> None:
        self.now += seconds
        set_time(self.clock, self.now)

    def request(self, method: str, path: str, person: int) -> httpx.Response:
        """One request from ``person``'s browser, on a connection of its own (any worker may take it)."""
        headers = {"User-Agent": f"Mozilla/5.0 (person {person}) Browser/{person}"}
        response = httpx.request(method, self.base + path, headers=headers, timeout=10)
        self.sent += 1
        return response

    def notices(self, area: str) -> list[dict[str, str]]:
        response = httpx.get(f"{self.base}/health/notices", params={"area": area}, timeout=10)
        return response.json()["notices"]  # type: ignore[no-any-return]

    def evaluated(self) -> float:
        """When the site was last evaluated, by whichever process leads it (0 before that)."""
        if self.reader is None:
            if not os.path.exists(self.store.removeprefix("sqlite:///")):
                return 0.0
            self.reader = open_store(self.store)
        at = self.reader.last_evaluations().get("acme-studio")
        return 0.0 if at is None else at.timestamp()

    def said(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_site(tmp_path: Path, app: str, command: list[str], port: int) -> Site:
    (tmp_path / "healthapp.py").write_text(app, encoding="utf-8")
    clock = tmp_path / "clock"
    set_time(clock, START)
    store = f"sqlite:///{tmp_path / 'health.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMONTH_HEALTH_")}
    env.update(
        NMH_TEST_HELPERS=str(TESTS),
        NMH_TEST_STORE=store,
        NMH_TEST_CLOCK=str(clock),
        NEXTMONTH_HEALTH_LOAD_PLUGINS="",
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=err, start_new_session=True
        )
    site = Site(f"http://127.0.0.1:{port}", process, clock, store, log)
    wait_for("the server to answer", lambda: answers(site), site)
    return site


def answers(site: Site) -> bool:
    assert site.process.poll() is None, f"the server exited: {site.said()}"
    try:
        httpx.get(f"{site.base}/health/notices?area=uploads", timeout=1)
    except httpx.TransportError:
        return False
    return True


def wait_for(what: str, condition: Callable[[], T], site: Site, seconds: float = 30) -> T:
    """The condition's first truthy answer, asked every 20 ms for ``seconds`` of real time."""
    deadline = time.monotonic() + seconds
    while not (answer := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {site.said()}")
        time.sleep(0.02)
    return answer


def tick_of_failing_uploads(site: Site, *, fixed: bool = False) -> None:
    """Every person's upload fails (or, ``fixed``, a few people's go through), a page loads
    fine, the clock moves a tick and the leader's pass at the new time has run (as the
    real runner paces it)."""
    for person in range(3 if fixed else PEOPLE):
        assert site.request("POST", "/media-upload", person).status_code == (200 if fixed else 503)
    assert site.request("GET", "/portal", 0).status_code == 200
    site.advance(TICK)
    wait_for("a pass at the new time", lambda: site.evaluated() >= site.now, site)


def served_by_workers(site: Site, count: int) -> set[str]:
    """The workers (pids) that served a round of page loads, once ``count`` or more have
    (else none): on a loaded machine one worker may take a whole round on its own."""
    pids = {site.request("GET", "/portal", person).text for person in range(PEOPLE)}
    return pids if len(pids) >= count else set()


def every_worker(site: Site, *, showing: bool) -> list[list[dict[str, str]]]:
    """Six answers in a row, when they all agree (else none): a worker answers from its
    loop's last flush, a second of the clock ago, so move the still clock by that second
    first. A worker that has not been asked before may be left out of six; what the test
    reads afterwards comes from these answers, not from another request."""
    site.advance(1)
    answers = [site.notices("uploads") for _ in range(6)]
    return answers if all(bool(a) is showing for a in answers) else []


def stop(site: Site) -> str:
    """Stop the server as an operator would (SIGTERM); what it printed on stdout."""
    site.process.send_signal(signal.SIGTERM)
    out, _ = site.process.communicate(timeout=60)
    # uvicorn shuts down gracefully, then lets the signal it caught end the process (-15)
    assert site.process.returncode in (0, -signal.SIGTERM), site.said()
    return out.decode("utf-8", "replace")


def the_story_plays_out(site: Site, *, and_the_fix: bool = True) -> None:
    """Minutes of failing uploads show the notice, and fixing the route takes it away; after
    the server stopped, the store holds every request once and the incident counts the
    twelve people, and nothing went wrong inside the SDK."""
    for _ in range(int(5 * 60 / TICK)):  # five minutes: a whole window of it
        tick_of_failing_uploads(site)
    for _ in range(int(10 * 60 / TICK)):  # and on, until the notice shows (within a minute today)
        if site.notices("uploads"):
            break
        tick_of_failing_uploads(site)
    # Every worker shows it: a worker asked for the first time answers from its loop's next
    # flush, a second later; with the clock still, move it that second.
    answers = wait_for("every worker to show the notice", lambda: every_worker(site, showing=True), site)
    [notice] = answers[-1]
    assert notice["title"] and "everything's under active care" in notice["message"]
    assert site.notices("portal") == [] and site.notices("bookings") == []

    if and_the_fix:
        site.clock.with_name("fixed").touch()  # the route is fixed: the notice goes by itself
        for _ in range(int(30 * 60 / TICK)):
            tick_of_failing_uploads(site, fixed=True)
            if not any(site.notices("uploads") for _ in range(6)):  # several workers, each asked before
                break
        wait_for("the notice to go away once uploads work", lambda: every_worker(site, showing=False), site)
    if site.reader is not None:
        site.reader.close()
    out = stop(site)
    assert "nextmonth_health" not in out, "the SDK wrote on the server's stdout"
    said = site.said()
    assert "Traceback" not in said and "internal_error" not in said, said
    with open_store(site.store) as store:
        requests = store.read("acme-studio", REQUEST, 0, 2**40)
        assert sum(b.total for b in requests) == site.sent, "every request counted once, the last second's too"
        uploads = [i for i in store.incidents("acme-studio") if i.area == "uploads"]
        assert uploads and all(i.is_open is not and_the_fix for i in uploads), "resolved once fixed"
        assert max(i.affected_users for i in uploads) == PEOPLE, "twelve people, told apart with no user extractor"


@pytest.fixture
def sites() -> Iterator[list[Site]]:
    started: list[Site] = []
    yield started
    for site in started:
        if site.process.poll() is None:
            os.killpg(site.process.pid, signal.SIGKILL)  # the server and its workers
            site.process.communicate(timeout=10)


@pytest.mark.parametrize("lifespan", ["auto", "off"])
def test_uvicorn_with_only_the_middleware_shows_the_notice(tmp_path: Path, sites: list[Site], lifespan: str) -> None:
    """``auto``: the middleware runs the monitor through the lifespan; ``off`` (a server
    without lifespan support): from the first request."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "healthapp:app", "--host", "127.0.0.1", "--port", str(port)]
    site = start_site(tmp_path, ASGI_APP, [*command, "--lifespan", lifespan, "--log-level", "warning"], port)
    sites.append(site)
    the_story_plays_out(site, and_the_fix=lifespan == "auto")


@pytest.mark.parametrize("preload", [False, True], ids=["import-per-worker", "preload"])
def test_gunicorn_workers_with_only_the_wsgi_middleware_show_the_notice(
    tmp_path: Path, sites: list[Site], preload: bool
) -> None:
    """Three workers, each starting its own loop at its first request (after the fork when
    the app is preloaded), one leader evaluating, every worker serving the notice."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        "3",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    site = start_site(tmp_path, WSGI_APP, [*command, *(["--preload"] if preload else []), "healthapp:app"], port)
    sites.append(site)
    pids = wait_for("a second worker to take a request", lambda: served_by_workers(site, 2), site)
    assert len(pids) >= 2, "requests were served by more than one worker"
    the_story_plays_out(site, and_the_fix=preload)
