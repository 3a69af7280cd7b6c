"""The delivery engine (issue 8): dispatchers, leases, sending rules with a controllable clock, SMTP
session reuse, per-recipient results, and what happens when our own infrastructure is down.

Real servers throughout (aiosmtpd, PostgreSQL, Redis); time is moved by passing ``now``.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from outreach.models import Mailbox, SentMessage, TimelineEvent
from outreach.services.outbox import (
    sent_message_send,
    sent_messages_dispatch,
    sent_messages_send_claimed,
)
from outreach.services.sending import AttachmentData, sent_message_create
from providers.smtp import close_sessions
from tests.factories import make_contact, make_lead, make_smtp_mailbox, make_team_with_owner

UTC = dt.timezone.utc


@pytest.fixture
def world(mail_settings):
    close_sessions()
    team, user = make_team_with_owner()
    mailbox = make_smtp_mailbox(team, mail_settings, imap=False)
    contact = make_contact(team, "bob@example.org", first_name="Bob", last_name="Stone")
    yield team, user, mailbox, contact, mail_settings
    close_sessions()


def _queue(world, n=1, **kwargs):
    team, user, mailbox, contact, _ = world
    values = dict(subject="Hello", text="Hi Bob")
    values.update(kwargs)
    return [sent_message_create(team=team, actor=user, mailbox=kwargs.pop("mailbox", mailbox), contact=contact, **values)
            for _ in range(n)]


def _collect():
    handed: list[tuple[list[int], str]] = []
    return handed, (lambda ids, token: handed.append((list(ids), token)))


# --- dispatch and leases -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_claim_each_message_once(world, monkeypatch):
    from outreach.services import sending

    monkeypatch.setattr(sending, "wake_up", lambda pk: None)
    ids = {m.pk for m in _queue(world, 60)}
    barrier = threading.Barrier(2)
    # Each dispatcher's first hand-over waits (bounded) until the other has handed a chunk too, so
    # both claim while the other holds claims: the overlap is certain, not left to the scheduler.
    handed_one = [threading.Event(), threading.Event()]
    results: list[list[tuple[list[int], str]]] = [[], []]

    def run(slot):
        from django.db import connection

        handed, collect = _collect()

        def enqueue(ids_, token):
            collect(ids_, token)
            handed_one[slot].set()
            handed_one[1 - slot].wait(10)

        barrier.wait()
        try:
            for _ in range(10):
                sent_messages_dispatch(limit=7, enqueue=enqueue)
        finally:
            connection.close()
        results[slot] = handed

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = [pk for handed in results for ids_, _ in handed for pk in ids_]
    assert sorted(claimed) == sorted(ids), "every message claimed exactly once"
    assert results[0] and results[1], "both dispatchers took part"
    assert SentMessage.objects.filter(pk__in=ids, status="sending").count() == len(ids)


@pytest.mark.django_db(transaction=True)
def test_lease_expiring_while_the_first_worker_is_alive_sends_once(world, monkeypatch):
    from outreach.services import sending

    monkeypatch.setattr(sending, "wake_up", lambda pk: None)
    servers = world[4]
    [message] = _queue(world)
    handed, enqueue = _collect()
    sent_messages_dispatch(enqueue=enqueue)
    [(ids, token)] = handed
    servers.smtp.rcpt_delay = 2.0  # worker A is slow between MAIL FROM and DATA
    def worker_a():
        from django.db import connection

        try:
            sent_messages_send_claimed(ids=ids, token=token)
        finally:
            close_sessions()
            connection.close()

    first = threading.Thread(target=worker_a)
    first.start()
    deadline = time.monotonic() + 20
    while not servers.smtp.mail_commands:  # A has started its SMTP transaction (nothing is written before DATA)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # A is alive but its lease ran out: the dispatcher re-queues (not handed over yet) and worker B sends.
    later = timezone.now() + timedelta(hours=1)
    handed_b, enqueue_b = _collect()
    result = sent_messages_dispatch(now=later, enqueue=enqueue_b)
    assert result.recovered == [message.pk] and handed_b[0][0] == [message.pk]
    servers.smtp.rcpt_delay = 0.0
    sent_messages_send_claimed(ids=handed_b[0][0], token=handed_b[0][1])
    first.join(30)
    message.refresh_from_db()
    # A's attempt stopped at the hand-over point and recorded nothing; B's is the one attempt on record.
    assert message.status == "sent" and message.attempts == 1
    assert servers.smtp.message_ids() == [message.message_id], "A aborted at the hand-over point"
    kinds = list(TimelineEvent.objects.filter(sent_message=message).values_list("kind", flat=True))
    assert kinds.count("message_sent") == 1


@pytest.mark.django_db
def test_retry_is_a_due_time_in_the_database_and_the_request_is_reused_verbatim(world, settings):
    servers = world[4]
    [message] = _queue(world)
    servers.smtp.fail_next_data("451 4.3.0 Try again later")
    outcome = sent_message_send(sent_message_id=message.pk)
    message.refresh_from_db()
    assert outcome.retry_in and message.status == "queued" and message.due_at > timezone.now()
    first_request = bytes(message.prepared_request)
    message.contact.first_name = "Robert"  # an edit between attempts must not change the message
    message.contact.save()
    sent_message_send(sent_message_id=message.pk, now=timezone.now() + timedelta(hours=1))
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 2
    assert servers.smtp.messages[0].data.replace(b"\r\n", b"\n").strip() == first_request.replace(b"\r\n", b"\n").strip()


@pytest.mark.django_db
def test_redis_down_in_the_limiter_is_transient_and_not_an_attempt(settings):
    from tests.fakes.lemlist import FakeLemlist
    from tests.factories import make_provider_account, make_provider_mailbox
    from tests.servers import free_port

    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with FakeLemlist() as fake:
        user_id, email, mailbox_id = fake.add_send_user()
        contact_id, lead_id = fake.add_lead()
        team, user = make_team_with_owner()
        account = make_provider_account(team, provider="lemlist", api_key=fake.api_key, base_url=fake.url + "/api")
        mailbox = make_provider_mailbox(account, sender_email=email, lemlist_send_user_id=user_id, lemlist_send_user_email=email,
                                        lemlist_send_user_mailbox_id=mailbox_id)
        contact = make_contact(team, lemlist_contact_id=contact_id)
        make_lead(contact, lemlist_lead_id=lead_id)
        message = sent_message_create(team=team, actor=user, mailbox=mailbox, contact=contact, subject="Hi", html="<p>Hi</p>")
        outcome = sent_message_send(sent_message_id=message.pk)
        message.refresh_from_db()
        assert outcome.retry_in is not None
        assert message.status == "queued" and message.attempts == 0 and "infrastructure" in message.hold_reason
        assert fake.messages == []


# --- enqueue with the broker down ----------------------------------------------------------------


@pytest.fixture
def dead_broker(monkeypatch):
    """Point the Celery app at a port where no broker listens (a real connection refusal)."""
    from outreach.celery import app
    from tests.servers import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("CELERY_BROKER_URL", dead)  # Celery reads the environment variable before its conf
    monkeypatch.setattr(app.conf, "broker_url", dead)
    app._pool = None
    app.amqp._producer_pool = None
    yield
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db
def test_broker_down_at_enqueue_queues_without_a_500_and_the_dispatcher_recovers(user_client, team, dead_broker,
                                                                                django_capture_on_commit_callbacks):
    from tests.factories import make_contact as factory_contact, make_mailbox

    contact, mailbox = factory_contact(team), make_mailbox(team)
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(reverse("contact_compose", args=[contact.pk]), {
            "mailbox": mailbox.pk, "subject": "Hello", "html_body": "<p>Hi</p>", "cc": "", "bcc": "", "reply_to": "",
            "submission_key": str(uuid.uuid4())})
    assert response.status_code == 302
    message = SentMessage.objects.get()
    assert message.status == "queued" and message.due_at is not None
    result = sent_messages_dispatch()  # the broker is still down: claimed, then released to the outbox
    message.refresh_from_db()
    assert result.released == [message.pk] and message.status == "queued" and not message.claimed_by
    assert "task queue is unavailable" in message.hold_reason


# --- sending rules with a controllable clock --------------------------------------------------------


def _rules(mailbox, **values):
    Mailbox.objects.filter(pk=mailbox.pk).update(**values)
    mailbox.refresh_from_db()
    return mailbox


@pytest.mark.django_db
def test_minimum_interval_holds_the_next_message_and_says_when(world):
    mailbox = _rules(world[2], min_interval_seconds=120, interval_jitter_seconds=0)
    first, second = _queue(world, 2)
    t0 = timezone.now()
    handed, enqueue = _collect()
    result = sent_messages_dispatch(now=t0, enqueue=enqueue)
    assert handed[0][0] == [first.pk] and result.held == [second.pk]
    second.refresh_from_db()
    assert second.hold_reason.startswith("waiting: minimum interval of 120 s") and "next send" in second.hold_reason
    assert abs((second.due_at - (t0 + timedelta(seconds=120))).total_seconds()) < 1
    assert sent_messages_dispatch(now=t0 + timedelta(seconds=119), enqueue=enqueue).claimed == []
    assert sent_messages_dispatch(now=t0 + timedelta(seconds=121), enqueue=enqueue).claimed == [[second.pk]]
    assert mailbox.pk


@pytest.mark.django_db
def test_daily_cap_holds_until_the_next_local_day(world):
    _rules(world[2], daily_cap=2, time_zone="Europe/Paris")
    messages = _queue(world, 3)
    now = dt.datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # Tuesday 22:00 in Paris
    SentMessage.objects.filter(pk__in=[m.pk for m in messages]).update(due_at=now)
    handed, enqueue = _collect()
    sent_messages_dispatch(now=now, enqueue=enqueue)
    assert [pk for ids, _ in handed for pk in ids] == [messages[0].pk, messages[1].pk]
    SentMessage.objects.filter(pk__in=[messages[0].pk, messages[1].pk]).update(status="sent", sent_at=now, claimed_by="")
    third = SentMessage.objects.get(pk=messages[2].pk)
    assert third.status == "queued"
    assert third.hold_reason == "waiting: daily cap of 2 reached; next send Wed 00:00"
    assert third.due_at == dt.datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # Paris midnight
    assert sent_messages_dispatch(now=third.due_at, enqueue=enqueue).claimed == [[third.pk]]


@pytest.mark.django_db
def test_send_window_in_the_mailbox_time_zone(world):
    _rules(world[2], send_days="0,1,2,3,4", send_window_start=dt.time(9, 0), send_window_end=dt.time(17, 0),
           time_zone="America/New_York")
    [message] = _queue(world)
    friday_evening = dt.datetime(2026, 12, 4, 23, 30, tzinfo=UTC)  # Fri 18:30 in New York
    SentMessage.objects.filter(pk=message.pk).update(due_at=friday_evening)
    handed, enqueue = _collect()
    assert sent_messages_dispatch(now=friday_evening, enqueue=enqueue).held == [message.pk]
    message.refresh_from_db()
    assert message.hold_reason == ("waiting: outside the send window (Mon, Tue, Wed, Thu, Fri 09:00–17:00 "
                                   "America/New_York); next send Mon 09:00")
    monday_nine = dt.datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert message.due_at == monday_nine
    assert sent_messages_dispatch(now=monday_nine - timedelta(seconds=1), enqueue=enqueue).claimed == []
    assert sent_messages_dispatch(now=monday_nine, enqueue=enqueue).claimed == [[message.pk]]


@pytest.mark.django_db
def test_cold_mailbox_defaults():
    mailbox = Mailbox()
    assert (mailbox.daily_cap, mailbox.min_interval_seconds, mailbox.send_days) == (50, 90, "0,1,2,3,4")
    assert (mailbox.send_window_start, mailbox.send_window_end) == (dt.time(8, 0), dt.time(18, 0))


# --- send later -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_scheduled_message_waits_for_its_time(world, django_capture_on_commit_callbacks):
    at = timezone.now() + timedelta(hours=3)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [message] = _queue(world, scheduled_at=at)
    assert message.status == "scheduled" and message.due_at == at and callbacks == []
    handed, enqueue = _collect()
    assert sent_messages_dispatch(enqueue=enqueue).claimed == []
    assert sent_messages_dispatch(now=at, enqueue=enqueue).claimed == [[message.pk]]
    with pytest.raises(ValidationError) as err:
        _queue(world, scheduled_at=timezone.now() - timedelta(hours=1))
    assert "in the past" in str(err.value)


# --- SMTP session reuse and per-recipient results -----------------------------------------------------


@pytest.mark.django_db
def test_one_smtp_login_for_a_batch(world):
    servers = world[4]
    messages = _queue(world, 6)
    handed, enqueue = _collect()
    sent_messages_dispatch(enqueue=enqueue)
    for ids, token in handed:
        sent_messages_send_claimed(ids=ids, token=token)
    assert SentMessage.objects.filter(pk__in=[m.pk for m in messages], status="sent").count() == 6
    assert servers.smtp.logins == 1
    assert sorted(servers.smtp.message_ids()) == sorted(m.message_id for m in messages)


@pytest.mark.django_db
def test_a_batch_reads_once_and_writes_each_outcome_before_the_next_hand_over(world):
    """What does not change per message is read once per batch. Each message costs one short write
    transaction of one UPDATE (conditional on the lease) and one INSERT (the timeline rows): its hand-over
    marker together with the previous message's outcome, so a sent message is recorded before the next one
    is handed over; the last outcome is written at the batch's end."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    servers = world[4]
    messages = _queue(world, 10)
    handed, enqueue = _collect()
    sent_messages_dispatch(enqueue=enqueue)
    [(ids, token)] = handed
    with CaptureQueriesContext(connection) as captured:
        sent_messages_send_claimed(ids=ids, token=token)
    sql = [q["sql"] for q in captured.captured_queries]
    first = next(i for i, text in enumerate(sql) if text.startswith("SAVEPOINT"))
    # take-over, then rows, mailboxes, teams, unsubscribe keys (insert, read back), attachments, external ids, suppressions
    assert len(sql[:first]) <= 1 + 8, sql[:first]
    transactions, current = [], None
    for text in sql[first:]:  # the test runs in a transaction: each write transaction is a savepoint here
        if text.startswith("SAVEPOINT"):
            current = []
        elif text.startswith("RELEASE"):
            transactions.append(current)
        elif current is not None:
            current.append(text)
    assert [[s.split(None, 1)[0] for s in t] for t in transactions] == [["UPDATE", "INSERT"]] * (len(ids) + 1)
    kinds = [("marker" if '"handed_over_at" = ' in t[0] else "") + ("+sent" if '"sent_at" = ' in t[0] else "")
             for t in transactions]
    assert kinds == ["marker"] + ["marker+sent"] * (len(ids) - 1) + ["+sent"], kinds
    assert all('"claimed_by" = ' in t[0] and "RETURNING" in t[0] for t in transactions)
    assert SentMessage.objects.filter(pk__in=[m.pk for m in messages], status="sent").count() == 10
    assert sorted(servers.smtp.message_ids()) == sorted(m.message_id for m in messages)
    for message in messages:
        kinds = list(TimelineEvent.objects.filter(sent_message=message).order_by("id").values_list("kind", flat=True))
        assert kinds == ["message_queued", "message_sending", "message_sent"], kinds
        message.refresh_from_db()
        assert message.attempts == 1 and message.handed_over_at and message.sent_at >= message.handed_over_at
        assert message.claimed_by == "" and message.lease_until is None and message.prepared_request


@pytest.mark.django_db
def test_list_unsubscribe_is_written_as_urls_not_encoded_words(world, settings):
    """RFC 2369/8058: mail clients read List-Unsubscribe as it is; folding its long URLs at 78 characters
    used to turn the header into RFC 2047 encoded-words, which they do not decode."""
    settings.OUTREACH_PUBLIC_BASE_URL = "https://outreach.example.com"
    servers = world[4]
    [message] = _queue(world, subject="Grüße aus Köln")
    sent_message_send(sent_message_id=message.pk)
    raw = servers.smtp.messages[0].data
    header = next(line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:"))
    assert header.startswith(b"List-Unsubscribe: <https://outreach.example.com/u/") and b"=?" not in header
    assert b">, <mailto:" in header
    subject = next(line for line in raw.split(b"\r\n") if line.startswith(b"Subject:"))
    assert b"=?utf-8?" in subject  # non-ASCII values are still encoded-words
    assert servers.smtp.messages[0].message["Subject"] == "Grüße aus Köln"


@pytest.mark.django_db
def test_421_mid_batch_reconnects_without_a_duplicate(world):
    servers = world[4]
    messages = _queue(world, 5)
    servers.smtp.fail_next_mail(skip=2)  # the third MAIL FROM gets 421 and the connection closes
    handed, enqueue = _collect()
    sent_messages_dispatch(enqueue=enqueue)
    for ids, token in handed:
        sent_messages_send_claimed(ids=ids, token=token)
    assert SentMessage.objects.filter(pk__in=[m.pk for m in messages], status="sent").count() == 5
    ids = servers.smtp.message_ids()
    assert sorted(ids) == sorted(m.message_id for m in messages) and len(set(ids)) == 5
    assert servers.smtp.logins == 2


@pytest.mark.django_db
def test_refused_recipient_among_several_does_not_fail_the_others(world, client):
    servers = world[4]
    [message] = _queue(world, cc=["refuse-carl@example.org", "dana@example.org"])
    sent_message_send(sent_message_id=message.pk)
    message.refresh_from_db()
    assert message.status == "sent"
    assert message.recipient_results["refuse-carl@example.org"]["status"] == "rejected"
    assert message.recipient_results["refuse-carl@example.org"]["code"] == 550
    assert message.recipient_results["bob@example.org"]["status"] == "sent"
    [received] = servers.smtp.messages
    assert sorted(received.rcpt_tos) == ["bob@example.org", "dana@example.org"]
    client.force_login(world[1])
    page = client.get(reverse("message_detail", args=[message.pk])).content.decode()
    assert "refuse-carl@example.org" in page and "550" in page and "Rejected" in page


# --- header values validated before anything is saved -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("change,field", [
    ({"sender_name": "Ann\r\nBcc: victim@example.org"}, "mailbox"),
    ({"sender_email": "ann@example.org\nBcc: victim@example.org"}, "mailbox"),
    ({"sender_email": "not an address"}, "mailbox"),
])
def test_bad_mailbox_sender_is_refused_before_saving(world, change, field):
    Mailbox.objects.filter(pk=world[2].pk).update(**change)
    world[2].refresh_from_db()
    with pytest.raises(ValidationError) as err:
        _queue(world)
    assert field in err.value.message_dict and SentMessage.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("filename", ["evil\r\nContent-Type: text/html.txt", "../../etc/passwd", "", "a\x00b.txt"])
def test_bad_attachment_filename_is_refused_before_saving(world, filename):
    with pytest.raises(ValidationError) as err:
        _queue(world, attachments=[AttachmentData(filename, "text/plain", b"x")])
    assert "attachments" in err.value.message_dict and SentMessage.objects.count() == 0


# --- the user's actions ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_actions_cancel_send_again_and_mark_sent_with_bulk_selection(world, client):
    team, user, mailbox, contact, servers = world
    queued, scheduled, unknown, failed, sending = _queue(world, 5)
    SentMessage.objects.filter(pk=scheduled.pk).update(status="scheduled", due_at=timezone.now() + timedelta(days=1))
    SentMessage.objects.filter(pk=unknown.pk).update(status="unknown", prepared_request=b"old", handed_over_at=timezone.now())
    SentMessage.objects.filter(pk=failed.pk).update(status="failed", attempts=5, error_code="authentication")
    SentMessage.objects.filter(pk=sending.pk).update(status="sending", claimed_by="worker:x",
                                                     lease_until=timezone.now() + timedelta(minutes=1))
    client.force_login(user)
    url = reverse("message_list")
    everything = [m.pk for m in (queued, scheduled, unknown, failed, sending)]
    confirm = client.post(url, {"action": "cancel", "ids": everything})
    assert confirm.status_code == 200 and "Are you sure?" in confirm.content.decode()
    done = client.post(url, {"action": "cancel", "ids": everything, "confirmed": "yes"}, follow=True)
    assert "Cancelled 2 messages. 3 skipped" in done.content.decode()
    statuses = dict(SentMessage.objects.values_list("pk", "status"))
    assert statuses[queued.pk] == statuses[scheduled.pk] == "cancelled" and statuses[sending.pk] == "sending"

    client.post(url, {"action": "mark_sent", "ids": [unknown.pk, failed.pk]})
    assert SentMessage.objects.get(pk=unknown.pk).status == "sent"
    old_key = SentMessage.objects.get(pk=failed.pk).idempotency_key
    client.post(url, {"action": "send_again", "ids": [failed.pk, queued.pk], "confirmed": "yes"})
    again = SentMessage.objects.get(pk=failed.pk)
    assert again.status == "queued" and again.attempts == 0 and again.idempotency_key != old_key
    assert again.prepared_request is None and again.error_code == ""
    sent_message_send(sent_message_id=again.pk)
    assert SentMessage.objects.get(pk=again.pk).status == "sent"
    kinds = set(TimelineEvent.objects.filter(team=team).values_list("kind", flat=True))
    assert {"message_cancelled", "message_marked_sent"} <= kinds


@pytest.mark.django_db
def test_message_page_offers_mark_sent_and_send_again_for_unknown(world, client):
    [message] = _queue(world)
    SentMessage.objects.filter(pk=message.pk).update(status="unknown", error_message="The connection was lost.")
    client.force_login(world[1])
    page = client.get(reverse("message_detail", args=[message.pk])).content.decode()
    assert "May have been delivered" in page and 'value="mark_sent"' in page and 'value="send_again"' in page
    response = client.post(reverse("message_action", args=[message.pk]), {"action": "mark_sent"})
    assert response.status_code == 302 and SentMessage.objects.get(pk=message.pk).status == "sent"


@pytest.mark.django_db
def test_send_email_at_schedules_and_bad_times_are_refused(world):
    import io
    import json

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("send_email", "--mailbox", str(world[2].pk), "--to", "bob@example.org", "--subject", "Later",
                 "--text", "x", "--at", "2099-01-05T09:00+01:00", stdout=out)
    result = json.loads(out.getvalue())
    assert result["status"] == "scheduled" and result["due_at"].startswith("2099-01-05 08:00")
    with pytest.raises(CommandError, match="not an ISO-8601"):
        call_command("send_email", "--mailbox", str(world[2].pk), "--to", "bob@example.org", "--subject", "x",
                     "--text", "x", "--at", "tomorrow")
    with pytest.raises(CommandError, match="in the past"):
        call_command("send_email", "--mailbox", str(world[2].pk), "--to", "bob@example.org", "--subject", "x",
                     "--text", "x", "--at", "2001-01-01T00:00Z")


@pytest.mark.django_db
def test_mailbox_form_edits_sending_rules_and_refuses_bad_ones(world, client):
    mailbox = world[2]
    client.force_login(world[1])
    url = reverse("mailbox_edit", args=[mailbox.pk])
    page = client.get(url).content.decode()
    assert "Sending rules" in page and 'name="daily_cap"' in page
    form = {"sender_name": "Ann", "sender_email": "ann@example.com", "smtp_host": mailbox.setting("smtp_host"),
            "smtp_port": mailbox.setting("smtp_port"), "smtp_login": mailbox.setting("smtp_login"), "smtp_security": "starttls",
            "imap_security": "ssl", "imap_sent_folder": "Sent", "daily_cap": "20", "min_interval_seconds": "300", "interval_jitter_seconds": "30",
            "send_days": ["0", "2"], "send_window_start": "09:30", "send_window_end": "16:00", "time_zone": "Europe/Berlin"}
    bad = client.post(url, {**form, "time_zone": "Mars/Olympus"})
    assert bad.status_code == 200 and "Unknown time zone" in bad.content.decode()
    response = client.post(url, form)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    mailbox.refresh_from_db()
    assert (mailbox.daily_cap, mailbox.min_interval_seconds, mailbox.send_days, mailbox.time_zone) == (20, 300, "0,2", "Europe/Berlin")
    assert mailbox.send_window_start == dt.time(9, 30)


@pytest.mark.django_db
def test_add_mailbox_refuses_a_sender_name_with_a_line_break(world, monkeypatch):
    from django.core.management import CommandError, call_command

    monkeypatch.setenv("OUTREACH_SMTP_PASSWORD", "pw")
    with pytest.raises(CommandError, match="Line breaks"):
        call_command("add_mailbox", "--team", world[0].name, "--sender-name", "Ann\r\nBcc: x@example.org",
                     "--sender-email", "ann@example.com", "--smtp-host", "localhost", "--smtp-port",
                     str(world[4].smtp.port), "--smtp-login", "ann")
    assert not Mailbox.objects.filter(sender_email="ann@example.com").exists()


_SQLITE_SEND = r"""
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.db import connection
from outreach.models import SentMessage, TimelineEvent
from outreach.services import sending
from outreach.services.outbox import sent_messages_dispatch, sent_messages_send_claimed
from tests.factories import make_contact, make_team_with_owner
from outreach.models import Mailbox
from tests.factories import NO_SENDING_RULES, provider_config

port, login, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
team, user = make_team_with_owner()
mailbox = Mailbox.objects.create(team=team, provider="smtp", sender_name="Ann", sender_email="ann@example.test",
    provider_config=provider_config("smtp", smtp_host="localhost", smtp_port=port, smtp_login=login,
                                    smtp_password=password, smtp_security="starttls"), **NO_SENDING_RULES)
contact = make_contact(team, "bob@example.org", first_name="Bob")
sending.wake_up = lambda pk: None
ids = [sending.sent_message_create(team=team, actor=user, mailbox=mailbox, contact=contact, subject=f"S{i}", text="Hi").pk
       for i in range(4)]
handed = []
sent_messages_dispatch(enqueue=lambda chunk, token: handed.append((chunk, token)))
statements = []
connection.ensure_connection()
connection.connection.set_trace_callback(statements.append)  # every statement SQLite runs, the driver's too
for chunk, token in handed:
    sent_messages_send_claimed(ids=chunk, token=token)
connection.connection.set_trace_callback(None)
print(json.dumps({"statements": statements,
                  "status": sorted(SentMessage.objects.filter(pk__in=ids).values_list("status", flat=True)),
                  "events": [list(TimelineEvent.objects.filter(sent_message_id=pk).order_by("id").values_list("kind", flat=True)) for pk in ids],
                  "message_ids": list(SentMessage.objects.filter(pk__in=ids).values_list("message_id", flat=True))}))
"""


def test_the_send_path_write_runs_on_sqlite_one_transaction_per_message(mail_settings, tmp_path):
    """The hot write (driver cursor, own BEGIN IMMEDIATE … COMMIT) on the embedded default, SQLite, in a process
    of its own (the suite runs on PostgreSQL): each transaction is the conditional UPDATE … RETURNING and the
    INSERT of the timeline rows; every message ends sent with its events, each delivered once."""
    import json
    import os
    import subprocess
    import sys

    smtp = mail_settings.smtp
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DJANGO_SETTINGS_MODULE": "outreach.settings.local",
           "DEBUG": "false", "OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS": "true", "OUTREACH_SMTP_PORTS": str(smtp.port),
           "OUTREACH_MAIL_CA_FILE": smtp.ca_file, "CELERY_BROKER_URL": "memory://", "REDIS_URL": ""}
    done = subprocess.run([sys.executable, "-c", _SQLITE_SEND, str(smtp.port), smtp.username, smtp.password],
                          env=env, capture_output=True, text=True, timeout=300, cwd=str(__import__("tests.conftest").conftest.REPO_ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"] == ["sent"] * 4
    assert out["events"] == [["message_queued", "message_sending", "message_sent"]] * 4
    assert sorted(smtp.message_ids()) == sorted(out["message_ids"])
    transactions, current = [], None
    for text in out["statements"]:
        if text == "BEGIN IMMEDIATE" and current is None:
            current = []
        elif text == "COMMIT" and current is not None:
            transactions.append(current)
            current = None
        elif current is not None:
            current.append(text)
    writes = [t for t in transactions if any('"handed_over_at" = ' in s or '"sent_at" = ' in s for s in t)]
    assert len(writes) == 4 + 1, transactions  # four markers (each with the previous outcome), the last outcome
    assert all([s.split(None, 1)[0] for s in t] == ["UPDATE", "INSERT"] and "RETURNING" in t[0] and '"claimed_by" = ' in t[0]
               for t in writes), writes


@pytest.mark.django_db
def test_the_send_path_prepares_every_value_as_the_field_does():
    """The hot write's shortcuts (:func:`outreach.services.outbox._db_value`) give what Django's
    ``get_db_prep_save`` gives, for every SentMessage field and the kinds of value the send path writes."""
    import warnings

    from django.db import connection

    from outreach.services.outbox import _db_value

    aware = timezone.now()
    values = ["", "sent", SentMessage.Status.SENT, "x" * 300, "é ☃", 0, 7, True, None, aware,
              aware.astimezone(dt.timezone(timedelta(hours=5, minutes=30))), dt.datetime(2026, 1, 2, 3, 4, 5),
              {"smtp": {"code": 250, "reply": "OK"}}, [], b"bytes", uuid.uuid4()]
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # naive datetimes: Django warns, both sides alike
        for field in SentMessage._meta.concrete_fields:
            for value in values:
                try:
                    expected = field.get_db_prep_save(value, connection)
                except Exception:  # noqa: BLE001 - a value this field does not take: not written by the send path
                    continue
                got = _db_value(field, value)
                # psycopg's Jsonb wrapper compares by identity: compare what it wraps; its Int4/Int8 (Django's
                # typed ints on PostgreSQL) are the same integer to the driver
                unwrap = lambda v: ((int, int(v)) if isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
                                    else (type(v), getattr(v, "obj", v)))
                assert unwrap(got) == unwrap(expected), (field.name, value)
                checked += 1
    assert checked > 100
