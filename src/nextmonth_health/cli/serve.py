"""``serve``: the standalone health-monitor service (the seed's ``/services/health-monitor``).

The web workers only record: their monitors flush into a shared store and never need to
evaluate. This process evaluates every site in that store on the runner's tick (holding
each site's lease, so running two of them is safe), delivers alerts to the sinks, and
serves the admin view and the public notices from the same store.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ._common import (
    CliError,
    build_monitor,
    configure_logging,
    global_options,
    options,
    probe_store,
)

__all__ = ["ServiceApp", "command"]


class ServiceApp:
    """The service's ASGI app: the SDK's endpoints, and a small status document at ``/``.

    Nothing here is recorded: the service watches the sites, it is not one of them.
    """

    def __init__(self, endpoints: Any, monitor: Any) -> None:
        self.endpoints = endpoints
        self.monitor = monitor

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if self.endpoints.health.owns(path):
            await self.endpoints(scope, receive, send)
            return
        if path == "/" and scope["method"] in ("GET", "HEAD"):
            status = self.monitor.status()
            health = self.endpoints.health
            body = {
                "service": "nextmonth-health",
                "store": status.store,
                "last_evaluation": None if status.last_evaluation is None else status.last_evaluation.isoformat(),
                "admin": health.admin_prefix + "/",
                "notices": health.prefix + "/notices?area=uploads",
                "internal_errors": sum(status.internal_errors.values()),
                "sink_pending": status.sink_pending,
            }
            await _send_json(send, 200, body)
        else:
            await _send_json(send, 404, {"error": "not found"})


async def _send_json(send: Any, status: int, data: Any) -> None:
    body = json.dumps(data, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@click.command("serve", short_help="Run the health-monitor service on a shared store.")
@global_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8321, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option(
    "--admin-token",
    envvar="NEXTMONTH_HEALTH_ADMIN_TOKEN",
    metavar="TOKEN",
    help="Opens the admin view to callers with this token (Bearer header or sign-in form); "
    "default $NEXTMONTH_HEALTH_ADMIN_TOKEN. Without one the admin view answers 403.",
)
def command(host: str, port: int, admin_token: str | None) -> None:
    """Run the health-monitor service: evaluate a shared store, serve the admin view.

    The web workers record into the store (SQLite file or Redis); this process runs
    the checks on the runner's tick, delivers alerts, and serves /admin/system-health
    and /health/notices. SIGINT or SIGTERM stops it cleanly.
    """
    import anyio

    opts = options()
    configure_logging(opts.verbose)
    url = opts.store_url()
    if url.partition("://")[0] == "memory":
        raise CliError(
            "serve needs the store your web workers record into; memory:// lives inside one process, so "
            "nothing would ever reach this service: pass --store sqlite:///path/to/health.db or redis://host:6379/0"
        )
    try:
        from ..web.asgi import HealthMiddleware
        from ..web.auth import token_authorizer
        from ..web.http import HealthApp
        from ..web.public import PublicEndpoints
        from ._server import bind, have_uvicorn, serve_until_signal, url_of
    except ImportError as exc:
        raise CliError(
            f"serve needs the web extra ({exc.name} is missing): pip install 'nextmonth-health[web,cli]' uvicorn"
        ) from None
    if not have_uvicorn():
        raise CliError("serve needs uvicorn to answer HTTP: pip install uvicorn")
    authorize = token_authorizer(admin_token) if admin_token else None
    monitor = build_monitor(
        site=opts.site_name(),
        store=url,
        plugins=opts.config.plugins,
        sites=opts.config.sites,
        **opts.settings(),
    )
    probe_store(monitor.store)
    for failure in monitor.plugin_failures:
        click.echo(f"warning: {failure.message}", err=True)
    known = {monitor.site, *monitor.site_settings}
    public = PublicEndpoints(sites=known | monitor.store.sites())
    health_app = HealthApp(monitor, authorize=authorize, routes=public.routes(), admin_routes=_admin_routes())
    endpoints = HealthMiddleware(_not_found, monitor, health=health_app)

    async def follow_sites() -> None:
        """Let browsers ask for the notices of any site that records into the store."""
        while True:
            await anyio.sleep(monitor.settings.tick_seconds)
            try:
                public.sites = frozenset(known | await anyio.to_thread.run_sync(monitor.store.sites))
            except Exception as exc:
                monitor.errors.report("serve.sites", exc)

    app = ServiceApp(endpoints, monitor)
    sock = bind(host, port)
    base = url_of(sock)
    health = endpoints.health
    settings = monitor.settings
    click.echo(f"nextmonth-health serve: {url}")
    click.echo(
        f"  Evaluating every {settings.tick_seconds:g} s: site {monitor.site!r} and every site recording into the store "
        f"({len(monitor.checks)} checks, {len(monitor.sinks)} sinks)."
    )
    if authorize is not None:
        click.echo(
            f"  Admin view:  {base}{health.admin_prefix}/  (Bearer token, or sign in at {health.admin_prefix}/signin)"
        )
    else:
        click.echo(
            f"  Admin view:  {base}{health.admin_prefix}/ is closed (403): "
            "pass --admin-token or set NEXTMONTH_HEALTH_ADMIN_TOKEN to open it."
        )
    click.echo(f"  Notices:     {base}{health.prefix}/notices?area=uploads")
    click.echo(f"  Listening on {base}; Ctrl-C or SIGTERM stops it.")
    sys.stdout.flush()

    def on_stop() -> None:
        click.echo("Stopping: finishing requests and flushing…")
        sys.stdout.flush()

    try:
        anyio.run(
            lambda: serve_until_signal(
                app, sock, verbose=opts.verbose, background=(monitor.run, follow_sites), on_stop=on_stop
            )
        )
    except KeyboardInterrupt:
        pass
    finally:
        monitor.store.close()
    click.echo("Stopped.")


def _admin_routes() -> list[Any]:
    """The admin view's routes, or none when its module or the web extra is missing."""
    try:
        from ..web.admin import admin_routes
    except ImportError:
        return []
    return list(admin_routes())


async def _not_found(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await _send_json(send, 404, {"error": "not found"})
