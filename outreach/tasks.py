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


# The import's tasks live with the feature; imported here so the worker registers them.
from .imports.tasks import import_contacts_run  # noqa: E402,F401
from .campaigns.tasks import campaigns_advance_task  # noqa: E402,F401
