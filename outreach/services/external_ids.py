"""Writes of contacts' and leads' vendor ids (ExternalId rows), checked against the providers'
declarations (:mod:`outreach.external_ids`). Callers that record a change on the timeline call
these inside their own transaction (``contact_update`` does)."""
from __future__ import annotations

from typing import Any, Mapping

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..external_ids import external_id_declared, external_id_fields
from ..models import Contact, ExternalId
from ..validation import validate_header_value

MAX_LENGTH = ExternalId._meta.get_field("value").max_length


def _clean_value(label: str, value: Any, *, field: str) -> str:
    value = str(value or "").strip()
    try:
        validate_header_value(value)  # ids travel in request bodies and headers: no CR/LF/NUL
    except ValidationError as err:
        raise ValidationError({field: f"{label} must be one line of text."}) from err
    if len(value) > MAX_LENGTH:
        raise ValidationError({field: f"{label} is longer than {MAX_LENGTH} characters."})
    return value


def external_ids_set(*, contact: Contact, object: str, values: Mapping[str, Any]) -> list[str]:
    """Set ``contact``'s (``object`` "contact") or its lead's (``object`` "lead") vendor ids from
    ``values`` ({key: value}, keys as :func:`outreach.external_ids.external_id_fields` names them,
    e.g. ``lemlist_contact_id``; other keys are ignored). A blank value deletes the id.

    Set-based: one read, then at most one DELETE, one bulk UPDATE and one bulk INSERT. Returns the
    keys whose value changed, in declaration order. Raises ValidationError({key: message}) for a
    value with a line break or longer than 255 characters; nothing is written then.
    """
    fields = [f for f in external_id_fields(object) if f.key in values]
    if not fields:
        return []
    wanted = {f.key: _clean_value(f.label, values[f.key], field=f.key) for f in fields}
    existing = {row.key: row for row in ExternalId.objects.filter(contact=contact, object=object)}
    changed, create, update, delete = [], [], [], []
    now = timezone.now()
    for f in fields:
        value, row = wanted[f.key], existing.get(f.key)
        if row is None and value:
            create.append(ExternalId(team_id=contact.team_id, contact=contact, object=object, provider=f.provider,
                                     kind=f.kind, value=value))
        elif row is not None and not value:
            delete.append(row.pk)
        elif row is not None and row.value != value:
            row.value, row.updated_at = value, now
            update.append(row)
        else:
            continue
        changed.append(f.key)
    with transaction.atomic():
        if delete:
            ExternalId.objects.filter(pk__in=delete).delete()
        if update:
            ExternalId.objects.bulk_update(update, ["value", "updated_at"])
        if create:
            ExternalId.objects.bulk_create(create)
    return changed


def external_id_check(*, object: str, provider: str, kind: str, value: str, extra_data: Any = None) -> str:
    """Check one vendor id as :func:`external_id_set` would store it; returns the cleaned value.

    Raises ValidationError when ``provider`` declares no id ``kind`` on ``object`` (naming what is
    declared), for a bad value (see :func:`external_ids_set`), or ``extra_data`` not a JSON object."""
    declared = external_id_declared(provider=provider, object=object, kind=kind)
    if declared is None:
        known = ", ".join(f"{f.provider} {f.object} {f.kind}" for f in external_id_fields()) or "none"
        raise ValidationError({"kind": f"{provider} declares no {object} id named {kind!r} (declared: {known})."})
    if extra_data is not None and not isinstance(extra_data, dict):
        raise ValidationError({"extra_data": "Extra data must be a JSON object."})
    return _clean_value(declared.label, value, field="value")


def external_id_set(*, contact: Contact, object: str, provider: str, kind: str, value: str,
                    extra_data: dict | None = None) -> ExternalId | None:
    """Set one vendor id of ``contact`` (or its lead) with its ``extra_data`` (a JSON object), as the
    admin edits it row by row. A blank ``value`` deletes the id and returns None; else returns the
    row. Raises ValidationError as :func:`external_id_check` does; nothing is written then."""
    value = external_id_check(object=object, provider=provider, kind=kind, value=value, extra_data=extra_data)
    if not value:
        ExternalId.objects.filter(contact=contact, object=object, provider=provider, kind=kind).delete()
        return None
    row, _ = ExternalId.objects.update_or_create(
        contact=contact, object=object, provider=provider, kind=kind, team_id=contact.team_id,
        defaults={"value": value, **({"extra_data": extra_data} if extra_data is not None else {})})
    return row
