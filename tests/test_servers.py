"""The test servers themselves: real TLS, real authentication, real delivery, a real Celery worker."""
import imaplib
import smtplib
import ssl
from email.message import EmailMessage

import pytest


def _message(to="lead@example.test", subject="Hello"):
    msg = EmailMessage()
    msg["From"] = "sender@example.test"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Hi there.\n.\nA line with a lone dot above.\n")
    return msg


def test_smtp_starttls_login_and_delivery(smtp_server):
    smtp_server.clear()
    ctx = ssl.create_default_context(cafile=smtp_server.ca_file)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.starttls(context=ctx)
        client.login(smtp_server.username, smtp_server.password)
        refused = client.send_message(_message(), to_addrs=["lead@example.test", "cc@example.test"])
    assert refused == {}
    [received] = smtp_server.wait_for_messages(1)
    assert received.mail_from == "sender@example.test"
    assert received.rcpt_tos == ("lead@example.test", "cc@example.test")
    assert received.login == smtp_server.username and received.tls
    assert received.message["Subject"] == "Hello"
    assert b"\r\n.\r\nA line with a lone dot" in received.data  # dot-unstuffed raw bytes


def test_smtp_certificate_is_for_localhost_and_loopback_ip(smtp_server):
    for server_hostname in ("localhost", "127.0.0.1"):
        ctx = ssl.create_default_context(cafile=smtp_server.ca_file)
        # smtplib verifies the certificate against the name it connected to.
        with smtplib.SMTP(server_hostname, smtp_server.port, timeout=10) as client:
            client.starttls(context=ctx)
            assert client.sock.getpeercert()["subject"] == ((("commonName", "localhost"),),)


def test_smtp_untrusted_certificate_is_rejected(smtp_server):
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context())  # system CAs only


def test_smtp_requires_starttls_before_auth_and_mail(smtp_server):
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        code, _ = client.mail("sender@example.test")
        assert code == 530


def test_smtp_wrong_password_is_535(smtp_server):
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.starttls(context=ssl.create_default_context(cafile=smtp_server.ca_file))
        with pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
            client.login(smtp_server.username, "wrong")
    assert excinfo.value.smtp_code == 535


def test_smtp_refused_recipient(smtp_server):
    smtp_server.clear()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.starttls(context=ssl.create_default_context(cafile=smtp_server.ca_file))
        client.login(smtp_server.username, smtp_server.password)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as excinfo:
            client.send_message(_message(to="refuse-me@example.test"))
        # One of two refused: the message goes to the other, the refusal is reported.
        refused = client.send_message(_message(), to_addrs=["refused.x@example.test", "ok@example.test"])
    assert excinfo.value.recipients["refuse-me@example.test"][0] == 550
    assert refused == {"refused.x@example.test": (550, b"5.1.1 User unknown")}
    assert [m.rcpt_tos for m in smtp_server.messages] == [("ok@example.test",)]


def test_smtp_temporary_failure_on_data(smtp_server):
    smtp_server.clear()
    smtp_server.fail_next_data("451 4.3.0 Try again later")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.starttls(context=ssl.create_default_context(cafile=smtp_server.ca_file))
        client.login(smtp_server.username, smtp_server.password)
        with pytest.raises(smtplib.SMTPDataError) as excinfo:
            client.send_message(_message())
        client.send_message(_message(subject="second try"))
    assert excinfo.value.smtp_code == 451
    assert [m.message["Subject"] for m in smtp_server.messages] == ["second try"]


def test_smtps_implicit_tls(smtp_ssl_server):
    smtp_ssl_server.clear()
    ctx = ssl.create_default_context(cafile=smtp_ssl_server.ca_file)
    with smtplib.SMTP_SSL("localhost", smtp_ssl_server.port, context=ctx, timeout=10) as client:
        client.login(smtp_ssl_server.username, smtp_ssl_server.password)
        client.send_message(_message())
    [received] = smtp_ssl_server.wait_for_messages(1)
    assert received.tls and received.login == smtp_ssl_server.username


def test_imap_login_append_and_fetch_sent(imap_server):
    imap_server.clear()
    raw = _message(subject="Stored copy").as_bytes().replace(b"\n", b"\r\n")
    client = imaplib.IMAP4(imap_server.host, imap_server.port, timeout=10)
    try:
        client.login(imap_server.username, imap_server.password)
        typ, boxes = client.list('""', "*")
        assert typ == "OK"
        assert any(b"\\Sent" in line and line.endswith(b"Sent") for line in boxes)
        typ, _ = client.append("Sent", r"(\Seen)", None, raw)
        assert typ == "OK"
    finally:
        client.logout()
    assert imap_server.fetch_all("Sent") == [raw]
    assert imap_server.fetch_all("INBOX") == []


def test_imap_starttls_and_implicit_tls_verify_with_ca(imap_server):
    ctx = ssl.create_default_context(cafile=imap_server.ca_file)
    client = imaplib.IMAP4("localhost", imap_server.port, timeout=10)
    try:
        client.starttls(ssl_context=ctx)
        client.login(imap_server.username, imap_server.password)
    finally:
        client.logout()
    client = imap_server.connect(tls=True)
    client.logout()


def test_imap_wrong_password_fails(imap_server):
    client = imaplib.IMAP4(imap_server.host, imap_server.port, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED|Authentication failed"):
            client.login(imap_server.username, "wrong")
    finally:
        client.shutdown()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_celery_worker_answers_ping(celery_worker_process):
    from django.db import connection

    from outreach import celery_app

    # The worker uses pytest-django's test database, not the development one.
    assert celery_worker_process.env["DATABASE_URL"].rsplit("/", 1)[1] == connection.settings_dict["NAME"]
    assert connection.settings_dict["NAME"].startswith("test_")
    # ... and the same broker (per xdist worker) as this process.
    assert celery_app.conf.broker_url == celery_worker_process.env["CELERY_BROKER_URL"]

    replies = celery_worker_process.wait_for(
        lambda: celery_app.control.ping(timeout=5, limit=1), timeout=20, message="no reply to a Celery ping"
    )
    assert any(name.startswith("outreach-test-") for reply in replies for name in reply)


def test_mail_settings_point_at_the_test_servers(mail_settings, settings):
    assert mail_settings.smtp.port in settings.OUTREACH_SMTP_PORTS
    assert mail_settings.smtp_ssl.port in settings.OUTREACH_SMTP_PORTS
    assert {mail_settings.imap.port, mail_settings.imap.ssl_port} <= set(settings.OUTREACH_IMAP_PORTS)
    assert settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS is True
    assert settings.OUTREACH_MAIL_CA_FILE == mail_settings.smtp.ca_file
    assert mail_settings.smtp.messages == [] and mail_settings.imap.fetch_all("Sent") == []


def test_missing_server_is_a_skip_unless_required(monkeypatch):
    from tests.servers import unavailable

    monkeypatch.setenv("OUTREACH_TEST_SERVERS", "")
    with pytest.raises(pytest.skip.Exception):
        unavailable("no such server")
    monkeypatch.setenv("OUTREACH_TEST_SERVERS", "required")
    with pytest.raises(pytest.fail.Exception):
        unavailable("no such server")
