"""The live demo's client site: a tiny ASGI app with the SDK wired in the way a host would.

Pages people use — the portal, bookings, the dashboard, media uploads, sign-in — under
:class:`~nextmonth_health.asgi.HealthMiddleware`, which records every request and serves
the notices, the beacon and the admin view. The demo's :class:`~._story.Faults` decide
how uploads and the dashboard behave, so the failures are real responses (503s, pages
that take seconds), seen by the middleware exactly as a real outage would be.

:class:`Crowd` is the demo's people: one task per person, thinking, then clicking around,
each request an ASGI call into the same wrapped app a browser reaches through uvicorn.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import anyio

from ._story import USERS, Faults

__all__ = ["USER_HEADER", "Crowd", "DemoSite", "demo_user", "wrap"]

#: The header the crowd names its people with (a real site would use its session).
USER_HEADER = b"x-demo-user"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme Studio</title>
<style>
  :root {{ color-scheme: light dark; font-family: system-ui, sans-serif; }}
  body {{ max-width: 46rem; margin: 3rem auto; padding: 0 1.5rem; line-height: 1.5; }}
  nav a {{ margin-right: 1rem; }}
  section {{ border: 1px solid #8884; border-radius: .75rem; padding: 1rem 1.25rem; margin: 1rem 0; }}
</style></head>
<body>
<h1>Acme Studio</h1>
<p>A NextMonth Blueprint client site, with nextmonth-health watching it from the inside.
   {people} people are using it right now; watch the terminal for the story.</p>
<nav><a href="/portal">Portal</a><a href="/bookings">Bookings</a><a href="/dashboard">Dashboard</a>
     <a href="{admin}/">Admin view</a></nav>
<section data-area="uploads"><h2>Media uploads</h2>
  <form id="upload"><input type="file" name="file"> <button>Upload</button> <span id="result"></span></form></section>
<section data-area="dashboard"><h2>Dashboard</h2><p><a href="/dashboard">Open the dashboard</a></p></section>
{notice_script}
</body></html>
"""

DASHBOARD = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dashboard · Acme Studio</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 46rem; margin: 3rem auto">
<h1>Dashboard</h1><p>This page took {seconds:.1f} s to prepare.</p><p><a href="/">Back</a></p>
{notice_script}
</body></html>
"""

#: The SDK's own overlay (a calm notice for the page's area, and the page-load beacon).
OVERLAY = '<script src="{prefix}/static/overlay.js" data-area="{area}" data-poll="2" defer></script>'

#: A stand-in for an SDK without the overlay: polls the notices endpoint itself.
FALLBACK = """<style>
  .notice {{ position: fixed; left: 50%; bottom: 2rem; transform: translate(-50%, 1rem); opacity: 0;
            max-width: 30rem; padding: 1rem 1.25rem; border-radius: 1rem; background: #1d2433cc; color: #f4f6fb;
            backdrop-filter: blur(12px); box-shadow: 0 1rem 3rem #0004; transition: opacity .6s, transform .6s; }}
  .notice.shown {{ opacity: 1; transform: translate(-50%, 0); }}
  .notice strong {{ display: block; margin-bottom: .25rem; }}
  @media (prefers-reduced-motion: reduce) {{ .notice {{ transition: none; }} }}
</style>
<div class="notice" id="notice" role="status" aria-live="polite"><strong></strong><span></span></div>
<script>
  const box = document.getElementById("notice");
  async function poll() {{
    let shown = null;
    try {{
      const answer = await (await fetch("{prefix}/notices?area={area}")).json();
      if (answer.notices && answer.notices.length) shown = answer.notices[0];
    }} catch (e) {{}}
    if (shown) {{
      box.querySelector("strong").textContent = shown.title;
      box.querySelector("span").textContent = shown.message;
    }}
    box.classList.toggle("shown", shown !== null);
  }}
  poll(); setInterval(poll, 2000);
</script>"""

UPLOAD_SCRIPT = """<script>
  document.getElementById("upload").addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await fetch("/media-upload", { method: "POST", body: new FormData(event.target) });
    document.getElementById("result").textContent = answer.ok ? "Uploaded." : "Not this time; try again shortly.";
  });
</script>"""


def _has_overlay() -> bool:
    from importlib import resources

    try:
        return resources.files("nextmonth_health.web").joinpath("static", "overlay.js").is_file()
    except (ModuleNotFoundError, OSError):
        return False


def demo_user(scope: dict[str, Any]) -> str | None:
    """The person behind a request: the crowd's header; browsers are anonymous visitors."""
    for name, value in scope.get("headers", ()):
        if name == USER_HEADER:
            return value.decode("latin-1") or None
    return None


class DemoSite:
    """The client site itself (without the SDK's middleware; :func:`wrap` adds it)."""

    def __init__(
        self, monitor: Any, faults: Faults, *, prefix: str = "/health", admin_prefix: str = "/admin/system-health"
    ) -> None:
        self.monitor = monitor
        self.faults = faults
        notices = OVERLAY if _has_overlay() else FALLBACK
        self.page = PAGE.format(
            people=len(USERS),
            admin=admin_prefix,
            notice_script=notices.format(prefix=prefix, area="uploads") + UPLOAD_SCRIPT,
        ).encode()
        self.dashboard_script = notices.format(prefix=prefix, area="dashboard")

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        user = demo_user(scope)
        if path == "/" and method in ("GET", "HEAD"):
            await _respond(send, 200, self.page, "text/html; charset=utf-8")
        elif path == "/dashboard" and method in ("GET", "HEAD"):
            seconds = self.faults.dashboard_seconds() * 0.4  # the server's share of a page load
            await anyio.sleep(seconds)
            page = DASHBOARD.format(seconds=seconds, notice_script=self.dashboard_script)
            await _respond(send, 200, page.encode(), "text/html; charset=utf-8")
        elif path == "/media-upload" and method == "POST":
            size = await _drain(receive)
            ok = not self.faults.upload_fails()
            self.monitor.record_upload(ok=ok, user=user, size=size)
            if ok:
                await _respond(send, 201, b'{"stored": true}', "application/json")
            else:
                await _respond(send, 503, b'{"retry": true}', "application/json", (("retry-after", "5"),))
        elif path == "/login" and method == "POST":
            await _drain(receive)
            ok = _header(scope, b"x-demo-password") != "wrong"
            self.monitor.record_login(ok=ok, user=user)
            await _respond(send, 200 if ok else 401, b"{}", "application/json")
        elif path in ("/portal", "/bookings") or path.startswith(("/portal/", "/bookings/")):
            await _respond(send, 200, json.dumps({"page": path}).encode(), "application/json")
        else:
            await _respond(send, 404, b"not found", "text/plain; charset=utf-8")


def wrap(site: DemoSite, monitor: Any, *, authorize: Any = None) -> Any:
    """The site as a host would ship it: inside the SDK's ASGI middleware."""
    from ..web.asgi import HealthMiddleware

    return HealthMiddleware(site, monitor, user=demo_user, authorize=authorize)


async def _respond(
    send: Callable[..., Any], status: int, body: bytes, content_type: str, extra: tuple[tuple[str, str], ...] = ()
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Callable[..., Any]) -> int:
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return size
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return size


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class Crowd:
    """The demo's people, each an async task clicking around the wrapped app in-process."""

    def __init__(self, app: Any, faults: Faults, *, think: float = 3.0, seed: int = 7) -> None:
        self.app = app
        self.faults = faults
        self.think = think
        self.rng = random.Random(seed)
        self.requests = 0

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            for n, user in enumerate(USERS):
                tg.start_soon(self._person, n, user, random.Random(self.rng.random()))

    async def _person(self, n: int, user: str, rng: random.Random) -> None:
        client = f"10.0.{n // 200}.{n % 200 + 10}"
        session = f"demo-session-{user}"
        await anyio.sleep(rng.uniform(0, self.think))
        while True:
            retrying = self.faults.upload_failure_rate > 0
            action = rng.choices(
                ("upload", "dashboard", "bookings", "portal", "login"),
                weights=(0.35 if retrying else 0.12, 0.2, 0.25, 0.3, 0.03),
            )[0]
            if action == "upload":
                await self.call("POST", "/media-upload", user, client, body=b"x" * rng.randint(2_000, 20_000))
            elif action == "dashboard":
                started = anyio.current_time()
                await self.call("GET", "/dashboard", user, client)
                server = anyio.current_time() - started
                seconds = min(600.0, server / 0.4 if server > 0.05 else self.faults.dashboard_seconds())
                beacon = json.dumps({"page": "/dashboard", "seconds": round(seconds, 3), "session": session}).encode()
                await self.call(
                    "POST",
                    "/health/beacon",
                    user,
                    client,
                    body=beacon,
                    headers=((b"content-type", b"application/json"),),
                )
            elif action == "bookings":
                await self.call("GET", f"/bookings/{rng.randint(1, 400)}", user, client)
            elif action == "portal":
                await self.call("GET", "/portal/projects", user, client)
            else:
                password = b"wrong" if rng.random() < 0.1 else b"right"
                await self.call("POST", "/login", user, client, headers=((b"x-demo-password", password),))
            await anyio.sleep(rng.expovariate(1.0 / self.think))

    async def call(
        self,
        method: str,
        path: str,
        user: str,
        client: str,
        *,
        body: bytes = b"",
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> int:
        """One request through the wrapped app, as uvicorn would hand it over; returns the status."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"acme-studio.test"), (USER_HEADER, user.encode()), *headers],
            "client": (client, 50000),
            "server": ("acme-studio.test", 80),
        }
        delivered = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await anyio.sleep_forever()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        self.requests += 1
        await self.app(scope, receive, send)
        return status
