"""Celery tasks: thin wrappers that load by id and call a service.

Sending: a task message is only a wake-up call. ``dispatch_due_messages`` (beat, every
OUTREACH_DISPATCH_INTERVAL_SECONDS, and once when a worker starts) claims due messages from the
outbox table and publishes ``send_messages(ids, token)``; ``send_message(id)`` is the wake-up
published when one message is queued. Lost, duplicated or late task messages change no outcome:
the claim token in the database decides who sends. No task retries itself with a countdown; a
retry is a new due time in the database.
"""
import logging

from celery import shared_task

from .services.outbox import INFRASTRUCTURE_ERRORS, sent_message_send, sent_messages_dispatch, sent_messages_send_claimed

logger = logging.getLogger(__name__)


@shared_task(name="outreach.send_message", acks_late=True, ignore_result=True)
def send_message(sent_message_id: int) -> str:
    """Send SentMessage ``sent_message_id`` now if it is due and its mailbox's rules allow it.
    Returns the message's status after this run."""
    try:
        return sent_message_send(sent_message_id=sent_message_id).sent_message.status
    except INFRASTRUCTURE_ERRORS as err:  # the outbox keeps it; the dispatcher retries
        logger.warning("send_message(%s): infrastructure unavailable (%s); left to the dispatcher.", sent_message_id, err)
        return "deferred"


@shared_task(name="outreach.send_messages", acks_late=True, ignore_result=True)
def send_messages(sent_message_ids: list[int], claim_token: str) -> int:
    """Send the messages a dispatcher claimed under ``claim_token`` (one mailbox, in order, over one
    SMTP session). Returns how many this worker sent or settled."""
    try:
        return len(sent_messages_send_claimed(ids=sent_message_ids, token=claim_token))
    except INFRASTRUCTURE_ERRORS as err:  # leases expire and recovery re-queues what was not handed over
        logger.warning("send_messages: infrastructure unavailable (%s); leases will be recovered.", err)
        return 0


@shared_task(name="outreach.dispatch_due_messages", acks_late=False, ignore_result=True, expires=30)
def dispatch_due_messages() -> int:
    """One dispatcher run (see outreach.services.outbox.sent_messages_dispatch). Returns messages claimed."""
    try:
        result = sent_messages_dispatch()
    except INFRASTRUCTURE_ERRORS as err:
        logger.warning("dispatch_due_messages: infrastructure unavailable (%s); next beat retries.", err)
        return 0
    return sum(len(chunk) for chunk in result.claimed)


# The import's tasks live with the feature; imported here so the worker registers them.
from .imports.tasks import import_contacts_run  # noqa: E402,F401
from .campaigns.tasks import campaigns_advance_task  # noqa: E402,F401


@shared_task(name="outreach.bulk_job_run", acks_late=True, ignore_result=True)
def bulk_job_run_task(bulk_job_id: int) -> str:
    """Run BulkJob ``bulk_job_id`` (a list's bulk action on "all N matching") to its end; a second
    delivery finds the job claimed or finished and does nothing, a re-run after a crash resumes
    after the last committed batch (outreach.services.bulk_jobs). Returns the job's status."""
    from .services.bulk_jobs import bulk_job_run

    return bulk_job_run(bulk_job_id=bulk_job_id).status


@shared_task(name="outreach.bulk_jobs_sweep", acks_late=False, ignore_result=True)
def bulk_jobs_sweep_task() -> int:
    """Periodic (settings.CELERY_BEAT_SCHEDULE): publish again the bulk jobs whose task vanished
    (expired lease, or queued too long). Returns how many were published."""
    from .services.bulk_jobs import bulk_jobs_sweep

    try:
        return bulk_jobs_sweep()
    except INFRASTRUCTURE_ERRORS as err:
        logger.warning("bulk_jobs_sweep: infrastructure unavailable (%s); next beat retries.", err)
        return 0
