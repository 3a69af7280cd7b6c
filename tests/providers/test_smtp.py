"""The SMTP provider: MIME output parsed back header by header, and sending to real servers."""
import email
import email.policy
import smtplib

import pytest

from providers.base import Address, OutgoingAttachment, OutgoingMessage
from providers.errors import (AuthenticationFailed,
                              ProviderUnavailable, RecipientRefused, UnsupportedFeature)
from providers.netguard import HostNotAllowed
from tests.servers import free_port
from providers.smtp import ServerSettings, SmtpProvider, build_mime, test_connection as smtp_test_connection

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8


def outgoing(**overrides) -> OutgoingMessage:
    values = dict(
        sender=Address("ann@example.test", "Ann Lée"),
        to=(Address("bob@example.org", "Bob Stone"),),
        cc=(Address("carol@example.org"),),
        bcc=(Address("dave@example.org"),),
        reply_to=Address("replies@example.test"),
        subject="Quarterly review — ideas",
        html="<p>Hello <b>Bob</b></p>",
        text="Hello Bob\n",
        attachments=(OutgoingAttachment("deck.pdf", "application/pdf", PDF),),
        message_id="<abc.123@example.test>",
        idempotency_key="0b7d3c0e-1111-2222-3333-444455556666",
    )
    values.update(overrides)
    return OutgoingMessage(**values)


def parse(mime) -> email.message.EmailMessage:
    return email.message_from_bytes(mime.as_bytes(), policy=email.policy.default)


def test_mime_headers_one_by_one():
    msg = parse(build_mime(outgoing()))
    assert msg["From"].addresses[0].display_name == "Ann Lée"
    assert msg["From"].addresses[0].addr_spec == "ann@example.test"
    assert [a.addr_spec for a in msg["To"].addresses] == ["bob@example.org"]
    assert msg["To"].addresses[0].display_name == "Bob Stone"
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["carol@example.org"]
    assert msg["Bcc"] is None, "Bcc must never be written into the headers"
    assert msg["Reply-To"].addresses[0].addr_spec == "replies@example.test"
    assert str(msg["Subject"]) == "Quarterly review — ideas"
    assert msg["Message-ID"] == "<abc.123@example.test>"
    assert msg["Date"].datetime is not None
    assert msg["MIME-Version"] == "1.0"


def test_mime_structure_alternative_inside_mixed_with_attachment():
    msg = parse(build_mime(outgoing()))
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, html = alternative.get_payload()
    assert plain.get_content_type() == "text/plain" and plain.get_content().replace("\r\n", "\n") == "Hello Bob\n"
    assert html.get_content_type() == "text/html" and "<b>Bob</b>" in html.get_content()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "deck.pdf"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_content() == PDF


def test_mime_without_attachments_is_plain_alternative():
    msg = parse(build_mime(outgoing(attachments=(), cc=(), reply_to=None)))
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Cc"] is None and msg["Reply-To"] is None


def test_header_with_line_break_is_refused_not_sent():
    with pytest.raises(ValueError):
        build_mime(outgoing(subject="Hi\r\nBcc: victim@example.org"))


def server(servers, *, security="starttls", password=None, port=None):
    smtp = servers.smtp_ssl if security == "ssl" else servers.smtp
    return ServerSettings("localhost", port or smtp.port, smtp.username,
                          smtp.password if password is None else password, security)


def imap_settings(servers, security="starttls"):
    imap = servers.imap
    return ServerSettings("localhost", imap.ssl_port if security == "ssl" else imap.port, imap.username,
                          imap.password, security)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_send_over_tls_with_auth_and_copy_to_imap_sent(mail_settings, security):
    provider = SmtpProvider(smtp=server(mail_settings, security=security),
                            imap=imap_settings(mail_settings, security), sent_folder="Sent")
    result = provider.send(outgoing())
    smtp = mail_settings.smtp_ssl if security == "ssl" else mail_settings.smtp
    [received] = smtp.wait_for_messages(1)
    assert received.tls and received.login == smtp.username
    assert received.mail_from == "ann@example.test"
    assert sorted(received.rcpt_tos) == ["bob@example.org", "carol@example.org", "dave@example.org"]
    assert received.message["Message-ID"] == "<abc.123@example.test>"
    assert result.provider_message_id == "<abc.123@example.test>"
    assert result.raw["imap"] == {"appended": True, "folder": "Sent"}
    [copy] = mail_settings.imap.fetch_all("Sent")
    assert email.message_from_bytes(copy, policy=email.policy.default)["Message-ID"] == "<abc.123@example.test>"


def test_wrong_password_is_authentication_failed(mail_settings):
    provider = SmtpProvider(smtp=server(mail_settings, password="wrong"))
    with pytest.raises(AuthenticationFailed, match=r"SMTP authentication refused .*535") as exc:
        provider.send(outgoing())
    assert mail_settings.smtp.messages == []
    # the server's reply code is the provider's code; the smtplib error is kept as the cause
    assert exc.value.provider_code == "535" and isinstance(exc.value.__cause__, smtplib.SMTPAuthenticationError)


def test_server_down_is_unavailable_connection_refused(mail_settings):
    unused_tcp_port = free_port()
    mail_settings.settings.OUTREACH_SMTP_PORTS = [*mail_settings.settings.OUTREACH_SMTP_PORTS, unused_tcp_port]
    provider = SmtpProvider(smtp=server(mail_settings, port=unused_tcp_port))
    with pytest.raises(ProviderUnavailable, match="refused the connection") as exc:
        provider.send(outgoing())
    assert exc.value.transient
    assert (exc.value.provider_code, exc.value.reason) == ("", "connection_refused")  # our reason, no vendor code


def test_recipient_refused_is_permanent_and_names_the_address(mail_settings):
    provider = SmtpProvider(smtp=server(mail_settings))
    with pytest.raises(RecipientRefused, match=r"refused the recipient refuse-me@example.org \(550") as exc:
        provider.send(outgoing(to=(Address("refuse-me@example.org"),), cc=(), bcc=()))
    assert not exc.value.transient
    assert mail_settings.smtp.messages == []


def test_temporary_data_failure_is_transient(mail_settings):
    mail_settings.smtp.fail_next_data("451 4.3.0 Try again later")
    provider = SmtpProvider(smtp=server(mail_settings))
    with pytest.raises(ProviderUnavailable, match="deferred the message") as exc:
        provider.send(outgoing())
    assert exc.value.transient


def test_tls_to_a_plain_port_reports_a_handshake_problem(mail_settings):
    provider = SmtpProvider(smtp=server(mail_settings, security="ssl", port=mail_settings.smtp.port))
    with pytest.raises(ProviderUnavailable, match="TLS|timed out|closed"):
        provider.send(outgoing())


def test_certificate_for_another_name_is_refused(mail_settings):
    """The socket goes to the checked IP; TLS still verifies the *host name* the user typed."""
    bad = ServerSettings("127.0.0.2", mail_settings.smtp.port, "x", "y", "starttls")
    with pytest.raises(ProviderUnavailable, match="certificate|refused"):
        SmtpProvider(smtp=bad).send(outgoing())


def test_check_runs_again_at_send_time(mail_settings):
    mail_settings.settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = False
    with pytest.raises(HostNotAllowed, match="loopback"):
        SmtpProvider(smtp=server(mail_settings)).send(outgoing())


def test_connection_test_logs_in_to_both(mail_settings):
    lines = smtp_test_connection(server(mail_settings), imap_settings(mail_settings))
    assert lines[0].startswith("SMTP: logged in") and lines[1].startswith("IMAP: logged in")


def test_connection_test_reports_imap_auth_failure(mail_settings):
    bad_imap = ServerSettings("localhost", mail_settings.imap.port, mail_settings.imap.username, "nope", "starttls")
    with pytest.raises(AuthenticationFailed, match="IMAP authentication refused") as exc:
        smtp_test_connection(server(mail_settings), bad_imap)
    assert exc.value.reason == "imap_auth" and exc.value.__cause__ is not None


def test_password_not_in_repr():
    assert "hunter2" not in repr(ServerSettings("h", 587, "l", "hunter2", "starttls"))


def test_too_large_attachment_is_unsupported():
    big = OutgoingAttachment("big.bin", "application/octet-stream", b"x" * (20 * 1024 * 1024 + 1))
    with pytest.raises(UnsupportedFeature, match="at most 20 MB"):
        SmtpProvider(smtp=ServerSettings("h", 587, "", "", "none")).send(outgoing(attachments=(big,)))


def test_silent_server_times_out_with_a_clear_message(mail_settings):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP handshake, never sends a greeting
    port = listener.getsockname()[1]
    try:
        mail_settings.settings.OUTREACH_SMTP_PORTS = [*mail_settings.settings.OUTREACH_SMTP_PORTS, port]
        mail_settings.settings.OUTREACH_MAIL_TIMEOUT = 0.5
        with pytest.raises(ProviderUnavailable, match=rf"127.0.0.1:{port} timed out after 0.5 s") as exc:
            smtp_test_connection(ServerSettings("127.0.0.1", port, "", "", "none"), None)
        assert exc.value.code == "timeout"
    finally:
        listener.close()


def test_unknown_host_is_reported_as_host_not_found(mail_settings):
    with pytest.raises(HostNotAllowed, match="Host not found: smtp.nowhere.invalid"):
        smtp_test_connection(ServerSettings("smtp.nowhere.invalid", mail_settings.smtp.port, "", "", "starttls"), None)


def test_idle_runs_while_mail_from_the_first_rcpt_to_and_the_end_of_data_are_answered(mail_settings):
    """``deliver``'s ``idle()`` (the engine builds the next message there) runs three times per message, each
    while an answer is on its way: after MAIL FROM, after the first RCPT TO (before its answer: the three
    slow RCPT answers all come after it) and after the end-of-data indicator."""
    import time

    from providers.smtp import close_sessions

    mail_settings.smtp.rcpt_delay = 0.3
    provider = SmtpProvider(smtp=server(mail_settings))
    message = outgoing(attachments=())
    calls: list[tuple[float, int]] = []
    handed: list[float] = []
    try:
        provider.deliver(provider.prepare(message), message, on_handover=lambda: handed.append(time.monotonic()),
                         idle=lambda: calls.append((time.monotonic(), len(mail_settings.smtp.messages))))
    finally:
        close_sessions()
    assert len(calls) == 3 and len(handed) == 1
    (_, before_mail), (after_rcpt, before_rcpt), (after_end, _) = calls
    assert before_mail == before_rcpt == 0
    assert after_end - after_rcpt >= 3 * 0.3 - 0.05, "the second idle() must come before the first RCPT answer"
    assert after_rcpt < handed[0] < after_end
    assert len(mail_settings.smtp.wait_for_messages(1)) == 1


@pytest.mark.parametrize("lines,content_first", [(20, False), (3000, True)])
def test_a_small_content_goes_with_the_end_of_data_indicator_after_the_marker_a_large_one_before_it(
        mail_settings, caplog, lines, content_first):
    """The DATA phase of ``deliver``: after the 354, a small content reaches the server only after ``on_handover()``
    (the caller's marker), in one write together with the end-of-data indicator (one wake-up of the server, not
    two); a content above ``_ONE_WRITE_BYTES`` is written before ``on_handover()``, so a connection lost during a
    long transfer is still "nothing handed over". Either way the server has nothing to deliver before the
    indicator, and delivers once after it."""
    import logging
    import time

    from providers import smtp as smtp_module
    from providers.smtp import close_sessions

    caplog.set_level(logging.DEBUG, logger="mail.log")  # aiosmtpd logs each DATA line it reads
    provider = SmtpProvider(smtp=server(mail_settings))
    message = outgoing(attachments=(), html="", text="A line of the message body, long enough.\n" * lines)
    prepared = provider.prepare(message)
    assert (len(prepared) > smtp_module._ONE_WRITE_BYTES) is content_first
    seen_at_handover: list[bool] = []

    def content_lines() -> int:
        return sum(1 for r in caplog.records if "DATA readline" in r.getMessage() and b"A line of the message" in
                   (r.args[-1] if r.args and isinstance(r.args[-1], bytes) else r.getMessage().encode()))

    def on_handover():
        deadline = time.monotonic() + (5 if content_first else 0.3)  # a written content is read at once
        while time.monotonic() < deadline and not content_lines():
            time.sleep(0.02)
        seen_at_handover.append(bool(content_lines()))
        assert mail_settings.smtp.message_ids() == []  # nothing to deliver before the indicator

    try:
        provider.deliver(prepared, message, on_handover=on_handover)
    finally:
        close_sessions()
    assert seen_at_handover == [content_first]
    assert len(mail_settings.smtp.wait_for_messages(1)) == 1 and mail_settings.smtp.message_ids() == [message.message_id]
    assert content_lines() >= lines
