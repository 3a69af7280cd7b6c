"""Pause and resume a running campaign while real worker processes are SIGKILLed and restarted.

A real prefork Celery worker and a real ``celery beat`` run both the campaign scheduler and the
outbox dispatcher; the test pauses and resumes the campaign and kills pool children and the
worker's main process at random moments. Afterwards every (contact, step) reached the SMTP server
exactly once — or, only where a kill fell after the hand-over point, is ``unknown`` (may have been
delivered) and waits for the user — and no Message-ID was delivered twice.
"""
from __future__ import annotations

import email
import email.policy
import os
import random
import signal
import time
from collections import Counter
from datetime import time as dtime

import pytest

from outreach.campaigns.models import CampaignMessage, Enrolment
from outreach.campaigns.services import (VariantData, campaign_create, campaign_enrol, campaign_pause, campaign_start,
                                         campaign_step_save)
from outreach.models import SentMessage
from outreach.selectors import Selection
from tests.factories import make_contact, make_smtp_mailbox, make_team_with_owner
from tests.processes import child_pids, kill_group, prefork_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STEPS = 3
CONTACTS = 12


def _build(servers):
    team, _ = make_team_with_owner("Campaign crash")
    mailbox = make_smtp_mailbox(team, servers, imap=False)
    for name, value in {"daily_cap": 0, "min_interval_seconds": 0, "interval_jitter_seconds": 0, "send_days": "",
                        "send_window_start": dtime(0), "send_window_end": dtime(0)}.items():
        setattr(mailbox, name, value)
    mailbox.save()
    people = [make_contact(team, email=f"k{i}@crash.example.org", first_name=f"K{i}") for i in range(CONTACTS)]
    campaign = campaign_create(team=team, data={"name": "Crash", "mailboxes": [mailbox], "send_days": "",
                                                "window_start": dtime(0), "window_end": dtime(0)})
    for position in range(1, STEPS + 1):
        campaign_step_save(campaign=campaign, data={"delay_amount": 0, "delay_unit": "hours"},
                           variants=[VariantData("A", "[crash] {{ first_name }}", f"<p>Step {position} for {{{{ email }}}}</p>")])
    assert campaign_enrol(campaign=campaign, selection=Selection.of_ids([p.pk for p in people])).enrolled == CONTACTS
    return campaign


def _delivered(smtp) -> Counter:
    """(recipient, step) → how many times the SMTP server received it."""
    seen = Counter()
    for received in smtp.messages:
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        html = parsed.get_body(("html",))
        text = html.get_content() if html is not None else ""
        for position in range(1, STEPS + 1):
            for rcpt in received.rcpt_tos:
                if f"Step {position} for {rcpt}" in text:
                    seen[(rcpt, position)] += 1
    return seen


def _finished(campaign) -> bool:
    """Nothing left to happen on its own: every enrolment completed, or waiting on an ``unknown`` step."""
    for enrolment in Enrolment.objects.filter(campaign=campaign, status="active"):
        last = SentMessage.objects.filter(campaign_message__enrolment=enrolment).order_by("-pk").first()
        if last is None or last.status != "unknown":
            return False
    return True


def test_pause_resume_with_worker_kills_sends_every_step_once(celery_worker_env, mail_settings, tmp_path):
    rng = random.Random(int(os.environ.get("OUTREACH_CRASH_SEED", "13")))
    mail_settings.smtp.data_delay = 0.08
    worker, beat = prefork_worker(celery_worker_env, tmp_path, name="campaign-crash", redis_db=100,
                                  OUTREACH_CAMPAIGN_TICK_SECONDS="0.5", OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX="4")
    campaign = _build(mail_settings)
    campaign_start(campaign=campaign)
    events = Counter()
    try:
        worker.start(timeout=60)
        beat.start()
        for _ in range(14):
            time.sleep(rng.uniform(0.4, 1.2))
            campaign.refresh_from_db()
            if _finished(campaign):
                break
            roll = rng.random()
            if roll < 0.25 and campaign.status == "active":
                campaign_pause(campaign=campaign)
                events["pause"] += 1
            elif roll < 0.5 and campaign.status == "paused":
                campaign_start(campaign=campaign)
                events["resume"] += 1
            elif roll < 0.75 and child_pids(worker.process.pid):
                os.kill(rng.choice(child_pids(worker.process.pid)), signal.SIGKILL)
                events["pool child killed"] += 1
            else:
                os.kill(worker.process.pid, signal.SIGKILL)
                time.sleep(0.3)
                kill_group(worker)
                worker.start(timeout=60)
                events["main process killed"] += 1
        campaign.refresh_from_db()
        if campaign.status == "paused":
            campaign_start(campaign=campaign)
            events["resume"] += 1
        worker.wait_for(lambda: _finished(campaign), timeout=150, message="campaign did not finish")
    finally:
        beat.stop()
        kill_group(worker)
    assert events["pause"] >= 1 and events["resume"] >= 1 and (events["pool child killed"] + events["main process killed"]) >= 2, events

    ids = Counter(mail_settings.smtp.message_ids())
    assert all(n == 1 for n in ids.values()), f"a Message-ID reached the server twice: {ids.most_common(3)}"
    delivered = _delivered(mail_settings.smtp)
    assert all(n == 1 for n in delivered.values()), f"a step reached a contact twice: {delivered.most_common(3)}"
    for link in CampaignMessage.objects.filter(enrolment__campaign=campaign).select_related("sent_message", "step", "enrolment__contact"):
        message, key = link.sent_message, (link.enrolment.contact.email, link.step.position)
        assert message.status in ("sent", "unknown"), (key, message.status, message.error_message)
        if message.status == "sent":
            assert delivered[key] == 1, f"sent but never delivered: {key}"
        else:
            assert message.handed_over_at is not None, key  # unknown only past the hand-over point
    for enrolment in Enrolment.objects.filter(campaign=campaign).select_related("contact"):
        if enrolment.status == "completed":
            assert all(delivered[(enrolment.contact.email, p)] == 1 for p in range(1, STEPS + 1)), enrolment.contact.email
    # Every enrolment either completed or waits on a step that may have been delivered (never a
    # stranded one), and kills are the only source of those: each killed pool process can leave at most
    # the message it was handing over plus the one before it whose outcome was not yet committed (the
    # engine commits a "sent" outcome with the next message's hand-over), and killing the main process
    # kills both pool processes.
    completed = Enrolment.objects.filter(campaign=campaign, status="completed").count()
    unknown = SentMessage.objects.filter(campaign_message__enrolment__campaign=campaign, status="unknown").count()
    assert completed + unknown == CONTACTS, f"{completed} completed, {unknown} unknown of {CONTACTS}; events {dict(events)}"
    assert unknown <= 2 * (events["pool child killed"] + 2 * events["main process killed"]), (unknown, dict(events))
    print(f"events={dict(events)} completed={completed} unknown={unknown}")
