"""End to end with a real Celery worker process, Redis and PostgreSQL, the aiosmtpd SMTP server
and dovecot: queue through the service, the worker sends, the timeline shows the outcome."""
import email
import email.policy
import time

import pytest

from outreach.models import SentMessage, TimelineEvent
from outreach.services.sending import AttachmentData, sent_message_create
from tests.factories import make_contact, make_smtp_mailbox, make_team_with_owner

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def wait_settled(message: SentMessage, timeout: float = 30.0) -> SentMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message.refresh_from_db()
        if message.is_settled:
            return message
        time.sleep(0.1)
    raise AssertionError(f"message {message.pk} still {message.status} after {timeout} s")


def test_worker_sends_with_attachment_copies_to_sent_and_timeline_shows_it(celery_worker_process, mail_settings):
    team, user = make_team_with_owner()
    mailbox = make_smtp_mailbox(team, mail_settings)
    contact = make_contact(team, email="carla@example.org", first_name="Carla", last_name="Diaz")

    message = sent_message_create(
        team=team, actor=user, mailbox=mailbox, contact=contact, subject="Proposal for Q3",
        html="<p>Hi Carla,</p><p>the <b>proposal</b> is attached.</p>", cc=["boss@example.org"],
        reply_to="replies@example.com", attachments=[AttachmentData("chart.png", "image/png", PNG)])
    assert message.status == "queued"

    message = wait_settled(message)
    assert message.status == "sent", message.error_message
    assert message.attempts == 1

    [received] = mail_settings.smtp.wait_for_messages(1)
    time.sleep(0.5)
    assert len(mail_settings.smtp.messages) == 1, "exactly one message reaches the SMTP server"
    assert sorted(received.rcpt_tos) == ["boss@example.org", "carla@example.org"]
    parsed = received.message
    assert parsed["Message-ID"] == message.message_id
    assert parsed["Subject"] == "Proposal for Q3"
    assert parsed["From"].addresses[0].display_name == "Ann Lée"
    assert parsed["To"].addresses[0].display_name == "Carla Diaz"
    assert parsed["Cc"].addresses[0].addr_spec == "boss@example.org"
    assert parsed["Reply-To"].addresses[0].addr_spec == "replies@example.com"
    body, attachment = parsed.get_payload()
    assert [p.get_content_type() for p in body.get_payload()] == ["text/plain", "text/html"]
    assert "proposal is attached" in body.get_payload()[0].get_content()
    assert attachment.get_filename() == "chart.png" and attachment.get_content() == PNG

    [copy] = mail_settings.imap.fetch_all("Sent")
    assert email.message_from_bytes(copy, policy=email.policy.default)["Message-ID"] == message.message_id

    kinds = list(TimelineEvent.objects.filter(contact=contact).order_by("-created_at", "-id").values_list("kind", flat=True))
    assert kinds[:3] == ["message_sent", "message_sending", "message_queued"]


def test_worker_records_wrong_password_as_failed(celery_worker_process, mail_settings):
    team, user = make_team_with_owner()
    mailbox = make_smtp_mailbox(team, mail_settings, password="not-the-password")
    contact = make_contact(team, "bob@example.org", first_name="Bob", last_name="Stone")
    message = sent_message_create(team=team, actor=user, mailbox=mailbox, contact=contact, subject="x", html="<p>x</p>")
    message = wait_settled(message)
    assert message.status == "failed" and message.error_code == "authentication"
    event = TimelineEvent.objects.get(sent_message=message, kind="message_failed")
    assert "SMTP authentication refused" in event.summary
    assert mail_settings.smtp.messages == []


def test_duplicate_task_delivery_sends_once(celery_worker_process, mail_settings):
    from outreach.tasks import send_message

    team, user = make_team_with_owner()
    mailbox = make_smtp_mailbox(team, mail_settings, imap=False)
    contact = make_contact(team, "bob@example.org", first_name="Bob", last_name="Stone")
    message = sent_message_create(team=team, actor=user, mailbox=mailbox, contact=contact, subject="Once", html="<p>1</p>")
    send_message.delay(message.pk)  # the same task delivered a second time
    send_message.delay(message.pk)
    wait_settled(message)
    time.sleep(1.5)
    assert message.status == "sent"
    assert len(mail_settings.smtp.messages) == 1
