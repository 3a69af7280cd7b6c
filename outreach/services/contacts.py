"""Contacts and leads: create, update, delete, each with its timeline row."""
from __future__ import annotations

from typing import Any, Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..models import Contact, Lead, Team, TimelineEvent
from ..validation import normalize_email
from .timeline import timeline_event_record

CONTACT_FIELDS = ("email", "first_name", "last_name", "company", "title", "phone", "linkedin_url",
                  "custom_fields", "source", "lemlist_contact_id", "leadlex_contact_id")
LEAD_FIELDS = ("status", "owner", "source", "lemlist_lead_id", "leadlex_deal_id")


def _duplicate_error(email: str) -> ValidationError:
    return ValidationError({"email": f"A contact with the email {email} already exists in your team."})


def contact_create(*, team: Team, actor=None, data: dict[str, Any]) -> Contact:
    """Create a contact from ``data`` (keys of CONTACT_FIELDS; email normalized to lower case).

    Returns the Contact; raises ValidationError({"email": ...}) when the team already has the address.
    """
    values = {k: v for k, v in data.items() if k in CONTACT_FIELDS}
    values["email"] = normalize_email(values.get("email", ""))
    values.setdefault("source", "manual")
    try:
        with transaction.atomic():
            contact = Contact.objects.create(team=team, **values)
            timeline_event_record(contact=contact, kind=TimelineEvent.Kind.CONTACT_CREATED, actor=actor,
                                  summary=f"Contact created ({contact.source}).")
    except IntegrityError:
        raise _duplicate_error(values["email"]) from None
    return contact


def contact_update(*, contact: Contact, actor=None, data: dict[str, Any]) -> Contact:
    """Update ``contact`` with ``data``; records the changed field names on the timeline.

    Returns the Contact; raises ValidationError on a duplicate email.
    """
    changed = []
    for key, value in data.items():
        if key not in CONTACT_FIELDS:
            continue
        if key == "email":
            value = normalize_email(value)
        if getattr(contact, key) != value:
            setattr(contact, key, value)
            changed.append(key)
    if not changed:
        return contact
    try:
        with transaction.atomic():
            contact.save()
            timeline_event_record(contact=contact, kind=TimelineEvent.Kind.CONTACT_UPDATED, actor=actor,
                                  summary="Updated " + ", ".join(f.replace("_", " ") for f in changed) + ".",
                                  data={"fields": changed})
    except IntegrityError:
        raise _duplicate_error(contact.email) from None
    return contact


def contacts_delete(*, team: Team, ids: Iterable[int]) -> int:
    """Delete the team's contacts with these ids (others' ids are ignored). Returns how many contacts.

    Contacts with sent messages are deleted with their messages and timeline.
    """
    with transaction.atomic():
        qs = Contact.objects.for_team(team).filter(pk__in=list(ids))
        count = qs.count()
        qs.delete()
    return count


def lead_create(*, team: Team, contact: Contact, actor=None, data: dict[str, Any]) -> Lead:
    """Make ``contact`` a lead (keys of LEAD_FIELDS). Raises ValidationError if it already is one."""
    if contact.team_id != team.pk:
        raise ValidationError("That contact is not in your team.")
    values = {k: v for k, v in data.items() if k in LEAD_FIELDS}
    try:
        with transaction.atomic():
            lead = Lead.objects.create(team=team, contact=contact, **values)
            timeline_event_record(contact=contact, kind=TimelineEvent.Kind.LEAD_CREATED, actor=actor,
                                  summary=f"Became a lead ({lead.get_status_display()}).")
    except IntegrityError:
        raise ValidationError({"contact": f"{contact.email} is already a lead."}) from None
    return lead


def lead_update(*, lead: Lead, actor=None, data: dict[str, Any]) -> Lead:
    """Update a lead; a status change is recorded on the contact's timeline. Returns the Lead."""
    old_status = lead.status
    for key, value in data.items():
        if key in LEAD_FIELDS:
            setattr(lead, key, value)
    with transaction.atomic():
        lead.save()
        if lead.status != old_status:
            timeline_event_record(contact=lead.contact, kind=TimelineEvent.Kind.LEAD_STATUS, actor=actor,
                                  summary=f"Lead status: {Lead.Status(old_status).label} → {lead.get_status_display()}.",
                                  data={"from": old_status, "to": lead.status})
    return lead


def leads_set_status(*, team: Team, ids: Iterable[int], status: str, actor=None) -> int:
    """Bulk action: set ``status`` on the team's leads with these ids. Returns how many changed."""
    changed = 0
    for lead in Lead.objects.for_team(team).filter(pk__in=list(ids)).select_related("contact"):
        if lead.status != status:
            lead_update(lead=lead, actor=actor, data={"status": status})
            changed += 1
    return changed
