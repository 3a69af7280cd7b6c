"""Reads of message templates (team-scoped)."""
from __future__ import annotations

from django.db.models import QuerySet

from ..models import MessageTemplate, Team
from ..selectors import ListQuery, apply_ordering, apply_search

TEMPLATE_SEARCH = ("name", "subject")
TEMPLATE_ORDERING = {"name": ("name",), "subject": ("subject",), "updated": ("updated_at",)}


def message_template_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's templates matching ``query`` (search name/subject; sort name, subject, updated).
    Returns (queryset, sort key used)."""
    qs = apply_search(MessageTemplate.objects.for_team(team), query.q, TEMPLATE_SEARCH)
    return apply_ordering(qs, query.order, TEMPLATE_ORDERING, "name")


def message_templates(*, team: Team) -> QuerySet:
    """The team's templates by name, for choices."""
    return MessageTemplate.objects.for_team(team).order_by("name", "pk")
