"""What every admin handler answers with: Jinja2 pages, JSON with ETags, redirects, form fields.

Pages are templates with autoescaping and ``StrictUndefined``; times are shown one way
everywhere, in UTC with the zone named (``5 Jan, 09:05 UTC``), as the widget shows them too.
The security headers every admin response carries are added by the router
(:meth:`HealthApp.finish <nextmonth_health.web.http.HealthApp.finish>`).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from ..errors import ConfigError
from . import trends
from .http import Request, Response, etag_for, etag_matches

__all__ = ["ago", "form_fields", "html_page", "json_body", "json_page", "redirect", "require_web_extra", "when"]

_MAX_BODY = 8192


def require_web_extra() -> None:
    try:
        import itsdangerous  # noqa: F401
        import jinja2  # noqa: F401
    except ImportError:
        raise ConfigError("the admin view needs the web extra: pip install nextmonth-health[web]") from None


@functools.cache
def _environment() -> Any:
    require_web_extra()
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nextmonth_health.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["iso"] = lambda value: "" if value is None else value.isoformat()
    env.filters["value"] = trends.format_value
    env.globals["svg"] = lambda series: Markup(trends.render_svg(series))
    return env


def html_page(template: str, code: int = 200, headers: tuple[tuple[str, str], ...] = (), **context: Any) -> Response:
    body = _environment().get_template(template).render(**context)
    return Response(code, body.encode(), (("content-type", "text/html; charset=utf-8"), *headers))


def json_page(request: Request, data: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """JSON with a strong ETag; a bodiless 304 when the caller already has this answer."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    etag = etag_for(body)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(304, b"", (("etag", etag), *headers))
    return Response(status, body, (("content-type", "application/json; charset=utf-8"), ("etag", etag), *headers))


def etag_of(data: Any) -> str:
    """The ETag :func:`json_page` gives ``data``: what a page embeds for its script to compare."""
    return etag_for(json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode())


def redirect(location: str, *headers: tuple[str, str]) -> Response:
    return Response(303, b"", (("location", location), *headers))


def form_fields(request: Request) -> dict[str, str] | None:
    """The POST body as flat string fields (form-encoded or a JSON object); None if unreadable."""
    if len(request.body) > _MAX_BODY:
        return None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = request.body.decode("utf-8")
        if content_type == "application/json":
            data = json.loads(text) if text else {}
            if not isinstance(data, dict):
                return None
            return {str(k): v for k, v in data.items() if isinstance(v, str)}
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    except (UnicodeDecodeError, ValueError):
        return None


def json_body(request: Request) -> dict[str, Any] | None:
    """A JSON object body with its values as sent (numbers, nulls); None if it is not one.

    :func:`form_fields` keeps strings only, which suits forms; the API's bodies carry
    durations in seconds and nulls that mean "every key" or "the whole site"."""
    if len(request.body) > _MAX_BODY:
        return None
    try:
        data = json.loads(request.body.decode("utf-8")) if request.body.strip() else {}
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def when(value: datetime | None) -> str:
    """``5 Jan, 09:05 UTC``: the one way admin pages and the widget write a moment."""
    if value is None:
        return "–"
    return value.strftime("%d %b, %H:%M UTC").lstrip("0")


def ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86_400:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    days = seconds // 86_400
    return f"{days} day{'s' if days != 1 else ''} ago"
