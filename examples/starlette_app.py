"""A small Starlette site with nextmonth_health wired in.

    make example-starlette          # or: .venv/bin/python examples/starlette_app.py
    open http://127.0.0.1:8000      # (or: uvicorn --factory starlette_app:create_app)

The site has the critical routes (``/media-upload``, ``/bookings``, ``/portal``, ``/login``,
``/dashboard``), each page carrying the overlay's one ``<script>`` tag. A handful of
simulated visitors use it in the background (``DEMO_VISITORS=0`` turns them off) so the
monitor has traffic to judge. Break something from the home page — or
``curl -X POST 'http://127.0.0.1:8000/_fault?uploads=fail'`` — and within half a minute the
upload page shows its calm notice; ``?uploads=ok`` heals it. Start with faults already on:
``DEMO_FAULTS=uploads,dashboard``. The admin view is at ``/admin/system-health`` (token
printed at start-up, or ``DEMO_ADMIN_TOKEN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import random
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

import nextmonth_health as nmh
from nextmonth_health.asgi import HealthMiddleware

try:  # the admin view ships with the `web` extra; the demo runs without it too
    from nextmonth_health.web.admin import admin_routes  # noqa: F401 - only checking it is there
    from nextmonth_health.web.auth import token_authorizer
except ImportError:
    token_authorizer = None

ADMIN_TOKEN = os.environ.get("DEMO_ADMIN_TOKEN", "demo-admin-token-not-a-secret")
FAULTS = ("uploads", "bookings", "portal", "login", "dashboard")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Acme Studio (demo)</title>
<style>
body {{ margin: 0; font: 16px/1.6 system-ui, sans-serif; color: #1e293b; background: #f8fafc; }}
header {{ padding: 1rem 2rem; background: #fff; border-bottom: 1px solid #e2e8f0; }}
nav a {{ margin-right: 1rem; color: #4338ca; text-decoration: none; }}
main {{ max-width: 46rem; margin: 2rem auto; padding: 0 1.5rem; }}
.demo {{ font-size: .85rem; color: #64748b; border: 1px dashed #cbd5e1; border-radius: 10px;
         padding: .75rem 1rem; }}
button {{ font: inherit; padding: .4rem .9rem; border-radius: 8px; border: 1px solid #c7d2fe;
         background: #eef2ff; cursor: pointer; }}
</style>
<script src="/health/static/overlay.js" data-area="{area}" defer></script>
</head><body>
<header><nav><a href="/">Home</a><a href="/media-upload">Uploads</a><a href="/bookings">Bookings</a>
<a href="/portal">Portal</a><a href="/login">Sign in</a><a href="/dashboard">Dashboard</a></nav></header>
<main><h1>{title}</h1>{body}</main>
</body></html>"""


class Demo:
    """The demo's state: which faults are on, and the monitor."""

    def __init__(self, monitor: nmh.Monitor, faults: set[str]) -> None:
        self.monitor = monitor
        self.faults = faults


def page(title: str, area: str, body: str) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), area=html.escape(area), body=body))


def demo_user(scope: Any) -> str | None:
    """The demo's 'signed-in' user: a plain cookie (a real site asks its session)."""
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            morsel = SimpleCookie(value.decode("latin-1")).get("demo_user")
            return morsel.value if morsel else None
    return None


def create_app(monitor: nmh.Monitor | None = None, *, visitors: int | None = None, faults: str | None = None) -> Any:
    """The demo site wrapped in :class:`HealthMiddleware`; tests pass their own monitor."""
    own_monitor = monitor is None
    if monitor is None:
        monitor = nmh.Monitor(
            site="acme-studio", store="memory://", tick_seconds=5, cooldown_seconds=30, escalate_after=120
        )
    if visitors is None:
        visitors = int(os.environ.get("DEMO_VISITORS", "12"))
    chosen = os.environ.get("DEMO_FAULTS", "") if faults is None else faults
    demo = Demo(monitor, {f for f in chosen.split(",") if f in FAULTS})

    async def home(request: Request) -> Response:
        switches = "".join(
            f'<form method="post" action="/_fault?{name}={"ok" if name in demo.faults else "fail"}">'
            f'<button type="submit">{"Heal" if name in demo.faults else "Break"} {name}</button></form>'
            for name in FAULTS
        )
        on = html.escape(", ".join(sorted(demo.faults)) or "none")
        return page(
            "Acme Studio",
            "",
            "<p>A demo site watched by nextmonth_health.</p>"
            f'<div class="demo"><p>Demo fault switches (on: {on})</p>{switches}</div>',
        )

    async def uploads(request: Request) -> Response:
        if request.method == "POST":
            user = demo_user(request.scope)
            if "uploads" in demo.faults:
                monitor.record_upload(ok=False, user=user, size=2_400_000)
                return JSONResponse({"ok": False}, status_code=503)
            monitor.record_upload(ok=True, user=user, size=2_400_000)
            return JSONResponse({"ok": True})
        return page(
            "Media upload",
            "uploads",
            '<form method="post"><input type="file" name="file"> <button id="upload">Upload</button></form>',
        )

    async def bookings(request: Request) -> Response:
        return page(
            "Bookings", "bookings", '<p>Your sessions this week.</p><p><a href="/bookings/42">Booking #42</a></p>'
        )

    async def booking(request: Request) -> Response:
        if "bookings" in demo.faults:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        return page(f"Booking #{request.path_params['id']}", "bookings", "<p>Tuesday, 10:00 — studio B.</p>")

    async def portal(request: Request) -> Response:
        if "portal" in demo.faults:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        return page("Client portal", "portal", "<p>Your files and invoices.</p>")

    async def login(request: Request) -> Response:
        if request.method == "POST":
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            name = (form.get("name") or ["guest"])[0][:40] or "guest"
            if "login" in demo.faults:
                monitor.record_login(ok=False, user=name)
                return page("Sign in", "login", "<p>That did not go through. Please try again in a moment.</p>")
            monitor.record_login(ok=True, user=name)
            response = RedirectResponse("/dashboard", status_code=303)
            response.set_cookie("demo_user", name, httponly=True, samesite="lax")
            return response
        return page(
            "Sign in",
            "login",
            '<form method="post"><input name="name" placeholder="Your name"> <button>Sign in</button></form>',
        )

    async def dashboard(request: Request) -> Response:
        if "dashboard" in demo.faults:
            await asyncio.sleep(3.5)  # the slow dashboard the beacon will notice
        return page("Dashboard", "dashboard", "<p>Everything you are working on.</p>")

    async def fault(request: Request) -> Response:
        if request.method == "POST":
            for name, value in request.query_params.items():
                if name in FAULTS:
                    (demo.faults.add if value == "fail" else demo.faults.discard)(name)
            if "text/html" in request.headers.get("accept", ""):
                return RedirectResponse("/", status_code=303)
        return JSONResponse({"faults": sorted(demo.faults)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if own_monitor:
                await stack.enter_async_context(monitor.running())
            task = asyncio.create_task(simulate_visitors(wrapped, demo, visitors)) if visitors else None
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    site = Starlette(
        routes=[
            Route("/", home),
            Route("/media-upload", uploads, methods=["GET", "POST"]),
            Route("/bookings", bookings),
            Route("/bookings/{id:int}", booking),
            Route("/portal", portal),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/dashboard", dashboard),
            Route("/_fault", fault, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )
    wrapped = HealthMiddleware(
        site,
        monitor,
        user=demo_user,
        authorize=token_authorizer(ADMIN_TOKEN) if token_authorizer else None,
    )
    return wrapped


async def simulate_visitors(app: Any, demo: Demo, count: int) -> None:
    """Simulated visitors clicking around, through the real middleware (in-process)."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo.local") as client:
        while True:
            for n in range(count):
                cookies = {"cookie": f"demo_user=visitor-{n:02d}"}
                path = random.choice(["/bookings/42", "/portal", "/bookings", "/media-upload"])
                with contextlib.suppress(httpx.HTTPError):
                    if path == "/media-upload":
                        await client.post(path, headers=cookies)
                    else:
                        await client.get(path, headers=cookies)
                    if random.random() < 0.3:
                        await client.post("/login", data={"name": f"visitor-{n:02d}"})
                # Their browsers' page-load beacons, as the overlay script would send them.
                slow = "dashboard" in demo.faults
                demo.monitor.record_page_load(
                    "/dashboard",
                    random.uniform(3.2, 4.5) if slow else random.uniform(0.6, 1.4),
                    user=f"visitor-{n:02d}",
                )
            await asyncio.sleep(2)


if __name__ == "__main__":
    import uvicorn

    port = int(os.environ.get("PORT", "8000"))
    print(f"Acme Studio demo on http://127.0.0.1:{port}  (Ctrl-C to stop)")
    if token_authorizer:
        print(f"Admin view: http://127.0.0.1:{port}/admin/system-health  token: {ADMIN_TOKEN}")
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="warning")
