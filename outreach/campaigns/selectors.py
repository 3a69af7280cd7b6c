"""Reads for the campaign pages: the list, the funnel per step, the daily chart series and the
enrolment list. Team-scoped through the campaign or the ``team`` argument."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from ..models import Team
from ..selectors import ListQuery, apply_ordering, apply_search
from .models import Campaign, CampaignMessage, CampaignStep, Enrolment

WAITING = ("scheduled", "queued", "sending")
OUTCOME_REASONS = {"replied": "replied", "bounced": "bounced", "unsubscribed": "unsubscribed"}

CAMPAIGN_SEARCH = ("name",)
CAMPAIGN_ORDERING = {"name": ("name",), "status": ("status",), "enrolled": ("enrolled_count",),
                     "sent": ("sent_count",), "replied": ("replied_count",), "created": ("created_at",)}
ENROLMENT_SEARCH = ("contact__email", "contact__first_name", "contact__last_name", "contact__company")
ENROLMENT_ORDERING = {"email": ("contact__email",), "status": ("status",), "step": ("next_step",),
                      "due": ("next_due_at",), "created": ("created_at",)}


#: Django admin's enrolment search (EnrolmentAdmin.search_fields), which ``enrolments_selected`` repeats.
ENROLMENT_ADMIN_SEARCH = ("contact__email", "campaign__name")


def enrolments_selected(*, team: Team, selection) -> QuerySet:
    """The team's enrolments a Selection (``outreach.selectors.Selection``) stands for: its ids, or
    every enrolment matching its query as the enrolment admin's changelist does: ``q`` through
    Django admin's default search over ``ENROLMENT_ADMIN_SEARCH`` (every term contained in one of
    them, :func:`~outreach.selectors.apply_search`) and its list-filter ``lookups``."""
    from ..selectors import apply_lookups

    qs = Enrolment.objects.for_team(team)
    if selection.query is None:
        return qs.filter(pk__in=list(selection.ids))
    return apply_lookups(apply_search(qs, selection.query.q, ENROLMENT_ADMIN_SEARCH), selection.query.lookups)


def campaign_enrolments_selected(*, team: Team, selection) -> QuerySet:
    """The team's enrolments a Selection from a campaign's enrolment list page stands for: its
    ids, or every enrolment :func:`enrolment_list` lists for ``selection.query`` — the campaign
    being the team's campaign whose id is the query's ``campaign`` filter (none if it is not the
    team's)."""
    if selection.query is None:
        return Enrolment.objects.for_team(team).filter(pk__in=list(selection.ids))
    campaign_id = str(selection.query.filters.get("campaign", ""))
    campaign = Campaign.objects.for_team(team).filter(pk=int(campaign_id) if campaign_id.isdigit() else 0).first()
    if campaign is None:
        return Enrolment.objects.none()
    return enrolment_list(campaign=campaign, query=selection.query)[0]


def campaign_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's campaigns with ``enrolled_count`` (not skipped), ``sent_count`` and ``replied_count``.
    Filter: ``status``. Returns (queryset, sort key used)."""
    sent = (CampaignMessage.objects.filter(enrolment__campaign=OuterRef("pk"), sent_message__status="sent")
            .values("enrolment__campaign").annotate(n=Count("pk")).values("n"))
    qs = Campaign.objects.for_team(team).annotate(
        enrolled_count=Count("enrolments", filter=~Q(enrolments__status=Enrolment.Status.SKIPPED)),
        replied_count=Count("enrolments", filter=Q(enrolments__reason=Enrolment.Reason.REPLIED)),
        sent_count=Subquery(sent),
    )
    qs = apply_search(qs, query.q, CAMPAIGN_SEARCH)
    if query.filters.get("status") in Campaign.Status.values:
        qs = qs.filter(status=query.filters["status"])
    return apply_ordering(qs, query.order, CAMPAIGN_ORDERING, "-created")


def campaigns_open(*, team: Team) -> QuerySet:
    """The team's campaigns contacts can still be enrolled in (draft, active, paused), by name."""
    return Campaign.objects.for_team(team).filter(
        status__in=(Campaign.Status.DRAFT, Campaign.Status.ACTIVE, Campaign.Status.PAUSED)).order_by("name", "pk")


@dataclass(frozen=True)
class FunnelRow:
    """One step's numbers: ``scheduled`` (in the outbox), ``sent``, and the enrolments that ended
    ``replied``/``bounced``/``unsubscribed`` after this step was their last one sent."""

    step: CampaignStep
    scheduled: int
    sent: int
    replied: int
    bounced: int
    unsubscribed: int

    def rate(self, n: int) -> str:
        return f"{100 * n / self.sent:.0f} %" if self.sent else "—"

    @property
    def reply_rate(self) -> str:
        return self.rate(self.replied)

    @property
    def bounce_rate(self) -> str:
        return self.rate(self.bounced)

    @property
    def unsubscribe_rate(self) -> str:
        return self.rate(self.unsubscribed)


def campaign_funnel(*, campaign: Campaign) -> list[FunnelRow]:
    """One :class:`FunnelRow` per step of ``campaign``, in order (a constant number of queries)."""
    steps = list(campaign.steps.order_by("position"))
    by_status = {}
    for step_id, status, n in (CampaignMessage.objects.filter(enrolment__campaign=campaign)
                               .values_list("step_id", "sent_message__status").annotate(n=Count("pk"))
                               .values_list("step_id", "sent_message__status", "n")):
        by_status[(step_id, status)] = n
    outcomes = {}
    ended = (Enrolment.objects.filter(campaign=campaign, reason__in=list(OUTCOME_REASONS))
             .annotate(last=Max("messages__step__position", filter=Q(messages__sent_message__status="sent")))
             .values_list("last", "reason"))
    for last, reason in ended:
        outcomes[(last, reason)] = outcomes.get((last, reason), 0) + 1
    rows = []
    for step in steps:
        rows.append(FunnelRow(
            step=step, scheduled=sum(by_status.get((step.pk, s), 0) for s in WAITING),
            sent=by_status.get((step.pk, "sent"), 0),
            replied=outcomes.get((step.position, "replied"), 0), bounced=outcomes.get((step.position, "bounced"), 0),
            unsubscribed=outcomes.get((step.position, "unsubscribed"), 0)))
    return rows


def campaign_status_counts(*, campaign: Campaign) -> dict[str, int]:
    """Enrolments of ``campaign`` per status ({"active": n, …}, every status present)."""
    counts = dict(Enrolment.objects.filter(campaign=campaign).values_list("status").annotate(n=Count("pk"))
                  .values_list("status", "n"))
    return {status: counts.get(status, 0) for status in Enrolment.Status.values}


def campaign_daily_series(*, campaign: Campaign, days: int = 30, today: date | None = None) -> dict:
    """Sends and replies per day over the last ``days`` days (the chart's data):
    ``{"labels": ["2026-12-01", …], "sent": [n, …], "replied": [n, …]}``."""
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(start, datetime.min.time()))
    sent = dict(CampaignMessage.objects.filter(enrolment__campaign=campaign, sent_message__status="sent",
                                               sent_message__sent_at__gte=since)
                .annotate(day=TruncDate("sent_message__sent_at")).values_list("day").annotate(n=Count("pk"))
                .values_list("day", "n"))
    replied = dict(Enrolment.objects.filter(campaign=campaign, reason=Enrolment.Reason.REPLIED, finished_at__gte=since)
                   .annotate(day=TruncDate("finished_at")).values_list("day").annotate(n=Count("pk"))
                   .values_list("day", "n"))
    labels = [start + timedelta(days=i) for i in range(days)]
    return {"labels": [d.isoformat() for d in labels], "sent": [sent.get(d, 0) for d in labels],
            "replied": [replied.get(d, 0) for d in labels]}


def enrolment_list(*, campaign: Campaign, query: ListQuery) -> tuple[QuerySet, str]:
    """``campaign``'s enrolments for the list page. Filters: ``status``, ``reason``. Returns (qs, sort key)."""
    qs = Enrolment.objects.filter(campaign=campaign).select_related("contact", "mailbox")
    qs = apply_search(qs, query.q, ENROLMENT_SEARCH)
    if query.filters.get("status") in Enrolment.Status.values:
        qs = qs.filter(status=query.filters["status"])
    if query.filters.get("reason"):
        qs = qs.filter(reason=query.filters["reason"])
    return apply_ordering(qs, query.order, ENROLMENT_ORDERING, "-created")


def contact_enrolments(*, contact) -> QuerySet:
    """The campaigns ``contact`` is or was in (for the contact page), newest first."""
    return Enrolment.objects.filter(contact=contact).select_related("campaign").order_by("-created_at")
