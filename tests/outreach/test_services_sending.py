"""The send pipeline (outreach.services.sending) against the real test SMTP/IMAP servers, no Celery."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from outreach.models import SentMessage, Suppression, TimelineEvent
from outreach.services.outbox import sent_messages_dispatch, sent_messages_send_claimed
from outreach.services.sending import AttachmentData, retry_delay, sent_message_create, sent_message_send
from tests.factories import make_contact, make_smtp_mailbox, make_team_with_owner, set_fields
from tests.servers import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(mail_settings):
    team, user = make_team_with_owner()
    mailbox = make_smtp_mailbox(team, mail_settings)
    contact = make_contact(team, "bob@example.org", first_name="Bob", last_name="Stone")
    return team, user, mailbox, contact, mail_settings


def queue(world, django_capture_on_commit_callbacks, **kwargs):
    team, user, mailbox, contact, _ = world
    values = dict(subject="Hello", html="<p>Hi <b>Bob</b></p><script>alert(1)</script>")
    values.update(kwargs)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = sent_message_create(team=team, actor=user, mailbox=mailbox, contact=contact, **values)
    return message, callbacks


def kinds(message):
    return list(TimelineEvent.objects.filter(sent_message=message).order_by("created_at", "id").values_list("kind", flat=True))


def test_create_queues_once_sanitises_and_derives_text(world, django_capture_on_commit_callbacks):
    message, callbacks = queue(world, django_capture_on_commit_callbacks)
    assert len(callbacks) == 1
    assert message.status == "queued" and message.attempts == 0
    assert "<script>" not in message.html_body and "<b>Bob</b>" in message.html_body
    assert message.text_body.strip() == "Hi Bob"
    assert message.to == ["bob@example.org"]
    assert message.message_id.startswith("<") and message.message_id.endswith("@example.test>")
    assert kinds(message) == ["message_queued"]


@pytest.mark.parametrize("field,kwargs", [
    ("subject", {"subject": "Hi\r\nBcc: x@evil.example"}),
    ("reply_to", {"reply_to": "a@example.org\nBcc: x@evil.example"}),
    ("subject", {"subject": "   "}),
    ("html_body", {"html": ""}),
])
def test_bad_input_creates_nothing(world, django_capture_on_commit_callbacks, field, kwargs):
    with pytest.raises(ValidationError) as exc:
        queue(world, django_capture_on_commit_callbacks, **kwargs)
    assert field in exc.value.message_dict
    assert SentMessage.objects.count() == 0


def test_invalid_cc_and_suppressed_recipient_are_refused(world, django_capture_on_commit_callbacks):
    team, *_ = world
    with pytest.raises(ValidationError, match="not a valid email address"):
        queue(world, django_capture_on_commit_callbacks, cc=["not-an-address"])
    Suppression.objects.create(team=team, email="bob@example.org", reason="bounce")
    with pytest.raises(ValidationError, match="Suppressed address"):
        queue(world, django_capture_on_commit_callbacks)
    assert SentMessage.objects.count() == 0


def test_other_teams_mailbox_is_refused(world, mail_settings, django_capture_on_commit_callbacks):
    other_team, _ = make_team_with_owner()
    foreign = make_smtp_mailbox(other_team, mail_settings)
    team, user, _, contact, _ = world
    with pytest.raises(ValidationError, match="must belong to your team"):
        sent_message_create(team=team, actor=user, mailbox=foreign, contact=contact, subject="x", html="<p>x</p>")


def test_send_records_sent_with_timeline_and_imap_copy(world, django_capture_on_commit_callbacks):
    message, _ = queue(world, django_capture_on_commit_callbacks,
                       attachments=[AttachmentData("notes.txt", "text/plain", b"hello")])
    outcome = sent_message_send(sent_message_id=message.pk)
    message.refresh_from_db()
    assert outcome.retry_in is None
    assert message.status == "sent" and message.attempts == 1 and message.sent_at
    assert message.provider_message_id == message.message_id
    assert kinds(message) == ["message_queued", "message_sending", "message_sent"]
    sent_event = TimelineEvent.objects.get(sent_message=message, kind="message_sent")
    assert "Copy saved to Sent" in sent_event.summary
    [received] = world[4].smtp.messages
    assert received.message.get_payload()[1].get_filename() == "notes.txt"
    assert len(world[4].imap.fetch_all("Sent")) == 1


def test_running_twice_sends_once(world, django_capture_on_commit_callbacks):
    message, _ = queue(world, django_capture_on_commit_callbacks)
    sent_message_send(sent_message_id=message.pk)
    sent_message_send(sent_message_id=message.pk)
    assert len(world[4].smtp.messages) == 1
    message.refresh_from_db()
    assert message.attempts == 1 and message.status == "sent"


def test_wrong_password_fails_permanently_with_reason(world, django_capture_on_commit_callbacks):
    team, user, mailbox, contact, servers = world
    set_fields(mailbox, smtp_password="wrong")
    message, _ = queue(world, django_capture_on_commit_callbacks)
    outcome = sent_message_send(sent_message_id=message.pk)
    message.refresh_from_db()
    assert outcome.retry_in is None
    assert message.status == "failed" and message.error_code == "authentication"
    assert "SMTP authentication refused" in message.error_message and "535" in message.error_message
    failed = TimelineEvent.objects.get(sent_message=message, kind="message_failed")
    assert "SMTP authentication refused" in failed.summary
    assert servers.smtp.messages == []


def test_server_down_retries_then_fails(world, settings, django_capture_on_commit_callbacks):
    team, user, mailbox, contact, servers = world
    port = free_port()
    settings.OUTREACH_SMTP_PORTS = [*settings.OUTREACH_SMTP_PORTS, port]
    settings.OUTREACH_SEND_MAX_ATTEMPTS = 2
    set_fields(mailbox, smtp_port=port)
    message, _ = queue(world, django_capture_on_commit_callbacks)
    first = sent_message_send(sent_message_id=message.pk)
    assert first.retry_in is not None and first.sent_message.status == "queued"
    message.refresh_from_db()
    assert message.due_at > timezone.now() and message.claimed_by == "" and message.lease_until is None
    assert sent_message_send(sent_message_id=message.pk).sent_message.attempts == 1, "not due yet: nothing happens"
    second = sent_message_send(sent_message_id=message.pk, now=timezone.now() + timedelta(hours=2))
    message.refresh_from_db()
    assert second.retry_in is None
    assert message.status == "failed" and message.attempts == 2 and message.error_code == "unavailable"
    assert "refused the connection" in message.error_message
    assert kinds(message) == ["message_queued", "message_sending", "message_retry", "message_sending", "message_failed"]


def test_recipient_refused_fails_with_smtp_reason(world, django_capture_on_commit_callbacks):
    team, user, mailbox, _, servers = world
    contact = make_contact(team, email="refuse-me@example.org")
    with django_capture_on_commit_callbacks(execute=False):
        message = sent_message_create(team=team, actor=user, mailbox=mailbox, contact=contact, subject="x", html="<p>x</p>")
    sent_message_send(sent_message_id=message.pk)
    message.refresh_from_db()
    assert message.status == "failed" and message.error_code == "recipient_refused"
    assert "refuse-me@example.org" in message.error_message and "550" in message.error_message
    assert servers.smtp.messages == []


def test_expired_lease_after_hand_over_is_unknown_not_sent_again(world, django_capture_on_commit_callbacks):
    message, _ = queue(world, django_capture_on_commit_callbacks)
    past = timezone.now() - timedelta(minutes=5)
    SentMessage.objects.filter(pk=message.pk).update(status="sending", attempts=1, claimed_by="worker:dead",
                                                     lease_until=past, handed_over_at=past)
    result = sent_messages_dispatch(enqueue=lambda ids, token: None)
    message.refresh_from_db()
    assert result.recovered == [message.pk]
    assert message.status == "unknown" and message.error_code == "worker_lost" and message.is_settled
    assert kinds(message)[-1] == "message_unknown"
    assert world[4].smtp.messages == []


def test_expired_lease_before_hand_over_is_sent_again(world, django_capture_on_commit_callbacks):
    message, _ = queue(world, django_capture_on_commit_callbacks)
    SentMessage.objects.filter(pk=message.pk).update(status="sending", attempts=1, claimed_by="worker:dead",
                                                     lease_until=timezone.now() - timedelta(seconds=1))
    handed = []
    result = sent_messages_dispatch(enqueue=lambda ids, token: handed.append((ids, token)))
    assert result.recovered == [message.pk] and handed and handed[0][0] == [message.pk]
    sent_messages_send_claimed(ids=handed[0][0], token=handed[0][1])
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 2
    assert len(world[4].smtp.messages) == 1
    # The same broker message delivered again (duplicate, or late) takes nothing.
    assert sent_messages_send_claimed(ids=handed[0][0], token=handed[0][1]) == []
    assert len(world[4].smtp.messages) == 1


def test_message_under_a_live_lease_is_left_alone(world, django_capture_on_commit_callbacks):
    message, _ = queue(world, django_capture_on_commit_callbacks)
    SentMessage.objects.filter(pk=message.pk).update(status="sending", attempts=1, claimed_by="worker:alive",
                                                     lease_until=timezone.now() + timedelta(minutes=1))
    sent_message_send(sent_message_id=message.pk)
    assert sent_messages_dispatch(enqueue=lambda ids, token: None).recovered == []
    message.refresh_from_db()
    assert message.status == "sending" and world[4].smtp.messages == []


def test_retry_delay_honours_retry_after_and_backs_off(settings):
    settings.OUTREACH_RETRY_BASE_SECONDS = 10
    settings.OUTREACH_RETRY_MAX_SECONDS = 60
    assert retry_delay(3, 7.5) == 7.5
    for attempt, (low, high) in {1: (5, 10), 2: (10, 20), 3: (20, 40), 6: (30, 60)}.items():
        assert low <= retry_delay(attempt, None) <= high


def test_same_idempotency_key_queues_one_message(world, django_capture_on_commit_callbacks):
    import uuid

    key = uuid.uuid4()
    first, callbacks_1 = queue(world, django_capture_on_commit_callbacks, idempotency_key=key)
    again, callbacks_2 = queue(world, django_capture_on_commit_callbacks, idempotency_key=key)
    assert again.pk == first.pk and first.idempotency_key == key
    assert len(callbacks_1) == 1 and len(callbacks_2) == 0
    assert SentMessage.objects.count() == 1


def test_custom_x_headers_are_stored_and_sent_over_smtp(world, django_capture_on_commit_callbacks):
    message, _ = queue(world, django_capture_on_commit_callbacks, headers={"X-Campaign": " spring ", "x-crm-id": "42"})
    assert message.headers == [["X-Campaign", "spring"], ["x-crm-id", "42"]]
    sent_message_send(sent_message_id=message.pk)
    [received] = world[4].smtp.messages
    assert received.message["X-Campaign"] == "spring" and received.message["X-CRM-Id"] == "42"


@pytest.mark.parametrize("headers,words", [
    ({"Bcc": "x@evil.example"}, "not a custom header name"),
    ({"X-Bad Name": "1"}, "not a custom header name"),
    ({"X-Note": "a\r\nBcc: x@evil.example"}, "contains a line break"),
    ({"X-A": "1", "x-a": "2"}, "given twice"),
    ({"X-Long": "v" * 1000}, "longer than 998"),
])
def test_bad_custom_headers_are_refused_on_the_headers_field(world, django_capture_on_commit_callbacks, headers, words):
    with pytest.raises(ValidationError) as exc:
        queue(world, django_capture_on_commit_callbacks, headers=headers)
    assert words in " ".join(exc.value.message_dict["headers"])
    assert SentMessage.objects.count() == 0
