"""Inbound reads: a mailbox's sync state, inbound messages, the suppression list."""
from __future__ import annotations

from django.db.models import QuerySet

from ..models import Mailbox, Suppression, Team
from ..selectors import ListQuery, apply_ordering, apply_search
from .models import InboundMessage, MailboxSyncState

SUPPRESSION_ORDERING = {"email": ("email",), "reason": ("reason", "email"), "created": ("created_at", "id")}


def sync_state(*, mailbox: Mailbox, folder: str = "INBOX") -> MailboxSyncState | None:
    """The folder's sync state, or None before the first sync."""
    return MailboxSyncState.objects.filter(mailbox=mailbox, folder=folder).first()


def inbound_message_for_team(*, team: Team) -> QuerySet:
    """The team's inbound messages with contact, mailbox and matched message joined."""
    return InboundMessage.objects.for_team(team).select_related("contact", "mailbox", "sent_message")


def suppression_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's suppressions: search on address and detail, filter ``reason``, sort by email,
    reason or created (default newest first). Returns (queryset, sort key used)."""
    qs = Suppression.objects.for_team(team).select_related("sent_message", "inbound_message")
    qs = apply_search(qs, query.q, ("email", "detail"))
    reason = query.filters.get("reason", "")
    if reason in Suppression.Reason.values:
        qs = qs.filter(reason=reason)
    return apply_ordering(qs, query.order, SUPPRESSION_ORDERING, "-created")


def suppressions_by_ids(*, team: Team, ids) -> QuerySet:
    """The team's suppressions among ``ids``."""
    return Suppression.objects.for_team(team).filter(pk__in=list(ids))
