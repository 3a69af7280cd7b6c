"""The inbound sync against the real dovecot server: mails APPENDed to INBOX in the shapes real
clients and MTAs produce, one sync, and what it changed (timeline, suppressions, lead state,
bounced messages); a second sync and a UIDVALIDITY change store nothing twice."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from outreach.inbound.models import InboundMessage, MailboxSyncState
from outreach.inbound.services import mailbox_sync
from outreach.inbound.unsubscribe import unsubscribe_key_for_message, unsubscribe_token
from outreach.models import Contact, Lead, SentMessage, Suppression, TimelineEvent
from tests.factories import make_contact, make_lead, make_sent_message, make_smtp_mailbox, make_team, set_fields
from tests.inbound import mails as M

pytestmark = pytest.mark.django_db

Kind = InboundMessage.Kind
Event = TimelineEvent.Kind


@pytest.fixture
def env(mail_settings):
    """A team, its IMAP mailbox (ann@example.com) on dovecot, and the dovecot server."""
    team = make_team()
    mailbox = make_smtp_mailbox(team, mail_settings, security="starttls")
    mailbox.sender_email = "ann@example.com"
    mailbox.save()

    class Env:
        pass

    e = Env()
    e.team, e.mailbox, e.imap = team, mailbox, mail_settings.imap
    return e


def sent(env, email, **fields):
    contact = Contact.objects.filter(team=env.team, email=email).first() or make_contact(env.team, email)
    return make_sent_message(env.mailbox, contact, status=SentMessage.Status.SENT, subject="Intro", **fields)


def test_replies_are_matched_by_in_reply_to_then_references_never_by_subject(env):
    bob = make_contact(env.team, "bob@example.org")
    make_lead(bob, status=Lead.Status.CONTACTED)
    to_bob = sent(env, "bob@example.org")
    to_carol = sent(env, "carol@example.org")
    to_dan = sent(env, "dan@example.org")
    env.imap.append("INBOX", M.reply(in_reply_to=to_bob.message_id, references=to_bob.message_id))
    env.imap.append("INBOX", M.reply(sender="carol@example.org", references=f"<older@x.example.org> {to_carol.message_id}"))
    # Outlook/Exchange rewrote the ids: In-Reply-To names its own copy; References still carries ours.
    env.imap.append("INBOX", M.reply(sender="dan@example.org", in_reply_to="<AM0PR01@outlook.example.com>",
                                     references=f"{to_dan.message_id} <AM0PR01@outlook.example.com>"))
    # Same subject as our message but no threading header: not a reply.
    env.imap.append("INBOX", M.reply(sender="erin@example.org", subject="Re: Intro"))

    result = mailbox_sync(mailbox=env.mailbox)

    assert result.error == "" and result.stored == 4
    rows = {r.from_email: r for r in InboundMessage.objects.filter(mailbox=env.mailbox)}
    assert (rows["bob@example.org"].kind, rows["bob@example.org"].sent_message, rows["bob@example.org"].matched_by) == \
        (Kind.REPLY, to_bob, "in_reply_to")
    assert (rows["carol@example.org"].sent_message, rows["carol@example.org"].matched_by) == (to_carol, "references")
    assert (rows["dan@example.org"].sent_message, rows["dan@example.org"].matched_by) == (to_dan, "references")
    assert rows["erin@example.org"].kind == Kind.UNMATCHED and rows["erin@example.org"].sent_message is None
    # Trimmed for the timeline, full text kept.
    reply = rows["bob@example.org"]
    assert reply.reply_text == "Yes, let's talk on Tuesday."
    assert "would you like a demo?" in reply.text_body and "Best,\nBob" in reply.text_body
    event = TimelineEvent.objects.get(contact=bob, kind=Event.REPLY_RECEIVED)
    assert event.inbound_message == reply and event.data["text"] == "Yes, let's talk on Tuesday."
    bob.lead.refresh_from_db()
    assert bob.lead.status == Lead.Status.REPLIED
    assert TimelineEvent.objects.filter(contact=bob, kind=Event.LEAD_STATUS).exists()
    to_bob.refresh_from_db()
    assert to_bob.replied_at is not None
    assert not Contact.objects.filter(team=env.team, email="erin@example.org").exists()


@pytest.mark.parametrize("layout", ["rfc3464", "office365", "postfix", "exim", "exchange", "gmail", "yahoo"])
def test_hard_bounce_in_each_layout_suppresses_and_marks_the_message(env, layout):
    message = sent(env, "bob@example.org")
    build = {"rfc3464": M.dsn_rfc3464, "office365": M.office365_dsn, "postfix": M.postfix_text, "exim": M.exim_text,
             "exchange": M.exchange_legacy, "gmail": M.gmail_text, "yahoo": M.yahoo_text}[layout]
    env.imap.append("INBOX", build(original_message_id=message.message_id, recipient="bob@example.org"))

    result = mailbox_sync(mailbox=env.mailbox)

    assert result.kinds == {"bounce": 1}, result
    row = InboundMessage.objects.get(mailbox=env.mailbox)
    assert (row.sent_message, row.matched_by, row.bounce_recipient, row.bounce_type) == \
        (message, "embedded_headers", "bob@example.org", "hard")
    assert row.bounce_status.startswith("5.")
    suppression = Suppression.objects.get(team=env.team, email="bob@example.org")
    assert (suppression.reason, suppression.sent_message, suppression.inbound_message) == ("bounce", message, row)
    message.refresh_from_db()
    assert message.bounced_at is not None and message.bounce_reason.startswith("5.")
    assert TimelineEvent.objects.filter(sent_message=message, kind=Event.MESSAGE_BOUNCED).count() == 1


def test_soft_bounces_are_recorded_without_suppression(env):
    first = sent(env, "bob@example.org")
    second = sent(env, "carol@example.org")
    env.imap.append("INBOX", M.exim_text(original_message_id=first.message_id, recipient="bob@example.org", temporary=True))
    env.imap.append("INBOX", M.dsn_rfc3464(original_message_id=second.message_id, recipient="carol@example.org",
                                           status="4.2.2", action="delayed", diagnostic="smtp; 452 4.2.2 Mailbox full"))
    mailbox_sync(mailbox=env.mailbox)
    rows = InboundMessage.objects.filter(mailbox=env.mailbox, kind=Kind.BOUNCE)
    assert sorted((r.bounce_recipient, r.bounce_type, r.bounce_status) for r in rows) == \
        [("bob@example.org", "soft", "4.2.2"), ("carol@example.org", "soft", "4.2.2")]
    assert not Suppression.objects.filter(team=env.team).exists()
    first.refresh_from_db()
    assert first.bounced_at is None
    assert TimelineEvent.objects.filter(sent_message=first, kind=Event.MESSAGE_BOUNCED).exists()


@pytest.mark.parametrize("style", ["auto-submitted", "x-autoreply", "x-autorespond", "precedence", "subject"])
def test_auto_replies_are_recorded_as_such_not_as_replies(env, style):
    bob = make_contact(env.team, "bob@example.org")
    make_lead(bob, status=Lead.Status.CONTACTED)
    message = sent(env, "bob@example.org")
    env.imap.append("INBOX", M.auto_reply(in_reply_to=message.message_id, style=style))
    mailbox_sync(mailbox=env.mailbox)
    row = InboundMessage.objects.get(mailbox=env.mailbox)
    assert row.kind == Kind.AUTO_REPLY and row.sent_message == message
    assert TimelineEvent.objects.filter(contact=bob, kind=Event.AUTO_REPLY).count() == 1
    assert not TimelineEvent.objects.filter(contact=bob, kind=Event.REPLY_RECEIVED).exists()
    bob.lead.refresh_from_db()
    assert bob.lead.status == Lead.Status.CONTACTED


def test_unsubscribe_mail_to_our_mailto_address_suppresses(env):
    message = sent(env, "bob@example.org")
    token = unsubscribe_token(unsubscribe_key_for_message(sent_message=message))
    # Sent from another address than the recipient's: the signed token says who is unsubscribed.
    env.imap.append("INBOX", M.unsubscribe_mail(to="ann@example.com", subject=f"unsubscribe {token}", sender="relay@example.net"))
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    env.imap.append("INBOX", M.unsubscribe_mail(to="ann@example.com", subject=f"unsubscribe {forged}", sender="mallory@example.net"))
    mailbox_sync(mailbox=env.mailbox)
    suppression = Suppression.objects.get(team=env.team)
    assert (suppression.email, suppression.reason, suppression.sent_message) == ("bob@example.org", "unsubscribe", message)
    assert TimelineEvent.objects.filter(contact=message.contact, kind=Event.UNSUBSCRIBED).count() == 1
    kinds = sorted(InboundMessage.objects.values_list("kind", flat=True))
    assert kinds == [Kind.UNMATCHED, Kind.UNSUBSCRIBE]


def test_mail_from_a_contact_is_inbound_and_strangers_stay_strangers(env):
    bob = make_contact(env.team, "bob@example.org")
    env.imap.append("INBOX", M.reply(sender="bob@example.org", subject="Question about pricing", quoted="x"))
    env.imap.append("INBOX", M.stranger_spam())
    mailbox_sync(mailbox=env.mailbox)
    assert TimelineEvent.objects.filter(contact=bob, kind=Event.INBOUND_MAIL).count() == 1
    spam = InboundMessage.objects.get(from_email="winner@lottery.example.net")
    assert spam.kind == Kind.UNMATCHED and spam.contact is None
    assert not Contact.objects.filter(team=env.team, email="winner@lottery.example.net").exists()
    assert not TimelineEvent.objects.filter(team=env.team, kind=Event.INBOUND_MAIL).exclude(contact=bob).exists()


def test_second_sync_and_uidvalidity_change_store_nothing_twice(env):
    message = sent(env, "bob@example.org")
    env.imap.append("INBOX", M.reply(in_reply_to=message.message_id))
    env.imap.append("INBOX", M.dsn_rfc3464(original_message_id=message.message_id, recipient="bob@example.org"))
    env.imap.append("INBOX", M.stranger_spam())
    env.imap.append("INBOX", b"From: nobody@example.net\r\nSubject: no message id\r\n\r\nbody\r\n")
    first = mailbox_sync(mailbox=env.mailbox)
    assert first.stored == 4
    state = MailboxSyncState.objects.get(mailbox=env.mailbox)
    events = TimelineEvent.objects.filter(team=env.team).count()

    second = mailbox_sync(mailbox=env.mailbox)
    assert (second.fetched, second.stored) == (0, 0)

    env.imap.reset_uidvalidity()
    third = mailbox_sync(mailbox=env.mailbox)
    assert third.uidvalidity_changed and third.fetched == 4 and third.stored == 0 and third.duplicates == 4
    assert MailboxSyncState.objects.get(mailbox=env.mailbox).uidvalidity != state.uidvalidity
    assert InboundMessage.objects.filter(mailbox=env.mailbox).count() == 4
    assert TimelineEvent.objects.filter(team=env.team).count() == events
    assert Suppression.objects.filter(team=env.team).count() == 1

    env.imap.append("INBOX", M.reply(sender="bob@example.org", in_reply_to=message.message_id, body="One more thing."))
    fourth = mailbox_sync(mailbox=env.mailbox)
    assert (fourth.fetched, fourth.stored) == (1, 1)


def test_hostile_headers_are_cleaned_strings(env):
    message = sent(env, "bob@example.org")
    env.imap.append("INBOX", M.hostile_headers(in_reply_to=message.message_id))
    mailbox_sync(mailbox=env.mailbox)
    row = InboundMessage.objects.get(mailbox=env.mailbox)
    assert type(row.subject) is str and "\n" not in row.subject and "\r" not in row.subject
    assert "\n" not in row.from_name and row.from_email == "bob@example.org"
    assert row.kind == Kind.REPLY


def test_oversized_message_is_read_only_up_to_the_bound(env, settings):
    settings.OUTREACH_INBOUND_MAX_MESSAGE_BYTES = 4096
    message = sent(env, "bob@example.org")
    env.imap.append("INBOX", M.reply(in_reply_to=message.message_id, body="Big. " + "x" * 50_000))
    mailbox_sync(mailbox=env.mailbox)
    row = InboundMessage.objects.get(mailbox=env.mailbox)
    assert row.truncated and row.size > 50_000 and len(row.text_body) < 4096
    assert row.kind == Kind.REPLY  # headers come first, so threading still works


def test_broken_mailbox_is_reported_and_backs_off(env):
    set_fields(env.mailbox, imap_password="wrong")
    first = mailbox_sync(mailbox=env.mailbox)
    assert "IMAP authentication refused" in first.error
    state = MailboxSyncState.objects.get(mailbox=env.mailbox)
    assert state.consecutive_failures == 1 and state.next_attempt_at is not None and "refused" in state.last_error
    again = mailbox_sync(mailbox=env.mailbox)
    assert again.skipped.startswith("backing off") and again.error == ""
    assert MailboxSyncState.objects.get(mailbox=env.mailbox).consecutive_failures == 1

    set_fields(env.mailbox, imap_password=env.imap.password)
    out = StringIO()
    call_command("sync_mailboxes", "--mailbox", str(env.mailbox.pk), stdout=out)
    result = json.loads(out.getvalue())
    assert result["errors"] == 0 and result["mailboxes"][0]["error"] == ""
    state.refresh_from_db()
    assert state.consecutive_failures == 0 and state.last_error == "" and state.next_attempt_at is None


def test_sync_mailboxes_command_prints_counts(env):
    message = sent(env, "bob@example.org")
    env.imap.append("INBOX", M.reply(in_reply_to=message.message_id))
    env.imap.append("INBOX", M.stranger_spam())
    out = StringIO()
    call_command("sync_mailboxes", stdout=out)
    result = json.loads(out.getvalue())
    mine = next(m for m in result["mailboxes"] if m["mailbox"] == env.mailbox.pk)
    assert (mine["fetched"], mine["stored"], mine["reply"], mine["unmatched"], mine["more"]) == (2, 2, 1, 1, False)


def test_run_is_bounded_and_the_rest_comes_next_run(env, settings):
    settings.OUTREACH_INBOUND_MAX_MESSAGES_PER_RUN = 2
    settings.OUTREACH_INBOUND_BATCH_SIZE = 1
    for _ in range(3):
        env.imap.append("INBOX", M.stranger_spam())
    first = mailbox_sync(mailbox=env.mailbox)
    assert (first.stored, first.more) == (2, True)
    assert MailboxSyncState.objects.get(mailbox=env.mailbox).reread_since is not None  # the window holds
    second = mailbox_sync(mailbox=env.mailbox)
    assert (second.stored, second.more) == (1, False)
    assert MailboxSyncState.objects.get(mailbox=env.mailbox).reread_since is None
