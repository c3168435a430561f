"""What is emailed: which transitions make an email, and the email itself.

An alert makes two emails at most, both keyed by the alert's ``incident_id`` (the first
incident of its area to turn critical): **the alert**, when that incident opens
critical or escalates, and **the resolution**, when the alert's last incident resolves.
Several checks failing in one area share one alert (the core folds them:
``Alert.incident_ids``), so the incidents that join it later send nothing, and neither
does a growing count of people hurt (``updated``) — that is on the admin page, and a
mailbox that fills up with updates during an outage is one nobody reads. The rule needs
no memory, so a restarted process or a new leader keeps it too.

The text part is the alert's own message, in the core's calm wording; the HTML part is
the same words, every one of them escaped (a summary names a route or a page, which may
come from a request).
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

import nextmonth_health as nmh
from nextmonth_health.plugin import incident_url as admin_incident_url

from ._config import EmailConfig

__all__ = [
    "ALERT",
    "REMINDER",
    "RESOLVED",
    "compose",
    "incident_url",
    "mail_kind",
    "message_id",
    "subject_of",
    "subjects_of",
]

ALERT = "alert"
REMINDER = "reminder"
RESOLVED = "resolved"

_SUBJECTS = re.compile(r"(?P<subjects>.+?) (?:have exceeded|are back within) safe thresholds\.?\Z")
_MAX_SUBJECT = 160


def mail_kind(transition: nmh.Transition, config: EmailConfig) -> str | None:
    """``ALERT``, ``REMINDER``, ``RESOLVED`` or ``None`` (nothing to email) for one transition.

    A ``reminded`` transition is a reminder, or the alert itself when it is told for the
    first time (a maintenance window or a silence held it back until now).
    """
    alert = transition.alert
    if alert is None:
        return None
    kind = transition.kind
    if kind is nmh.TransitionKind.OPENED or kind is nmh.TransitionKind.ESCALATED:
        # Only the incident that names the alert: the others joined an alert already sent.
        if alert.resolved_at is None and transition.incident.id == alert.incident_id:
            return ALERT
        return None
    if kind is nmh.TransitionKind.REMINDED and alert.resolved_at is None:
        return REMINDER if alert.reminders else ALERT
    if kind is nmh.TransitionKind.RESOLVED and alert.resolved_at is not None and config.send_resolved:
        return RESOLVED
    return None


def outbox_key(alert: nmh.Alert, kind: str) -> str:
    """One email per alert and kind; each reminder its own."""
    return f"{alert.incident_id}:{kind}:{alert.reminders}" if kind == REMINDER else f"{alert.incident_id}:{kind}"


def _one_line(text: str) -> str:
    """Header-safe text: control characters become spaces, runs of space fold, long text is cut."""
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= _MAX_SUBJECT else cleaned[: _MAX_SUBJECT - 1].rstrip() + "…"


def subjects_of(transition: nmh.Transition) -> str:
    """What the alert is about, as its message names it ("API Errors on /media-upload route").

    The message's second line names the alert's incidents; the incident's own summary
    stands in if the wording ever changes.
    """
    alert = transition.alert
    lines = alert.message.splitlines() if alert is not None else []
    found = _SUBJECTS.match(lines[1].strip()) if len(lines) > 1 else None
    return found["subjects"] if found else transition.incident.summary


def _message_lines(transition: nmh.Transition, named: str | None) -> list[str]:
    """The alert's message, line by line, naming ``named`` when the sink remembers more than it does.

    The core builds a resolved alert from its last incident alone, so the resolution of
    "API Errors on /media-upload route and Media upload failures" would name only the
    second; the sink remembers what the alert email named and puts it back.
    """
    assert transition.alert is not None
    lines = transition.alert.message.strip().splitlines() or [""]
    if named is not None and len(lines) > 1 and (found := _SUBJECTS.match(lines[1].strip())):
        lines[1] = named + lines[1].strip()[found.end("subjects") :]
    return lines


def subject_of(transition: nmh.Transition, kind: str, named: str | None = None) -> str:
    """``⚡ Health Alert: API Errors on /media-upload route (acme-studio)``, its reminder or its ``✓ Resolved:``."""
    lead = {ALERT: "⚡ Health Alert:", REMINDER: "⚡ Still needs attention:"}.get(kind, "✓ Resolved:")
    return _one_line(f"{lead} {named or subjects_of(transition)} ({transition.incident.site})")


def incident_url(config: EmailConfig, incident_id: str) -> str | None:
    """The incident's page in the admin view, ``{admin_url}/incidents/{id}``, when one is set."""
    return None if config.admin_url is None else admin_incident_url(config.admin_url, incident_id)


def message_id(kind: str, alert_id: str, config: EmailConfig) -> str:
    """A stable ``Message-ID``: a retried email keeps it, and the resolution threads under its alert."""
    safe = re.sub(r"[^A-Za-z0-9.-]", "-", alert_id)[:64] or "alert"
    domain = config.sender_address.rpartition("@")[2] or "nextmonth-health.invalid"
    return f"<nextmonth-health.{kind}.{safe}@{domain}>"


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%a %d %b %Y, %H:%M UTC")


def _lasted(start: datetime, end: datetime) -> str:
    minutes = max(0, round((end - start).total_seconds() / 60))
    if minutes < 60:
        return "under a minute" if minutes == 0 else f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _facts(transition: nmh.Transition, kind: str) -> list[tuple[str, str]]:
    alert = transition.alert
    assert alert is not None
    incident = transition.incident
    facts = [("Site", incident.site), ("Where", alert.area or incident.area)]
    if kind != RESOLVED:
        facts.append(("Since", _when(alert.created_at)))
    if kind == REMINDER:
        facts.append(("Reminder", f"{alert.reminders}, sent because nobody has acknowledged it yet"))
    if kind == RESOLVED:
        resolved = alert.resolved_at or incident.resolved_at or alert.updated_at
        facts.append(("Alerted", _when(alert.created_at)))
        facts.append(("Resolved", f"{_when(resolved)} ({_lasted(alert.created_at, resolved)} after the alert)"))
    return facts


def _footer(kind: str, config: EmailConfig) -> str:
    if kind == REMINDER:
        return "Acknowledge it on the admin page to stop these reminders."
    if kind == ALERT and config.send_resolved:
        return (
            "You will get one more email, when this is resolved. Updates in between "
            "(more people affected) are on the admin page."
        )
    if kind == ALERT:
        return "Updates (more people affected) and the resolution will be on the admin page."
    return "No action needed. This closes the alert sent earlier."


def _text(transition: nmh.Transition, kind: str, config: EmailConfig, link: str | None, named: str | None) -> str:
    lines = [*_message_lines(transition, named), ""]
    lines += [f"{name}: {value}" for name, value in _facts(transition, kind)]
    if link is not None:
        lines.append(f"Incident: {link}")
    lines += ["", _footer(kind, config), "", "— nextmonth-health"]
    return "\n".join(lines) + "\n"


_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="margin:0;padding:24px 12px;background:#f4f6f8;color:#1f2933;\
font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;line-height:1.5">
<div style="max-width:560px;margin:0 auto;background:#ffffff;border:1px solid #e4e7eb;border-radius:12px;\
padding:24px 28px">
<p style="margin:0 0 12px;font-size:18px;font-weight:600;color:{accent}">{heading}</p>
<p style="margin:0 0 20px;font-size:15px">{lines}</p>
<table role="presentation" style="border-collapse:collapse;font-size:14px;margin:0 0 20px">{facts}</table>
{link}<p style="margin:0;font-size:13px;color:#7b8794">{footer}</p>
</div>
</body>
</html>
"""


def _html(
    transition: nmh.Transition, kind: str, config: EmailConfig, subject: str, link: str | None, named: str | None
) -> str:
    e = html.escape
    heading, *rest = _message_lines(transition, named)
    facts = "".join(
        f'<tr><td style="padding:2px 16px 2px 0;color:#7b8794">{e(name)}</td><td style="padding:2px 0">{e(value)}</td></tr>'
        for name, value in _facts(transition, kind)
    )
    button = (
        ""
        if link is None
        else f'<p style="margin:0 0 20px"><a href="{e(link)}" style="display:inline-block;padding:8px 16px;'
        'border-radius:8px;background:#3e4c59;color:#ffffff;text-decoration:none;font-size:14px">'
        "Open the incident</a></p>\n"
    )
    return _PAGE.format(
        title=e(subject),
        accent="#2f7d4f" if kind == RESOLVED else "#b44d12",
        heading=e(heading.rstrip(":")),
        lines="<br>\n".join(e(line) for line in rest),
        facts=facts,
        link=button,
        footer=e(_footer(kind, config)),
    )


def compose(transition: nmh.Transition, kind: str, config: EmailConfig, named: str | None = None) -> EmailMessage:
    """The email for one alert or resolution: text and HTML alternatives, stable ids.

    ``named``: what the alert email named, for a resolution (see :func:`_message_lines`).
    """
    alert = transition.alert
    if alert is None:
        raise ValueError("only a transition that carries an alert is emailed")
    subject = subject_of(transition, kind, named)
    link = incident_url(config, alert.incident_id)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    sent_at = {ALERT: alert.updated_at, REMINDER: alert.notified_at or alert.updated_at}.get(
        kind, alert.resolved_at or alert.updated_at
    )
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = message_id(
        f"{kind}-{alert.reminders}" if kind == REMINDER else kind, alert.incident_id, config
    )
    if kind != ALERT:
        first = message_id(ALERT, alert.incident_id, config)
        message["In-Reply-To"] = first
        message["References"] = first
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message["X-NextMonth-Health-Site"] = _one_line(transition.incident.site)
    message["X-NextMonth-Health-Alert"] = _one_line(alert.incident_id)
    message.set_content(_text(transition, kind, config, link, named))
    message.add_alternative(_html(transition, kind, config, subject, link, named), subtype="html")
    return message
