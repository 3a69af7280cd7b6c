"""Shared helpers of the campaign commands (not a command itself: Django skips names starting with "_")."""
from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from ...campaigns import selectors
from ...campaigns.models import Campaign


def get_campaign(team, ref: str) -> Campaign:
    """The team's campaign with id or name ``ref`` (case-insensitive); CommandError when there is none."""
    qs = Campaign.objects.for_team(team)
    found = qs.filter(pk=int(ref)).first() if ref.isdigit() else qs.filter(name__iexact=ref).first()
    if found is None:
        raise CommandError(f"Team {team.name} has no campaign {ref!r}.")
    return found


def campaign_as_dict(campaign: Campaign) -> dict[str, Any]:
    """A campaign with its enrolment counts and funnel, JSON-ready."""
    return {
        "id": campaign.pk, "name": campaign.name, "status": campaign.status,
        "mailboxes": [m.sender_email for m in campaign.mailboxes.all()],
        "steps": campaign.steps.count(), "enrolments": selectors.campaign_status_counts(campaign=campaign),
        "funnel": [{"step": row.step.position, "scheduled": row.scheduled, "sent": row.sent, "replied": row.replied,
                    "bounced": row.bounced, "unsubscribed": row.unsubscribed}
                   for row in selectors.campaign_funnel(campaign=campaign)],
        "started_at": campaign.started_at, "finished_at": campaign.finished_at,
    }
