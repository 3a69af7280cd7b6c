"""Campaign services with a controllable clock: building, enrolment (skips, rotation, no duplicates),
the scheduler (delays, business days, recipient-zone windows, stops, A/B, pause/resume/stop) and
the database guarantee of one message per (enrolment, step)."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from outreach.campaigns.models import Campaign, CampaignMessage, Enrolment
from outreach.campaigns.schedule import add_delay
from outreach.services.sending_rules import parse_send_days as parse_days
from outreach.campaigns.services import (
    VariantData,
    campaign_create,
    campaign_enrol,
    campaign_pause,
    campaign_start,
    campaign_step_delete,
    campaign_step_save,
    campaign_stop,
    campaigns_advance,
)
from outreach.models import Contact, SentMessage, Suppression, TimelineEvent
from outreach.services.sending_rules import in_window, window_opening
from tests.factories import make_contact, make_mailbox, make_team_user

pytestmark = pytest.mark.django_db

UTC = dt_timezone.utc
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday, 10:00 UTC


def build(team, mailboxes, *, steps=3, **options):
    campaign = campaign_create(team=team, data={"name": options.pop("name", "Q1 outbound"), "mailboxes": mailboxes,
                                                "window_start": time(0, 0), "window_end": time(0, 0),
                                                "send_days": "", **options})
    for position in range(1, steps + 1):
        campaign_step_save(campaign=campaign, data={"delay_amount": 0 if position == 1 else 2, "delay_unit": "days"},
                           variants=[VariantData("A", f"Step {position} for {{{{ first_name }}}}",
                                                 f"<p>Hi {{{{ first_name }}}}, step {position} from {{{{ sender.first_name }}}}</p>")])
    return campaign


def contacts(team, n, **fields):
    return [make_contact(team, f"person{i}@company{i}.example.com", first_name=f"P{i}", **fields) for i in range(n)]


def mark_sent(at, messages=None):
    qs = messages if messages is not None else SentMessage.objects.filter(status="queued")
    for message in qs:
        SentMessage.objects.filter(pk=message.pk).update(status="sent", sent_at=at)


def step_messages(position):
    return SentMessage.objects.filter(campaign_message__step__position=position)


@pytest.fixture
def setup(team_user, settings):
    settings.OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX = 100
    team, user = team_user
    boxes = [make_mailbox(team, sender_name="Ann Lee"), make_mailbox(team, sender_name="Carl Diaz")]
    return team, user, boxes


# --- pure time arithmetic ---------------------------------------------------------------------


def test_business_days_skip_the_weekend_in_the_recipients_zone():
    friday = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    zone = ZoneInfo("Europe/Paris")
    assert add_delay(friday, amount=1, unit="days", business_days=True, zone=zone).astimezone(zone).weekday() == 0
    assert add_delay(friday, amount=1, unit="days", business_days=False, zone=zone) == friday + timedelta(days=1)
    assert add_delay(friday, amount=5, unit="hours", business_days=True, zone=zone) == friday + timedelta(hours=5)


def test_window_opening_in_a_zone_and_across_midnight():
    ny = ZoneInfo("America/New_York")
    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 03:00 in New York
    opening = window_opening(at, zone=ny, days=parse_days("0,1,2,3,4"), start=time(9), end=time(17))
    assert opening.astimezone(ny).replace(tzinfo=None) == datetime(2026, 12, 1, 9, 0)
    saturday = datetime(2026, 12, 5, 12, 0, tzinfo=ny)
    assert window_opening(saturday, zone=ny, days=parse_days("0,1,2,3,4"), start=time(9), end=time(17)).weekday() == 0
    late = datetime(2026, 12, 1, 23, 30, tzinfo=ny)
    assert in_window(late, parse_days(""), time(22), time(6))
    with pytest.raises(ValidationError):
        parse_days("1,8")


# --- building -----------------------------------------------------------------------------------


def test_step_templates_are_checked_per_variant_and_steps_renumber(setup):
    team, _, boxes = setup
    campaign = build(team, boxes, steps=2)
    with pytest.raises(ValidationError) as info:
        campaign_step_save(campaign=campaign, data={}, variants=[VariantData("A", "Hi {{ frist_name }}", "<p>x</p>"),
                                                                 VariantData("B", "Hi", "{% include 'x' %}")])
    assert set(info.value.message_dict) == {"variant_A_subject", "variant_B_html_body"}
    assert "Line 1: unknown merge field “frist_name”" in info.value.message_dict["variant_A_subject"][0]
    campaign_step_delete(step=campaign.steps.get(position=1))
    assert list(campaign.steps.values_list("position", flat=True)) == [1]


def test_start_needs_steps_and_an_active_mailbox(setup):
    team, _, boxes = setup
    empty = campaign_create(team=team, data={"name": "Empty"})
    with pytest.raises(ValidationError) as info:
        campaign_start(campaign=empty)
    assert "Add at least one step." in info.value.messages and any("mailbox" in m for m in info.value.messages)


# --- enrolment -------------------------------------------------------------------------------------


def test_enrol_skips_with_reasons_rotates_mailboxes_and_never_duplicates(setup):
    team, user, boxes = setup
    campaign = build(team, boxes)
    people = contacts(team, 6)
    nameless = make_contact(team, "nameless@example.com")
    suppressed = make_contact(team, "gone@example.com", first_name="Gone")
    Suppression.objects.create(team=team, email="gone@example.com", reason=Suppression.Reason.BOUNCE)
    busy = make_contact(team, "busy@example.com", first_name="Busy")
    other = build(team, boxes, name="Other")
    campaign_enrol(campaign=other, contact_ids=[busy.pk], now=T0)
    ids = [c.pk for c in (*people, nameless, suppressed, busy)]
    result = campaign_enrol(campaign=campaign, contact_ids=ids, actor=user, now=T0)
    assert result.as_dict() == {"enrolled": 6, "already": 0, "skipped_total": 3,
                                "skipped": {"missing_field": 1, "suppressed": 1, "active_elsewhere": 1}}
    skipped = Enrolment.objects.get(campaign=campaign, contact=nameless)
    assert skipped.status == "skipped" and skipped.detail == "Empty: first_name"
    by_mailbox = sorted(Enrolment.objects.filter(campaign=campaign, status="active")
                        .values_list("mailbox_id", flat=True))
    assert by_mailbox.count(boxes[0].pk) == 3 and by_mailbox.count(boxes[1].pk) == 3
    again = campaign_enrol(campaign=campaign, contact_ids=ids, now=T0)
    assert again.enrolled == 0 and again.already == 6
    assert Enrolment.objects.filter(campaign=campaign).count() == 9
    assert TimelineEvent.objects.filter(kind="campaign_enrolled", contact__in=people).count() == 6
    # A contact fixed since is enrolled on the next try.
    Contact.objects.filter(pk=nameless.pk).update(first_name="Named")
    assert campaign_enrol(campaign=campaign, contact_ids=[nameless.pk], now=T0).enrolled == 1


def test_enrol_ignores_other_teams_contacts(setup):
    team, _, boxes = setup
    campaign = build(team, boxes)
    other_team, _ = make_team_user()
    theirs = make_contact(other_team, "theirs@example.com", first_name="T")
    assert campaign_enrol(campaign=campaign, contact_ids=[theirs.pk], now=T0).enrolled == 0
    assert not Enrolment.objects.exists()


# --- the scheduler ------------------------------------------------------------------------------


def test_three_steps_with_delays_threading_and_completion(setup):
    team, _, boxes = setup
    campaign = build(team, boxes)
    people = contacts(team, 4)
    campaign_enrol(campaign=campaign, contact_ids=[c.pk for c in people], now=T0)
    assert campaigns_advance(now=T0).created == 0  # draft: nothing goes out
    campaign_start(campaign=campaign, now=T0)
    assert campaigns_advance(now=T0).created == 4
    assert campaigns_advance(now=T0).created == 0  # a second run creates nothing more
    first = step_messages(1).get(contact=people[0])
    assert first.subject == "Step 1 for P0" and "Hi P0, step 1 from" in first.html_body
    assert first.mailbox_id in {b.pk for b in boxes} and first.status == "queued"
    mark_sent(T0)
    assert campaigns_advance(now=T0).rescheduled == 4
    assert campaigns_advance(now=T0 + timedelta(days=1)).created == 0
    result = campaigns_advance(now=T0 + timedelta(days=2, minutes=1))
    assert result.created == 4
    second = step_messages(2).get(contact=people[0])
    assert second.subject == "Re: Step 1 for P0"  # replies in step 1's thread
    first.refresh_from_db()
    assert second.in_reply_to == first.message_id and first.message_id in second.references.split()
    mark_sent(T0 + timedelta(days=2))
    campaigns_advance(now=T0 + timedelta(days=2, minutes=2))
    campaigns_advance(now=T0 + timedelta(days=4, minutes=2))
    mark_sent(T0 + timedelta(days=4))
    result = campaigns_advance(now=T0 + timedelta(days=4, minutes=3))
    assert result.completed == 4 and result.campaigns_completed == 1
    campaign.refresh_from_db()
    assert campaign.status == "completed"
    assert CampaignMessage.objects.count() == 12
    assert set(Enrolment.objects.values_list("status", flat=True)) == {"completed"}


def test_reply_bounce_and_unsubscribe_stop_later_steps(setup):
    team, _, boxes = setup
    campaign = build(team, boxes)
    replier, bouncer, stays = contacts(team, 3)
    campaign_enrol(campaign=campaign, contact_ids=[replier.pk, bouncer.pk, stays.pk], now=T0)
    campaign_start(campaign=campaign, now=T0)
    campaigns_advance(now=T0)
    mark_sent(T0)
    TimelineEvent.objects.create(team=team, contact=replier, kind="reply_received", summary="Replied: sounds good")
    Suppression.objects.create(team=team, email=bouncer.email, reason=Suppression.Reason.BOUNCE, detail="5.1.1 unknown")
    result = campaigns_advance(now=T0 + timedelta(days=3))
    assert result.stopped == 2 and result.created == 1
    assert Enrolment.objects.get(contact=replier).reason == "replied"
    assert Enrolment.objects.get(contact=bouncer).reason == "bounced"
    assert list(step_messages(2).values_list("contact_id", flat=True)) == [stays.pk]
    assert TimelineEvent.objects.filter(contact=replier, kind="campaign_stopped").exists()


def test_stop_the_whole_company_on_reply(setup):
    team, _, boxes = setup
    campaign = build(team, boxes, stop_company_on_reply=True)
    a = make_contact(team, "a@acme.example.com", first_name="A")
    b = make_contact(team, "b@acme.example.com", first_name="B")
    c = make_contact(team, "c@other.example.com", first_name="C")
    campaign_enrol(campaign=campaign, contact_ids=[a.pk, b.pk, c.pk], now=T0)
    campaign_start(campaign=campaign, now=T0)
    campaigns_advance(now=T0)
    TimelineEvent.objects.create(team=team, contact=a, kind="reply_received", summary="Replied")
    campaigns_advance(now=T0 + timedelta(minutes=1))
    assert dict(Enrolment.objects.values_list("contact__email", "reason")) == {
        "a@acme.example.com": "replied", "b@acme.example.com": "company_replied", "c@other.example.com": ""}


def test_auto_reply_stops_only_when_the_campaign_says_so(setup):
    team, _, boxes = setup
    strict = build(team, boxes, name="Strict", stop_on_auto_reply=True)
    lenient = build(team, boxes, name="Lenient", skip_active_elsewhere=False)
    person = make_contact(team, "ooo@example.com", first_name="O")
    for campaign in (strict, lenient):
        campaign_enrol(campaign=campaign, contact_ids=[person.pk], now=T0)
        campaign_start(campaign=campaign, now=T0)
    TimelineEvent.objects.create(team=team, contact=person, kind="auto_reply", summary="Out of office")
    campaigns_advance(now=T0)
    assert Enrolment.objects.get(campaign=strict).reason == "auto_replied"
    assert Enrolment.objects.get(campaign=lenient).status == "active"


def test_send_window_in_the_recipients_zone(setup):
    team, _, boxes = setup
    campaign = build(team, boxes, time_zone="Europe/Paris")
    Campaign.objects.filter(pk=campaign.pk).update(window_start=time(9), window_end=time(17), send_days="0,1,2,3,4")
    campaign.refresh_from_db()
    new_york = make_contact(team, "ny@example.com", first_name="N", time_zone="America/New_York")
    paris = make_contact(team, "fr@example.com", first_name="F")  # no zone: the campaign's
    campaign_enrol(campaign=campaign, contact_ids=[new_york.pk, paris.pk], now=T0)
    campaign_start(campaign=campaign, now=T0)
    result = campaigns_advance(now=T0)  # 10:00 UTC = 11:00 Paris, 05:00 New York
    assert result.created == 1 and result.rescheduled == 1
    waiting = Enrolment.objects.get(contact=new_york)
    assert waiting.next_due_at.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None) == datetime(2026, 12, 1, 9, 0)
    assert campaigns_advance(now=waiting.next_due_at).created == 1


def test_pause_creates_nothing_and_resume_continues_without_skipping(setup):
    team, _, boxes = setup
    campaign = build(team, boxes)
    people = contacts(team, 3)
    campaign_enrol(campaign=campaign, contact_ids=[c.pk for c in people], now=T0)
    campaign_start(campaign=campaign, now=T0)
    campaigns_advance(now=T0)
    mark_sent(T0)
    campaign_pause(campaign=campaign)
    assert campaigns_advance(now=T0 + timedelta(days=3)).created == 0
    campaign_start(campaign=campaign, now=T0 + timedelta(days=5))
    assert campaigns_advance(now=T0 + timedelta(days=5)).created == 3
    assert step_messages(2).count() == 3 and step_messages(3).count() == 0


def test_stop_ends_every_active_enrolment(setup):
    team, _, boxes = setup
    campaign = build(team, boxes)
    people = contacts(team, 2)
    campaign_enrol(campaign=campaign, contact_ids=[c.pk for c in people], now=T0)
    campaign_start(campaign=campaign, now=T0)
    campaign_stop(campaign=campaign, now=T0)
    assert campaigns_advance(now=T0).created == 0
    assert set(Enrolment.objects.values_list("reason", flat=True)) == {"campaign_stopped"}
    with pytest.raises(ValidationError):
        campaign_enrol(campaign=campaign, contact_ids=[people[0].pk])


def test_outbox_room_per_mailbox_bounds_what_waits(setup, settings):
    settings.OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX = 2
    team, _, boxes = setup
    campaign = build(team, boxes)
    people = contacts(team, 10)
    campaign_enrol(campaign=campaign, contact_ids=[c.pk for c in people], now=T0)
    campaign_start(campaign=campaign, now=T0)
    assert campaigns_advance(now=T0).created == 4  # 2 per mailbox
    mark_sent(T0)
    assert campaigns_advance(now=T0).created == 4


def test_a_full_mailbox_does_not_starve_other_campaigns(setup, settings):
    """Many older due steps on a mailbox whose outbox share is full must not hide the due steps of
    another mailbox from the scheduler (it looks at a bounded number of candidates per run)."""
    settings.OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX = 2
    team, _, (full, other) = setup
    busy = build(team, [full], steps=1, name="Busy")
    campaign_enrol(campaign=busy, contact_ids=[c.pk for c in contacts(team, 12)], now=T0)
    campaign_start(campaign=busy, now=T0)
    assert campaigns_advance(now=T0, batch=1).created == 1
    assert campaigns_advance(now=T0, batch=1).created == 1  # the busy mailbox's share (2) is now full
    later = build(team, [other], steps=1, name="Later")
    campaign_enrol(campaign=later, contact_ids=[make_contact(team, "late@example.net", first_name="Late").pk],
                   now=T0 + timedelta(minutes=5))
    campaign_start(campaign=later, now=T0 + timedelta(minutes=5))
    assert campaigns_advance(now=T0 + timedelta(minutes=6), batch=1).created == 1
    assert SentMessage.objects.filter(mailbox=other, to=["late@example.net"]).exists()
    assert SentMessage.objects.filter(mailbox=full).count() == 2


def test_ab_split_is_weighted_and_stable(setup):
    team, _, boxes = setup
    campaign = campaign_create(team=team, data={"name": "AB", "mailboxes": boxes, "window_start": time(0),
                                                "window_end": time(0), "send_days": ""})
    campaign_step_save(campaign=campaign, data={}, variants=[VariantData("A", "Subject A", "<p>A</p>", 50),
                                                             VariantData("B", "Subject B", "<p>B</p>", 50)])
    people = contacts(team, 60)
    campaign_enrol(campaign=campaign, contact_ids=[c.pk for c in people], now=T0)
    campaign_start(campaign=campaign, now=T0)
    campaigns_advance(now=T0)
    counts = {label: CampaignMessage.objects.filter(variant__label=label).count() for label in "AB"}
    assert counts["A"] + counts["B"] == 60 and 15 <= counts["A"] <= 45
    assert all(m.sent_message.subject == f"Subject {m.variant.label}" for m in CampaignMessage.objects.select_related("variant", "sent_message"))


def test_edited_step_applies_to_messages_not_yet_created(setup):
    team, _, boxes = setup
    campaign = build(team, boxes, steps=2)
    person = contacts(team, 1)[0]
    campaign_enrol(campaign=campaign, contact_ids=[person.pk], now=T0)
    campaign_start(campaign=campaign, now=T0)
    campaigns_advance(now=T0)
    mark_sent(T0)
    step2 = campaign.steps.get(position=2)
    campaign_step_save(campaign=campaign, step=step2, data={"delay_amount": 1, "delay_unit": "hours"},
                       variants=[VariantData("A", "Edited for {{ first_name }}", "<p>new text</p>")])
    campaigns_advance(now=T0 + timedelta(minutes=1))
    campaigns_advance(now=T0 + timedelta(hours=2))
    assert "new text" in step_messages(2).get().html_body


def test_one_message_per_enrolment_and_step_is_a_database_rule(setup):
    team, _, boxes = setup
    campaign = build(team, boxes, steps=1)
    person = contacts(team, 1)[0]
    campaign_enrol(campaign=campaign, contact_ids=[person.pk], now=T0)
    campaign_start(campaign=campaign, now=T0)
    campaigns_advance(now=T0)
    link = CampaignMessage.objects.get()
    other = SentMessage.objects.create(team=team, mailbox=boxes[0], contact=person, to=[person.email], subject="dup",
                                       message_id="<dup@acme.com>", provider="smtp")
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignMessage.objects.create(enrolment=link.enrolment, step=link.step, sent_message=other)
    # A scheduler that finds the enrolment already moved on creates nothing.
    Enrolment.objects.filter(pk=link.enrolment_id).update(next_step=1, next_due_at=T0)
    assert campaigns_advance(now=T0).created == 0
    assert CampaignMessage.objects.count() == 1


def test_failed_step_stops_the_enrolment(setup):
    team, _, boxes = setup
    campaign = build(team, boxes)
    person = contacts(team, 1)[0]
    campaign_enrol(campaign=campaign, contact_ids=[person.pk], now=T0)
    campaign_start(campaign=campaign, now=T0)
    campaigns_advance(now=T0)
    SentMessage.objects.update(status="failed", error_message="550 no such user")
    assert campaigns_advance(now=T0 + timedelta(minutes=1)).stopped == 1
    enrolment = Enrolment.objects.get()
    assert enrolment.reason == "send_failed" and "550 no such user" in enrolment.detail


def test_pause_holds_waiting_messages_in_the_outbox_and_stop_cancels_them(setup):
    from outreach.campaigns.services import PAUSED_UNTIL
    from outreach.services.outbox import sent_messages_dispatch

    team, _, boxes = setup
    campaign = build(team, boxes)
    people = contacts(team, 4)
    campaign_enrol(campaign=campaign, contact_ids=[c.pk for c in people], now=T0)
    campaign_start(campaign=campaign, now=T0)
    campaigns_advance(now=T0)
    campaign_pause(campaign=campaign)
    waiting = SentMessage.objects.filter(campaign_message__isnull=False)
    assert waiting.count() == 4 and set(waiting.values_list("due_at", flat=True)) == {PAUSED_UNTIL}
    assert set(waiting.values_list("hold_reason", flat=True)) == {"waiting: the campaign is paused"}
    claimed = sent_messages_dispatch(enqueue=lambda chunk, token: None)
    assert claimed.claimed == []  # the dispatcher leaves them alone
    campaign_start(campaign=campaign)
    assert all(m.due_at < PAUSED_UNTIL and not m.hold_reason for m in waiting)
    campaign_stop(campaign=campaign)
    assert set(waiting.values_list("status", flat=True)) == {"cancelled"}
    assert TimelineEvent.objects.filter(kind="message_cancelled").count() == 4
