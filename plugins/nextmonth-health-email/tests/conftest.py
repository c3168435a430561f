"""Real SMTP servers on loopback: aiosmtpd (plain, STARTTLS, SMTPS, AUTH, scripted refusals),
one that accepts connections and never says a word, and a port where nothing listens.

Certificates come from a throwaway CA made per test session (trustme); the client is
told to trust it through ``ca_file``, exactly as a site with a private mail relay would.
"""

from __future__ import annotations

import email
import email.policy
import random
import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import attrs
import nextmonth_health as nmh
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from attrs import define, field
from nextmonth_health.plugin import alert_message
from nextmonth_health.testing import FakeClock

from nextmonth_health_email import EmailSink, parse_config


@define
class Received:
    """One email the server accepted, as the recipient's mail client would parse it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None

    def part(self, subtype: str) -> str:
        found = self.message.get_body(preferencelist=(subtype,))
        assert found is not None and found.get_content_type() == f"text/{subtype}"
        return found.get_content().replace("\r\n", "\n")  # as a mail client shows it


@define
class Handler:
    """aiosmtpd's handler: records what arrives, and answers a command with a scripted reply."""

    received: list[Received] = field(factory=list)
    script: dict[str, deque[str]] = field(factory=lambda: defaultdict(deque))
    commands: list[tuple[float, str]] = field(factory=list)
    lock: threading.Lock = field(factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def _scripted(self, command: str) -> str | None:
        with self.lock:
            self.commands.append((time.monotonic(), command))
            self.arrived.notify_all()
            queue = self.script[command]
            return queue.popleft() if queue else None

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if reply := self._scripted("MAIL"):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such mailbox here"
        if reply := self._scripted("RCPT"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if reply := self._scripted("DATA"):
            return reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        tls = session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, tls, session.auth_data))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's threaded controller on a socket bound beforehand (port 0: no port races)."""

    def __init__(self, handler: Handler, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)
        self._sock = sock

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


@define
class SmtpServer:
    handler: Handler
    controller: _Controller
    scheme: str

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def commands(self, name: str = "MAIL") -> list[float]:
        """When each ``name`` command arrived (monotonic seconds), refused ones included."""
        with self.handler.lock:
            return [at for at, command in self.handler.commands if command == name]

    def refuse(self, command: str, reply: str, times: int = 1) -> None:
        """Answer the next ``times`` ``MAIL``, ``RCPT`` or ``DATA`` commands with ``reply``."""
        with self.handler.lock:
            self.handler.script[command].extend([reply] * times)

    def wait_for(self, what: Callable[[Handler], bool], timeout: float = 5.0) -> bool:
        with self.handler.lock:
            return self.handler.arrived.wait_for(lambda: what(self.handler), timeout)


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="nextmonth-health tests")


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def smtp_server(server_tls: ssl.SSLContext) -> Iterator[Callable[..., SmtpServer]]:
    """Start aiosmtpd servers: ``smtp_server(tls="starttls"|"smtps"|None, login=("user", "pw"))``."""
    started: list[SmtpServer] = []

    def start(tls: str | None = None, login: tuple[str, str] | None = None) -> SmtpServer:
        handler = Handler()
        kwargs: dict[str, Any] = {"ident": "nextmonth-health test SMTP"}
        if tls == "starttls":
            kwargs["tls_context"] = server_tls
        elif tls == "smtps":
            kwargs["ssl_context"] = server_tls
        elif tls is not None:
            raise ValueError(tls)
        if login is not None:

            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == login
                return AuthResult(success=ok, handled=False, auth_data=data.login.decode() if ok else None)

            kwargs["authenticator"] = authenticate
            kwargs["auth_require_tls"] = True
        controller = _Controller(handler, _listening(), **kwargs)
        controller.start()
        server = SmtpServer(handler, controller, "smtps" if tls == "smtps" else "smtp")
        started.append(server)
        return server

    yield start
    for server in started:
        server.controller.stop()


@define
class SilentServer:
    """Accepts every connection and never sends a byte: the greeting never comes."""

    sock: socket.socket
    accepted: list[tuple[float, socket.socket]] = field(factory=list)
    stop: threading.Event = field(factory=threading.Event)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append((time.monotonic(), conn))


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer(_listening())
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        thread.join(5)
        for _, conn in server.accepted:
            conn.close()
        server.sock.close()


@pytest.fixture
def closed_port() -> str:
    """An smtp:// URL where nothing listens: the connection is refused."""
    sock = _listening()
    port = sock.getsockname()[1]
    sock.close()
    return f"smtp://127.0.0.1:{port}"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _no_smtp_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own environment must not decide whether a test logs in."""
    for name in ("NEXTMONTH_HEALTH_SMTP_USERNAME", "NEXTMONTH_HEALTH_SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


# Sinks and transitions, without a monitor.

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def transition(
    kind: str = "opened",
    *,
    incident_id: str = "inc-1",
    alert_id: str | None = None,
    site: str = "acme",
    summary: str = "API Errors on /media-upload route",
    alert: bool = True,
    alert_resolved: bool = False,
    at: datetime = T0,
) -> nmh.Transition:
    """A transition as the core hands it to sinks: an incident and, when critical, its alert."""
    resolved = kind == "resolved"
    alert_id = alert_id or incident_id
    incident = nmh.Incident(
        id=incident_id,
        site=site,
        check="api_errors",
        area="uploads",
        key="/media-upload",
        severity="critical" if alert else "degraded",
        status="resolved" if resolved else "open",
        affected_users=12,
        opened_at=T0,
        summary=summary,
        updated_at=at,
        resolved_at=at if resolved else None,
        escalated_at=T0 if alert else None,
        alert_id=alert_id if alert else None,
    )
    record = None
    if alert:
        closed = attrs.evolve(incident, status="resolved") if alert_resolved else incident
        record = nmh.Alert(
            incident_id=alert_id,
            site=site,
            message=alert_message([closed]),
            created_at=T0,
            updated_at=at,
            check="api_errors",
            key=incident.key,
            area="uploads",
            affected_users=12,
            resolved_at=at if alert_resolved else None,
            incident_ids=(alert_id,) if alert_id == incident_id else (alert_id, incident_id),
        )
    return nmh.Transition(kind=kind, incident=incident, alert=record)


def options(url: str, **more: Any) -> dict[str, Any]:
    return {"url": url, "from": "Health <health@acme.example>", "to": "rob@acme.example", **more}


@pytest.fixture
def make_sink(fake_clock: FakeClock) -> Iterator[Callable[..., EmailSink]]:
    """``make_sink(options, **per_site_options)``: an EmailSink on ``fake_clock``, closed at teardown."""
    sinks: list[EmailSink] = []

    def make(default: Any, clock: Any = None, **sites: Any) -> EmailSink:
        configs = {None: parse_config(default), **{site: parse_config(o) for site, o in sites.items()}}
        sink = EmailSink(configs, clock=clock or fake_clock, rng=random.Random(7))
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close(timeout=0.2)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` (the worker runs on its own thread) for up to ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def retry_now(fake_clock: FakeClock) -> Callable[[EmailSink], float]:
    """Wait for the sink to schedule its next retry, move the fake clock to it; returns the delay."""

    def scheduled(sink: EmailSink) -> float | None:
        due = sink.stats.next_retry_at
        return due if due is not None and due > fake_clock.now() else None

    def advance(sink: EmailSink) -> float:
        assert wait_until(lambda: scheduled(sink) is not None), sink.stats
        due = scheduled(sink)
        assert due is not None
        delay = due - fake_clock.now()
        fake_clock.advance(max(0.0, delay))
        return delay

    return advance
