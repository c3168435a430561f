"""One SMTP conversation, with the standard library's ``smtplib``, on the outbox's thread.

``smtps://`` speaks TLS from the first byte; ``smtp://`` upgrades with STARTTLS whenever
the server offers it, and must (or the attempt fails) when ``require_starttls`` is set
or credentials are configured — a password never crosses the network in the clear.
Certificates are verified, against ``ca_file`` when one is set. ``timeout`` bounds each
step (connecting, and each reply), so a server that accepts and then says nothing costs
one timeout, not a stuck worker.

Every failure becomes :class:`~._outbox.Failed` with a short stable reason. All of them
are retried — a 4xx is a temporary refusal by definition, and a 5xx (a relay that
refuses the sender, a full mailbox, a policy) is retried too, because the email that
would be lost is the one telling the admin the site is down, and the attempts are few;
what is given up after a 5xx is counted as ``refused``, anything else as ``gave_up``.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage

from ._config import EmailConfig
from ._outbox import Failed

__all__ = ["Connection", "classify"]


def _code_reason(step: str, code: int, text: bytes | str) -> Failed:
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return Failed(f"{step} {code}", detail[:200], drop_as="refused" if code >= 500 else "gave_up")


def classify(exc: BaseException) -> Failed:
    """What one failed attempt says, as a :class:`Failed` (reason, detail, how it is dropped)."""
    if isinstance(exc, Failed):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (550, b"all recipients refused"))
        return _code_reason("rcpt", code, text)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _code_reason("mail", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPDataError):
        return _code_reason("data", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _code_reason("auth", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPConnectError):
        return _code_reason("greeting", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _code_reason("reply", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return Failed("timeout", str(exc))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Failed("tls_verify", exc.verify_message or str(exc))
    if isinstance(exc, ssl.SSLError):
        return Failed("tls", str(exc))
    if isinstance(exc, ConnectionRefusedError):
        return Failed("connection_refused", str(exc))
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Failed("disconnected", str(exc))
    if isinstance(exc, smtplib.SMTPException | OSError):
        return Failed(type(exc).__name__, str(exc))
    raise exc


class Connection:
    """Sends one email per call over a connection of its own; :meth:`abort` cuts a blocked one short."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: smtplib.SMTP | None = None

    def send(self, config: EmailConfig, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Send ``message`` to ``config.to_addresses``; returns the recipients refused (some, not all).

        Raises :class:`Failed` when nothing was accepted.
        """
        smtp: smtplib.SMTP
        if config.implicit_tls:
            smtp = smtplib.SMTP_SSL(timeout=config.timeout, context=config.tls)
        else:
            smtp = smtplib.SMTP(timeout=config.timeout)
        # Built unconnected so that abort() can reach a conversation stuck on its greeting;
        # connect() does not record the host that TLS checks the certificate against.
        smtp._host = config.host  # type: ignore[attr-defined]
        with self._lock:
            self._current = smtp
        try:
            smtp.connect(config.host, config.port)
            smtp.ehlo_or_helo_if_needed()
            if not config.implicit_tls:
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=config.tls)
                    smtp.ehlo()
                elif config.needs_tls:
                    why = "credentials are configured" if config.credentials is not None else "require_starttls is set"
                    raise Failed("no_starttls", f"the server does not offer STARTTLS, and {why}", drop_as="refused")
            if config.credentials is not None:
                smtp.login(config.credentials.username, config.credentials.password)
            refused = smtp.send_message(message, from_addr=config.sender_address, to_addrs=list(config.to_addresses))
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass  # the server took the email; a lost goodbye changes nothing
            return refused
        except BaseException as exc:
            failure = classify(exc)
            if failure is exc:
                raise
            raise failure from exc
        finally:
            with self._lock:
                self._current = None
            smtp.close()

    def abort(self) -> None:
        """Shut the socket of the conversation under way, if any: its blocked read returns at once."""
        with self._lock:
            sock = getattr(self._current, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
