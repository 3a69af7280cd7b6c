"""Writes to a contact's timeline. Call inside the transaction of the change it records."""
from __future__ import annotations

import functools
from typing import Any

from django.db import connection
from django.utils import timezone

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


def timeline_events_insert(*, events: list[dict[str, Any]]) -> None:
    """Save timeline events given as :func:`timeline_event_record`'s keyword arguments (``contact``,
    ``kind``, ``summary``, optional ``sent_message``, ``actor``, ``data``, ``inbound_message``) with one
    plain multi-row INSERT (:func:`timeline_events_statement`): what ``bulk_create`` does without building
    model instances, for the send path's few rows per transaction. Call inside the transaction of the
    change they record."""
    if events:
        with connection.cursor() as cursor:
            cursor.execute(*timeline_events_statement(events))


def timeline_events_statement(events: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """The INSERT of :func:`timeline_events_insert` for ``events`` (not empty) and its parameters, in Django's
    placeholder style (``%s``), for a caller that runs it on its own cursor. ``created_at``/``updated_at``
    are now; no ids are read back."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    data_field = TimelineEvent._meta.get_field("data")
    params: list[Any] = []
    for event in events:
        contact, sent, actor, inbound = (event["contact"], event.get("sent_message"), event.get("actor"),
                                         event.get("inbound_message"))
        params.extend((contact.team_id, contact.pk, event["kind"], event["summary"][:500],
                       sent.pk if sent is not None else None, actor.pk if actor is not None else None,
                       data_field.get_db_prep_save(event.get("data") or {}, connection),
                       inbound.pk if inbound is not None else None, now, now))
    return _insert_sql(len(events)), params


@functools.lru_cache(maxsize=16)
def _insert_sql(rows: int) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(TimelineEvent._meta.get_field(name).column) for name in _INSERT_FIELDS)
    row = "(" + ", ".join(["%s"] * len(_INSERT_FIELDS)) + ")"
    return f"INSERT INTO {quote(TimelineEvent._meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)}"


#: The columns :func:`timeline_events_insert` writes, in its parameters' order (every field but the id).
_INSERT_FIELDS = ("team", "contact", "kind", "summary", "sent_message", "actor", "data", "inbound_message",
                  "created_at", "updated_at")
