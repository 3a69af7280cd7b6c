"""Contacts and leads: create, update, delete, each with its timeline row; bulk actions as
set-based writes (one UPDATE/INSERT per batch, timeline rows with ``bulk_create``)."""
from __future__ import annotations

from typing import Any, Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Contact, ExternalId, Lead, Team, TimelineEvent
from ..selectors import Selection, contacts_selected, id_batches, leads_selected
from ..validation import normalize_email
from .common import model_create, model_update
from .external_ids import external_ids_set
from .timeline import timeline_event_record

BULK_BATCH = 5_000

CONTACT_FIELDS = ("email", "first_name", "last_name", "company", "title", "phone", "linkedin_url",
                  "custom_fields", "source")
LEAD_FIELDS = ("status", "owner", "source")
# The services also take the declared vendor ids by key (outreach.external_ids), e.g.
# ``lemlist_contact_id`` for a contact, ``leadlex_deal_id`` for a lead.


def _duplicate_error(email: str) -> ValidationError:
    return ValidationError({"email": f"A contact with the email {email} already exists in your team."})


def contact_create(*, team: Team, actor=None, data: dict[str, Any]) -> Contact:
    """Create a contact from ``data`` (keys of CONTACT_FIELDS and the contact's declared vendor-id
    keys; email normalized to lower case), its vendor ids and its timeline row in one transaction.

    Returns the Contact; raises ValidationError({"email": ...}) when the team already has the
    address, ({key: ...}) for a bad vendor id.
    """
    values = {k: v for k, v in data.items() if k in CONTACT_FIELDS}
    values["email"] = normalize_email(values.get("email", ""))
    values.setdefault("source", "manual")
    try:
        with transaction.atomic():
            contact = model_create(Contact, team=team, **values)
            external_ids_set(contact=contact, object="contact", values=data)
            timeline_event_record(contact=contact, kind=TimelineEvent.Kind.CONTACT_CREATED, actor=actor,
                                  summary=f"Contact created ({contact.source}).")
    except IntegrityError as err:
        raise _duplicate_error(values["email"]) from err
    return contact


def contact_get_or_create(*, team: Team, email: str, actor=None, source: str = "manual") -> tuple[Contact, bool]:
    """The team's contact with ``email`` (normalized to lower case), created through
    :func:`contact_create` (with its timeline row, ``source``) when the team has none.

    Used wherever an address rather than a contact is given (the ``send_email`` command).
    Returns (contact, created); raises ValidationError for an invalid address. A concurrent
    create of the same address returns the row the other request made.
    """
    email = normalize_email(email)
    existing = Contact.objects.for_team(team).filter(email=email).first()
    if existing is not None:
        return existing, False
    try:
        return contact_create(team=team, actor=actor, data={"email": email, "source": source}), True
    except ValidationError:
        existing = Contact.objects.for_team(team).filter(email=email).first()
        if existing is None:
            raise
        return existing, False


def contact_update(*, contact: Contact, actor=None, data: dict[str, Any]) -> Contact:
    """Update ``contact`` with ``data`` (keys of CONTACT_FIELDS and the declared vendor-id keys;
    others ignored) through :func:`model_update` (only the changed columns are written) and
    :func:`external_ids_set`; records the changed field names on the timeline in the same transaction.

    Returns the Contact; raises ValidationError on a duplicate email or an invalid value.
    """
    values = {k: v for k, v in data.items() if k in CONTACT_FIELDS}
    if "email" in values:
        values["email"] = normalize_email(values["email"])
        if (values["email"] != contact.email and Contact.objects.for_team(contact.team_id)
                .filter(email=values["email"]).exclude(pk=contact.pk).exists()):
            raise _duplicate_error(values["email"])
    try:
        with transaction.atomic():
            changed = [k for k in CONTACT_FIELDS if k in values and getattr(contact, k) != values[k]]
            model_update(contact, fields=changed, data=values)
            changed += external_ids_set(contact=contact, object="contact", values=data)
            if not changed:
                return contact
            timeline_event_record(contact=contact, kind=TimelineEvent.Kind.CONTACT_UPDATED, actor=actor,
                                  summary="Updated " + ", ".join(f.replace("_", " ") for f in changed) + ".",
                                  data={"fields": changed})
    except IntegrityError as err:
        raise _duplicate_error(contact.email) from err
    return contact


def contacts_delete(*, team: Team, selection: Selection | None = None, ids: Iterable[int] = ()) -> int:
    """Delete the team's contacts in ``selection`` (or with these ``ids``; other teams' rows are
    never touched), with their leads, sent messages and timelines. Returns how many contacts.

    Batches of BULK_BATCH contacts, each one transaction of set-based DELETEs.
    """
    selection = selection or Selection.of_ids(ids)
    deleted = 0
    for batch in id_batches(contacts_selected(team=team, selection=selection)):
        with transaction.atomic():
            _, per_model = Contact.objects.for_team(team).filter(pk__in=batch).delete()
        deleted += per_model.get(Contact._meta.label, 0)
    return deleted


def contacts_make_leads(*, team: Team, selection: Selection, owner=None, actor=None, status: str = Lead.Status.NEW) -> tuple[int, int]:
    """Make every contact in ``selection`` that is not a lead yet a lead (``status``, ``owner``),
    each with a "Became a lead" timeline row. Returns (leads made, contacts that already were).

    Set-based: per batch one INSERT of leads and one of timeline rows; contacts that became a
    lead concurrently are skipped, not failed.
    """
    if status not in Lead.Status.values:
        raise ValidationError({"status": f"Unknown lead status “{status}”."})
    label = Lead.Status(status).label
    made = seen = 0
    for batch in id_batches(contacts_selected(team=team, selection=selection)):
        seen += len(batch)
        made += _leads_insert(team=team, contact_ids=batch, status=status, owner=owner, actor=actor,
                              summary=f"Became a lead ({label}).")
    return made, seen - made


def lead_create(*, team: Team, contact: Contact, actor=None, data: dict[str, Any]) -> Lead:
    """Make ``contact`` a lead (keys of LEAD_FIELDS and the lead's declared vendor-id keys), with its
    timeline row. Raises ValidationError if it already is one."""
    if contact.team_id != team.pk:
        raise ValidationError("That contact is not in your team.")
    values = {k: v for k, v in data.items() if k in LEAD_FIELDS}
    try:
        with transaction.atomic():
            lead = model_create(Lead, team=team, contact=contact, **values)
            external_ids_set(contact=contact, object="lead", values=data)
            timeline_event_record(contact=contact, kind=TimelineEvent.Kind.LEAD_CREATED, actor=actor,
                                  summary=f"Became a lead ({lead.get_status_display()}).")
    except IntegrityError as err:
        raise ValidationError({"contact": f"{contact.email} is already a lead."}) from err
    return lead


def lead_update(*, lead: Lead, actor=None, data: dict[str, Any]) -> Lead:
    """Update a lead (keys of LEAD_FIELDS and the lead's declared vendor-id keys; others ignored)
    through :func:`model_update` and :func:`external_ids_set`; a status change is recorded on the
    contact's timeline in the same transaction. Returns the Lead; raises ValidationError for an
    invalid value (e.g. an unknown status)."""
    old_status = lead.status
    with transaction.atomic():
        model_update(lead, fields=LEAD_FIELDS, data=data)
        external_ids_set(contact=lead.contact, object="lead", values=data)
        if lead.status != old_status:
            timeline_event_record(contact=lead.contact, kind=TimelineEvent.Kind.LEAD_STATUS, actor=actor,
                                  summary=f"Lead status: {Lead.Status(old_status).label} → {lead.get_status_display()}.",
                                  data={"from": old_status, "to": lead.status})
    return lead


def leads_delete(*, team: Team, ids: Iterable[int]) -> int:
    """Delete the team's leads with these ``ids`` and their vendor ids (the contacts stay). Returns how many."""
    with transaction.atomic():
        leads = Lead.objects.for_team(team).filter(pk__in=list(ids))
        ExternalId.objects.filter(team=team, object=ExternalId.Object.LEAD, contact_id__in=leads.values("contact_id")).delete()
        _, per_model = leads.delete()
    return per_model.get(Lead._meta.label, 0)


def timeline_events_delete(*, team: Team, ids: Iterable[int]) -> int:
    """Delete the team's timeline events with these ``ids`` (other teams' ids are left alone; the
    contacts stay). One set-based DELETE. Returns how many."""
    _, per_model = TimelineEvent.objects.for_team(team).filter(pk__in=list(ids)).delete()
    return per_model.get(TimelineEvent._meta.label, 0)


def _leads_insert(*, team: Team, contact_ids: list[int], status: str, owner, actor, summary: str) -> int:
    """One batch of ``contacts_make_leads``: lead + timeline row for each contact among
    ``contact_ids`` without a lead. Retried when a lead was created concurrently. Returns how many."""
    for _attempt in range(3):
        try:
            with transaction.atomic():
                fresh = list(Contact.objects.for_team(team).filter(pk__in=contact_ids, lead__isnull=True)
                             .select_for_update(of=("self",)).values_list("pk", flat=True))
                Lead.objects.bulk_create([Lead(team=team, contact_id=pk, status=status, owner=owner) for pk in fresh])
                TimelineEvent.objects.bulk_create([
                    TimelineEvent(team=team, contact_id=pk, kind=TimelineEvent.Kind.LEAD_CREATED, actor=actor,
                                  summary=summary, data={}) for pk in fresh])
                return len(fresh)
        except IntegrityError:
            continue  # another request made one of these a lead meanwhile: read again
    raise ValidationError("Some of these contacts are being made leads by someone else right now; try again.")


def leads_set_status(*, team: Team, status: str, actor=None, selection: Selection | None = None,
                     ids: Iterable[int] = ()) -> int:
    """Bulk action: set ``status`` on the team's leads in ``selection`` (or with these ``ids``),
    each change with a "Lead status" timeline row as ``lead_update`` writes it. Returns how many
    changed. Set-based: per batch one UPDATE and one INSERT of timeline rows, under row locks.
    """
    if status not in Lead.Status.values:
        raise ValidationError({"status": f"Unknown lead status “{status}”."})
    selection = selection or Selection.of_ids(ids)
    new_label = Lead.Status(status).label
    changed = 0
    for batch in id_batches(leads_selected(team=team, selection=selection)):
        with transaction.atomic():
            rows = list(Lead.objects.for_team(team).filter(pk__in=batch).exclude(status=status)
                        .select_for_update().values_list("pk", "contact_id", "status"))
            if not rows:
                continue
            Lead.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(status=status, updated_at=timezone.now())
            TimelineEvent.objects.bulk_create([
                TimelineEvent(team=team, contact_id=contact_id, kind=TimelineEvent.Kind.LEAD_STATUS, actor=actor,
                              summary=f"Lead status: {Lead.Status(old).label} → {new_label}.",
                              data={"from": old, "to": status})
                for _, contact_id, old in rows])
            changed += len(rows)
    return changed
