"""Celery tasks: thin wrappers that load by id and call a service."""
from celery import shared_task

from .services.sending import sent_message_send


@shared_task(bind=True, name="outreach.send_message", max_retries=None, acks_late=True)
def send_message(self, sent_message_id: int) -> str:
    """Send SentMessage ``sent_message_id``; re-schedules itself while the service asks for a retry.

    Returns the message's status after this run ("sent", "failed" or "queued").
    """
    outcome = sent_message_send(sent_message_id=sent_message_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.sent_message.status


@shared_task(name="outreach.import_contacts", acks_late=True)
def import_contacts_run(import_job_id: int) -> str:
    """Run ImportJob ``import_job_id`` (a CSV import) to the end; a re-delivered task resumes
    after the last committed batch. Returns the job's final status ("done", "failed", "cancelled")."""
    from .services.imports import import_job_run

    return import_job_run(import_job_id=import_job_id).status
