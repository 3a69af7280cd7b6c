"""CSV imports of contacts and leads: upload, map, run (in a Celery task), cancel.

Flow: :func:`import_job_create` stores the upload through the storage API and detects its format →
the user checks the guessed column mapping (:func:`outreach.imports.selectors.import_job_preview`) → :func:`import_job_start`
saves the mapping and queues the task → :func:`import_job_run` streams the file in batches, one
transaction per batch. :func:`contacts_import` does all of it in-process (management command,
benchmark).

Every data row ends as exactly one of created / updated / unchanged / rejected; for a finished
job ``created + updated + unchanged + rejected == total_rows``. Rejected rows are written to the
job's error report (spreadsheet row, line, outcome, problem, the original cells; formula-escaped). Addresses on
the team's suppression list are imported but marked: counted in ``suppressed_count`` and flagged
on their timeline event (``data["suppressed"] = True`` and a note in the summary); the
suppression itself keeps them from being emailed.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
import uuid
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .emails import EmailChecker
from .mapping import CUSTOM, TARGETS, guess_mapping, validate_mapping
from .reading import (FileFormat, ImportFileError, confirm_encoding, count_rows, detect_format,
                               iter_records)
from .report import BLANKED, REJECTED, ErrorReport
from .selectors import import_mapping_remembered, job_format as _job_format, job_opener as _opener
from .writing import MAX_LENGTH, VALUE_COLUMNS, BatchWriter, ConcurrentInsert, Row
from ..models import ImportJob, Lead, Membership, Team
from ..services.sending_rules import validate_zone
from ..validation import normalize_http_url

logger = logging.getLogger(__name__)

BATCH_ROWS = 5000
CANCEL_CHECK_SECONDS = 0.5
REPORT_SAVE_SECONDS = 10.0  # the error report is stored this often while rows are rejected, and at the end
CONCURRENT_RETRIES = 6
QUEUED_BATCHES = 2  # parsed batches waiting for the writer: bounds memory
# A batch also ends at about this much COPY text (characters), so wide exports keep memory flat.
BATCH_TEXT_CHARS = 2_000_000
MAX_UPLOAD_BYTES = settings.OUTREACH_IMPORT_MAX_BYTES
POLICIES = tuple(ImportJob.Policy.values)


def _time_zone(value: str) -> str:
    """An IANA time zone name as given (e.g. "Europe/Paris"); ValidationError otherwise."""
    validate_zone(value.strip())
    return value.strip()


#: Cells checked like the forms check them; a failing cell is left out and listed in the report.
CELL_CHECKS = {"linkedin_url": normalize_http_url, "time_zone": _time_zone}


class ImportCancelled(Exception):
    pass


# --- upload and mapping ------------------------------------------------------------------------


def _apply_format(job: ImportJob, fmt: FileFormat) -> None:
    """Take ``fmt`` into ``job``: encoding, delimiter, header and the mapping (the team's last
    mapping for the same header set when it is still valid, else the guess)."""
    job.encoding, job.delimiter, job.headers = fmt.encoding, fmt.delimiter, fmt.headers
    job.header_row, job.header_line = fmt.header_row, fmt.header_line
    job.mapping = guess_mapping(fmt.headers)
    previous = import_mapping_remembered(team=job.team, headers=fmt.headers, exclude_id=job.pk)
    if previous is not None:
        try:
            job.mapping = validate_mapping(fmt.headers, list(previous.mapping))
        except ValidationError:
            pass


def import_job_create(*, team: Team, file: IO[bytes] | File, name: str = "", user=None,
                      filename: str = "") -> ImportJob:
    """Store an uploaded CSV through Django's storage API and detect encoding, delimiter and header.

    ``file`` is an UploadedFile / File or a binary file object; ``name`` defaults to the file
    name. Returns the ImportJob (status ``uploaded``, ``mapping`` the team's last mapping for the
    same header set, else guessed from the headers). Raises ValidationError — before anything is
    kept — for a file over the size limit (OUTREACH_IMPORT_MAX_BYTES, default 256 MB), an empty
    or binary file, or one without a header.
    """
    filename = os.path.basename(filename or getattr(file, "name", "") or "import.csv")
    size = getattr(file, "size", None)
    if size is not None and size > MAX_UPLOAD_BYTES:
        raise ValidationError(f"The file is {size / 1e6:.0f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB.")
    job = ImportJob(team=team, created_by=user if getattr(user, "pk", None) else None,
                    name=(name or filename).strip()[:200], original_filename=filename[:255])
    job.file.save(filename, file if isinstance(file, File) else File(file, name=filename), save=False)
    try:
        job.size_bytes = job.file.size
        if job.size_bytes > MAX_UPLOAD_BYTES:
            raise ImportFileError(f"The file is {job.size_bytes / 1e6:.0f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB.")
        fmt = detect_format(_opener(job.file))
    except ImportFileError as err:
        job.file.delete(save=False)
        raise ValidationError(str(err), code="unreadable_file") from None
    _apply_format(job, fmt)
    job.save()
    return job


def import_job_set_header_row(*, job: ImportJob, header_row: int) -> ImportJob:
    """Take record ``header_row`` (1-based, as a spreadsheet numbers rows) as the header of a job
    still waiting for its mapping; re-reads the column names and re-guesses the mapping.

    Returns the job. Raises ValidationError for a started job, or a row that is blank or past
    the end of the file."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("team").get(pk=job.pk)
        if job.status != ImportJob.Status.UPLOADED:
            raise ValidationError("This import has already been started.")
        if header_row < 1:
            raise ValidationError("The header row is a row number from 1.")
        try:
            fmt = detect_format(_opener(job.file), header_row=header_row)
        except ImportFileError as err:
            raise ValidationError(str(err), code="bad_header_row") from None
        _apply_format(job, fmt)
        job.save()
    return job


def _clean_options(*, job: ImportJob, mapping: list[str], policy: str, as_leads: bool, lead_status: str,
                   lead_owner) -> None:
    if policy not in POLICIES:
        raise ValidationError(f"Unknown duplicate policy {policy!r}; use one of {', '.join(POLICIES)}.")
    validate_mapping(job.headers, mapping)
    if as_leads:
        if lead_status not in Lead.Status.values:
            raise ValidationError(f"Unknown lead status {lead_status!r}.")
        if lead_owner is not None and not Membership.objects.filter(user=lead_owner, team_id=job.team_id).exists():
            raise ValidationError("The lead owner must be a member of your team.")
    job.mapping, job.policy, job.as_leads = list(mapping), policy, bool(as_leads)
    job.lead_status = lead_status if as_leads else Lead.Status.NEW
    job.lead_owner = lead_owner if as_leads else None


def import_job_start(*, job: ImportJob, mapping: list[str], policy: str, as_leads: bool = False,
                     lead_status: str = "new", lead_owner=None) -> ImportJob:
    """Save the chosen mapping/options and queue the import task (after the commit).

    ``mapping``: one target per column (see ``outreach.imports.mapping``); ``policy``: skip,
    update or fill; ``lead_owner``: a user of the job's team or None. Returns the job (status
    ``queued``). Raises ValidationError for a job already started, a mapping without an Email
    column, a field mapped twice, an unknown policy/status, or an owner from another team.
    """
    from .tasks import import_contacts_run

    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status != ImportJob.Status.UPLOADED:
            raise ValidationError("This import has already been started.")
        _clean_options(job=job, mapping=mapping, policy=policy, as_leads=as_leads, lead_status=lead_status,
                       lead_owner=lead_owner)
        job.status = ImportJob.Status.QUEUED
        job.save()
        transaction.on_commit(lambda: _enqueue(job, import_contacts_run))
    return job


def _enqueue(job: ImportJob, task) -> None:
    result = task.delay(job.pk)
    ImportJob.objects.filter(pk=job.pk).update(task_id=result.id or "")


def import_job_cancel(*, job: ImportJob) -> ImportJob:
    """Cancel an import. Not yet running: it is cancelled at once and nothing is written. Running:
    the worker stops before its next batch (batches already committed stay imported and counted).
    Finished jobs are returned unchanged."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status in (ImportJob.Status.UPLOADED, ImportJob.Status.QUEUED):
            job.status, job.finished_at = ImportJob.Status.CANCELLED, timezone.now()
            job.cancel_requested = True
            job.save(update_fields=["status", "finished_at", "cancel_requested", "updated_at"])
        elif job.status == ImportJob.Status.RUNNING:
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested", "updated_at"])
    return job


# --- the run -------------------------------------------------------------------------------------


def import_job_run(*, import_job_id: int) -> ImportJob:
    """Run a queued import to the end (the Celery task's body). Returns the job.

    Streams the file (memory stays flat), counts its rows first for the progress bar, then
    writes batches of BATCH_ROWS rows, each in its own transaction together with the job's
    counters, so a failure or a crash leaves every batch either fully written or not at all. A
    re-delivered task resumes after the last committed batch. Never raises for problems of the
    data: the job ends ``done``, ``cancelled`` or ``failed`` (with ``error_message``).
    """
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("team").get(pk=import_job_id)
        if job.status not in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING):
            return job
        job.status = ImportJob.Status.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.save(update_fields=["status", "started_at", "updated_at"])
    try:
        _Run(job).run()
    except ImportCancelled:
        _finish(job, ImportJob.Status.CANCELLED)
    except (ImportFileError, ValidationError) as err:
        _finish(job, ImportJob.Status.FAILED, " ".join(getattr(err, "messages", [str(err)])))
    except Exception as err:  # a bug or the database: the failed batch was rolled back
        logger.exception("import %s failed", job.pk)
        _finish(job, ImportJob.Status.FAILED, f"The import stopped because of an error: {err.__class__.__name__}: {err}"[:2000])
    else:
        _finish(job, ImportJob.Status.DONE)
    job.refresh_from_db()
    return job


def _finish(job: ImportJob, status: str, message: str = "") -> None:
    ImportJob.objects.filter(pk=job.pk).update(status=status, error_message=message, finished_at=timezone.now(),
                                                updated_at=timezone.now())


class _Run:
    def __init__(self, job: ImportJob):
        self.job = job
        self.fmt = _job_format(job)
        self.source = _opener(job.file)
        mapping = validate_mapping(job.headers, job.mapping)
        self.width = len(job.headers)
        self.email_index = mapping.index("email")
        self.contact_cols = [(i, t, MAX_LENGTH[t]) for i, t in enumerate(mapping) if t in VALUE_COLUMNS]
        self.lead_cols = [(i, t, MAX_LENGTH[t]) for i, t in enumerate(mapping) if t.startswith("lead.")]
        self.custom_cols = [(i, job.headers[i]) for i, t in enumerate(mapping) if t == CUSTOM]
        self.check_email = EmailChecker()
        lead_options = {"status": job.lead_status, "owner_id": job.lead_owner_id} if job.as_leads else None
        self.writer = BatchWriter(team_id=job.team_id, import_id=job.pk, source=job.name, policy=job.policy,
                                  lead_options=lead_options, actor_id=job.created_by_id)
        if not job.error_report:
            job.error_report.name = f"imports/errors/{job.team_id}/{job.pk}-{uuid.uuid4().hex[:12]}.csv"
            ImportJob.objects.filter(pk=job.pk).update(error_report=job.error_report.name)
        self.cancel_checked = 0.0
        self.report_saved = time.monotonic()
        self.written = 0  # contacts created by this run, for BatchWriter.refresh_statistics
        self.report = ErrorReport(job.error_report.storage, job.error_report.name, job.headers)

    def parse(self, record) -> tuple[Row | None, str]:
        """(Row, "") for a valid record, (Row, problem) for a row imported without an invalid
        cell (the cell is left out, like a form would refuse it), (None, problem) for a
        rejected one. Problems are plain sentences for the error report."""
        cells = record.cells
        if cells is None:
            return None, record.error
        if len(cells) > self.width and any(cells[self.width:]):
            return None, f"The row has {len(cells)} values but the header has {self.width} columns."
        if len(cells) < self.width:
            cells = cells + [""] * (self.width - len(cells))
        raw_email = cells[self.email_index]
        if not raw_email:
            return None, "The email address is missing."
        try:
            email = self.check_email(raw_email)
        except ValidationError as err:
            return None, " ".join(err.messages)
        values, lead, custom = {}, {}, {}
        left_out = []
        for index, target, limit in self.contact_cols:
            value = cells[index]
            if value:
                if len(value) > limit:
                    return None, f"{TARGETS[target]} is longer than {limit} characters."
                if target in CELL_CHECKS:
                    try:
                        value = CELL_CHECKS[target](value)
                    except ValidationError as err:
                        left_out.append(f"{TARGETS[target]} left out: {' '.join(err.messages)}")
                        continue
                values[target] = value
        for index, target, limit in self.lead_cols:
            value = cells[index]
            if value:
                if len(value) > limit:
                    return None, f"{TARGETS[target]} is longer than {limit} characters."
                lead[target[5:]] = value
        for index, key in self.custom_cols:
            value = cells[index]
            if value:
                custom[key] = value
        row = self.writer.preformat(Row(record.sheet_row, record.line, email, values, custom, lead))
        return row, " ".join(left_out)

    def batches(self, skip: int):
        """Yield (valid rows, report entries, rejected count, blanked count) batches of up to
        BATCH_ROWS records (fewer for wide rows: about BATCH_TEXT_CHARS of COPY text) after data
        row ``skip``."""
        rows: list[Row] = []
        entries: list[tuple[int, int, str, str, list[str] | None]] = []
        rejected = blanked = size = 0
        for record in iter_records(self.source, self.fmt):
            if record.row <= skip:
                continue
            row, problem = self.parse(record)
            if row is None:
                rejected += 1
                entries.append((record.sheet_row, record.line, REJECTED, problem, record.cells))
            else:
                rows.append(row)
                size += len(row.contact_tail)
                if problem:
                    blanked += 1
                    entries.append((record.sheet_row, record.line, BLANKED, problem, record.cells))
            size += 100  # the row's objects
            if len(rows) + rejected >= BATCH_ROWS or size >= BATCH_TEXT_CHARS:
                yield rows, entries, rejected, blanked
                rows, entries, rejected, blanked, size = [], [], 0, 0, 0
        if rows or rejected:
            yield rows, entries, rejected, blanked

    def run(self) -> None:
        """Run the import; the error report is stored however the run ends."""
        try:
            self._run()
        finally:
            try:
                self.report.save()
            finally:
                self.report.close()

    def _run(self) -> None:
        """Count (in a thread), read and parse (in a thread) and write (here, batch by batch).

        The threads never touch the database; while this thread waits for PostgreSQL they use
        the CPU. At most QUEUED_BATCHES parsed batches wait in the queue, so memory stays flat."""
        job = self.job
        encoding = confirm_encoding(self.source, self.fmt.encoding)
        if encoding != self.fmt.encoding:
            self.fmt = dataclasses.replace(self.fmt, encoding=encoding)
            ImportJob.objects.filter(pk=job.pk).update(encoding=encoding)
        self.total: int | None = job.total_rows
        self.total_saved = job.total_rows is not None
        counter = None
        if job.total_rows is None:
            def count() -> None:
                self.total = count_rows(self.source, self.fmt)
            counter = threading.Thread(target=count, name=f"import-{job.pk}-count", daemon=True)
            counter.start()
        end = object()
        batches: queue.Queue = queue.Queue(maxsize=QUEUED_BATCHES)
        stop = threading.Event()

        def produce() -> None:
            try:
                for batch in self.batches(job.rows_done):  # a re-delivered task resumes after the last batch
                    while not stop.is_set():
                        try:
                            batches.put(batch, timeout=0.2)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                batches.put(end)
            except BaseException as err:  # handed to the writing thread
                batches.put(err)

        self.writer.prepare()
        producer = threading.Thread(target=produce, name=f"import-{job.pk}-read", daemon=True)
        producer.start()
        try:
            while True:
                item = batches.get()
                if item is end:
                    break
                if isinstance(item, BaseException):
                    raise item
                self.commit(*item)
        finally:
            stop.set()
            while producer.is_alive():
                try:
                    batches.get(timeout=0.05)
                except queue.Empty:
                    pass
            producer.join()
        if not self.total_saved:
            if counter is not None:
                counter.join()
            total = count_rows(self.source, self.fmt) if self.total is None else self.total
            ImportJob.objects.filter(pk=job.pk).update(total_rows=total)

    def commit(self, rows: list[Row], entries: list, rejected: int, blanked: int) -> None:
        now = time.monotonic()
        if now - self.cancel_checked > CANCEL_CHECK_SECONDS:
            self.cancel_checked = now
            if ImportJob.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
                raise ImportCancelled()
        for attempt in range(CONCURRENT_RETRIES):
            try:
                with transaction.atomic():
                    result = self.writer.write(rows, timezone.now()) if rows else None
                    extra = {}
                    if not self.total_saved and self.total is not None:
                        extra["total_rows"] = self.total
                    ImportJob.objects.filter(pk=self.job.pk).update(
                        **extra,
                        rows_done=F("rows_done") + len(rows) + rejected,
                        created_count=F("created_count") + (result.created if result else 0),
                        updated_count=F("updated_count") + (result.updated if result else 0),
                        unchanged_count=F("unchanged_count") + (result.unchanged if result else 0),
                        rejected_count=F("rejected_count") + rejected,
                        blanked_count=F("blanked_count") + blanked,
                        suppressed_count=F("suppressed_count") + (result.suppressed if result else 0),
                        leads_created_count=F("leads_created_count") + (result.leads_created if result else 0),
                        updated_at=timezone.now(),
                    )
                if extra:
                    self.total_saved = True
                if result is not None:
                    self.written += result.created
                    self.writer.refresh_statistics(self.written)
                break
            except ConcurrentInsert:  # another import committed some of these addresses: re-plan
                if attempt == CONCURRENT_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        self.report.append(entries)
        if entries and now - self.report_saved > REPORT_SAVE_SECONDS:
            self.report.save()
            self.report_saved = now


# --- housekeeping ------------------------------------------------------------------------------


def import_jobs_expire(*, now=None) -> dict[str, int]:
    """Expire abandoned uploads and remove old files (the periodic task's body).

    A job still ``uploaded`` (waiting for its mapping) for OUTREACH_IMPORT_MAPPING_EXPIRY_HOURS is
    cancelled with a note and its upload deleted; a finished job older than
    OUTREACH_IMPORT_RETENTION_DAYS loses its upload and error report (its counts stay). Files are
    removed through the storage API. Returns {"expired": n, "files_removed": n}."""
    now = now or timezone.now()
    expired = files = 0
    cutoff = now - timedelta(hours=settings.OUTREACH_IMPORT_MAPPING_EXPIRY_HOURS)
    for job_id in (ImportJob.objects.filter(status=ImportJob.Status.UPLOADED, created_at__lt=cutoff)
                   .values_list("pk", flat=True)):
        with transaction.atomic():
            job = ImportJob.objects.select_for_update().filter(pk=job_id, status=ImportJob.Status.UPLOADED).first()
            if job is None:
                continue
            job.status, job.finished_at, job.cancel_requested = ImportJob.Status.CANCELLED, now, True
            job.error_message = ("Expired: the column mapping was not confirmed within "
                                 f"{settings.OUTREACH_IMPORT_MAPPING_EXPIRY_HOURS} hours; upload the file again.")
            files += _remove_files(job)
            job.save(update_fields=["status", "finished_at", "cancel_requested", "error_message", "file",
                                    "error_report", "updated_at"])
            expired += 1
    cutoff = now - timedelta(days=settings.OUTREACH_IMPORT_RETENTION_DAYS)
    old = (ImportJob.objects.filter(status__in=[ImportJob.Status.DONE, ImportJob.Status.FAILED, ImportJob.Status.CANCELLED],
                                    finished_at__lt=cutoff).exclude(file="", error_report=""))
    for job in old.iterator():
        files += _remove_files(job)
        ImportJob.objects.filter(pk=job.pk).update(file=job.file.name or "", error_report=job.error_report.name or "")
    return {"expired": expired, "files_removed": files}


def _remove_files(job: ImportJob) -> int:
    removed = 0
    for field in (job.file, job.error_report):
        if field.name:
            if field.storage.exists(field.name):
                field.storage.delete(field.name)
                removed += 1
            field.name = ""
    return removed


# --- all in one (command, admin, benchmark) ----------------------------------------------------------


def contacts_import(*, team: Team, file: IO[bytes] | File, policy: str = "skip", as_leads: bool = False,
                    lead_status: str = "new", lead_owner=None, mapping: dict[str, str] | list[str] | None = None,
                    name: str = "", user=None, filename: str = "") -> ImportJob:
    """Import a CSV synchronously, in this process: create, map, run. Returns the finished job
    (``job.counts()`` has the numbers; ``job.status`` is ``done`` or ``failed``).

    ``mapping`` is None (the guessed one), a list with one target per column, or
    ``{header: target}`` overriding the guess (targets: field names, ``custom``, ``ignore``).
    Raises ValidationError before anything is written for an unreadable file, a mapping without
    an Email column, or a bad option.
    """
    from .mapping import mapping_from_json

    job = import_job_create(team=team, file=file, name=name, user=user, filename=filename)
    try:
        chosen = (job.mapping if mapping is None else
                  mapping_from_json(job.headers, mapping) if isinstance(mapping, dict) else list(mapping))
        with transaction.atomic():
            _clean_options(job=job, mapping=chosen, policy=policy, as_leads=as_leads, lead_status=lead_status,
                           lead_owner=lead_owner)
            job.status = ImportJob.Status.QUEUED
            job.save()
    except ValidationError:
        job.file.delete(save=False)
        job.delete()
        raise
    return import_job_run(import_job_id=job.pk)
