"""Campaign writes: build (campaign, steps, variants), enrol contacts, start/pause/resume/stop, and
the scheduler that turns due steps into outbox messages.

How a step becomes a message (:func:`campaigns_advance`, run by Celery beat every few seconds):

1. **Stops.** An active enrolment whose contact replied (or auto-replied, when the campaign says
   so), bounced, unsubscribed or was suppressed since it was enrolled is stopped, with the reason;
   with "stop the whole company" everyone at the replier's email domain stops too.
2. **Advance.** When the previous step's message is ``sent``, the next step is due its delay after
   the send (business days counted in the recipient's zone); after the last step the enrolment is
   completed. A failed or cancelled step stops the enrolment ("a step could not be sent").
3. **Create.** Due enrolments of active campaigns get their step rendered for the contact (the
   variant is a pure function of enrolment and step, so A/B splits are stable) and queued through
   ``sent_message_create`` — the outbox then applies the mailbox's cap, interval and window. The
   SentMessage, its :class:`CampaignMessage` link (unique per enrolment and step) and the enrolment's
   move to the next step commit in one transaction, so a scheduler killed at any point, or two
   schedulers at once, never send a step twice or skip one. Only a few messages per mailbox wait in
   the outbox at a time (``OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX``), so an edited step applies to every
   message not yet created, and a paused campaign stops at once.

Every function that decides on time takes ``now`` (default ``timezone.now()``).
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from typing import Any, Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from ..message_templates.engine import TemplateInfo
from ..message_templates.services import merge_context, message_template_render, template_check
from ..models import Contact, Mailbox, SentMessage, Suppression, Team, TimelineEvent
from ..selectors import Selection, contacts_selected, id_batches
from ..services.sending import sent_message_create, sent_messages_cancel
from ..services.common import is_unique_violation, model_create, model_update
from ..services.timeline import timeline_event_record
from ..services.sending_rules import parse_send_days, validate_zone, window_opening, zone_or_default
from .models import Campaign, CampaignMessage, CampaignStep, Enrolment, StepVariant
from .schedule import add_delay

logger = logging.getLogger(__name__)

S = Campaign.Status
E = Enrolment.Status
R = Enrolment.Reason

#: Timeline kinds (written by outreach.inbound) that stop an enrolment, by the reason they give.
STOP_EVENT_KINDS = {"reply_received": R.REPLIED, "message_bounced": R.BOUNCED, "unsubscribed": R.UNSUBSCRIBED}
AUTO_REPLY_KIND = "auto_reply"
SUPPRESSION_REASONS = {Suppression.Reason.BOUNCE: R.BOUNCED, Suppression.Reason.UNSUBSCRIBE: R.UNSUBSCRIBED,
                       Suppression.Reason.COMPLAINT: R.UNSUBSCRIBED, Suppression.Reason.MANUAL: R.SUPPRESSED}
#: SentMessage statuses after which nothing more happens to a message on its own.
SETTLED = ("sent", "failed", "cancelled")
CAMPAIGN_FIELDS = ("name", "time_zone", "send_days", "window_start", "window_end", "stop_on_auto_reply",
                   "stop_company_on_reply", "skip_active_elsewhere")
STEP_FIELDS = ("delay_amount", "delay_unit", "business_days_only", "new_thread")


# --- building ---------------------------------------------------------------------------------


def _clean_campaign(team: Team, data: dict[str, Any]) -> tuple[dict[str, Any], list[Mailbox] | None]:
    values = {k: data[k] for k in CAMPAIGN_FIELDS if k in data}
    errors: dict[str, str] = {}
    if "name" in values:
        values["name"] = (values["name"] or "").strip()
        if not values["name"]:
            errors["name"] = "Give the campaign a name."
    if "time_zone" in values:
        try:
            validate_zone(values["time_zone"])
        except ValidationError as err:
            errors["time_zone"] = err.messages[0]
    if "send_days" in values:
        try:
            parse_send_days(values["send_days"])
        except ValidationError as err:
            errors["send_days"] = err.messages[0]
    mailboxes = None
    if "mailboxes" in data:
        mailboxes = list(data["mailboxes"] or [])
        if any(m.team_id != team.pk for m in mailboxes):
            errors["mailboxes"] = "Choose mailboxes of your team."
    if errors:
        raise ValidationError(errors)
    return values, mailboxes


def _duplicate_name(name: str) -> ValidationError:
    return ValidationError({"name": f"Your team already has a campaign named “{name}”."})


def campaign_create(*, team: Team, actor=None, data: dict[str, Any]) -> Campaign:
    """Create a draft campaign from ``data`` (CAMPAIGN_FIELDS and ``mailboxes``). Returns it.

    Raises ValidationError for a blank or duplicate name, an unknown time zone, bad send days or
    another team's mailbox.
    """
    values, mailboxes = _clean_campaign(team, {"name": "", **data})
    try:
        with transaction.atomic():
            campaign = model_create(Campaign, team=team, created_by=actor, **values)
            if mailboxes:
                campaign.mailboxes.set(mailboxes)
    except IntegrityError as err:
        raise _duplicate_name(values["name"]) from err
    return campaign


def campaign_update(*, campaign: Campaign, data: dict[str, Any]) -> Campaign:
    """Save the changed CAMPAIGN_FIELDS (through :func:`model_update`) and ``mailboxes`` of
    ``campaign`` (any state; changes apply to messages not yet created). Same errors as
    :func:`campaign_create`."""
    values, mailboxes = _clean_campaign(campaign.team, data)
    try:
        with transaction.atomic():
            model_update(campaign, fields=CAMPAIGN_FIELDS, data=values)
            if mailboxes is not None:
                campaign.mailboxes.set(mailboxes)
    except IntegrityError as err:  # a concurrent save of the same name
        raise _duplicate_name(campaign.name) from err
    except ValidationError as err:
        if is_unique_violation(err):
            raise _duplicate_name(campaign.name) from err
        raise
    return campaign


@dataclass(frozen=True)
class VariantData:
    """One A/B version of a step: ``weight`` is its relative share of contacts."""

    label: str
    subject: str
    html_body: str
    weight: int = 100


def campaign_step_save(*, campaign: Campaign, step: CampaignStep | None = None, data: dict[str, Any],
                       variants: list[VariantData]) -> CampaignStep:
    """Add a step at the end of ``campaign`` (``step`` None) or change ``step``: STEP_FIELDS from
    ``data`` and its variants (replaced by ``variants``; labels unique, weights > 0). Returns the step.

    Every variant's subject and body are checked as templates; raises ValidationError with keys
    ``variant_<label>_subject`` / ``variant_<label>_html_body`` (line numbers in the message),
    ``variants`` or ``delay_amount``.
    """
    if step is not None and step.campaign_id != campaign.pk:
        raise ValidationError("That step belongs to another campaign.")
    values = {k: data[k] for k in STEP_FIELDS if k in data}
    errors: dict[str, list[str]] = {}
    if values.get("delay_unit", CampaignStep.Unit.DAYS) not in CampaignStep.Unit.values:
        errors["delay_unit"] = ["Choose hours or days."]
    if (values.get("delay_amount") or 0) < 0:
        errors["delay_amount"] = ["Enter zero or more."]
    if not variants:
        errors["variants"] = ["A step needs an email (at least one variant)."]
    labels = [v.label.strip() for v in variants]
    if len(set(labels)) != len(labels) or not all(labels):
        errors["variants"] = ["Each variant needs its own label (A, B, …)."]
    for variant in variants:
        if variant.weight <= 0:
            errors.setdefault("variants", []).append(f"Variant {variant.label}: the share must be more than 0.")
        try:
            template_check(subject=variant.subject, html_body=variant.html_body)
        except ValidationError as err:
            for key, messages in err.message_dict.items():
                errors[f"variant_{variant.label}_{key}"] = messages
        if not variant.subject.strip():
            errors[f"variant_{variant.label}_subject"] = ["Enter a subject."]
        if not variant.html_body.strip():
            errors[f"variant_{variant.label}_html_body"] = ["Write the email."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if step is None:
            last = campaign.steps.select_for_update().order_by("-position").first()
            step = model_create(CampaignStep, campaign=campaign, position=(last.position + 1) if last else 1, **values)
        else:
            model_update(step, fields=STEP_FIELDS, data=values)
        kept = []
        for variant in variants:
            row, _ = StepVariant.objects.update_or_create(
                step=step, label=variant.label.strip(),
                defaults={"subject": variant.subject.strip(), "html_body": variant.html_body, "weight": variant.weight})
            kept.append(row.pk)
        step.variants.exclude(pk__in=kept).delete()
    return step


def campaign_step_delete(*, step: CampaignStep) -> None:
    """Delete a step that has not produced any message yet; later steps move up one position.

    Raises ValidationError when messages were already created for it (they keep their history).
    """
    if step.messages.exists():
        raise ValidationError("This step has already been sent to some contacts, so it cannot be deleted. "
                              "Pause or stop the campaign instead.")
    with transaction.atomic():
        campaign, position = step.campaign, step.position
        step.delete()
        for later in campaign.steps.filter(position__gt=position).order_by("position"):
            later.position -= 1
            later.save(update_fields=["position"])


def _template_infos(campaign: Campaign) -> list[TemplateInfo]:
    infos = []
    for variant in StepVariant.objects.filter(step__campaign=campaign):
        infos.extend(template_check(subject=variant.subject, html_body=variant.html_body))
    return infos


def campaign_problems(campaign: Campaign) -> list[str]:
    """What keeps ``campaign`` from starting, in plain words (empty when it can start)."""
    problems = []
    steps = list(campaign.steps.annotate(n=Count("variants")))
    if not steps:
        problems.append("Add at least one step.")
    elif any(step.n == 0 for step in steps):
        problems.append("Every step needs an email.")
    if not campaign.mailboxes.filter(is_active=True).exists():
        problems.append("Choose at least one active mailbox to send from.")
    return problems


# --- enrolment -------------------------------------------------------------------------------


@dataclass
class EnrolResult:
    """Outcome of one enrolment request: ``enrolled`` new contacts, ``already`` in the campaign, and
    ``skipped`` {reason value: count} (the reason is stored on each skipped Enrolment too)."""

    enrolled: int = 0
    already: int = 0
    skipped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"enrolled": self.enrolled, "already": self.already, "skipped": dict(self.skipped),
                "skipped_total": sum(self.skipped.values())}

    def summary(self) -> str:
        parts = [f"Enrolled {self.enrolled} contact{'s' if self.enrolled != 1 else ''}"]
        if self.already:
            parts.append(f"{self.already} already in the campaign")
        labels = dict(Enrolment.Reason.choices)
        parts.extend(f"{n} skipped: {labels.get(reason, reason).lower()}" for reason, n in sorted(self.skipped.items()))
        return "; ".join(parts) + "."


def _variant_for(enrolment_id: int, step: CampaignStep, variants: list[StepVariant]) -> StepVariant:
    """The variant of ``step`` for one enrolment: a pure function of both ids, weighted."""
    total = sum(v.weight for v in variants)
    digest = int.from_bytes(hashlib.sha256(f"{enrolment_id}:{step.pk}".encode()).digest()[:8], "big")
    point = digest % total
    for variant in variants:
        if point < variant.weight:
            return variant
        point -= variant.weight
    return variants[-1]


def campaign_enrol(*, campaign: Campaign, selection: Selection | None = None, contact_ids: Iterable[int] = (),
                   actor=None, now: datetime | None = None, chunk_size: int = 2000) -> EnrolResult:
    """Enrol the team's contacts in ``selection`` (checked ids, or "all N matching" a list query) or
    among ``contact_ids`` in ``campaign``. Returns an :class:`EnrolResult`.

    Contacts already in the campaign are counted, never duplicated (a unique constraint holds it).
    Suppressed contacts, contacts active in another campaign (when ``skip_active_elsewhere``) and
    contacts missing a merge field a step needs (used without a default) are stored as ``skipped``
    with the reason; a later enrolment re-checks them. Mailboxes are assigned round-robin,
    balancing what each already has. Works chunk by chunk (``chunk_size`` contacts per transaction),
    so memory stays flat for 100,000 contacts (ids are read by keyset). Raises ValidationError for a stopped or completed campaign.
    """
    now = now or timezone.now()
    if campaign.status in (S.STOPPED, S.COMPLETED):
        raise ValidationError(f"The campaign is {campaign.get_status_display().lower()}; contacts can no longer be enrolled.")
    mailboxes = list(campaign.mailboxes.filter(is_active=True).order_by("pk"))
    load = Counter(dict(Enrolment.objects.filter(campaign=campaign, status=E.ACTIVE)
                        .values_list("mailbox_id").annotate(n=Count("pk")).values_list("mailbox_id", "n")))
    required = frozenset().union(*(info.required for info in _template_infos(campaign)))
    result = EnrolResult()
    if selection is None:
        selection = Selection.of_ids(contact_ids)
    for chunk in id_batches(contacts_selected(team=campaign.team, selection=selection), size=chunk_size):
        _enrol_chunk(campaign, chunk, mailboxes, load, required, actor, now, result)
    return result


def _enrol_chunk(campaign, ids, mailboxes, load, required, actor, now, result: EnrolResult) -> None:
    team = campaign.team
    with transaction.atomic():
        existing = dict(Enrolment.objects.filter(campaign=campaign, contact_id__in=ids).values_list("contact_id", "status"))
        retry = [cid for cid, status in existing.items() if status == E.SKIPPED]
        Enrolment.objects.filter(campaign=campaign, contact_id__in=retry, status=E.SKIPPED).delete()
        result.already += len(existing) - len(retry)
        fresh = [cid for cid in dict.fromkeys(ids) if cid not in existing or cid in retry]
        contacts = list(Contact.objects.for_team(team).filter(pk__in=fresh).select_related("lead__owner"))
        if not contacts:
            return
        suppressed = set(Suppression.objects.for_team(team).filter(email__in=[c.email for c in contacts])
                         .values_list("email", flat=True))
        elsewhere = set()
        if campaign.skip_active_elsewhere:
            elsewhere = set(Enrolment.objects.filter(contact_id__in=[c.pk for c in contacts], status=E.ACTIVE)
                            .exclude(campaign=campaign).values_list("contact_id", flat=True))
        rows, events = [], []
        for contact in contacts:
            reason, detail = R.NONE, ""
            if contact.email in suppressed:
                reason = R.SUPPRESSED
            elif contact.pk in elsewhere:
                reason = R.ACTIVE_ELSEWHERE
            elif required:
                context = merge_context(contact=contact, mailbox=None)
                missing = [name for name in sorted(required)
                           if not name.startswith("sender.") and not _field_value(context, name)]
                if missing:
                    reason, detail = R.MISSING_FIELD, f"Empty: {', '.join(missing)}"
            if reason:
                rows.append(Enrolment(team=team, campaign=campaign, contact=contact, status=E.SKIPPED, reason=reason,
                                      detail=detail, finished_at=now, next_due_at=None))
                result.skipped[reason] += 1
                continue
            mailbox = min(mailboxes, key=lambda m: (load[m.pk], m.pk)) if mailboxes else None
            if mailbox is not None:
                load[mailbox.pk] += 1
            rows.append(Enrolment(team=team, campaign=campaign, contact=contact, mailbox=mailbox, status=E.ACTIVE,
                                  next_step=1, next_due_at=now))
            events.append(TimelineEvent(team=team, contact=contact, actor=actor, kind=TimelineEvent.Kind.CAMPAIGN_ENROLLED,
                                        summary=f"Enrolled in campaign “{campaign.name}”"
                                                + (f" (sending from {mailbox.sender_email})." if mailbox else "."),
                                        data={"campaign": campaign.pk}))
            result.enrolled += 1
        Enrolment.objects.bulk_create(rows, batch_size=1000)
        TimelineEvent.objects.bulk_create(events, batch_size=1000)


def _field_value(context: dict, name: str) -> Any:
    head, _, attr = name.partition(".")
    value = context.get(head)
    return value.get(attr) if attr and isinstance(value, dict) else value


def enrolment_remove(*, enrolment: Enrolment, actor=None, now: datetime | None = None) -> Enrolment:
    """Stop one active enrolment by hand (reason "removed"); nothing more is sent to the contact."""
    return _stop(enrolment, R.REMOVED, "Removed from the campaign.", actor=actor, now=now or timezone.now())


def enrolments_remove(*, enrolments, actor=None) -> int:
    """Stop the active enrolments among ``enrolments`` (a QuerySet of Enrolment, one team's) by
    hand, each through :func:`enrolment_remove` with its timeline row; the others are left as they
    are. Returns how many were removed."""
    removed = 0
    for enrolment in enrolments.filter(status=Enrolment.Status.ACTIVE).select_related("campaign", "contact"):
        enrolment_remove(enrolment=enrolment, actor=actor)
        removed += 1
    return removed


def enrolments_removed_summary(removed: int, inactive: int) -> str:
    """The outcome of a "Remove from campaign" in words, counted in enrolments (the rows the lists
    show), the same in the request and in the bulk job: "Removed 3 enrolments from their campaign;
    1 was no longer active." """
    return (f"Removed {removed:,} {'enrolment' if removed == 1 else 'enrolments'} from their campaign"
            + (f"; {inactive:,} {'was' if inactive == 1 else 'were'} no longer active." if inactive else "."))


# --- state -----------------------------------------------------------------------------------


def campaign_start(*, campaign: Campaign, actor=None, now: datetime | None = None) -> Campaign:
    """Start a draft campaign or resume a paused one (status → active). Returns it.

    Raises ValidationError listing :func:`campaign_problems`, or when the campaign is stopped or completed.
    """
    now = now or timezone.now()
    if campaign.status not in (S.DRAFT, S.PAUSED):
        raise ValidationError(f"A {campaign.get_status_display().lower()} campaign cannot be started.")
    problems = campaign_problems(campaign)
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        updated = Campaign.objects.filter(pk=campaign.pk, status__in=(S.DRAFT, S.PAUSED)).update(
            status=S.ACTIVE, started_at=campaign.started_at or now, updated_at=now)
        if not updated:
            raise ValidationError("The campaign changed meanwhile; reload the page.")
        _waiting_messages(campaign).filter(due_at=PAUSED_UNTIL).update(due_at=now, hold_reason="")
    campaign.refresh_from_db()
    return campaign


#: ``due_at`` of a campaign message held in the outbox while its campaign is paused: the dispatcher
#: takes only messages due by now, so these wait until ``campaign_start`` resumes them.
PAUSED_UNTIL = datetime(9999, 1, 1, tzinfo=dt_timezone.utc)
PAUSED_REASON = "waiting: the campaign is paused"


def _waiting_messages(campaign: Campaign):
    return SentMessage.objects.filter(campaign_message__enrolment__campaign=campaign, status__in=SentMessage.WAITING)


def campaign_pause(*, campaign: Campaign, actor=None) -> Campaign:
    """Pause an active campaign: no new step messages are created, and its messages still waiting in
    the outbox are held (a message a worker already claimed finishes). Resuming releases them, so
    no step is sent twice or skipped. Raises ValidationError unless the campaign is active."""
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, status=S.ACTIVE).update(status=S.PAUSED, updated_at=timezone.now()):
            raise ValidationError("Only an active campaign can be paused.")
        _waiting_messages(campaign).update(due_at=PAUSED_UNTIL, hold_reason=PAUSED_REASON)
    campaign.refresh_from_db()
    return campaign


def campaign_stop(*, campaign: Campaign, actor=None, now: datetime | None = None) -> Campaign:
    """Stop a campaign for good: every active enrolment is stopped ("campaign stopped") and its
    messages still waiting in the outbox are cancelled. Raises ValidationError when it is already
    stopped or completed."""
    now = now or timezone.now()
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, status__in=(S.DRAFT, S.ACTIVE, S.PAUSED)).update(
                status=S.STOPPED, finished_at=now, updated_at=now):
            raise ValidationError("The campaign is already stopped or completed.")
        active = Enrolment.objects.filter(campaign=campaign, status=E.ACTIVE)
        events = [TimelineEvent(team_id=campaign.team_id, contact_id=cid, actor=actor,
                                kind=TimelineEvent.Kind.CAMPAIGN_STOPPED, summary=f"Campaign “{campaign.name}” stopped.",
                                data={"campaign": campaign.pk, "reason": R.CAMPAIGN_STOPPED})
                  for cid in active.values_list("contact_id", flat=True)]
        active.update(status=E.STOPPED, reason=R.CAMPAIGN_STOPPED, next_due_at=None, finished_at=now, updated_at=now)
        TimelineEvent.objects.bulk_create(events, batch_size=1000)
        waiting = list(_waiting_messages(campaign).values_list("pk", flat=True))
        if waiting:
            sent_messages_cancel(team=campaign.team, ids=waiting, actor=actor, now=now)
    campaign.refresh_from_db()
    return campaign


def campaign_delete(*, campaign: Campaign) -> None:
    """Delete a draft campaign that never sent anything. Raises ValidationError otherwise."""
    if campaign.status != S.DRAFT or CampaignMessage.objects.filter(enrolment__campaign=campaign).exists():
        raise ValidationError("Only a draft campaign that has sent nothing can be deleted; stop it instead.")
    campaign.delete()


# --- the scheduler -------------------------------------------------------------------------------


@dataclass
class AdvanceResult:
    """What one scheduler run did (counts)."""

    created: int = 0
    stopped: int = 0
    completed: int = 0
    rescheduled: int = 0
    campaigns_completed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _stop(enrolment: Enrolment, reason: str, detail: str, *, actor=None, now: datetime) -> Enrolment:
    """Stop ``enrolment`` (if still active) with ``reason`` and its timeline row, in one transaction."""
    with transaction.atomic():
        if not Enrolment.objects.filter(pk=enrolment.pk, status=E.ACTIVE).update(
                status=E.STOPPED, reason=reason, detail=detail[:300], next_due_at=None, finished_at=now, updated_at=now):
            enrolment.refresh_from_db()
            return enrolment
        label = dict(R.choices).get(reason, reason)
        timeline_event_record(contact=enrolment.contact, kind=TimelineEvent.Kind.CAMPAIGN_STOPPED, actor=actor,
                              summary=f"Campaign “{enrolment.campaign.name}” stopped for this contact: {label.lower()}.",
                              data={"campaign": enrolment.campaign_id, "reason": reason, "detail": detail[:300]})
    enrolment.refresh_from_db()
    return enrolment


def _stop_signal(enrolment: Enrolment) -> tuple[str, str] | None:
    """(reason, detail) when something since ``enrolment`` began means no more steps, else None."""
    contact = enrolment.contact
    suppression = Suppression.objects.filter(team_id=contact.team_id, email=contact.email).first()
    if suppression is not None:
        return SUPPRESSION_REASONS.get(suppression.reason, R.SUPPRESSED), suppression.detail[:300]
    kinds = dict(STOP_EVENT_KINDS)
    if enrolment.campaign.stop_on_auto_reply:
        kinds[AUTO_REPLY_KIND] = R.AUTO_REPLIED
    event = (TimelineEvent.objects.filter(contact=contact, kind__in=list(kinds), created_at__gte=enrolment.created_at)
             .order_by("created_at").first())
    if event is not None:
        return kinds[event.kind], event.summary
    return None


def _sweep_stops(now: datetime, result: AdvanceResult) -> None:
    """Stop active enrolments whose contact has a stop event since enrolling (and their company)."""
    lookback = now - timezone.timedelta(seconds=settings.OUTREACH_CAMPAIGN_STOP_LOOKBACK_SECONDS)
    kinds = [*STOP_EVENT_KINDS, AUTO_REPLY_KIND]
    recent = (TimelineEvent.objects.filter(kind__in=kinds, created_at__gte=lookback)
              .values_list("contact_id", flat=True).distinct())
    candidates = (Enrolment.objects.filter(status=E.ACTIVE, contact_id__in=recent)
                  .select_related("campaign", "contact"))
    suppressed = Q(pk__in=[])
    for team_id, email in Suppression.objects.filter(created_at__gte=lookback).values_list("team_id", "email"):
        suppressed |= Q(team_id=team_id, contact__email=email)
    suppressed_enrolments = Enrolment.objects.filter(suppressed, status=E.ACTIVE).select_related("campaign", "contact")
    for enrolment in {e.pk: e for e in [*candidates, *suppressed_enrolments]}.values():
        signal = _stop_signal(enrolment)
        if signal is None:
            continue
        reason, detail = signal
        _stop(enrolment, reason, detail, now=now)
        result.stopped += 1
        if reason == R.REPLIED and enrolment.campaign.stop_company_on_reply:
            domain = enrolment.contact.email.rpartition("@")[2]
            for other in (Enrolment.objects.filter(campaign=enrolment.campaign, status=E.ACTIVE,
                                                   contact__email__iendswith=f"@{domain}")
                          .select_related("campaign", "contact")):
                _stop(other, R.COMPANY_REPLIED, f"{enrolment.contact.email} replied.", now=now)
                result.stopped += 1


def _advance_after_sends(now: datetime, result: AdvanceResult, batch: int) -> None:
    """Enrolments waiting on a settled step: schedule the next step, complete, or stop."""
    waiting = (CampaignMessage.objects
               .filter(enrolment__status=E.ACTIVE, enrolment__next_due_at__isnull=True,
                       enrolment__next_step=F("step__position") + 1, sent_message__status__in=SETTLED)
               .select_related("enrolment__campaign", "enrolment__contact", "step", "sent_message")[:batch])
    for link in waiting:
        enrolment, message = link.enrolment, link.sent_message
        if message.status != "sent":
            _stop(enrolment, R.SEND_FAILED, f"Step {link.step.position}: {message.error_message or message.status}", now=now)
            result.stopped += 1
            continue
        step = CampaignStep.objects.filter(campaign_id=enrolment.campaign_id, position=enrolment.next_step).first()
        if step is None:
            if Enrolment.objects.filter(pk=enrolment.pk, status=E.ACTIVE, next_due_at__isnull=True).update(
                    status=E.COMPLETED, finished_at=now, updated_at=now):
                timeline_event_record(contact=enrolment.contact, kind=TimelineEvent.Kind.CAMPAIGN_COMPLETED,
                                      summary=f"Completed campaign “{enrolment.campaign.name}”.",
                                      data={"campaign": enrolment.campaign_id})
                result.completed += 1
            continue
        zone = zone_or_default(enrolment.contact.time_zone, enrolment.campaign.time_zone)
        due = add_delay(message.sent_at or now, amount=step.delay_amount, unit=step.delay_unit,
                        business_days=step.business_days_only, zone=zone)
        Enrolment.objects.filter(pk=enrolment.pk, status=E.ACTIVE, next_due_at__isnull=True).update(
            next_due_at=due, updated_at=now)
        result.rescheduled += 1


def _outbox_room(mailbox_ids: set[int]) -> dict[int, int]:
    """How many more campaign messages each mailbox may have waiting in the outbox now."""
    limit = settings.OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX
    waiting = dict(SentMessage.objects.filter(mailbox_id__in=mailbox_ids, status__in=("scheduled", "queued", "sending"),
                                              campaign_message__isnull=False)
                   .values_list("mailbox_id").annotate(n=Count("pk")).values_list("mailbox_id", "n"))
    return {pk: max(limit - waiting.get(pk, 0), 0) for pk in mailbox_ids}


def _thread_fields(enrolment: Enrolment, step: CampaignStep) -> dict[str, Any]:
    """For a later step replying in step 1's thread: its "Re: …" subject and the threading
    ``sent_message_create`` takes (In-Reply-To/References on SMTP, the provider's thread id over an
    API; ``outreach.inbound.services.reply_threading``). {} for step 1, a new-thread step, or a
    mailbox whose provider cannot thread (lemlist): that step then starts its own thread."""
    if step.position == 1 or step.new_thread:
        return {}
    first = (SentMessage.objects.filter(campaign_message__enrolment=enrolment, campaign_message__step__position=1,
                                        status="sent").select_related("mailbox", "contact").first())
    if first is None:
        return {}
    from ..inbound.services import reply_draft, reply_threading

    draft = reply_draft(team=enrolment.campaign.team, sent_message=first)
    try:
        threading = reply_threading(draft=draft, mailbox=enrolment.mailbox)
    except ValidationError:
        return {}
    return {"subject": draft.subject, **threading}


def _step_and_variants(campaign_id: int, position: int, cache: dict) -> tuple[CampaignStep | None, list]:
    """The step at ``position`` of a campaign and its variants (by label), looked up once per scheduler run."""
    key = (campaign_id, position)
    if key not in cache:
        step = CampaignStep.objects.filter(campaign_id=campaign_id, position=position).first()
        cache[key] = (step, list(step.variants.order_by("label")) if step is not None else [])
    return cache[key]


def _create_step_message(enrolment: Enrolment, now: datetime, result: AdvanceResult, steps: dict) -> bool:
    """Render and queue ``enrolment``'s due step (one transaction). Returns True when a message was created.

    ``steps`` is the run's cache for :func:`_step_and_variants`."""
    campaign, contact = enrolment.campaign, enrolment.contact
    step, variants = _step_and_variants(campaign.pk, enrolment.next_step, steps)
    if step is None:  # steps deleted after the last one was sent
        Enrolment.objects.filter(pk=enrolment.pk, status=E.ACTIVE).update(status=E.COMPLETED, finished_at=now,
                                                                         next_due_at=None, updated_at=now)
        result.completed += 1
        return False
    zone = zone_or_default(contact.time_zone, campaign.time_zone)
    opening = window_opening(now, zone=zone, days=parse_send_days(campaign.send_days), start=campaign.window_start,
                             end=campaign.window_end)
    if opening > now:
        Enrolment.objects.filter(pk=enrolment.pk, status=E.ACTIVE).update(next_due_at=opening, updated_at=now)
        result.rescheduled += 1
        return False
    signal = _stop_signal(enrolment)
    if signal is not None:
        _stop(enrolment, *signal, now=now)
        result.stopped += 1
        return False
    mailbox = enrolment.mailbox
    if mailbox is None or not mailbox.is_active:
        _stop(enrolment, R.SEND_FAILED, "Its mailbox is disabled or gone; choose active mailboxes and enrol again.", now=now)
        result.stopped += 1
        return False
    if not variants:
        _stop(enrolment, R.SEND_FAILED, f"Step {step.position} has no email.", now=now)
        result.stopped += 1
        return False
    variant = _variant_for(enrolment.pk, step, variants)
    try:
        rendered = message_template_render(subject=variant.subject, html_body=variant.html_body, contact=contact,
                                           mailbox=mailbox, seed=f"campaign:{campaign.pk}:{step.position}:{contact.pk}")
    except ValidationError as err:
        _stop(enrolment, R.SEND_FAILED, f"Step {step.position}: {' '.join(err.messages)}", now=now)
        result.stopped += 1
        return False
    if rendered.missing:
        _stop(enrolment, R.MISSING_FIELD, f"Step {step.position}: empty {', '.join(rendered.missing)}", now=now)
        result.stopped += 1
        return False
    thread = _thread_fields(enrolment, step)

    try:
        with transaction.atomic():
            moved = Enrolment.objects.filter(pk=enrolment.pk, status=E.ACTIVE, next_step=step.position,
                                             next_due_at__isnull=False).update(
                next_step=step.position + 1, next_due_at=None, updated_at=now)
            if not moved:  # another scheduler took it, or it was stopped meanwhile
                return False
            message = sent_message_create(
                team=campaign.team, actor=None, mailbox=mailbox, contact=contact, html=rendered.html,
                text=rendered.text, **{"subject": rendered.subject, **thread})
            CampaignMessage.objects.create(enrolment=enrolment, step=step, variant=variant, sent_message=message)
    except IntegrityError:
        logger.info("Step %s of enrolment %s already has its message", step.position, enrolment.pk)
        return False
    except ValidationError as err:
        _stop(enrolment, R.SEND_FAILED, f"Step {step.position}: {' '.join(err.messages)}", now=now)
        result.stopped += 1
        return False
    result.created += 1
    return True


def _create_due_messages(now: datetime, result: AdvanceResult, batch: int) -> None:
    due = (Enrolment.objects.filter(status=E.ACTIVE, campaign__status=S.ACTIVE, next_due_at__lte=now)
           .order_by("next_due_at", "pk"))
    room = _outbox_room(set(Mailbox.objects.filter(campaigns__status=S.ACTIVE).values_list("pk", flat=True)))
    # Mailboxes whose outbox share is full are left out of the query, so that they cannot fill the
    # candidates and starve the due steps of every other mailbox.
    due = due.exclude(mailbox_id__in=[pk for pk, left in room.items() if left <= 0])
    steps: dict = {}
    candidates = list(due.values_list("pk", "mailbox_id")[: batch * 4])
    for start in range(0, len(candidates), 100):
        chunk = candidates[start:start + 100]
        # One query loads the chunk's enrolments with what rendering needs; each is then locked on its
        # own (a small query) and moved in its own transaction.
        loaded = {
            e.pk: e for e in Enrolment.objects.filter(pk__in=[pk for pk, _ in chunk])
            .select_related("campaign__team", "contact__lead__owner", "mailbox")}
        for enrolment_id, mailbox_id in chunk:
            if mailbox_id is not None and room.get(mailbox_id, 0) <= 0:
                continue
            enrolment = loaded.get(enrolment_id)
            if enrolment is None:
                continue
            with transaction.atomic():
                locked = Enrolment.objects.filter(pk=enrolment_id, status=E.ACTIVE, next_due_at__lte=now)
                if connection.features.has_select_for_update_skip_locked:
                    locked = locked.select_for_update(skip_locked=True, of=("self",))
                if not locked.values_list("pk", flat=True):
                    continue
                if _create_step_message(enrolment, now, result, steps) and mailbox_id is not None:
                    room[mailbox_id] -= 1
            if result.created >= batch:
                return


def _complete_campaigns(now: datetime, result: AdvanceResult) -> None:
    """Active campaigns with enrolments but none still active are completed (two index-served EXISTS
    tests per campaign, not a count of its enrolments)."""
    enrolments = Enrolment.objects.filter(campaign=OuterRef("pk"))
    finished = (Campaign.objects.filter(status=S.ACTIVE)
                .filter(Exists(enrolments)).exclude(Exists(enrolments.filter(status=E.ACTIVE))))
    for campaign_id in finished.values_list("pk", flat=True):
        if Campaign.objects.filter(pk=campaign_id, status=S.ACTIVE).update(status=S.COMPLETED, finished_at=now,
                                                                          updated_at=now):
            result.campaigns_completed += 1


def campaigns_advance(*, now: datetime | None = None, batch: int = 500) -> AdvanceResult:
    """One scheduler run over every team (see the module docstring). Returns an :class:`AdvanceResult`.

    Safe to run concurrently and to kill at any point: each enrolment moves in its own transaction,
    guarded by conditional updates and the (enrolment, step) unique constraint. ``batch`` bounds the
    messages created per run.
    """
    now = now or timezone.now()
    result = AdvanceResult()
    _sweep_stops(now, result)
    _advance_after_sends(now, result, batch)
    _create_due_messages(now, result, batch)
    _complete_campaigns(now, result)
    return result
