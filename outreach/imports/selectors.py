"""Reads of the import pages: lists, the mapping step's preview and columns, and a job's progress."""
from __future__ import annotations

from typing import IO, Any, Callable, Iterable

from django.db.models import QuerySet
from django.utils import timezone

from ..campaigns.models import Enrolment
from ..models import Contact, ImportJob, Team, TimelineEvent
from ..selectors import ListQuery, apply_ordering, apply_search
from .mapping import IGNORE
from .reading import FileFormat, iter_records

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


def job_opener(field) -> Callable[[], IO[bytes]]:
    """A callable opening ``field``'s file afresh through its storage (each reader its own handle)."""
    storage, name = field.storage, field.name
    return lambda: storage.open(name, "rb")


def job_format(job: ImportJob) -> FileFormat:
    """The file format stored on ``job`` (encoding, delimiter, headers, header row and line)."""
    return FileFormat(job.encoding, job.delimiter, job.headers, job.header_row, job.header_line)


def import_mapping_remembered(*, team: Team, headers: list[str], exclude_id: int | None = None) -> ImportJob | None:
    """The team's most recent started import of a file with exactly these ``headers`` (its
    ``mapping`` is the one the team chose last for them), or None."""
    qs = (ImportJob.objects.for_team(team).filter(headers=headers).exclude(status=ImportJob.Status.UPLOADED)
          .exclude(mapping=[]).order_by("-created_at", "-id"))
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return qs.first()


def import_job_preview(*, job: ImportJob, limit: int = 5) -> list[list[str]]:
    """The first ``limit`` data rows of the job's file, each padded/cut to the header's width.
    Unreadable lines are shown as a row with the error in the first cell."""
    width = len(job.headers)
    rows = []
    for record in iter_records(job_opener(job.file), job_format(job)):
        cells = record.cells if record.cells is not None else [f"({record.error})"]
        rows.append((cells + [""] * width)[:width])
        if len(rows) >= limit:
            break
    return rows


def import_job_columns(*, job: ImportJob, scan_rows: int = 200, samples: int = 3) -> list[dict[str, Any]]:
    """What the mapping step shows per column, in column order: {"index", "header", "target"
    (the current mapping), "samples" (up to ``samples`` distinct non-empty values from the first
    ``scan_rows`` rows), "looks_like_email" (most non-empty values look like addresses),
    "email_unmapped" (looks like email but not mapped to Email)}."""
    width = len(job.headers)
    values: list[list[str]] = [[] for _ in range(width)]
    filled = [0] * width
    at = [0] * width
    for n, record in enumerate(iter_records(job_opener(job.file), job_format(job))):
        if n >= scan_rows:
            break
        for index, cell in enumerate((record.cells or [])[:width]):
            if cell:
                filled[index] += 1
                at[index] += "@" in cell and " " not in cell
                if len(values[index]) < samples and cell not in values[index]:
                    values[index].append(cell)
    columns = []
    for index, header in enumerate(job.headers):
        target = job.mapping[index] if index < len(job.mapping) else IGNORE
        looks = filled[index] > 0 and at[index] * 2 > filled[index]
        columns.append({"index": index, "header": header, "target": target, "samples": values[index],
                        "looks_like_email": looks, "email_unmapped": looks and target != "email"})
    return columns


def import_job_progress(*, job: ImportJob) -> dict[str, Any]:
    """Progress for the UI: {"rows_done", "total_rows" (None while counting: a file parsed in a
    child process is not counted beforehand, its percentage follows the bytes read), "percent"
    (0-100), "rate" (rows/s, float) , "elapsed" (s), "status", "finished" (bool), "enrolment" (None
    without a campaign, else ``job.enrolment_counts()`` plus "skipped_rows": [(reason, label, count)])}."""
    now = job.finished_at or timezone.now()
    elapsed = (now - job.started_at).total_seconds() if job.started_at else 0.0
    total = job.total_rows
    percent = 100 if job.status == ImportJob.Status.DONE else (
        int(job.rows_done * 100 / total) if total else
        int(job.bytes_done * 100 / job.size_bytes) if job.size_bytes else 0)
    return {"rows_done": job.rows_done, "total_rows": total, "percent": min(percent, 100),
            "rate": job.rows_done / elapsed if elapsed > 0 else 0.0, "elapsed": elapsed,
            "status": job.status, "finished": job.is_finished, "enrolment": _enrolment_summary(job)}


#: ImportJob.enrol_skipped reason (beside Enrolment.Reason values) when the campaign closed mid-import.
CAMPAIGN_CLOSED = "campaign_closed"


def _enrolment_summary(job: ImportJob) -> dict[str, Any] | None:
    counts = job.enrolment_counts()
    if counts is not None:
        labels = {**dict(Enrolment.Reason.choices), CAMPAIGN_CLOSED: "The campaign was stopped, completed or deleted"}
        counts["skipped_rows"] = [(reason, labels.get(reason, reason).lower(), n)
                                  for reason, n in sorted(counts["skipped"].items())]
    return counts
