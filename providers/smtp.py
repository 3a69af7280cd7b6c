"""Plain SMTP/IMAP provider: builds the MIME with the stdlib ``email`` package, sends over
SSL, STARTTLS or plain SMTP with AUTH and timeouts, and appends a copy to the mailbox's
IMAP Sent folder when IMAP is configured.

Every connection goes to the address :func:`providers.netguard.check_mail_host` checked
at send time, while TLS verifies the certificate against the host name.
"""
from __future__ import annotations

import functools
import hashlib
import imaplib
import re
import logging
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, localtime
from typing import Any, Callable, ClassVar

from django.conf import settings

from .addresses import SMTP_POLICY, address_header
from .base import Capabilities, OutgoingMessage, Provider, SendResult
from .config import CHOICE, INT, SECRET, MailboxConfig, Server, setting
from .errors import (
    AuthenticationFailed,
    ConfigurationError,
    InvalidRequest,
    OutcomeUnknown,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RecipientRefused,
)
from .netguard import ResolvedHost, check_connected_host, check_mail_host, is_private_address, pinned_connection

logger = logging.getLogger(__name__)

SSL, STARTTLS, NONE = "ssl", "starttls", "none"


@dataclass(frozen=True)
class ServerSettings:
    """One mail server login: ``security`` is "ssl", "starttls" or "none"; ``password`` is plaintext
    (decrypted just before use; never logged, never part of an error message)."""

    host: str
    port: int
    login: str
    password: str
    security: str

    def __repr__(self) -> str:  # keep the password out of tracebacks and logs
        return f"ServerSettings(host={self.host!r}, port={self.port}, login={self.login!r}, security={self.security!r})"


def tls_context() -> ssl.SSLContext:
    """A verifying TLS context (system CAs, plus settings.OUTREACH_MAIL_CA_FILE if set)."""
    context = ssl.create_default_context()
    if settings.OUTREACH_MAIL_CA_FILE:
        context.load_verify_locations(cafile=settings.OUTREACH_MAIL_CA_FILE)
    return context


# --- sockets pinned to the checked address ----------------------------------------------

@functools.cache
def local_hostname() -> str | None:
    """The name we give in EHLO: this host's FQDN, looked up once per process (smtplib would call
    ``socket.getfqdn()``, a DNS lookup, for every connection); None when it has no dot (smtplib then
    uses the address literal of the socket, as it does by default)."""
    fqdn = socket.getfqdn()
    return fqdn if "." in fqdn else None


class _PinnedSMTP(smtplib.SMTP):
    """smtplib.SMTP that connects to a pre-checked IP (``resolved``); STARTTLS still verifies the host name."""

    def __init__(self, resolved: ResolvedHost, **kwargs):
        self.resolved = resolved
        kwargs.setdefault("local_hostname", local_hostname())
        super().__init__(**kwargs)

    def _get_socket(self, host, port, timeout):
        return _no_delay(pinned_connection(self.resolved, timeout))


def _no_delay(sock: socket.socket) -> socket.socket:
    """``sock`` with TCP_NODELAY: every SMTP write is one whole command (or the content, then the end-of-data
    indicator on its own after the hand-over marker's commit); Nagle's algorithm would hold that small last
    write until the server acknowledged the content, which a delayed ACK makes ~40 ms."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _PinnedSMTPSSL(smtplib.SMTP_SSL, _PinnedSMTP):
    """Implicit TLS; ``SMTP_SSL._get_socket`` wraps our pinned socket with server_hostname=host."""

    def __init__(self, resolved: ResolvedHost, **kwargs):
        self.resolved = resolved
        kwargs.setdefault("local_hostname", local_hostname())
        smtplib.SMTP_SSL.__init__(self, **kwargs)


class _PinnedIMAP(imaplib.IMAP4):
    def __init__(self, resolved: ResolvedHost, timeout: float):
        self.resolved = resolved
        super().__init__(resolved.host, resolved.port, timeout=timeout)

    def _create_socket(self, timeout):
        return pinned_connection(self.resolved, timeout)


class _PinnedIMAPSSL(imaplib.IMAP4_SSL):
    def __init__(self, resolved: ResolvedHost, timeout: float, context: ssl.SSLContext):
        self.resolved = resolved
        super().__init__(resolved.host, resolved.port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout):
        return self.ssl_context.wrap_socket(pinned_connection(self.resolved, timeout), server_hostname=self.host)


# --- error translation -------------------------------------------------------------------

def _network_error(err: BaseException, *, label: str, server: ServerSettings) -> ProviderError:
    """Turn a socket/TLS exception into a specific, human ProviderError."""
    where = f"{server.host}:{server.port}"
    if isinstance(err, ssl.SSLCertVerificationError):
        return ProviderUnavailable(
            f"{label} TLS certificate of {server.host} could not be verified: {err.verify_message}.",
            provider="smtp", reason="tls_certificate")
    if isinstance(err, ssl.SSLError):
        hint = " Check the security setting: port 465/993 use SSL/TLS, 587/143 use STARTTLS."
        return ProviderUnavailable(f"{label} TLS handshake with {where} failed ({err.reason or err}).{hint}",
                                   provider="smtp", reason="tls_handshake")
    if isinstance(err, smtplib.SMTPServerDisconnected) and isinstance(err.__context__, TimeoutError):
        err = err.__context__  # smtplib reports a read timeout as "Connection unexpectedly closed"
    if isinstance(err, (socket.timeout, TimeoutError)):
        return ProviderTimeout(f"{label} server {where} timed out after {settings.OUTREACH_MAIL_TIMEOUT:g} s.",
                               provider="smtp", reason="timeout")
    if isinstance(err, ConnectionRefusedError):
        return ProviderUnavailable(f"{label} server {where} refused the connection: is the server running and the port right?",
                                   provider="smtp", reason="connection_refused")
    if isinstance(err, (smtplib.SMTPServerDisconnected, ConnectionResetError, EOFError, imaplib.IMAP4.abort)):
        return ProviderUnavailable(f"{label} server {where} closed the connection unexpectedly.",
                                   provider="smtp", reason="disconnected")
    return ProviderUnavailable(f"{label} connection to {where} failed: {err}.", provider="smtp", reason="network")


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


# --- sessions ----------------------------------------------------------------------------

def check_plaintext_login(server: ServerSettings, resolved: ResolvedHost, *, label: str) -> None:
    """Refuse to send a password over an unencrypted connection (security "none") to a host that
    is not loopback/private, unless settings.OUTREACH_ALLOW_PLAINTEXT_AUTH is true.

    Raises ConfigurationError (``field`` ``smtp_security``/``imap_security``) before any
    connection is made.
    """
    if server.security != NONE or not server.login or getattr(settings, "OUTREACH_ALLOW_PLAINTEXT_AUTH", False):
        return
    if is_private_address(resolved.ip):
        return
    kind = label.lower()
    raise ConfigurationError(
        f"{label} security is “None”: the password would cross the internet unencrypted to {server.host}. "
        "Choose SSL/TLS or STARTTLS.", provider="smtp", field=f"{kind}_security")


def open_smtp(server: ServerSettings) -> smtplib.SMTP:
    """Connect, secure and log in to an SMTP server. Returns a logged-in smtplib.SMTP.

    Raises HostNotAllowed (checked again at every call), ConfigurationError for a login over an
    unencrypted connection to a public host (:func:`check_plaintext_login`), AuthenticationFailed,
    ProviderUnavailable / ProviderTimeout with a human message.
    """
    resolved = check_mail_host(server.host, server.port, kind="smtp")
    check_plaintext_login(server, resolved, label="SMTP")
    timeout = settings.OUTREACH_MAIL_TIMEOUT
    try:
        if server.security == SSL:
            client = _PinnedSMTPSSL(resolved, host=server.host, port=server.port, timeout=timeout, context=tls_context())
        else:
            client = _PinnedSMTP(resolved, host=server.host, port=server.port, timeout=timeout)
        try:
            client.ehlo()
            if server.security == STARTTLS:
                if not client.has_extn("starttls"):
                    raise ProviderUnavailable(
                        f"SMTP server {server.host}:{server.port} does not offer STARTTLS; choose SSL/TLS or check the port.",
                        provider="smtp", reason="no_starttls")
                client.starttls(context=tls_context())
                client.ehlo()
            if server.login:
                client.login(server.login, server.password)
        except BaseException:
            client.close()
            raise
    except smtplib.SMTPAuthenticationError as err:
        raise AuthenticationFailed(
            f"SMTP authentication refused for {server.login} ({err.smtp_code} {_reply_text(err.smtp_error)}).",
            provider="smtp", status=err.smtp_code, provider_code=str(err.smtp_code),
            provider_message=_reply_text(err.smtp_error)) from err
    except smtplib.SMTPNotSupportedError as err:
        raise AuthenticationFailed(f"SMTP server {server.host} does not offer AUTH on this connection; "
                                   "it may require STARTTLS or SSL/TLS.", provider="smtp", reason="no_auth") from err
    except ProviderError:
        raise
    except (OSError, smtplib.SMTPException, EOFError) as err:
        raise _network_error(err, label="SMTP", server=server) from err
    return client


def open_imap(server: ServerSettings) -> imaplib.IMAP4:
    """Connect, secure and log in to an IMAP server. Returns a logged-in imaplib.IMAP4.

    Raises HostNotAllowed, ConfigurationError (plaintext login to a public host),
    AuthenticationFailed, ProviderUnavailable / ProviderTimeout.
    """
    resolved = check_mail_host(server.host, server.port, kind="imap")
    check_plaintext_login(server, resolved, label="IMAP")
    timeout = settings.OUTREACH_MAIL_TIMEOUT
    try:
        if server.security == SSL:
            client = _PinnedIMAPSSL(resolved, timeout, tls_context())
        else:
            client = _PinnedIMAP(resolved, timeout)
        try:
            if server.security == STARTTLS:
                client.starttls(ssl_context=tls_context())
            client.login(server.login, server.password)
        except BaseException:
            try:
                client.shutdown()
            except OSError:
                pass
            raise
    except imaplib.IMAP4.abort as err:
        raise _network_error(err, label="IMAP", server=server) from err
    except imaplib.IMAP4.error as err:
        text = str(err)
        if "STARTTLS" in text.upper() or "TLS" in text.upper():
            raise ProviderUnavailable(f"IMAP server {server.host}:{server.port} does not offer STARTTLS ({text}).",
                                      provider="smtp", reason="no_starttls") from err
        raise AuthenticationFailed(f"IMAP authentication refused for {server.login} ({text}).",
                                   provider="smtp", reason="imap_auth", provider_message=text) from err
    except (OSError, EOFError) as err:
        raise _network_error(err, label="IMAP", server=server) from err
    return client


def test_connection(smtp: ServerSettings, imap: ServerSettings | None) -> list[str]:
    """Log in to SMTP and (if given) IMAP, then log out. Returns success lines for the user.

    Raises the first ProviderError or ConfigurationError (a refused host, a plaintext login) met,
    with its human message.
    """
    lines = []
    client = open_smtp(smtp)
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        pass
    lines.append(f"SMTP: logged in to {smtp.host}:{smtp.port} as {smtp.login or '(no login)'}.")
    if imap is not None:
        imap_client = open_imap(imap)
        try:
            imap_client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
        lines.append(f"IMAP: logged in to {imap.host}:{imap.port} as {imap.login}.")
    return lines


# --- MIME --------------------------------------------------------------------------------

def build_mime(message: OutgoingMessage) -> EmailMessage:
    """Build the RFC 5322 message: multipart/alternative (text + HTML) inside multipart/mixed
    when there are attachments; Message-ID, Date, From with display name, To, Cc, Reply-To.
    Bcc is never written into the headers. Raises ValueError on a header value holding CR/LF.
    """
    mime = EmailMessage(policy=SMTP_POLICY)
    mime["From"] = address_header("From", [message.sender])
    mime["To"] = address_header("To", message.to)
    if message.cc:
        mime["Cc"] = address_header("Cc", message.cc)
    if message.reply_to:
        mime["Reply-To"] = address_header("Reply-To", [message.reply_to])
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(localtime())
    mime["Message-ID"] = message.message_id
    for name, value in message.headers.items():
        mime[name] = value
    mime.set_content(message.text or "", subtype="plain", charset="utf-8")
    if message.html:
        mime.add_alternative(message.html, subtype="html", charset="utf-8")
    for attachment in message.attachments:
        maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition("/")
        mime.add_attachment(attachment.content, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=attachment.filename)
    return mime


# --- config ------------------------------------------------------------------------------

SECURITY_CHOICES = ((SSL, "SSL/TLS (implicit, e.g. port 465/993)"), (STARTTLS, "STARTTLS (e.g. port 587/143)"),
                    (NONE, "None (plain text)"))
SMTP_GROUP, IMAP_GROUP = "SMTP (sending) — required", "IMAP (copy to Sent, replies, bounces) — optional: fill all or none"


@dataclass(frozen=True)
class SmtpConfig(MailboxConfig):
    """The mailbox's own servers (the fields of lemlist's "Connect Email Account" document):
    SMTP is required; IMAP is optional as a group, but complete when any of it is given. Each
    password is bound to the host, port, login and security it was saved with."""

    servers = (Server("smtp", "smtp_host", "smtp_port", "smtp_login", "smtp_password", "smtp_security"),
               Server("imap", "imap_host", "imap_port", "imap_login", "imap_password", "imap_security"))

    smtp_host: str = setting("SMTP host", required=True, max_length=253, group=SMTP_GROUP)
    smtp_port: int | None = setting("SMTP port", kind=INT, default=587, required=True, min_value=1, max_value=65535, group=SMTP_GROUP)
    smtp_login: str = setting("SMTP login", group=SMTP_GROUP, help="Blank for a relay that takes mail without a login.")
    smtp_password: str = setting("SMTP password", kind=SECRET, max_length=500, group=SMTP_GROUP,
                                 bound_to=("smtp_host", "smtp_port", "smtp_login", "smtp_security"))
    smtp_security: str = setting("SMTP security", kind=CHOICE, choices=SECURITY_CHOICES, default=STARTTLS, group=SMTP_GROUP)
    imap_host: str = setting("IMAP host", max_length=253, group=IMAP_GROUP)
    imap_port: int | None = setting("IMAP port", kind=INT, default=993, min_value=1, max_value=65535, group=IMAP_GROUP)
    imap_login: str = setting("IMAP login", group=IMAP_GROUP)
    imap_password: str = setting("IMAP password", kind=SECRET, max_length=500, group=IMAP_GROUP,
                                 bound_to=("imap_host", "imap_port", "imap_login", "imap_security"))
    imap_security: str = setting("IMAP security", kind=CHOICE, choices=SECURITY_CHOICES, default=SSL, group=IMAP_GROUP)
    imap_sent_folder: str = setting("IMAP Sent folder", default="Sent", max_length=200, group=IMAP_GROUP)
    lemlist_email_account_id: str = setting("lemlist email account id", editable=False, max_length=100,
                                            help="Set when this SMTP mailbox was registered at lemlist.")

    IMAP_GIVEN: ClassVar[tuple[str, ...]] = ("imap_host", "imap_login", "imap_password")

    @classmethod
    def normalize(cls, values: dict[str, Any]) -> dict[str, Any]:
        """No IMAP host, login or password: the whole IMAP group is cleared (port None); the Sent
        folder defaults to "Sent"."""
        if not any(values.get(name) for name in cls.IMAP_GIVEN):
            values.update(imap_host="", imap_login="", imap_password="", imap_port=None)
        values["imap_sent_folder"] = values.get("imap_sent_folder") or "Sent"
        return values

    @classmethod
    def problems(cls, values, *, provider_label, present=None):
        """The required SMTP settings (a password once there is a login), and IMAP all-or-nothing:
        once any IMAP setting is given, host, port, login and password are all needed."""
        present = present or {}
        found = super().problems(values, provider_label=provider_label, present=present)
        if values.get("smtp_login") and not values.get("smtp_password") and not present.get("smtp_password"):
            found.setdefault("smtp_password", "Enter the SMTP password.")
        if values.get("imap_host") or values.get("imap_login") or values.get("imap_password"):
            for name, label in (("imap_host", "host"), ("imap_port", "port"), ("imap_login", "login"), ("imap_password", "password")):
                if not values.get(name) and not present.get(name):
                    found.setdefault(name, f"Enter the IMAP {label} too, or leave every IMAP field empty.")
        return found

    def smtp_server(self) -> ServerSettings:
        """The SMTP login (password in plaintext)."""
        return ServerSettings(self.smtp_host, int(self.smtp_port or 0), self.smtp_login, self.smtp_password, self.smtp_security)

    def imap_server(self, *, default_login: str = "") -> ServerSettings | None:
        """The IMAP login, or None when the mailbox has no IMAP (``default_login`` for a blank login)."""
        if not self.imap_host:
            return None
        return ServerSettings(self.imap_host, int(self.imap_port or 993), self.imap_login or default_login,
                              self.imap_password, self.imap_security)


# --- provider ----------------------------------------------------------------------------

class SmtpProvider(Provider):
    """Sends through the mailbox's own SMTP server; copies to IMAP Sent when configured."""

    name = "smtp"
    label = "SMTP"
    config_class = SmtpConfig
    # A plain mailbox: everything, up to 20 MB of attachments, its own headers (X- and RFC 5322 ones).
    capabilities = Capabilities(max_attachments_bytes=20 * 1024 * 1024, custom_headers=True, mail_headers=True)

    def __init__(self, *, smtp: ServerSettings, imap: ServerSettings | None = None, sent_folder: str = "Sent"):
        self.smtp = smtp
        self.imap = imap
        self.sent_folder = sent_folder or "Sent"

    @classmethod
    def from_config(cls, config: SmtpConfig, *, mailbox: Any = None) -> "SmtpProvider":
        """The provider for the servers of ``config`` (passwords already decrypted by the caller)."""
        return cls(smtp=config.smtp_server(), imap=config.imap_server(), sent_folder=config.imap_sent_folder)

    def prepare(self, message: OutgoingMessage) -> bytes:
        """The RFC 5322 bytes of ``message`` (build_mime), stored by the pipeline so a retry sends the same
        bytes (same Date, same Message-ID). Raises UnsupportedFeature, or ValueError for a header with CR/LF."""
        self.check_supported(message)
        return build_mime(message).as_bytes()

    def deliver(self, prepared: bytes, message: OutgoingMessage, *, on_handover: Callable[[], None],
                idle: Callable[[], None] | None = None) -> SendResult:
        """Send ``prepared`` over this worker's SMTP session for the mailbox (reused across messages:
        RSET after an unfinished transaction (a completed DATA needs none), at most settings.OUTREACH_SMTP_MAX_MESSAGES_PER_CONNECTION per connection,
        closed after OUTREACH_SMTP_IDLE_SECONDS idle; a dropped session or a 421 before DATA reconnects
        once, which cannot duplicate since nothing was handed over yet).

        **The hand-over point is the end-of-data indicator** (the final CRLF "." CRLF), not the DATA command:
        an SMTP server processes a mail transaction only when it receives that indicator (RFC 5321 section
        4.1.1.4), and a connection that closes before it leaves no transaction behind (section 3.8: the
        transaction is abandoned; the client treats it as a 451). So the session runs its own DATA phase over
        smtplib's socket: DATA, its 354, then ``on_handover()`` (the caller commits its marker), then the
        dot-stuffed content and the indicator in one write. A content larger than :data:`_ONE_WRITE_BYTES`
        is written before ``on_handover()`` (the server reads it while the marker commits) and only the
        indicator after it, so that a connection lost while a large content is on its way is still "nothing
        handed over" (retried) rather than "may have been delivered". If ``on_handover()`` raises, the
        connection is closed without the indicator (and without QUIT, which the server would read as
        content): the server delivers nothing.

        ``idle()``, if given, is called while a command is on its way and its answer not yet read: after MAIL
        FROM and after the first RCPT TO (nothing handed over yet), and after the end-of-data indicator
        (handed over); the caller's work there (building the next message) overlaps the server's. It must
        not raise.
        A recipient refused with 5xx among several does not stop the others: every recipient's result is
        returned in ``raw["recipients"]`` ({address: {"status": "sent"|"rejected", "code", "reply"}}); all
        refused raises RecipientRefused. An answer to DATA other than 354 raises as a DATA failure (4xx
        ProviderUnavailable: retriable; 5xx InvalidRequest). After the indicator, a lost connection or
        timeout raises OutcomeUnknown; an explicit 4xx answer raises ProviderUnavailable (not accepted:
        retriable), 5xx InvalidRequest. Returns SendResult(provider_message_id=Message-ID, raw={"smtp",
        "recipients", "imap"}).
        """
        recipients = list(dict.fromkeys(a.email for a in (*message.to, *message.cc, *message.bcc)))
        waiting = idle
        for attempt in (1, 2):
            session = _smtp_sessions.take(self.smtp)
            try:
                results = self._envelope(session, message.sender.email, recipients, waiting)
                break
            except _Reconnect as err:
                _smtp_sessions.discard(session)
                if attempt == 2 or not (session.reused or err.always_retry):
                    raise err.error from err
            except ProviderError:
                _smtp_sessions.reset(session)
                raise
            except BaseException:  # from idle(): the session's state is not known
                _smtp_sessions.discard(session)
                raise
            finally:
                waiting = None  # once per message
        client = session.client
        try:  # DATA and its 354: nothing is handed over yet (a refusal here is an answer about this transaction)
            client.putcmd("data")
            code, reply = client.getreply()
            if code != 354:
                raise smtplib.SMTPDataError(code, reply)
            content = _dot_stuffed(prepared)
            if len(content) > _ONE_WRITE_BYTES:  # a large content goes now; the indicator after the marker
                client.send(content)
                content = b""
        except smtplib.SMTPDataError as err:
            raise self._data_error(session, err) from err
        except (OSError, smtplib.SMTPServerDisconnected, EOFError) as err:  # before the indicator: nothing delivered
            _smtp_sessions.discard(session, quit=False)
            raise _network_error(err, label="SMTP", server=self.smtp) from err
        try:
            on_handover()
        except BaseException:  # not handed over: close without the indicator, so the server abandons the transaction
            _smtp_sessions.discard(session, quit=False)
            raise
        try:
            client.send(content + _END_OF_DATA)  # a small content and the indicator: one write, one wake-up
            if idle is not None:
                idle()
            code, reply = client.getreply()
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except smtplib.SMTPDataError as err:
            raise self._data_error(session, err) from err
        except (OSError, smtplib.SMTPServerDisconnected, EOFError) as err:
            _smtp_sessions.discard(session)
            raise OutcomeUnknown(
                "The SMTP connection was lost after the message was handed over; it may have been "
                "delivered, so it is not retried automatically.",
                provider=self.name, reason="lost_during_data") from err
        except BaseException:  # from idle(), after the hand-over: the answer is not known
            _smtp_sessions.discard(session)
            raise
        _smtp_sessions.release(session)
        raw: dict[str, Any] = {"smtp": {"code": code, "reply": _reply_text(reply)}, "recipients": results}
        if self.imap is not None:
            raw["imap"] = self._append_to_sent(prepared)
        return SendResult(provider_message_id=message.message_id, provider_status="sent", raw=raw)

    def _envelope(self, session: "_SmtpSession", sender: str, recipients: list[str],
                  idle: Callable[[], None] | None = None) -> dict[str, dict]:
        """RSET (a reused session whose last transaction was left unfinished), MAIL FROM and RCPT TO each
        recipient (``idle()`` runs while the answers to MAIL FROM and to the first RCPT TO are on the way).
        Returns per-recipient results.

        Raises _Reconnect (dropped session / 421), RecipientRefused (sender or every recipient refused),
        ProviderUnavailable (a temporary 4xx for the sender or any recipient: nothing is sent)."""
        client = session.client
        try:
            if session.reused and session.needs_rset:
                code, reply = client.rset()
                if code != 250:
                    raise _Reconnect(self._temporary(code, reply, "RSET"))
            client.putcmd("mail", f"FROM:{_quoted(sender)}")  # as smtplib.SMTP.mail, minus the wait
            if idle is not None:
                idle()
            code, reply = client.getreply()
            if code == 421:
                raise _Reconnect(self._temporary(code, reply, "MAIL FROM"), always_retry=True)
            if code != 250:
                text = _reply_text(reply)
                if 400 <= code < 500:
                    raise self._temporary(code, reply, f"the sender {sender}")
                raise RecipientRefused(f"The SMTP server refused the sender {sender} ({code} {text}).",
                                       provider=self.name, field="sender_email", status=code,
                                       provider_code=str(code), provider_message=text)
            results: dict[str, dict] = {}
            first_refusal = None
            for rcpt in recipients:
                client.putcmd("rcpt", f"TO:{_quoted(rcpt)}")  # as smtplib.SMTP.rcpt, minus the wait
                if idle is not None:
                    idle()
                    idle = None  # once per message
                code, reply = client.getreply()
                if code in (250, 251):
                    results[rcpt] = {"status": "sent", "code": code, "reply": _reply_text(reply)}
                    continue
                if code == 421:
                    raise _Reconnect(self._temporary(code, reply, f"RCPT TO {rcpt}"), always_retry=True)
                error = self._refused(code, reply, rcpt)
                if error.transient:
                    raise error
                results[rcpt] = {"status": "rejected", "code": code, "reply": _reply_text(reply)}
                first_refusal = first_refusal or error
            if first_refusal is not None and not any(v["status"] == "sent" for v in results.values()):
                raise first_refusal
            return results
        except (OSError, smtplib.SMTPServerDisconnected, EOFError) as err:
            raise _Reconnect(_network_error(err, label="SMTP", server=self.smtp)) from err

    def _temporary(self, code: int, reply: bytes, what: str) -> ProviderError:
        text = _reply_text(reply)
        return ProviderUnavailable(f"The SMTP server temporarily refused {what} ({code} {text}).",
                                   provider=self.name, status=code, provider_code=str(code), provider_message=text)

    def _refused(self, code: int, reply: bytes, rcpt: str) -> ProviderError:
        text = _reply_text(reply)
        if 400 <= code < 500:
            return ProviderUnavailable(f"The SMTP server temporarily refused {rcpt} ({code} {text}).",
                                       provider=self.name, status=code, provider_code=str(code), provider_message=text)
        return RecipientRefused(f"The SMTP server refused the recipient {rcpt} ({code} {text}).",
                                provider=self.name, field="to", status=code, provider_code=str(code), provider_message=text)

    def _data_error(self, session: "_SmtpSession", err: smtplib.SMTPDataError) -> ProviderError:
        """The error for a refusal of DATA or of the content (``err``): the session is dropped on 421 (the
        server closes it, RFC 5321 §3.8), else reset (RSET) for the next message. Returns
        ProviderUnavailable for a 4xx (retried), InvalidRequest for a 5xx."""
        code, text = err.smtp_code, _reply_text(err.smtp_error)
        if code == 421:
            _smtp_sessions.discard(session)
        else:
            _smtp_sessions.reset(session)
        if 400 <= code < 500:
            return ProviderUnavailable(f"The SMTP server deferred the message ({code} {text}).",
                                       provider=self.name, status=code, provider_code=str(code), provider_message=text)
        return InvalidRequest(f"The SMTP server rejected the message ({code} {text}).",
                              provider=self.name, status=code, provider_code=str(code), provider_message=text)

    def _append_to_sent(self, raw: bytes) -> dict[str, Any]:
        """Append the sent bytes to the IMAP Sent folder over this worker's IMAP session (reused across
        messages, reconnected once when it went stale); failures are reported, not raised (the message
        is already sent and must not be sent again)."""
        folder = _quote_mailbox(self.sent_folder)
        error = ""
        for attempt in (1, 2):
            try:
                session = _imap_sessions.take(self.imap)
            except (ProviderError, ConfigurationError) as err:  # the message is sent: report, never raise
                logger.warning("IMAP append skipped: %s", err.message)
                return {"appended": False, "error": err.message}
            try:
                status, data = session.client.append(folder, r"(\Seen)", imaplib.Time2Internaldate(time.time()), raw)
            except (imaplib.IMAP4.error, OSError, EOFError) as err:
                _imap_sessions.discard(session)
                error = f"IMAP APPEND to {self.sent_folder} failed: {err}"
                if session.reused and attempt == 1:
                    continue
                return {"appended": False, "error": error}
            _imap_sessions.release(session)
            result = {"appended": status == "OK", "folder": self.sent_folder}
            if status != "OK":
                result["error"] = f"IMAP APPEND to {self.sent_folder} answered {status}: {_reply_text(data[0] if data else b'')}"
            return result
        return {"appended": False, "error": error}


_LEADING_DOT = re.compile(rb"(?m)^\.")
_END_OF_DATA = b".\r\n"  #: the end-of-data indicator, after content that ends with CRLF (RFC 5321 section 4.1.1.4)
#: A dot-stuffed content up to this size is written together with the end-of-data indicator, after the
#: hand-over marker: one write and one wake-up of the server instead of two. It fits in a new TCP socket's send
#: buffer (Linux ``tcp_wmem`` starts at 16 KiB), so the write hardly waits on the network; a larger one is
#: written before the marker (see ``deliver``).
_ONE_WRITE_BYTES = 16 * 1024


def _dot_stuffed(data: bytes) -> bytes:
    """``data`` as the DATA section carries it, without the end-of-data indicator (RFC 5321 section 4.5.2, as
    smtplib.SMTP.data does): a leading dot doubled on every line, ending with CRLF, so that
    :data:`_END_OF_DATA` sent after it is the indicator."""
    stuffed = _LEADING_DOT.sub(b"..", data)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed


@functools.lru_cache(maxsize=1024)
def _quoted(address: str) -> str:
    """``address`` as MAIL FROM and RCPT TO carry it (``smtplib.quoteaddr``, which parses it each time: the
    same few addresses recur message after message)."""
    return smtplib.quoteaddr(address)


class _Reconnect(Exception):
    """Internal: the SMTP session is unusable before hand-over; ``error`` is raised if reconnecting does not help."""

    def __init__(self, error: ProviderError, *, always_retry: bool = False):
        super().__init__(error.message)
        self.error = error
        self.always_retry = always_retry  # a 421 on a fresh session is worth one more connection too


# --- per-worker session reuse -----------------------------------------------------------------

@dataclass
class _SmtpSession:
    """One logged-in connection: ``client``; ``reused`` is True when it already carried a message."""

    key: tuple
    client: Any
    opened_at: float
    last_used: float
    messages: int = 0
    reused: bool = False
    needs_rset: bool = False  #: a transaction was started and not completed (aborted before or at DATA)


class _SessionPool:
    """Logged-in SMTP or IMAP sessions of this thread, one per server login, reused across messages.

    A session is closed when idle longer than settings.OUTREACH_SMTP_IDLE_SECONDS or after
    settings.OUTREACH_SMTP_MAX_MESSAGES_PER_CONNECTION messages. Thread-local: a worker process's
    threads never share a connection.
    """

    def __init__(self, opener, closer, *, kind: str):
        self._opener = opener
        self._closer = closer
        self._kind = kind
        self._local = threading.local()

    def _sessions(self) -> dict:
        sessions = getattr(self._local, "sessions", None)
        if sessions is None:
            sessions = self._local.sessions = {}
        return sessions

    @staticmethod
    def _key(server: ServerSettings) -> tuple:
        digest = hashlib.sha256(server.password.encode("utf-8")).hexdigest()
        return (server.host, server.port, server.login, server.security, digest)

    def take(self, server: ServerSettings) -> _SmtpSession:
        """The thread's session for ``server`` (removed from the pool until release/reset/discard), or a new
        one (open_smtp / open_imap errors propagate)."""
        key = self._key(server)
        now = time.monotonic()
        session = self._sessions().pop(key, None)
        if session is not None:
            idle = now - session.last_used
            if idle > settings.OUTREACH_SMTP_IDLE_SECONDS or session.messages >= settings.OUTREACH_SMTP_MAX_MESSAGES_PER_CONNECTION:
                self._close(session)
                session = None
        if session is None:
            session = _SmtpSession(key=key, client=self._opener(server), opened_at=now, last_used=now)
        else:
            try:  # the host rules are checked at every send, not only when the connection was opened:
                # against the address the socket is pinned to (no DNS lookup per message)
                resolved = getattr(session.client, "resolved", None)
                if resolved is None:
                    check_mail_host(server.host, server.port, kind=self._kind)
                else:
                    check_connected_host(resolved, kind=self._kind)
            except BaseException:
                self._close(session)
                raise
            session.reused = True
        return session

    def release(self, session: _SmtpSession) -> None:
        """Return a session that carried one more message. Its transaction ended with the server's reply to
        DATA, which clears the server's state (RFC 5321 section 4.1.1.4): the next MAIL needs no RSET."""
        session.messages += 1
        self.reset(session, rset=False)

    def reset(self, session: _SmtpSession, *, rset: bool = True) -> None:
        """Return a healthy session that carried nothing; with ``rset`` its next message starts with RSET
        (a transaction was left unfinished)."""
        session.last_used = time.monotonic()
        session.reused = True
        session.needs_rset = rset
        old = self._sessions().pop(session.key, None)
        if old is not None and old is not session:
            self._close(old)
        self._sessions()[session.key] = session

    def discard(self, session: _SmtpSession, *, quit: bool = True) -> None:
        """Close a broken session; ``quit=False`` closes the socket without a word (inside DATA, where the
        server would read any command as content)."""
        if quit:
            self._close(session)
        else:
            try:
                session.client.close()
            except Exception:  # closing a dead connection must not mask anything
                pass

    def close_all(self) -> None:
        """Close every session of this thread (worker shutdown, tests)."""
        sessions = self._sessions()
        while sessions:
            self._close(sessions.popitem()[1])

    def _close(self, session: _SmtpSession) -> None:
        try:
            self._closer(session.client)
        except Exception:  # closing a dead connection must not mask anything
            pass


def _smtp_close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _imap_close(client: imaplib.IMAP4) -> None:
    try:
        client.logout()
    except (OSError, imaplib.IMAP4.error, EOFError):
        pass


_smtp_sessions = _SessionPool(lambda server: open_smtp(server), _smtp_close, kind="smtp")
_imap_sessions = _SessionPool(lambda server: open_imap(server), _imap_close, kind="imap")


def close_sessions() -> None:
    """Close this thread's pooled SMTP and IMAP sessions."""
    _smtp_sessions.close_all()
    _imap_sessions.close_all()


def _quote_mailbox(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
