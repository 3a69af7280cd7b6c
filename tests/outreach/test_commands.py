"""The scripting commands: JSON on stdout, clear errors with a non-zero exit, secrets never from argv."""
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from outreach.models import Contact, Mailbox, SentMessage, Team
from outreach.services.sending import sent_message_send
from tests.factories import make_team_with_owner

pytestmark = pytest.mark.django_db


def run(*args, stdin: str | None = None, monkeypatch=None, **env):
    if monkeypatch is not None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command(*args, stdout=out)
    return json.loads(out.getvalue())


def test_create_team_with_password_from_env(monkeypatch):
    result = run("create_team", "--name", "Acme", "--username", "ann", monkeypatch=monkeypatch,
                 OUTREACH_USER_PASSWORD="correct-horse-battery")
    assert result["team"]["name"] == "Acme"
    team = Team.objects.get(name="Acme")
    assert team.memberships.get().user.check_password("correct-horse-battery")


def test_create_team_without_password_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OUTREACH_USER_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="OUTREACH_USER_PASSWORD"):
        call_command("create_team", "--name", "Acme", "--username", "ann", stdout=io.StringIO())
    assert not Team.objects.exists()


def test_add_mailbox_reads_passwords_from_stdin_and_never_prints_them(mail_settings, monkeypatch):
    team, _ = make_team_with_owner("Acme")
    smtp, imap = mail_settings.smtp, mail_settings.imap
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{smtp.password}\n{imap.password}\n"))
    call_command("add_mailbox", "--team", "acme", "--sender-name", "Ann", "--sender-email", "Ann@Example.com",
                 "--smtp-host", "localhost", "--smtp-port", str(smtp.port), "--smtp-login", smtp.username,
                 "--smtp-security", "starttls", "--imap-host", "localhost", "--imap-port", str(imap.port),
                 "--imap-login", imap.username, "--imap-security", "starttls", "--password-stdin", "--test", stdout=out)
    assert smtp.password not in out.getvalue() and imap.password not in out.getvalue()
    result = json.loads(out.getvalue())
    assert result["connection_test"][0].startswith("SMTP: logged in")
    mailbox = Mailbox.objects.get(pk=result["id"])
    assert mailbox.sender_email == "ann@example.com"
    assert mailbox.provider_settings["smtp_password"] == smtp.password and mailbox.provider_settings["imap_password"] == imap.password
    assert smtp.password not in mailbox.provider_config["smtp_password"]


def test_add_mailbox_refuses_private_host(settings, monkeypatch):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = False
    make_team_with_owner("Acme")
    monkeypatch.setenv("OUTREACH_SMTP_PASSWORD", "pw")
    with pytest.raises(CommandError, match="smtp_host: SMTP host 0x7f.1 resolves to 127.0.0.1, which is a loopback"):
        call_command("add_mailbox", "--team", "Acme", "--sender-email", "a@example.com", "--smtp-host", "0x7f.1",
                     "--smtp-port", "587", "--smtp-login", "a", stdout=io.StringIO())
    assert not Mailbox.objects.exists()


def test_add_mailbox_with_failing_connection_test_saves_nothing(mail_settings, monkeypatch):
    make_team_with_owner("Acme")
    monkeypatch.setenv("OUTREACH_SMTP_PASSWORD", "wrong")
    with pytest.raises(CommandError, match="Connection test failed: SMTP authentication refused"):
        call_command("add_mailbox", "--team", "Acme", "--sender-email", "a@example.com", "--smtp-host", "localhost",
                     "--smtp-port", str(mail_settings.smtp.port), "--smtp-login", mail_settings.smtp.username,
                     "--test", stdout=io.StringIO())
    assert not Mailbox.objects.exists()


def test_send_email_queues_then_timeline_prints_it(mail_settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    team, _ = make_team_with_owner("Acme")
    from tests.factories import make_smtp_mailbox
    mailbox = make_smtp_mailbox(team, mail_settings, imap=False)
    attachment = tmp_path / "deck.pdf"
    attachment.write_bytes(b"%PDF-1.4 test")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = run("send_email", "--mailbox", str(mailbox.pk), "--to", "New.Person@Example.org", "--subject", "Hi",
                     "--text", "Hello there", "--cc", "a@example.org, b@example.org", "--attach", str(attachment))
    assert len(callbacks) == 1
    assert result["status"] == "queued" and result["to"] == ["new.person@example.org"]
    assert result["cc"] == ["a@example.org", "b@example.org"] and result["attachments"] == ["deck.pdf"]
    assert Contact.objects.get(team=team, email="new.person@example.org").source == "send_email command"

    sent_message_send(sent_message_id=result["id"])
    timeline = run("timeline", "--team", "Acme", "NEW.PERSON@example.org")
    assert [e["kind"] for e in timeline["events"]][:3] == ["message_sent", "message_sending", "message_queued"]


def test_send_email_wait_without_worker_exits_nonzero(mail_settings):
    team, _ = make_team_with_owner("Acme")
    from tests.factories import make_smtp_mailbox
    mailbox = make_smtp_mailbox(team, mail_settings, imap=False)
    with pytest.raises(CommandError, match="still queued after 0.3 s: is a Celery worker running"):
        call_command("send_email", "--mailbox", str(mailbox.pk), "--to", "x@example.org", "--subject", "Hi",
                     "--text", "x", "--wait", "0.3", stdout=io.StringIO())
    assert SentMessage.objects.get().status == "queued"


def test_send_email_refuses_header_injection_and_unknown_mailbox(mail_settings):
    team, _ = make_team_with_owner("Acme")
    from tests.factories import make_smtp_mailbox
    mailbox = make_smtp_mailbox(team, mail_settings, imap=False)
    with pytest.raises(CommandError, match="subject: Line breaks are not allowed"):
        call_command("send_email", "--mailbox", str(mailbox.pk), "--to", "x@example.org",
                     "--subject", "Hi\nBcc: evil@example.org", "--text", "x", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No mailbox with id 999"):
        call_command("send_email", "--mailbox", "999", "--to", "x@example.org", "--subject", "Hi", "--text", "x",
                     stdout=io.StringIO())
    assert not SentMessage.objects.exists()


def test_timeline_unknown_team_or_contact():
    make_team_with_owner("Acme")
    with pytest.raises(CommandError, match="No team named 'Nope'"):
        call_command("timeline", "--team", "Nope", "a@example.org", stdout=io.StringIO())
    with pytest.raises(CommandError, match="has no contact a@example.org"):
        call_command("timeline", "--team", "Acme", "a@example.org", stdout=io.StringIO())


def test_send_email_header_is_repeatable_and_refused_where_the_provider_cannot_carry_it(mail_settings):
    team, _ = make_team_with_owner("Acme")
    from tests.factories import make_smtp_mailbox
    mailbox = make_smtp_mailbox(team, mail_settings, imap=False)
    result = run("send_email", "--mailbox", str(mailbox.pk), "--to", "x@example.org", "--subject", "Hi", "--text", "x",
                 "--header", "X-Campaign: spring", "--header", "X-CRM-Id:42")
    assert SentMessage.objects.get(pk=result["id"]).headers == [["X-Campaign", "spring"], ["X-CRM-Id", "42"]]
    with pytest.raises(CommandError, match="not a header: write it as X-Name: value"):
        call_command("send_email", "--mailbox", str(mailbox.pk), "--to", "x@example.org", "--subject", "Hi",
                     "--text", "x", "--header", "X-Campaign spring", stdout=io.StringIO())
    with pytest.raises(CommandError, match="not a custom header name"):
        call_command("send_email", "--mailbox", str(mailbox.pk), "--to", "x@example.org", "--subject", "Hi",
                     "--text", "x", "--header", "Bcc: evil@example.org", stdout=io.StringIO())
    from tests.factories import make_mailbox
    lemlist = make_mailbox(team, provider="lemlist")
    with pytest.raises(CommandError, match="lemlist mailboxes cannot send custom headers"):
        call_command("send_email", "--mailbox", str(lemlist.pk), "--to", "x@example.org", "--subject", "Hi",
                     "--text", "x", "--header", "X-Campaign: spring", stdout=io.StringIO())
    assert SentMessage.objects.count() == 1
