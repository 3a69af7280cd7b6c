"""Inbound mail models. Imported by ``outreach.models`` so they belong to the ``outreach`` app."""
from __future__ import annotations

from django.db import models

from ..models import Contact, Mailbox, SentMessage, TeamOwned
from ..validation import AddressField


class InboundMessage(TeamOwned):
    """One message read from a mailbox folder over IMAP, stored once.

    ``message_key`` is the Message-ID (``<…>``) or, for a message without one, ``sha256:`` + the
    digest of its bytes; it is unique per mailbox, so re-reading a folder (a second sync, a
    changed UIDVALIDITY) never stores a message twice. ``(mailbox, folder, uidvalidity, uid)``
    is unique too. Bodies are kept as received (bounded); HTML is sanitised when displayed.
    """

    class Kind(models.TextChoices):
        REPLY = "reply", "Reply"
        BOUNCE = "bounce", "Bounce"
        AUTO_REPLY = "auto_reply", "Auto-reply"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe request"
        INBOUND = "inbound", "Inbound mail"
        UNMATCHED = "unmatched", "Unknown sender"

    class BounceType(models.TextChoices):
        HARD = "hard", "Hard (5.x.x)"
        SOFT = "soft", "Soft (4.x.x)"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="inbound_messages")
    folder = models.CharField(max_length=200, default="INBOX")
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    message_key = models.CharField(max_length=255)
    message_id = models.CharField("Message-ID", max_length=255, blank=True)
    in_reply_to = models.CharField("In-Reply-To", max_length=255, blank=True)
    references = models.TextField(blank=True, help_text="Message-IDs of the References header, space-separated.")
    from_email = models.CharField(max_length=254, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    to = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    sent_date = models.DateTimeField(null=True, blank=True, help_text="The Date header.")
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True, help_text="As received; sanitised (nh3) when displayed.")
    reply_text = models.TextField(blank=True, help_text="The new text of a reply, quoted history and signature trimmed.")
    size = models.PositiveIntegerField(default=0, help_text="Bytes on the server.")
    truncated = models.BooleanField(default=False, help_text="Only the first OUTREACH_INBOUND_MAX_MESSAGE_BYTES were read.")
    headers = models.JSONField(default=dict, blank=True, help_text="Classification-relevant headers, as strings.")

    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    matched_by = models.CharField(max_length=30, blank=True, help_text="in_reply_to, references, thread_id, embedded_headers, token, sender.")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_messages")
    sent_message = models.ForeignKey(SentMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_messages")
    bounce_type = models.CharField(max_length=10, choices=BounceType.choices, blank=True)
    bounce_recipient = models.CharField(max_length=254, blank=True)
    bounce_status = models.CharField(max_length=20, blank=True, help_text="RFC 3463 status code, e.g. 5.1.1.")
    bounce_diagnostic = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "message_key"], name="inbound_message_once_per_mailbox"),
            models.UniqueConstraint(fields=["mailbox", "folder", "uidvalidity", "uid"], name="inbound_message_uid_unique"),
        ]
        indexes = [models.Index(fields=["contact", "-created_at"]),
                   models.Index(fields=["team", "created_at", "id"], name="inbound_team_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject!r} from {self.from_email}"


class MailboxSyncState(models.Model):
    """Where the sync of one mailbox folder stands: UIDVALIDITY, the last UID stored, the lease of
    the run in progress, and the last error with its backoff (``next_attempt_at``)."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="sync_states")
    folder = models.CharField(max_length=200, default="INBOX")
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    # Set while a first sync (or a re-read after UIDVALIDITY changed) is still under way: the
    # look-back window's first day, kept across runs until the folder has been read to its end.
    reread_since = models.DateField(null=True, blank=True)
    messages_stored = models.PositiveIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "folder"], name="sync_state_unique_folder")]

    def __str__(self) -> str:
        return f"{self.mailbox} {self.folder} uidvalidity={self.uidvalidity} last_uid={self.last_uid}"


class UnsubscribeKey(TeamOwned):
    """The opaque, random key behind one message's unsubscribe token (``/u/TOKEN``, the mailto:
    subject). The signed token carries only ``key``; team, address and the causing message are
    looked up here, so the token reveals nothing."""

    key = models.CharField(max_length=40, unique=True)
    email = AddressField(max_length=254)
    sent_message = models.OneToOneField(SentMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="unsubscribe_key")
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["team", "created_at", "id"], name="unsubscribe_key_team_created")]

    def __str__(self) -> str:
        return f"unsubscribe key for {self.email}"
