"""Bulk jobs: a list page's "all N matching" bulk action on more than
``settings.OUTREACH_BULK_JOB_THRESHOLD`` rows runs in a Celery task, batch by batch, instead of
inside the web request (make leads, set lead status, delete contacts, enrol in a campaign; from
Django admin's "select all" also delete leads, delete timeline events and remove enrolments from
their campaign, ``outreach.admin_bulk``; a campaign's enrolment list removes enrolments too;
``manage.py campaign_enroll`` runs its enrolment through :func:`bulk_job_run` as well).

Flow: :func:`bulk_job_create` stores the action and its list query as a :class:`~outreach.models.BulkJob`
(``queued``) and publishes ``outreach.bulk_job_run`` after the commit → :func:`bulk_job_run`
(the task's body) claims the job, counts the selection, then walks it in primary-key order
(keyset, ``OUTREACH_BULK_JOB_BATCH`` rows) up to the job's ``max_pk``; each batch is one
transaction holding the set-based service's writes (``contacts_make_leads``, ``leads_set_status``,
``contacts_delete``, ``campaign_enrol``, each given that batch's ids) and the job's new cursor and
counters → the job ends ``done``, ``cancelled`` (:func:`bulk_job_cancel`, between two batches) or
``failed``.

The database is the truth, as for the outbox (``services/outbox.py``): the task message carries
only the id and is a wake-up call. A run works under a claim (``claimed_by`` token,
``lease_until``), and every batch commits only ``WHERE claimed_by = <its token>``: a duplicated or
late task finds the claim held and does nothing; a killed worker leaves its last batch rolled
back and its lease expiring, after which :func:`bulk_jobs_sweep` (Celery beat) publishes the task
again and the new run resumes after the last committed batch. A lost task message leaves the job
``queued``; the sweep publishes it again too. Re-running a batch would be harmless anyway: make
leads skips contacts that are leads, a status already set is not set (or recorded) again, a
deleted contact is gone, an enrolled contact is counted as already in the campaign.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import FieldError, ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..campaigns.models import Enrolment
from ..campaigns.selectors import campaign_enrolments_selected, campaigns_open, enrolments_selected
from ..campaigns.services import campaign_enrol, enrolments_remove, enrolments_removed_summary
from ..models import BulkJob, Contact, Lead, Team, TimelineEvent
from ..selectors import (ListQuery, Selection, contacts_selected, leads_selected, more_rows_than,
                         timeline_events_selected)
from .contacts import contacts_delete, contacts_make_leads, leads_delete, leads_set_status, timeline_events_delete

logger = logging.getLogger(__name__)

K, S = BulkJob.Kind, BulkJob.Status


def _plural(n: int, noun: str, plural: str = "") -> str:
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


@dataclass(frozen=True)
class BatchOutcome:
    """What one batch did: ``changed`` rows written; ``details`` the kind's extra counters to add."""

    changed: int
    details: dict[str, Any]


@dataclass(frozen=True)
class JobKind:
    """How one BulkJob kind runs: ``model`` (whose ids the selection walks), ``rows(team,
    selection)`` (the selector resolving the list query), ``batch(job, ids, context)`` (one batch
    through the set-based service, returns a :class:`BatchOutcome`), ``context(job)`` (loaded once
    per run, e.g. the campaign; raises ValidationError when the job cannot run) and
    ``outcome(job, context)`` (the result in words)."""

    model: type
    rows: Callable[..., QuerySet]
    batch: Callable[[BulkJob, list[int], Any], BatchOutcome]
    outcome: Callable[[BulkJob, Any], str]
    context: Callable[[BulkJob], Any] = lambda job: None


def _make_leads(job: BulkJob, ids: list[int], _context) -> BatchOutcome:
    made, _already = contacts_make_leads(team=job.team, selection=Selection.of_ids(ids), owner=job.actor, actor=job.actor)
    return BatchOutcome(made, {})


def _make_leads_outcome(job: BulkJob, _context) -> str:
    already = job.done - job.changed
    return f"Made {_plural(job.changed, 'lead')}" + (f"; {already:,} already were leads." if already else ".")


def _set_status(job: BulkJob, ids: list[int], _context) -> BatchOutcome:
    return BatchOutcome(leads_set_status(team=job.team, status=job.value, actor=job.actor, ids=ids), {})


def _set_status_outcome(job: BulkJob, _context) -> str:
    label = Lead.Status(job.value).label
    already = job.done - job.changed
    return (f"Set {_plural(job.changed, 'lead')} to “{label}”"
            + (f"; {already:,} already had that status." if already else "."))


def _delete(job: BulkJob, ids: list[int], _context) -> BatchOutcome:
    return BatchOutcome(contacts_delete(team=job.team, ids=ids), {})


def _delete_outcome(job: BulkJob, _context) -> str:
    gone = job.done - job.changed
    return f"Deleted {_plural(job.changed, 'contact')}" + (f"; {gone:,} were already gone." if gone else ".")


def _delete_leads(job: BulkJob, ids: list[int], _context) -> BatchOutcome:
    return BatchOutcome(leads_delete(team=job.team, ids=ids), {})


def _delete_leads_outcome(job: BulkJob, _context) -> str:
    gone = job.done - job.changed
    return f"Deleted {_plural(job.changed, 'lead')}" + (f"; {gone:,} {_were(gone)} already gone." if gone else ".")


def _delete_events(job: BulkJob, ids: list[int], _context) -> BatchOutcome:
    return BatchOutcome(timeline_events_delete(team=job.team, ids=ids), {})


def _delete_events_outcome(job: BulkJob, _context) -> str:
    gone = job.done - job.changed
    return (f"Deleted {_plural(job.changed, 'timeline event')}"
            + (f"; {gone:,} {_were(gone)} already gone." if gone else "."))


def _enrolment_rows(*, team: Team, selection: Selection) -> QuerySet:
    """A remove_enrolments job's rows: from a campaign's enrolment list page (the query's
    ``campaign`` filter, set by that page) as that list selects them, otherwise (Django admin's
    enrolment changelist) as the changelist does."""
    if selection.query is not None and "campaign" in selection.query.filters and not selection.query.lookups:
        return campaign_enrolments_selected(team=team, selection=selection)
    return enrolments_selected(team=team, selection=selection)


def _remove_enrolments(job: BulkJob, ids: list[int], _context) -> BatchOutcome:
    return BatchOutcome(enrolments_remove(enrolments=Enrolment.objects.for_team(job.team).filter(pk__in=ids),
                                          actor=job.actor), {})


def _remove_enrolments_outcome(job: BulkJob, _context) -> str:
    return enrolments_removed_summary(job.changed, job.done - job.changed)


def _enrol_context(job: BulkJob):
    campaign = campaigns_open(team=job.team).filter(pk=int(job.value) if job.value.isdigit() else 0).first()
    if campaign is None:
        raise ValidationError("The campaign is gone, stopped or completed; contacts can no longer be enrolled in it.")
    return campaign


def _enrol(job: BulkJob, ids: list[int], campaign) -> BatchOutcome:
    result = campaign_enrol(campaign=campaign, contact_ids=ids, actor=job.actor)
    details = {"already": result.already, **{f"skipped:{reason}": n for reason, n in result.skipped.items()}}
    return BatchOutcome(result.enrolled, details)


def _enrol_outcome(job: BulkJob, campaign) -> str:
    details = job.details or {}
    labels = dict(Enrolment.Reason.choices)
    parts = [f"Enrolled {_plural(job.changed, 'contact')}"]
    if details.get("already"):
        parts.append(f"{details['already']:,} already in the campaign")
    parts.extend(f"{n:,} skipped: {labels.get(key.split(':', 1)[1], key).lower()}"
                 for key, n in sorted(details.items()) if key.startswith("skipped:") and n)
    name = campaign.name if campaign is not None else job.details.get("campaign", "")
    return (f"{name}: " if name else "") + "; ".join(parts) + "."


#: Every kind of bulk job: BulkJob.Kind value → how it runs.
KINDS: dict[str, JobKind] = {
    K.MAKE_LEADS: JobKind(Contact, contacts_selected, _make_leads, _make_leads_outcome),
    K.SET_STATUS: JobKind(Lead, leads_selected, _set_status, _set_status_outcome),
    K.DELETE: JobKind(Contact, contacts_selected, _delete, _delete_outcome),
    K.ENROL: JobKind(Contact, contacts_selected, _enrol, _enrol_outcome, context=_enrol_context),
    K.DELETE_LEADS: JobKind(Lead, leads_selected, _delete_leads, _delete_leads_outcome),
    K.DELETE_EVENTS: JobKind(TimelineEvent, timeline_events_selected, _delete_events, _delete_events_outcome),
    K.REMOVE_ENROLMENTS: JobKind(Enrolment, _enrolment_rows, _remove_enrolments, _remove_enrolments_outcome),
}


def _selection(job: BulkJob) -> Selection:
    query = job.query or {}
    return Selection(query=ListQuery(q=query.get("q", ""), filters=dict(query.get("filters") or {}),
                                     order=query.get("order", ""), lookups=dict(query.get("lookups") or {})))


# --- starting and cancelling -----------------------------------------------------------------


def bulk_job_wanted(*, team: Team, kind: str, selection: Selection) -> bool:
    """Whether this bulk action must run as a background job: a selection of "all matching"
    (``selection.query`` set) holding more than ``settings.OUTREACH_BULK_JOB_THRESHOLD`` rows
    (counted only up to the threshold + 1). Checked ids always run in the request: a page's
    checkboxes are at most a few hundred rows. Raises KeyError for an unknown ``kind``."""
    if selection.query is None:
        return False
    return more_rows_than(KINDS[kind].rows(team=team, selection=selection), settings.OUTREACH_BULK_JOB_THRESHOLD)


def bulk_job_create(*, team: Team, kind: str, query: ListQuery, value: str = "", actor=None,
                    from_admin: bool = False, publish: bool = True) -> BulkJob:
    """Queue ``kind`` (a BulkJob.Kind value) on every row of ``team`` matching ``query`` (the
    list's search and filters) with ``value`` (a Lead.Status value for set_status, a campaign id
    for enrol). The rows are the ones existing now: ``max_pk`` bounds the job, so rows created
    while it runs are left alone. The task is published after the commit (a broker outage is
    logged, not raised: the sweep publishes it later).

    ``query.lookups`` (a Django admin changelist's list filters, ``outreach.admin_bulk``) are
    stored under ``"lookups"`` only when set, and checked by building the job's query once;
    ``from_admin`` marks a job started from Django admin (``"admin": true``: its page links back
    to the admin list). ``publish=False`` leaves the task unpublished, for a caller that runs
    :func:`bulk_job_run` itself (``manage.py campaign_enroll``); the sweep still publishes a job
    left queued that long.

    Returns the BulkJob (``queued``). Raises ValidationError for an unknown kind, an unknown
    status, a campaign that is not one of the team's open campaigns, or lookups the model's
    query refuses (unknown field, a value of the wrong type).
    """
    if kind not in KINDS:
        raise ValidationError({"kind": f"Unknown bulk action “{kind}”."})
    if kind == K.SET_STATUS and value not in Lead.Status.values:
        raise ValidationError({"value": f"Unknown lead status “{value}”."})
    stored: dict[str, Any] = {"q": query.q, "filters": dict(query.filters), "order": query.order}
    if from_admin:
        stored["admin"] = True
    if query.lookups:
        stored["lookups"] = {key: [str(v) for v in values] for key, values in query.lookups.items()}
        try:
            KINDS[kind].rows(team=team, selection=Selection(query=query)).query.sql_with_params()
        except (FieldError, ValueError, TypeError, ValidationError) as err:
            raise ValidationError({"query": f"These filters cannot be run as a bulk job: {err}"}) from err
    job = BulkJob(team=team, actor=actor, kind=kind, value=value, query=stored)
    if kind == K.ENROL:
        job.details = {"campaign": _enrol_context(job).name}
    with transaction.atomic():
        job.max_pk = KINDS[kind].model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        job.save()
        if publish:
            transaction.on_commit(lambda: bulk_job_publish(job.pk))
    return job


def bulk_job_publish(job_id: int) -> None:
    """Publish ``outreach.bulk_job_run(job_id)`` (id only, no broker retries) and note its task id.
    A broker outage is logged, not raised: the job is in the database and the sweep publishes it
    again. (Celery's ``delay_on_commit`` would raise inside the request.)"""
    from ..tasks import bulk_job_run_task

    try:
        result = bulk_job_run_task.apply_async((job_id,), retry=False)
    except Exception as err:  # broker down: the BulkJob row is the truth
        logger.warning("BulkJob %s not published (%s: %s); the sweep will.", job_id, type(err).__name__, err)
        return
    BulkJob.objects.filter(pk=job_id).update(task_id=result.id or "")


def bulk_job_cancel(*, job: BulkJob) -> BulkJob:
    """Cancel a bulk job. Queued: cancelled at once, nothing was written. Running: the worker
    stops before its next batch (committed batches stay done and counted; the final message says
    how far it got). A finished job is returned unchanged. Returns the job as stored."""
    now = timezone.now()
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job.pk)
        if job.status == S.QUEUED:
            job.status, job.finished_at, job.cancel_requested = S.CANCELLED, now, True
            job.message = "Cancelled before it started; nothing was changed."
            job.save(update_fields=["status", "finished_at", "cancel_requested", "message", "updated_at"])
        elif job.status == S.RUNNING and not job.cancel_requested:
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested", "updated_at"])
    return job


# --- the run -------------------------------------------------------------------------------------


class _LeaseLost(Exception):
    """This run's claim was taken over (its lease expired and another run claimed the job)."""


def _lease_end():
    return timezone.now() + timedelta(seconds=settings.OUTREACH_BULK_JOB_LEASE_SECONDS)


def _claim(job_id: int, token: str) -> bool:
    """Claim a queued job, or a running one whose lease expired (its worker died; a cancel it had
    not seen yet is then honoured before any batch): one conditional UPDATE, so of two runs at
    most one wins."""
    now = timezone.now()
    return bool(BulkJob.objects.filter(pk=job_id, status__in=(S.QUEUED, S.RUNNING))
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
                .update(status=S.RUNNING, claimed_by=token, lease_until=_lease_end(), updated_at=now))


def _owned(job: BulkJob, token: str) -> QuerySet:
    return BulkJob.objects.filter(pk=job.pk, claimed_by=token, status=S.RUNNING)


def _finish(job: BulkJob, token: str, status: str, message: str) -> None:
    now = timezone.now()
    _owned(job, token).update(status=status, message=message[:4000], finished_at=now, lease_until=None,
                              claimed_by="", updated_at=now)


def bulk_job_run(*, bulk_job_id: int, batch_size: int | None = None,
                 on_batch: Callable[[BulkJob], None] | None = None) -> BulkJob:
    """Run BulkJob ``bulk_job_id`` to its end (the Celery task's body); returns the job as stored.

    Claims the job (a job claimed by a live run, finished, or cancelled is returned untouched),
    counts the selection once (``total``), then commits batches of ``batch_size`` ids
    (default ``settings.OUTREACH_BULK_JOB_BATCH``), each with the job's cursor, counters and a
    renewed lease, in one transaction that fails whole if the claim was lost. A cancel requested
    meanwhile stops the run before the next batch. A service's ValidationError (e.g. the campaign
    was stopped) or a bug fails the job with the message; a database outage leaves it running,
    its lease expiring, for the sweep to queue again; the task's soft time limit
    (``SoftTimeLimitExceeded``) releases the claim at once, so the next sweep resumes it.

    ``on_batch(job)`` is called after each committed batch with the job's new counters (``done``,
    ``changed``, ``total``, ``details``), e.g. for a command's progress line. A KeyboardInterrupt
    (Ctrl-C in a command running the job itself) ends the job ``cancelled`` after its committed
    batches and is raised again.
    """
    size = batch_size or settings.OUTREACH_BULK_JOB_BATCH
    token = uuid.uuid4().hex
    if not _claim(bulk_job_id, token):
        return BulkJob.objects.get(pk=bulk_job_id)
    job = BulkJob.objects.select_related("team", "actor").get(pk=bulk_job_id)
    kind = KINDS[job.kind]
    context = None
    try:
        context = kind.context(job)
        rows = kind.rows(team=job.team, selection=_selection(job)).filter(pk__lte=job.max_pk)
        if job.started_at is None or job.total is None:
            job.started_at = job.started_at or timezone.now()
            job.total = rows.filter(pk__gt=job.cursor).count() + job.done
            if not _owned(job, token).update(started_at=job.started_at, total=job.total, updated_at=timezone.now()):
                raise _LeaseLost()
        while True:
            if BulkJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
                _finish(job, token, S.CANCELLED, f"Cancelled after {job.done:,} of {job.total:,}: "
                        + _lower_first(kind.outcome(job, context)))
                break
            with transaction.atomic():
                ids = list(rows.filter(pk__gt=job.cursor).order_by("pk").values_list("pk", flat=True)[:size])
                if not ids:
                    _finish(job, token, S.DONE, kind.outcome(job, context))
                    break
                outcome = kind.batch(job, ids, context)
                details = dict(job.details or {})
                for key, n in outcome.details.items():
                    details[key] = details.get(key, 0) + n
                if not _owned(job, token).update(
                        cursor=ids[-1], done=F("done") + len(ids), changed=F("changed") + outcome.changed,
                        details=details, lease_until=_lease_end(), updated_at=timezone.now()):
                    raise _LeaseLost()  # rolls this batch back: the run holding the claim does it
            job.cursor, job.done, job.changed, job.details = ids[-1], job.done + len(ids), job.changed + outcome.changed, details
            if on_batch is not None:
                on_batch(job)
    except _LeaseLost:
        logger.warning("BulkJob %s: claim lost to another run; stopping.", job.pk)
    except ValidationError as err:
        _finish(job, token, S.FAILED, f"Stopped after {job.done:,} of {job.total or 0:,}: " + " ".join(err.messages))
    except KeyboardInterrupt:  # the command running the job was interrupted: stop, keep what committed
        try:
            _finish(job, token, S.CANCELLED, f"Interrupted after {job.done:,} of {job.total or 0:,}: "
                    + _lower_first(kind.outcome(job, context)))
        except Exception:  # the connection went with the interrupt: the lease expires, the sweep resumes it
            logger.warning("BulkJob %s: interrupted; not marked cancelled.", job.pk, exc_info=True)
        raise
    except SoftTimeLimitExceeded:  # the task's time is up, not the job's: hand it to the next run now
        logger.warning("BulkJob %s: task time limit after %s rows; released for the sweep to resume.", job.pk, job.done)
        _owned(job, token).update(lease_until=timezone.now(), claimed_by="")
    except (OperationalError, InterfaceError) as err:  # the database, not the job: the sweep retries
        logger.warning("BulkJob %s: database unavailable (%s); its lease will expire and the sweep re-queue it.", job.pk, err)
    except Exception as err:  # a bug: the failed batch was rolled back
        logger.exception("BulkJob %s failed", job.pk)
        _finish(job, token, S.FAILED, f"Stopped after {job.done:,} of {job.total or 0:,} because of an error: "
                                      f"{err.__class__.__name__}: {err}")
    return BulkJob.objects.get(pk=bulk_job_id)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text


def bulk_jobs_sweep(*, now=None) -> int:
    """Publish the task again for every job whose task vanished (the periodic task's body):
    running jobs whose lease expired (the worker died or was stopped), and queued jobs untouched
    for ``OUTREACH_BULK_JOB_LEASE_SECONDS`` (the task message was lost, or the broker was down
    when the job was created). Touches each queued job it publishes, so the next sweep waits
    again before publishing it once more. Returns how many were published."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.OUTREACH_BULK_JOB_LEASE_SECONDS)
    ids = list(BulkJob.objects.filter(Q(status=S.RUNNING, lease_until__lt=now)
                                      | Q(status=S.QUEUED, updated_at__lt=stale, cancel_requested=False))
               .values_list("pk", flat=True))
    if ids:
        BulkJob.objects.filter(pk__in=ids, status=S.QUEUED).update(updated_at=now)
    for job_id in ids:
        bulk_job_publish(job_id)
    return len(ids)
