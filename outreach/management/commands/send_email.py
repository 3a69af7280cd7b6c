import json
import mimetypes
import time
from datetime import datetime
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from ...models import Mailbox, SentMessage
from ...services.contacts import contact_get_or_create
from ...services.sending import AttachmentData, sent_message_create
from ...validation import parse_address_list, parse_header_lines
from ..base import JsonCommand, sent_message_as_dict


class Command(JsonCommand):
    help = ("Queue an email from a mailbox to an address (the contact is created in the mailbox's team if new). "
            "With --wait SECONDS, waits for a worker to settle it and prints the final status; exits 1 if it failed.")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--mailbox", type=int, required=True, help="Mailbox id.")
        parser.add_argument("--to", required=True, help="Recipient address (the contact).")
        parser.add_argument("--cc", default="", help="Comma-separated addresses.")
        parser.add_argument("--bcc", default="", help="Comma-separated addresses.")
        parser.add_argument("--reply-to", default="")
        parser.add_argument("--subject", required=True)
        body = parser.add_mutually_exclusive_group(required=True)
        body.add_argument("--html", help="HTML body (a plain-text alternative is derived).")
        body.add_argument("--text", help="Plain-text body.")
        parser.add_argument("--attach", action="append", default=[], metavar="FILE", help="Attach a file (repeatable).")
        parser.add_argument("--header", action="append", default=[], metavar="'X-NAME: VALUE'",
                            help="A custom X- header (repeatable); refused where the mailbox's provider cannot carry "
                                 "custom headers (only SMTP and Unipile can).")
        parser.add_argument("--at", default="", metavar="ISO-8601",
                            help="Send later, e.g. 2026-12-02T09:00+01:00 (a time without offset is in TIME_ZONE).")
        parser.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                            help="Wait up to this many seconds for the message to be sent or fail.")

    def run(self, **o):
        try:
            mailbox = Mailbox.objects.select_related("team").get(pk=o["mailbox"])
        except Mailbox.DoesNotExist as err:
            raise CommandError(f"No mailbox with id {o['mailbox']}.") from err
        team = mailbox.team
        contact, _ = contact_get_or_create(team=team, email=o["to"], source="send_email command")
        attachments = []
        for name in o["attach"]:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"Attachment {name} does not exist or is not a file.")
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            attachments.append(AttachmentData(path.name, content_type, path.read_bytes()))
        try:
            cc, bcc = parse_address_list(o["cc"]), parse_address_list(o["bcc"])
            headers = parse_header_lines(o["header"])
        except ValidationError as err:
            raise CommandError(" ".join(err.messages)) from err
        scheduled_at = None
        if o["at"]:
            try:
                scheduled_at = datetime.fromisoformat(o["at"])
            except ValueError as err:
                raise CommandError(f"--at {o['at']!r} is not an ISO-8601 date and time (e.g. 2026-12-02T09:00+01:00).") from err
            if timezone.is_naive(scheduled_at):
                scheduled_at = timezone.make_aware(scheduled_at)
        message = sent_message_create(
            team=team, actor=None, mailbox=mailbox, contact=contact, subject=o["subject"], html=o["html"] or "",
            text=o["text"] or "", cc=cc, bcc=bcc, reply_to=o["reply_to"], attachments=attachments,
            headers=headers, scheduled_at=scheduled_at)
        if o["wait"] > 0:
            deadline = time.monotonic() + o["wait"]
            while time.monotonic() < deadline:
                message.refresh_from_db()
                if message.is_settled:
                    break
                time.sleep(0.2)
        message = SentMessage.objects.select_related("contact").get(pk=message.pk)
        result = sent_message_as_dict(message)
        if message.status == SentMessage.Status.FAILED:
            self.stdout.write(json.dumps(result, indent=2, default=str, ensure_ascii=False))
            raise CommandError(f"Message {message.pk} failed: {message.error_message}")
        if o["wait"] > 0 and not message.is_settled and message.status != SentMessage.Status.SCHEDULED:
            self.stdout.write(json.dumps(result, indent=2, default=str, ensure_ascii=False))
            raise CommandError(f"Message {message.pk} is still {message.status} after {o['wait']:g} s: is a Celery worker running?")
        return result
