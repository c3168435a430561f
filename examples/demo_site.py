"""What the three demo sites share, whatever their framework: pages, fault switches, visitors.

``starlette_app.py``, ``flask_app.py`` and ``django_app/acme/views.py`` import this module
and keep only their framework's routing, request/response objects and middleware wiring.
Plain functions and constants; nothing here imports a web framework.
"""

from __future__ import annotations

import html
import os
import random
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from http.cookies import SimpleCookie
from typing import Any, NamedTuple

import nextmonth_health as nmh

try:  # the admin view ships with the `web` extra; the demo runs without it too
    from nextmonth_health.web.admin import admin_routes  # noqa: F401 - only checking it is there
    from nextmonth_health.web.auth import token_authorizer
except ImportError:
    token_authorizer = None

#: The admin view's token: ``DEMO_ADMIN_TOKEN``, else a random one made at start-up and
#: printed (a demo left running on a reachable port must not open to a published token).
ADMIN_TOKEN = os.environ.get("DEMO_ADMIN_TOKEN") or secrets.token_urlsafe(24)
FAULTS = ("uploads", "bookings", "portal", "login", "dashboard")
DASHBOARD_DELAY = 3.5  # seconds: the slow dashboard the beacon will notice
UPLOAD_SIZE = 2_400_000

# --- pages -------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Acme Studio ({label})</title>
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
{overlay}
<header><nav><a href="/">Home</a><a href="/media-upload">Uploads</a><a href="/bookings">Bookings</a>
<a href="/portal">Portal</a><a href="/login">Sign in</a><a href="/dashboard">Dashboard</a></nav></header>
<main><h1>{title}</h1>{body}</main>
</body></html>"""

# The overlay's one tag: the area on the tag itself, or (the Flask demo shows the other way)
# on <body data-health-area>.
OVERLAY_ON_TAG = '<script src="/health/static/overlay.js" data-area="{area}" defer></script>\n</head><body>'
OVERLAY_ON_BODY = '<script src="/health/static/overlay.js" defer></script>\n</head><body data-health-area="{area}">'


class Page(NamedTuple):
    title: str
    area: str
    body: str


UPLOADS = Page(
    "Media upload",
    "uploads",
    '<form method="post"><input type="file" name="file"> <button id="upload">Upload</button></form>',
)
BOOKINGS = Page(
    "Bookings",
    "bookings",
    '<p>Your sessions this week.</p><p><a href="/bookings/42">Booking #42</a></p>',
)
PORTAL = Page("Client portal", "portal", "<p>Your files and invoices.</p>")
LOGIN = Page(
    "Sign in",
    "login",
    '<form method="post"><input name="name" placeholder="Your name"> <button>Sign in</button></form>',
)
LOGIN_FAILED = Page("Sign in", "login", "<p>That did not go through. Please try again in a moment.</p>")
DASHBOARD = Page("Dashboard", "dashboard", "<p>Everything you are working on.</p>")


def booking_page(booking_id: Any) -> Page:
    return Page(f"Booking #{booking_id}", "bookings", "<p>Tuesday, 10:00 — studio B.</p>")


def home_page(faults: set[str]) -> Page:
    """The home page with a Break/Heal switch per fault."""
    switches = "".join(
        f'<form method="post" action="/_fault?{name}={"ok" if name in faults else "fail"}">'
        f'<button type="submit">{"Heal" if name in faults else "Break"} {name}</button></form>'
        for name in FAULTS
    )
    on = html.escape(", ".join(sorted(faults)) or "none")
    return Page(
        "Acme Studio",
        "",
        "<p>A demo site watched by nextmonth_health.</p>"
        f'<div class="demo"><p>Demo fault switches (on: {on})</p>{switches}</div>',
    )


def render(page: Page, *, label: str = "demo", area_on_body: bool = False) -> str:
    """The whole HTML document of ``page``, carrying the overlay's ``<script>`` tag."""
    area = html.escape(page.area)
    overlay = (OVERLAY_ON_BODY if area_on_body else OVERLAY_ON_TAG).format(area=area)
    return PAGE.format(title=html.escape(page.title), label=label, overlay=overlay, body=page.body)


# --- the demo user ------------------------------------------------------------------------------


def user_from_cookie(header: str) -> str | None:
    """The demo's 'signed-in' user: a plain cookie (a real site asks its session)."""
    morsel = SimpleCookie(header).get("demo_user")
    return morsel.value if morsel else None


def wsgi_user(environ: dict[str, Any]) -> str | None:
    """:func:`user_from_cookie` for WSGI apps (Flask, Django)."""
    return user_from_cookie(environ.get("HTTP_COOKIE", ""))


def login_name(raw: str | None) -> str:
    return (raw or "guest")[:40] or "guest"


# --- state and fault switches -------------------------------------------------------------------


def parse_faults(chosen: str | None) -> set[str]:
    """The faults to start with: ``chosen`` (comma-separated), else ``DEMO_FAULTS``."""
    chosen = os.environ.get("DEMO_FAULTS", "") if chosen is None else chosen
    return {f for f in chosen.split(",") if f in FAULTS}


def visitor_count(visitors: int | None) -> int:
    return int(os.environ.get("DEMO_VISITORS", "12")) if visitors is None else visitors


def demo_port(default: int) -> int:
    """The port a demo listens on: ``DEMO_PORT``, else ``PORT``, else ``default``."""
    return int(os.environ.get("DEMO_PORT") or os.environ.get("PORT") or default)


def new_monitor() -> nmh.Monitor:
    """The demo's monitor; the middleware wrapped around each demo site runs it."""
    return nmh.Monitor(
        site="acme-studio",
        store="memory://",
        tick_seconds=5,
        cooldown_seconds=30,
        escalate_after=120,
    )


def authorizer() -> Any:
    """Who may open the admin view: a bearer token (``DEMO_ADMIN_TOKEN``), when the extra is there."""
    return token_authorizer(ADMIN_TOKEN) if token_authorizer else None


def banner(name: str, port: int) -> None:
    print(f"Acme Studio {name}demo on http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)
    if token_authorizer:
        print(admin_line(f"http://127.0.0.1:{port}/admin/system-health"), flush=True)


def admin_line(url: str) -> str:
    """Where the admin view is and its token (random unless ``DEMO_ADMIN_TOKEN`` was set)."""
    given = "from DEMO_ADMIN_TOKEN" if os.environ.get("DEMO_ADMIN_TOKEN") else "made for this run"
    return f"Admin view: {url}  token ({given}): {ADMIN_TOKEN}"


class Demo:
    """The demo's state: which faults are on, and the monitor the pages report to."""

    def __init__(self, monitor: nmh.Monitor | None = None, faults: set[str] | None = None) -> None:
        self.monitor = monitor
        self.faults: set[str] = set() if faults is None else faults

    def broken(self, area: str) -> bool:
        return area in self.faults

    def switch(self, items: Iterable[tuple[str, str]]) -> None:
        """Apply ``/_fault?uploads=fail&portal=ok``-style switches."""
        for name, value in items:
            if name in FAULTS:
                (self.faults.add if value == "fail" else self.faults.discard)(name)

    def fault_state(self) -> dict[str, list[str]]:
        return {"faults": sorted(self.faults)}

    def upload(self, user: str | None) -> bool:
        """Record an upload attempt; False when the uploads fault is on."""
        ok = not self.broken("uploads")
        self.monitor.record_upload(ok=ok, user=user, size=UPLOAD_SIZE)
        return ok

    def login(self, name: str) -> bool:
        """Record a sign-in attempt; False when the login fault is on."""
        ok = not self.broken("login")
        self.monitor.record_login(ok=ok, user=name)
        return ok


# --- simulated visitors -------------------------------------------------------------------------

VISITOR_PAUSE = 2.0  # seconds between rounds
VISITOR_PATHS = ("/bookings/42", "/portal", "/bookings", "/media-upload")


class Visit(NamedTuple):
    method: str
    path: str
    user: str
    form: dict[str, str] | None = None


def visitor_round(demo: Demo, count: int) -> Iterator[Visit]:
    """One round of ``count`` visitors clicking around: the requests to send, in order.

    After each visitor it records their browser's page-load beacon, as the overlay script
    would send it (slow while the dashboard fault is on).
    """
    for n in range(count):
        user = f"visitor-{n:02d}"
        path = random.choice(VISITOR_PATHS)
        yield Visit("POST" if path == "/media-upload" else "GET", path, user)
        if random.random() < 0.3:
            yield Visit("POST", "/login", user, {"name": user})
        slow = demo.broken("dashboard")
        demo.monitor.record_page_load(
            "/dashboard", random.uniform(3.2, 4.5) if slow else random.uniform(0.6, 1.4), user=user
        )


def run_visitors(send: Callable[[Visit], Any], demo: Demo, count: int) -> None:
    """Rounds of visitors forever (for a daemon thread); ``send`` makes one request, in-process."""
    while True:
        for visit in visitor_round(demo, count):
            send(visit)
        time.sleep(VISITOR_PAUSE)
