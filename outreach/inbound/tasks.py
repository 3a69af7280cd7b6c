"""Celery tasks of the inbound sync (beat entry ``inbound-sync-mailboxes`` in settings)."""
from celery import shared_task


@shared_task(name="outreach.inbound.sync_mailboxes", acks_late=True, ignore_result=True)
def sync_mailboxes() -> int:
    """Fan out: one ``sync_mailbox`` task per mailbox due (not in an error backoff). Returns how many."""
    from .services import mailboxes_to_sync

    ids = list(mailboxes_to_sync().values_list("pk", flat=True))
    for mailbox_id in ids:
        sync_mailbox.delay(mailbox_id)
    return len(ids)


@shared_task(name="outreach.inbound.sync_mailbox", acks_late=True, ignore_result=True)
def sync_mailbox(mailbox_id: int) -> dict:
    """Sync one mailbox's INBOX once (``outreach.inbound.services.mailbox_sync``); returns its counts."""
    from ..models import Mailbox
    from .services import mailbox_sync

    mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
    if mailbox is None:
        return {"mailbox": mailbox_id, "skipped": "deleted"}
    return mailbox_sync(mailbox=mailbox).as_dict()
