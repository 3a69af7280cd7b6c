"""Reads of the import pages."""
from __future__ import annotations

from typing import Iterable

from django.db.models import QuerySet

from ..models import Contact, ImportJob, Team, TimelineEvent
from ..selectors import ListQuery, apply_ordering, apply_search

IMPORT_SEARCH = ("name", "original_filename")
IMPORT_ORDERING = {
    "name": ("name",),
    "status": ("status",),
    "rows": ("total_rows",),
    "created_count": ("created_count",),
    "rejected": ("rejected_count",),
    "created": ("created_at",),
}


def import_job_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's imports for the list page. Filter: ``status`` (ImportJob.Status value).
    Returns (queryset, sort key used); newest first by default."""
    qs = ImportJob.objects.for_team(team).select_related("created_by").defer("headers", "mapping")
    qs = apply_search(qs, query.q, IMPORT_SEARCH)
    status = query.filters.get("status", "")
    if status in ImportJob.Status.values:
        qs = qs.filter(status=status)
    return apply_ordering(qs, query.order, IMPORT_ORDERING, "-created")


def import_jobs_by_ids(*, team: Team, ids: Iterable[int]) -> QuerySet:
    """The team's imports among ``ids`` (other teams' ids are silently absent)."""
    return ImportJob.objects.for_team(team).filter(pk__in=list(ids))


def contact_imported_event(*, contact: Contact) -> TimelineEvent | None:
    """The "Imported from …" timeline entry of a contact an import created (unsaved, built from
    the contact's ``import_job_id``/``import_row``/``source``: the import writes no event row
    per created contact), or None. Shown like a stored CONTACT_IMPORTED event."""
    if contact.import_job_id is None:
        return None
    job = ImportJob.objects.filter(pk=contact.import_job_id).select_related("created_by").only("created_by").first()
    return TimelineEvent(team_id=contact.team_id, contact=contact, kind=TimelineEvent.Kind.CONTACT_IMPORTED,
                         actor=job.created_by if job is not None else None,
                         summary=f"Imported from {contact.source} (row {contact.import_row}).",
                         data={"import_id": contact.import_job_id, "import": contact.source, "row": contact.import_row,
                               "outcome": "created"},
                         created_at=contact.created_at, updated_at=contact.created_at)
