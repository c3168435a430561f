"""What users see: the bundled cinematic notices, overrides, plugin renderers, one per area.

The wording rules are the product's promise to users: no codes, numbers, paths, internal
names, alarm words or blame; no claim the monitor cannot know (it sees failing requests,
not whether anyone's files or account are safe); short; finished sentences. Every bundled template is held to
them here, and incidents are opened through real evaluation passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

import nextmonth_health as nmh
from nextmonth_health import Notice, Reading, Severity, hookimpl
from nextmonth_health.plugins.cinematic import DEFAULT, TEMPLATES
from nextmonth_health.settings import DEFAULT_ROUTES, Settings
from nextmonth_health.tell.quiet import PLANNED_MESSAGE, PLANNED_TITLE, PLANNED_TITLES
from nextmonth_health.testing import FakeClock

pytestmark = pytest.mark.anyio

BUNDLED_AREAS = ("uploads", "bookings", "portal", "login", "dashboard")
ALARM_WORDS = (
    "error",
    "fail",
    "failure",
    "crash",
    "down",
    "outage",
    "broken",
    "bug",
    "exception",
    "critical",
    "alert",
    "urgent",
    "warning",
    "invalid",
    "wrong",
    "your fault",
    "you did",
    "5xx",
    "server",
    "database",
    "http",
)
#: What a notice must never promise: the monitor counts failures, it cannot know that files,
#: accounts or work are safe (a spike of failed sign-ins may be an attack on accounts), that
#: nothing was lost, or that a fix is done.
FORBIDDEN_CLAIMS = (
    r"\bsafe(?:ly|ty)?\b",
    r"\bsecur(?:e|ed|ity)\b",
    r"\bprotect(?:ed|s|ion)?\b",
    r"\bintact\b",
    r"\b(?:not|nothing|never)\b[^.]*\blost\b",
    r"\bno data\b",
    r"\bdata\b",
    r"\byour (?:files|account|accounts|work|information|data|plans|details|payments?|password)\b",
    r"\beverything you(?:'ve| have) saved\b",
    r"\b(?:fixed|resolved|solved)\b",
    r"\bguarantee",
)
INTERNAL_NAMES = (
    "api_errors",
    "dashboard_load",
    "session_failures",
    "upload_failures",
    "cinematic",
    "admin_panel",
    "nextmonth",
    "media-upload",
    "page_load",
    "session_expired",
    "degraded",
    "incident",
    "p75",
    "api",
    "timeout",
    "threshold",
)


def all_texts() -> list[tuple[str, Severity, str, str]]:
    found = [(area, severity, *texts[severity]) for area, texts in TEMPLATES.items() for severity in Severity]
    found += [("DEFAULT", severity, *DEFAULT[severity]) for severity in Severity]
    return found


TEXTS = all_texts()
TEXT_IDS = [f"{area}-{severity.value}" for area, severity, _, _ in TEXTS]


def test_every_bundled_area_and_both_severities_have_templates():
    assert set(TEMPLATES) == set(BUNDLED_AREAS)
    assert set(DEFAULT_ROUTES.values()) <= set(TEMPLATES)
    for texts in [*TEMPLATES.values(), DEFAULT]:
        assert set(texts) == set(Severity)
    assert len(TEXTS) == 2 * (len(BUNDLED_AREAS) + 1)


def alarm_word(word: str) -> re.Pattern[str]:
    # Whole words and their inflections: fail, fails, failed, failing, failure(s)...
    return re.compile(rf"\b{re.escape(word)}(?:s|es|ed|ing|ure|ures)?\b", re.IGNORECASE)


@pytest.mark.parametrize(("area", "severity", "title", "message"), TEXTS, ids=TEXT_IDS)
def test_templates_show_no_codes_numbers_paths_or_internal_names(area, severity, title, message):
    for text in (title, message):
        assert not re.search(r"\d", text), text
        assert "/" not in text and "_" not in text and "\\" not in text, text
        assert "<" not in text and ">" not in text and "{" not in text, text
        lowered = text.lower()
        for name in INTERNAL_NAMES:
            assert not re.search(rf"\b{re.escape(name)}\b", lowered), (name, text)
        for route in DEFAULT_ROUTES:
            slug = route.strip("/")
            # An area's own name is a word for people ("bookings"); other route slugs are not.
            assert route not in text, (route, text)
            assert slug in BUNDLED_AREAS or not re.search(rf"\b{re.escape(slug)}\b", lowered), (slug, text)


@pytest.mark.parametrize(("area", "severity", "title", "message"), TEXTS, ids=TEXT_IDS)
def test_templates_use_no_alarm_or_blame_words(area, severity, title, message):
    for text in (title, message):
        for word in ALARM_WORDS:
            assert not alarm_word(word).search(text), (word, text)


@pytest.mark.parametrize(("area", "severity", "title", "message"), TEXTS, ids=TEXT_IDS)
def test_templates_promise_nothing_the_monitor_cannot_know(area, severity, title, message):
    for text in (title, message):
        for claim in FORBIDDEN_CLAIMS:
            assert not re.search(claim, text, re.IGNORECASE), (claim, text)


@pytest.mark.parametrize(("area", "severity", "title", "message"), TEXTS, ids=TEXT_IDS)
def test_templates_keep_the_calm_voice_of_the_brief(area, severity, title, message):
    assert "everything's under active care" in message, message


@pytest.mark.parametrize(("area", "severity", "title", "message"), TEXTS, ids=TEXT_IDS)
def test_templates_are_short_finished_and_written_for_people(area, severity, title, message):
    assert 0 < len(title) <= 40, title
    assert 0 < len(message) <= 200, message
    assert title[0].isupper() and message[0].isupper()
    assert message.rstrip()[-1] in ".!…", message
    assert title == title.strip() and message == message.strip()
    assert "  " not in title and "  " not in message
    assert not title.isupper() and "!" not in title  # calm: no shouting


def test_the_word_checks_can_fail():
    assert alarm_word("fail").search("Uploads failed for a moment")
    assert alarm_word("error").search("Errors happened")
    assert alarm_word("down").search("We are down.")
    assert alarm_word("fail").search("A failure happened")
    assert alarm_word("http").search("See https links")
    assert alarm_word("your fault").search("It was YOUR FAULT.")
    assert not alarm_word("down").search("Your download is ready")  # a whole word, not any substring


@pytest.mark.parametrize(
    "claim",
    [
        "Your files are safe with us.",
        "Your account is safe.",
        "Your work is safe — please wait.",
        "Your information is safe.",
        "Everything you've saved is safe.",
        "Sign-in stays smooth and secure.",
        "Nothing has been lost.",
        "It's fixed now.",
    ],
)
def test_the_claim_checks_can_fail(claim):
    assert any(re.search(c, claim, re.IGNORECASE) for c in FORBIDDEN_CLAIMS), claim


# Rendering through the monitor.


class ScriptedCheck:
    """Reads the status it is told, for one area; a real check in a real pass."""

    interval: float | None = None
    timeout: float | None = None

    def __init__(self, name: str, area: str, status: str = "ok", sites: set[str] | None = None) -> None:
        self.name = name
        self.area = area
        self.status = status
        self.sites = sites

    def evaluate(self, view: nmh.SiteView) -> list[Reading]:
        status = self.status if self.sites is None or view.site in self.sites else "ok"
        return [Reading(check=self.name, site=view.site, key="", area=self.area, status=status, subject=self.name)]


class Plugin:
    def __init__(self, checks: tuple[Any, ...] = (), renderers: tuple[Any, ...] = ()) -> None:
        self.checks = checks
        self.renderers = renderers

    @hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        for check in self.checks:
            register(check)

    @hookimpl
    def register_message_renderers(self, register: Callable[[Any], None]) -> None:
        for renderer in self.renderers:
            register(renderer)


def build(clock: FakeClock, *checks: Any, renderers: tuple[Any, ...] = (), **kwargs: Any) -> nmh.Monitor:
    return nmh.Monitor(
        "acme",
        store="memory://",
        clock=clock,
        load_entrypoints=False,
        plugins=[Plugin(checks, renderers)],
        **kwargs,
    )


@pytest.fixture
def checked(internal_errors: Callable[[Any], Any]) -> Callable[[nmh.Monitor], nmh.Monitor]:
    def watch(monitor: nmh.Monitor) -> nmh.Monitor:
        internal_errors(monitor)
        return monitor

    return watch


@pytest.mark.parametrize("severity", list(Severity))
@pytest.mark.parametrize("area", [*BUNDLED_AREAS, "reports"])
async def test_an_incident_shows_the_template_for_its_area_and_severity(fake_clock, checked, area, severity):
    monitor = checked(build(fake_clock, ScriptedCheck("probe", area, severity.value)))
    await monitor.evaluate()
    [notice] = monitor.notices(area)
    title, message = TEMPLATES.get(area, DEFAULT)[severity]
    assert notice == Notice(area=area, site="acme", title=title, message=message, severity=severity)


async def test_healthy_areas_have_no_notice(fake_clock, checked):
    monitor = checked(build(fake_clock, ScriptedCheck("probe", "uploads", "degraded")))
    assert monitor.notices("uploads") == []  # nothing evaluated yet
    await monitor.evaluate()
    assert len(monitor.notices("uploads")) == 1
    for area in ("bookings", "portal", "login", "dashboard", "nowhere"):
        assert monitor.notices(area) == []
    assert monitor.notices("uploads", site="another-site") == []


async def test_at_most_one_notice_per_area_the_most_severe(fake_clock, checked):
    monitor = checked(
        build(
            fake_clock,
            ScriptedCheck("first", "bookings", "degraded"),
            ScriptedCheck("second", "bookings", "critical"),
            ScriptedCheck("third", "bookings", "degraded"),
            ScriptedCheck("elsewhere", "portal", "degraded"),
        )
    )
    evaluation = await monitor.evaluate()
    assert len(evaluation.opened) == 4
    [notice] = monitor.notices("bookings")
    assert notice.severity is Severity.CRITICAL
    assert (notice.title, notice.message) == TEMPLATES["bookings"][Severity.CRITICAL]
    [portal] = monitor.notices("portal")
    assert portal.severity is Severity.DEGRADED


async def test_one_notice_per_area_from_real_traffic(fake_clock, checked):
    monitor = checked(build(fake_clock))
    for i in range(200):
        monitor.record_upload(ok=i >= 40, user=f"u-{i}")  # 20 % of uploads fail: degraded
    await monitor.evaluate()
    [notice] = monitor.notices("uploads")
    assert (notice.severity, notice.title) == (Severity.DEGRADED, TEMPLATES["uploads"][Severity.DEGRADED][0])

    fake_clock.advance(10)
    for i in range(10):
        monitor.record_request("/media-upload/chunk", status=503, duration=0.2, user=f"u-{i}")  # every request fails
    evaluation = await monitor.evaluate()
    assert {t.incident.check for t in evaluation.opened} == {"api_errors"}
    assert {i.area for i in monitor.incidents(include_resolved=False)} == {"uploads"}
    assert len(monitor.incidents(include_resolved=False)) == 2
    [notice] = monitor.notices("uploads")
    assert (notice.severity, notice.title) == (Severity.CRITICAL, TEMPLATES["uploads"][Severity.CRITICAL][0])
    assert monitor.notices("bookings") == []


async def test_the_notice_goes_away_when_the_incident_resolves(fake_clock, checked):
    check = ScriptedCheck("probe", "portal", "degraded")
    monitor = checked(build(fake_clock, check))
    await monitor.evaluate()
    assert len(monitor.notices("portal")) == 1
    check.status = "ok"
    fake_clock.advance(15)
    await monitor.evaluate()
    assert len(monitor.notices("portal")) == 1  # recovering, not yet resolved
    fake_clock.advance(Settings().cooldown_seconds)
    evaluation = await monitor.evaluate()
    assert [t.kind for t in evaluation.transitions] == ["resolved"]
    assert monitor.notices("portal") == []


# Overrides.

CALM = {"title": "Uploads are resting", "message": "They will be back in a moment. Thank you for waiting."}


async def test_notice_overrides_replace_the_words_for_one_area(fake_clock, checked):
    monitor = checked(
        build(
            fake_clock,
            ScriptedCheck("up", "uploads", "degraded"),
            ScriptedCheck("book", "bookings", "critical"),
            notice_overrides={"uploads": CALM},
        )
    )
    await monitor.evaluate()
    [uploads] = monitor.notices("uploads")
    assert (uploads.title, uploads.message, uploads.severity) == (CALM["title"], CALM["message"], Severity.DEGRADED)
    [bookings] = monitor.notices("bookings")
    assert (bookings.title, bookings.message) == TEMPLATES["bookings"][Severity.CRITICAL]


async def test_an_override_of_the_title_alone_keeps_the_bundled_message(fake_clock, checked):
    monitor = checked(
        build(fake_clock, ScriptedCheck("up", "login", "critical"), notice_overrides={"login": {"title": "One moment"}})
    )
    await monitor.evaluate()
    [notice] = monitor.notices("login")
    assert (notice.title, notice.message) == ("One moment", TEMPLATES["login"][Severity.CRITICAL][1])


async def test_notice_overrides_per_site(fake_clock, checked):
    monitor = checked(
        build(
            fake_clock,
            ScriptedCheck("up", "uploads", "degraded", sites={"acme", "tiny"}),
            sites={"tiny": {"notice_overrides": {"uploads": CALM}}},
        )
    )
    evaluation = await monitor.evaluate()
    assert sorted(t.incident.site for t in evaluation.opened) == ["acme", "tiny"]
    [tiny] = monitor.notices("uploads", site="tiny")
    assert (tiny.site, tiny.title, tiny.message) == ("tiny", CALM["title"], CALM["message"])
    [acme] = monitor.notices("uploads")
    assert (acme.site, acme.title, acme.message) == ("acme", *TEMPLATES["uploads"][Severity.DEGRADED])


# Plugin renderers.


class UploadsOnly:
    name = "uploads_voice"
    areas = frozenset({"uploads"})

    def __init__(self) -> None:
        self.rendered: list[str] = []

    def render(self, incident: nmh.Incident) -> Notice:
        self.rendered.append(incident.area)
        return Notice(
            area=incident.area,
            site=incident.site,
            title="Your files are safe",
            message="We are tidying up the upload room. Please try again soon.",
            severity=incident.severity,
        )


async def test_a_plugin_renderer_limited_to_an_area_speaks_for_that_area_only(fake_clock, checked):
    voice = UploadsOnly()
    monitor = checked(
        build(
            fake_clock,
            ScriptedCheck("up", "uploads", "critical"),
            ScriptedCheck("book", "bookings", "degraded"),
            renderers=(voice,),
        )
    )
    assert [r.name for r in monitor.renderers] == ["uploads_voice", "cinematic"]
    await monitor.evaluate()
    [uploads] = monitor.notices("uploads")
    assert (uploads.title, uploads.severity) == ("Your files are safe", Severity.CRITICAL)
    [bookings] = monitor.notices("bookings")
    assert (bookings.title, bookings.message) == TEMPLATES["bookings"][Severity.DEGRADED]
    assert voice.rendered == ["uploads"]  # never even asked about bookings
    monitor.notices("uploads")
    assert voice.rendered == ["uploads"]  # rendered once per incident and severity


async def test_the_rendered_notice_follows_an_escalation(fake_clock, checked):
    check = ScriptedCheck("probe", "dashboard", "degraded")
    monitor = checked(build(fake_clock, check))
    await monitor.evaluate()
    assert monitor.notices("dashboard")[0].title == TEMPLATES["dashboard"][Severity.DEGRADED][0]
    check.status = "critical"
    fake_clock.advance(15)
    evaluation = await monitor.evaluate()
    assert [t.kind for t in evaluation.transitions] == ["escalated"]
    [notice] = monitor.notices("dashboard")
    assert (notice.title, notice.severity) == (TEMPLATES["dashboard"][Severity.CRITICAL][0], Severity.CRITICAL)


PLANNED = [(area, title, PLANNED_MESSAGE) for area, title in {**PLANNED_TITLES, "DEFAULT": PLANNED_TITLE}.items()]


@pytest.mark.parametrize(("area", "title", "message"), PLANNED, ids=[p[0] for p in PLANNED])
def test_planned_work_is_worded_with_the_same_care(area, title, message):
    """The maintenance notice holds to every rule of the incident notices but the brief's
    closing line: it is planned work, not something being looked after."""
    test_templates_show_no_codes_numbers_paths_or_internal_names(area, None, title, message)
    test_templates_use_no_alarm_or_blame_words(area, None, title, message)
    test_templates_promise_nothing_the_monitor_cannot_know(area, None, title, message)
    test_templates_are_short_finished_and_written_for_people(area, None, title, message)
    assert "planned" in (title + message).lower()


def test_every_bundled_area_has_planned_words():
    assert set(PLANNED_TITLES) == set(BUNDLED_AREAS)
