"""A campaign end to end through real servers: PostgreSQL, Redis, a real Celery worker sending over
the STARTTLS + AUTH test SMTP server, and Debian's dovecot for the replies and bounces the inbound
sync reads. The campaign clock is driven by the test (``campaigns_advance(now=…)``); everything
else runs for real."""
from __future__ import annotations

import email
import email.policy
from datetime import time, timedelta

import pytest
from django.utils import timezone

from outreach.campaigns.models import CampaignMessage, Enrolment
from outreach.campaigns.services import VariantData, campaign_create, campaign_enrol, campaign_start, campaign_step_save, campaigns_advance
from outreach.inbound.services import mailbox_sync
from outreach.models import SentMessage, Suppression, TimelineEvent
from outreach.selectors import Selection
from tests.inbound import mails as M
from tests.factories import make_contact, make_smtp_mailbox, make_team_with_owner

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



def _open_rules(mailbox, **overrides):
    """Lift the cold-mailbox sending rules (where the outbox has them) so the test's pace is the server's."""
    rules = {"daily_cap": 0, "min_interval_seconds": 0, "interval_jitter_seconds": 0, "send_days": "",
             "send_window_start": time(0), "send_window_end": time(0), **overrides}
    for name, value in rules.items():
        if hasattr(mailbox, name):
            setattr(mailbox, name, value)
    mailbox.save()
    return mailbox


def _received(smtp_server, marker: str) -> list[email.message.Message]:
    """Messages the SMTP server received whose subject or HTML body contains ``marker``."""
    found = []
    for received in smtp_server.messages:
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        html = parsed.get_body(("html",))
        if marker in str(parsed["Subject"] or "") or (html is not None and marker in html.get_content()):
            found.append(parsed)
    return found


def test_three_step_campaign_to_50_contacts_over_two_mailboxes(settings, celery_worker_process, mail_settings):
    settings.OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX = 100
    T0 = timezone.now()  # the worker stamps real send times; the campaign clock moves on from them
    smtp, imap = mail_settings.smtp, mail_settings.imap
    team, _ = make_team_with_owner("Campaign e2e")
    reading = _open_rules(make_smtp_mailbox(team, mail_settings))  # also reads the replies (dovecot INBOX)
    reading.sender_email, reading.sender_name = "ann@example.com", "Ann Lee"
    reading.save()
    second = _open_rules(make_smtp_mailbox(team, mail_settings, imap=False))
    second.sender_email, second.sender_name = "carl@example.com", "Carl Diaz"
    second.save()
    people = [make_contact(team, email=f"p{i}@campaign.example.org", first_name=f"Person{i}", last_name="",
                           company=f"Co{i}") for i in range(50)]
    campaign = campaign_create(team=team, data={"name": "E2E", "mailboxes": [reading, second], "send_days": "",
                                                "window_start": time(0), "window_end": time(0)})
    campaign_step_save(campaign=campaign, data={}, variants=[
        VariantData("A", "[e2e] Hello {{ first_name }}", "<p>Hi {{ first_name }} at {{ company }}, from {{ sender.first_name }}</p>")])
    for position in (2, 3):
        campaign_step_save(campaign=campaign, data={"delay_amount": 2, "delay_unit": "days"},
                           variants=[VariantData("A", f"[e2e] step {position}", f"<p>Step {position} for {{{{ first_name }}}}</p>")])
    result = campaign_enrol(campaign=campaign, selection=Selection.of_ids([p.pk for p in people]), now=T0)
    assert result.enrolled == 50
    campaign_start(campaign=campaign, now=T0)

    # Step 1: 50 messages, 25 from each mailbox, merge fields rendered per contact (read at the SMTP server).
    assert campaigns_advance(now=T0).created == 50
    celery_worker_process.wait_for(lambda: SentMessage.objects.filter(team=team, status="sent").count() == 50,
                                   timeout=120, message="step 1 not sent")
    step1 = _received(smtp, "[e2e] Hello")
    assert len(step1) == 50
    by_recipient = {str(m["To"]).split("<")[-1].rstrip(">"): m for m in step1}
    assert set(by_recipient) == {p.email for p in people}
    body = by_recipient["p7@campaign.example.org"].get_body(("html",)).get_content()
    assert "Hi Person7 at Co7, from" in body and str(by_recipient["p7@campaign.example.org"]["Subject"]) == "[e2e] Hello Person7"
    senders = {str(m["From"]).split("<")[-1].rstrip(">") for m in step1}
    assert senders == {"ann@example.com", "carl@example.com"}
    assert sorted(Enrolment.objects.filter(campaign=campaign).values_list("mailbox_id", flat=True)).count(reading.pk) == 25

    # A reply and a hard bounce arrive in the reading mailbox's INBOX; the sync classifies them.
    on_reading = [e.contact for e in Enrolment.objects.filter(campaign=campaign, mailbox=reading).select_related("contact")]
    replier, bouncer = on_reading[0], on_reading[1]
    first_of = {m.contact_id: m for m in SentMessage.objects.filter(campaign_message__step__position=1, team=team)}
    imap.append("INBOX", M.reply(to="ann@example.com", sender=f"{replier.first_name} <{replier.email}>",
                                 subject="Re: [e2e] Hello", in_reply_to=first_of[replier.pk].message_id))
    imap.append("INBOX", M.dsn_rfc3464(original_message_id=first_of[bouncer.pk].message_id, recipient=bouncer.email))
    sync = mailbox_sync(mailbox=reading)
    assert sync.stored >= 2
    assert TimelineEvent.objects.filter(contact=replier, kind="reply_received").exists()
    assert Suppression.objects.filter(team=team, email=bouncer.email, reason="bounce").exists()

    # Step 2, two days later: not to the replier, not to the bounced address; threaded under step 1.
    campaigns_advance(now=T0 + timedelta(minutes=1))
    assert Enrolment.objects.get(campaign=campaign, contact=replier).reason == "replied"
    assert Enrolment.objects.get(campaign=campaign, contact=bouncer).reason == "bounced"
    campaigns_advance(now=T0 + timedelta(days=1))
    assert not CampaignMessage.objects.filter(step__position=2).exists()  # not due yet
    assert campaigns_advance(now=T0 + timedelta(days=2, minutes=5)).created == 48
    celery_worker_process.wait_for(lambda: SentMessage.objects.filter(team=team, status="sent").count() == 98,
                                   timeout=120, message="step 2 not sent")
    step2 = _received(smtp, "Step 2 for")
    assert len(step2) == 48
    recipients = {str(m["To"]).split("<")[-1].rstrip(">") for m in step2}
    assert replier.email not in recipients and bouncer.email not in recipients
    step1_id = {p.email: first_of[p.pk].message_id for p in people}
    for message in step2:  # each replies in its own contact's step-1 thread
        recipient = str(message["To"]).split("<")[-1].rstrip(">")
        assert str(message["In-Reply-To"]).strip() == step1_id[recipient]
        assert step1_id[recipient] in str(message["References"])
        assert str(message["Subject"]).startswith("Re: [e2e] Hello")

    # Step 3 and the end: every (contact, step) sent exactly once; each Message-ID seen once.
    campaigns_advance(now=T0 + timedelta(days=2, minutes=6))
    campaigns_advance(now=T0 + timedelta(days=4, minutes=10))
    celery_worker_process.wait_for(lambda: SentMessage.objects.filter(team=team, status="sent").count() == 146,
                                   timeout=120, message="step 3 not sent")
    campaigns_advance(now=T0 + timedelta(days=4, minutes=11))
    campaigns_advance(now=T0 + timedelta(days=4, minutes=12))
    assert len(_received(smtp, "Step 3 for")) == 48
    ids = [str(m["Message-ID"]) for m in _received(smtp, "[e2e]")]
    assert len(ids) == len(set(ids)) == 146
    statuses = sorted(Enrolment.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert statuses.count("completed") == 48 and statuses.count("stopped") == 2
    campaign.refresh_from_db()
    assert campaign.status == "completed"
    assert len(_received(smtp, "Re: [e2e] Hello")) == 96  # steps 2 and 3 in step 1's threads


def test_campaign_steps_keep_the_mailbox_cap_and_the_recipients_window(settings, celery_worker_process, mail_settings):
    """The campaign's window is read in each recipient's time zone (the campaign clock is the test's);
    the mailbox's daily cap is enforced by the real worker and dispatcher at claim time: the capped
    message stays in the outbox with the reason shown, and is not sent by a later dispatcher run."""
    from outreach.services.outbox import sent_messages_dispatch

    settings.OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX = 100
    team, _ = make_team_with_owner("Campaign caps")
    mailbox = _open_rules(make_smtp_mailbox(team, mail_settings, imap=False), daily_cap=5)
    in_utc = [make_contact(team, email=f"u{i}@caps.example.org", first_name=f"U{i}", time_zone="UTC")
              for i in range(6)]
    far_east = [make_contact(team, email=f"k{i}@caps.example.org", first_name=f"K{i}", time_zone="Pacific/Kiritimati")
                for i in range(3)]  # UTC+14: 12:00 UTC is 02:00 there, the next day
    campaign = campaign_create(team=team, data={"name": "Caps", "mailboxes": [mailbox], "send_days": "",
                                                "window_start": time(11, 0), "window_end": time(13, 0),
                                                "time_zone": "UTC"})
    campaign_step_save(campaign=campaign, data={}, variants=[VariantData("A", "[caps] Hi {{ first_name }}", "<p>Hi</p>")])
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    assert campaign_enrol(campaign=campaign, selection=Selection.of_ids([c.pk for c in in_utc + far_east]), now=noon).enrolled == 9
    campaign_start(campaign=campaign, now=noon)

    result = campaigns_advance(now=noon)
    assert result.created == 6 and result.rescheduled == 3
    for enrolment in Enrolment.objects.filter(campaign=campaign, contact__in=far_east):
        assert enrolment.next_due_at == noon + timedelta(hours=9)  # 11:00 in Kiritimati
        assert not CampaignMessage.objects.filter(enrolment=enrolment).exists()

    celery_worker_process.wait_for(lambda: SentMessage.objects.filter(team=team, status="sent").count() == 5,
                                   timeout=120, message="the first five were not sent")

    def held_by_the_cap() -> bool:
        sent_messages_dispatch()  # the dispatcher runs again (as beat would): the cap holds the sixth back
        return SentMessage.objects.filter(team=team, status="queued",
                                          hold_reason__startswith="waiting: daily cap of 5 reached; next send").exists()

    try:
        celery_worker_process.wait_for(held_by_the_cap, timeout=60, message="the sixth is not held by the daily cap")
    except pytest.fail.Exception:
        unsent = SentMessage.objects.filter(team=team).exclude(status="sent").values("status", "due_at", "hold_reason")
        pytest.fail(f"the sixth is not held by the daily cap: {list(unsent)}", pytrace=False)
    held = SentMessage.objects.get(team=team, status="queued")
    assert held.due_at > timezone.now() + timedelta(hours=1)  # not before the mailbox's next day
    assert SentMessage.objects.filter(team=team, status="sent").count() == 5
    assert len(_received(mail_settings.smtp, "[caps] Hi")) == 5
