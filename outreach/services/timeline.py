"""Writes to a contact's timeline. Call inside the transaction of the change it records."""
from __future__ import annotations

from typing import Any

from ..models import Contact, SentMessage, TimelineEvent


def timeline_event_record(*, contact: Contact, kind: str, summary: str, sent_message: SentMessage | None = None,
                          actor=None, data: dict[str, Any] | None = None, inbound_message=None) -> TimelineEvent:
    """Append one event to ``contact``'s timeline; ``summary`` is trimmed to 500 characters.

    ``inbound_message``: the InboundMessage (reply, bounce…) the event is about, if any.
    Returns the saved TimelineEvent (same team as the contact).
    """
    event = timeline_event_build(contact=contact, kind=kind, summary=summary, sent_message=sent_message, actor=actor,
                                 data=data, inbound_message=inbound_message)
    event.save(force_insert=True)
    return event


def timeline_event_build(*, contact: Contact, kind: str, summary: str, sent_message: SentMessage | None = None,
                         actor=None, data: dict[str, Any] | None = None, inbound_message=None) -> TimelineEvent:
    """The unsaved TimelineEvent :func:`timeline_event_record` would save (same arguments), for writers
    that save many at once with ``TimelineEvent.objects.bulk_create``."""
    return TimelineEvent(
        team_id=contact.team_id, contact=contact, kind=kind, summary=summary[:500],
        sent_message=sent_message, actor=actor, data=data or {}, inbound_message=inbound_message,
    )
