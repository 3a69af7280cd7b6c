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

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from .mapping import guess_mapping, validate_mapping
from .parsing import CELL_CHECKS, ChildParser, RowParser, parser_spec  # noqa: F401  (CELL_CHECKS: the cell rules, re-exported)
from .reading import FileFormat, ImportFileError, confirm_encoding, count_rows, detect_format, iter_records
from .report import ErrorReport
from .selectors import (CAMPAIGN_CLOSED, import_mapping_remembered, job_format as _job_format,  # noqa: F401
                        job_opener as _opener)
from .writing import BatchWriter, ConcurrentInsert, Row
from ..models import ImportJob, Lead, Membership, Team
from ..campaigns.models import Campaign
from ..campaigns.selectors import campaigns_open
from ..campaigns.services import campaign_enrol

logger = logging.getLogger(__name__)

REPORT_SAVE_SECONDS = 10.0  # the error report is stored this often while rows are rejected, and at the end
CONCURRENT_RETRIES = 6
QUEUED_BATCHES = 2  # parsed batches waiting for the writer: bounds memory
BATCH_ROWS = 5000
# A batch also ends at about this much COPY text (characters), so wide exports keep memory flat.
BATCH_TEXT_CHARS = 2_000_000
#: Files of this size or more are parsed in a child process (outreach.imports.parsing); 0: never.
PARSE_PROCESS_MIN_BYTES = settings.OUTREACH_IMPORT_PARSE_PROCESS_BYTES
MAX_UPLOAD_BYTES = settings.OUTREACH_IMPORT_MAX_BYTES
POLICIES = tuple(ImportJob.Policy.values)


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
        raise ValidationError(str(err), code="unreadable_file") from err
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
            raise ValidationError(str(err), code="bad_header_row") from err
        _apply_format(job, fmt)
        job.save()
    return job


def _clean_options(*, job: ImportJob, mapping: list[str], policy: str, as_leads: bool, lead_status: str,
                   lead_owner, campaign=None, enrol_updated: bool = False) -> None:
    if policy not in POLICIES:
        raise ValidationError(f"Unknown duplicate policy {policy!r}; use one of {', '.join(POLICIES)}.")
    validate_mapping(job.headers, mapping)
    if as_leads:
        if lead_status not in Lead.Status.values:
            raise ValidationError(f"Unknown lead status {lead_status!r}.")
        if lead_owner is not None and not Membership.objects.filter(user=lead_owner, team_id=job.team_id).exists():
            raise ValidationError("The lead owner must be a member of your team.")
    if campaign is not None and not campaigns_open(team=job.team).filter(pk=campaign.pk).exists():
        raise ValidationError("Choose a draft, active or paused campaign of your team to enrol the contacts in.",
                              code="campaign")
    job.mapping, job.policy, job.as_leads = list(mapping), policy, bool(as_leads)
    job.lead_status = lead_status if as_leads else Lead.Status.NEW
    job.lead_owner = lead_owner if as_leads else None
    job.campaign = campaign
    job.enrol_updated = bool(enrol_updated) and campaign is not None


def import_job_start(*, job: ImportJob, mapping: list[str], policy: str, as_leads: bool = False,
                     lead_status: str = "new", lead_owner=None, campaign=None, enrol_updated: bool = False) -> ImportJob:
    """Save the chosen mapping/options and queue the import task (after the commit).

    ``mapping``: one target per column (see ``outreach.imports.mapping``); ``policy``: skip,
    update or fill; ``lead_owner``: a user of the job's team or None; ``campaign``: a Campaign
    of the team (draft, active or paused) to enrol the created contacts in — and, with
    ``enrol_updated``, the existing contacts the import changed — through
    ``outreach.campaigns.services.campaign_enrol`` (its skip rules; counts on the job). Returns
    the job (status ``queued``). Raises ValidationError for a job already started, a mapping
    without an Email column, a field mapped twice, an unknown policy/status, an owner from
    another team, or a campaign of another team or already stopped/completed.
    """
    from .tasks import import_contacts_run

    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status != ImportJob.Status.UPLOADED:
            raise ValidationError("This import has already been started.")
        _clean_options(job=job, mapping=mapping, policy=policy, as_leads=as_leads, lead_status=lead_status,
                       lead_owner=lead_owner, campaign=campaign, enrol_updated=enrol_updated)
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


def _job_advance(job_id: int, *, add: dict[str, int], set_fields: dict) -> bool:
    """One UPDATE of the job's row: each field of ``add`` grows by its value, each of
    ``set_fields`` is set (values as the model field takes them). Returns the job's
    ``cancel_requested`` as the UPDATE left it (``RETURNING``: the newest committed value, so
    the run's cancel check needs no query of its own)."""
    meta, quote = ImportJob._meta, connection.ops.quote_name
    assignments, params = [], []
    for name, delta in add.items():
        column = quote(meta.get_field(name).column)
        assignments.append(f"{column} = {column} + %s")
        params.append(delta)
    for name, value in set_fields.items():
        field = meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {quote(meta.pk.column)} = %s "
                       f"RETURNING {quote(meta.get_field('cancel_requested').column)}", [*params, job_id])
        (cancel,) = cursor.fetchone()
    return bool(cancel)


class _Run:
    def __init__(self, job: ImportJob):
        self.job = job
        self.fmt = _job_format(job)
        self.source = _opener(job.file)
        lead_options = {"status": job.lead_status, "owner_id": job.lead_owner_id} if job.as_leads else None
        self.writer = BatchWriter(team_id=job.team_id, import_id=job.pk, source=job.name, policy=job.policy,
                                  lead_options=lead_options, actor_id=job.created_by_id)
        self.parser_spec = parser_spec(headers=job.headers, mapping=job.mapping, postgres=self.writer.postgres)
        self.parser = RowParser(self.parser_spec)
        # A big file (when OUTREACH_IMPORT_PARSE_PROCESS_BYTES is set) is parsed in a child process
        # and not counted first (the progress bar follows the bytes read; the exact total is stored
        # at the end). Otherwise threads of this process parse and count.
        self.in_child = 0 < PARSE_PROCESS_MIN_BYTES <= job.size_bytes
        if not job.error_report:
            job.error_report.name = f"imports/errors/{job.team_id}/{job.pk}-{uuid.uuid4().hex[:12]}.csv"
            ImportJob.objects.filter(pk=job.pk).update(error_report=job.error_report.name)
        self.report_saved = time.monotonic()
        self.report = ErrorReport(job.error_report.storage, job.error_report.name, job.headers)
        self.enrol_skipped = Counter(job.enrol_skipped or {})  # the committed totals (a resumed run goes on from them)
        self.enrol_actor = job.created_by if job.campaign_id else None
        # PostgreSQL: batches commit asynchronously (``synchronous_commit = off``: the commit
        # returns before its WAL is flushed to disk, saving the flush wait per batch), except
        # when they enrol into a campaign (the scheduler may act on the enrolments at once).
        # Safe because a batch's rows and the job's progress (rows_done, counts) are written in
        # the same transaction: a database crash can only take back the last batches as a whole
        # (never corrupt or half-apply one), leaving the job's counters exactly matching the rows
        # that remain; the re-delivered task (acks_late) then resumes after rows_done and redoes
        # them. Nothing outside the database depends on an asynchronous commit: before the error
        # report is stored (save_report) and when the job ends (_finish, before the task is
        # acknowledged), a synchronous commit flushes everything committed before it.
        self.asynchronous = self.writer.postgres and not job.campaign_id
        self.writer.commit_async = self.asynchronous  # SET LOCAL in the batch's first round trip

    def enrol(self, result, now) -> tuple[int, int, Counter]:
        """Enrol the batch's created contacts (and changed ones, with ``enrol_updated``) in the
        job's campaign through ``campaign_enrol`` (its skip rules), inside the batch's
        transaction. Returns (enrolled, already, skipped by reason); a campaign stopped, completed
        or deleted meanwhile skips them all as ``campaign_closed``."""
        job = self.job
        ids = result.created_ids + (result.updated_ids if job.enrol_updated else [])
        if not ids:
            return 0, 0, Counter()
        campaign = Campaign.objects.select_related("team").filter(pk=job.campaign_id, team_id=job.team_id).first()
        if campaign is not None:
            try:
                outcome = campaign_enrol(campaign=campaign, contact_ids=ids, actor=self.enrol_actor, now=now)
            except ValidationError:  # stopped or completed since the import started
                pass
            else:
                return outcome.enrolled, outcome.already, Counter(outcome.skipped)
        return 0, 0, Counter({CAMPAIGN_CLOSED: len(ids)})

    def batches(self, skip: int):
        """Yield (valid rows, report entries, rejected count, blanked count, bytes read or None)
        batches after data row ``skip``: parsed in a child process when ``self.in_child`` (so the
        parsing has a core of its own), else in this process."""
        if not self.in_child:
            for batch in self.parser.batches(iter_records(self.source, self.fmt), skip=skip, rows=BATCH_ROWS,
                                             chars=BATCH_TEXT_CHARS):
                yield (*batch, None)
            return
        child = ChildParser(open_source=self.source, spec=self._child_spec(skip))
        try:
            for message in child.messages():
                if message[0] == "batch":
                    yield message[1:]
        finally:
            child.close()

    def _child_spec(self, skip: int) -> dict:
        return {"format": dataclasses.asdict(self.fmt), "parser": self.parser_spec, "skip": skip, "rows": BATCH_ROWS,
                "chars": BATCH_TEXT_CHARS,
                "settings": {"USE_I18N": settings.USE_I18N, "LANGUAGE_CODE": settings.LANGUAGE_CODE}}

    def run(self) -> None:
        """Run the import; the error report is stored however the run ends."""
        try:
            self._run()
        finally:
            try:
                self.save_report()
            finally:
                self.report.close()

    def _run(self) -> None:
        """Count (in a thread), read and parse (in a thread, or a child process fed by one) and
        write (here, batch by batch).

        The threads never touch the database; while this thread waits for PostgreSQL they use
        the CPU. At most QUEUED_BATCHES parsed batches wait in the queue (and a child process
        blocks on its full pipe), so memory stays flat."""
        job = self.job
        if job.cancel_requested:  # a re-delivered task of a job cancelled while it ran
            raise ImportCancelled()
        encoding = confirm_encoding(self.source, self.fmt.encoding)
        if encoding != self.fmt.encoding:
            self.fmt = dataclasses.replace(self.fmt, encoding=encoding)
            ImportJob.objects.filter(pk=job.pk).update(encoding=encoding)
        self.total: int | None = job.total_rows
        self.total_saved = job.total_rows is not None
        counter = None
        if job.total_rows is None and not self.in_child:
            def count() -> None:
                try:
                    self.total = count_rows(self.source, self.fmt)
                except Exception:  # the parsing thread meets the same problem and reports it
                    logger.warning("import %s: counting the rows failed", job.pk, exc_info=True)
            counter = threading.Thread(target=count, name=f"import-{job.pk}-count", daemon=True)
            counter.start()
        end = object()
        batches: queue.Queue = queue.Queue(maxsize=QUEUED_BATCHES)
        stop = threading.Event()

        def produce() -> None:
            try:
                with contextlib.closing(self.batches(job.rows_done)) as parsed:  # a re-delivered task resumes
                    for batch in parsed:
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
            if self.in_child:  # every record went through the parser: the rows done are the rows
                ImportJob.objects.filter(pk=job.pk).update(total_rows=F("rows_done"), bytes_done=job.size_bytes)
            else:
                total = count_rows(self.source, self.fmt) if self.total is None else self.total
                ImportJob.objects.filter(pk=job.pk).update(total_rows=total)

    def commit(self, rows: list[Row], entries: list, rejected: int, blanked: int, bytes_read: int | None = None) -> None:
        """Write one batch and the job's progress in one transaction; raises ImportCancelled after
        it when the job's cancel was requested (read back by the progress UPDATE itself, so the
        check costs no round trip: the batch that sees it is kept and counted, the next one is
        never started)."""
        now = time.monotonic()
        for attempt in range(CONCURRENT_RETRIES):
            try:
                with transaction.atomic():
                    if self.asynchronous and not rows:
                        with connection.cursor() as cursor:
                            cursor.execute("SET LOCAL synchronous_commit = off")
                    stamp = timezone.now()
                    result = self.writer.write(rows, stamp) if rows else None
                    enrolled, already, skipped = (self.enrol(result, stamp) if result is not None and self.job.campaign_id
                                                  else (0, 0, Counter()))
                    extra = {"updated_at": timezone.now()}
                    if skipped:
                        extra["enrol_skipped"] = dict(self.enrol_skipped + skipped)
                    if not self.total_saved and self.total is not None:
                        extra["total_rows"] = self.total
                    if bytes_read is not None:
                        extra["bytes_done"] = bytes_read
                    cancel = _job_advance(self.job.pk, set_fields=extra, add={
                        "rows_done": len(rows) + rejected,
                        "created_count": result.created if result else 0,
                        "updated_count": result.updated if result else 0,
                        "unchanged_count": result.unchanged if result else 0,
                        "rejected_count": rejected,
                        "blanked_count": blanked,
                        "suppressed_count": result.suppressed if result else 0,
                        "leads_created_count": result.leads_created if result else 0,
                        "enrolled_count": enrolled,
                        "enrol_already_count": already,
                    })
                if "total_rows" in extra:
                    self.total_saved = True
                self.enrol_skipped += skipped
                break
            except ConcurrentInsert:  # another import committed some of these addresses: re-plan
                if attempt == CONCURRENT_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        self.report.append(entries)
        if entries and now - self.report_saved > REPORT_SAVE_SECONDS:
            self.save_report()
            self.report_saved = now
        if cancel:
            raise ImportCancelled()

    def make_durable(self) -> None:
        """Make every batch committed so far durable: one synchronous commit (a write to the
        job's row). PostgreSQL flushes its WAL in order, so this commit's flush covers the
        asynchronous batch commits before it. A no-op when the batches commit synchronously."""
        if self.asynchronous:
            ImportJob.objects.filter(pk=self.job.pk).update(updated_at=timezone.now())

    def save_report(self) -> None:
        """Store the error report, after :meth:`make_durable`: a stored report never lists rows
        of a batch a database crash could still take back (the resumed run would list them again)."""
        if self.report.pending:
            self.make_durable()
        self.report.save()


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
                    name: str = "", user=None, filename: str = "", campaign=None,
                    enrol_updated: bool = False) -> ImportJob:
    """Import a CSV synchronously, in this process: create, map, run. Returns the finished job
    (``job.counts()`` has the numbers, ``job.enrolment_counts()`` the campaign enrolment's;
    ``job.status`` is ``done`` or ``failed``). ``campaign``/``enrol_updated``: as for
    :func:`import_job_start`.

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
                           lead_owner=lead_owner, campaign=campaign, enrol_updated=enrol_updated)
            job.status = ImportJob.Status.QUEUED
            job.save()
    except ValidationError:
        job.file.delete(save=False)
        job.delete()
        raise
    return import_job_run(import_job_id=job.pk)
