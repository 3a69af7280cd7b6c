from django.core.management.base import CommandError, CommandParser

from ...inbound.services import mailbox_sync, mailboxes_to_sync
from ...models import Mailbox
from ..base import JsonCommand


class Command(JsonCommand):
    help = ("Read new mail from the INBOX of every SMTP/IMAP mailbox (or one, --mailbox ID) once and print "
            "JSON counts per mailbox: fetched, stored, duplicates, reply, bounce, auto_reply, unsubscribe, "
            "inbound, unmatched, more (mail left for the next run), error. Without --mailbox, mailboxes in "
            "their error backoff are left out; with it, the mailbox is tried now.")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--mailbox", type=int, help="Sync only this mailbox id (ignores its error backoff).")

    def run(self, **o):
        if o["mailbox"] is not None:
            mailbox = Mailbox.objects.filter(pk=o["mailbox"]).first()
            if mailbox is None:
                raise CommandError(f"No mailbox with id {o['mailbox']}.")
            if not mailbox.has_imap:
                raise CommandError(f"Mailbox {mailbox.pk} ({mailbox.sender_email}) has no IMAP settings.")
            results = [mailbox_sync(mailbox=mailbox, honour_backoff=False)]
        else:
            results = [mailbox_sync(mailbox=m) for m in mailboxes_to_sync()]
        return {"mailboxes": [r.as_dict() for r in results],
                "stored": sum(r.stored for r in results), "errors": sum(1 for r in results if r.error)}
