"""Core domain: teams, contacts, leads, mailboxes, sent messages and each contact's timeline.

Every row below a Team carries ``team`` and every queryset the UI uses goes through
``Model.objects.for_team(team)``: nothing crosses a team boundary.
"""
from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from providers.config import MailboxConfig
from providers.registry import PROVIDERS, http_provider_choices, provider_choices

from .crypto import EncryptedSecret, decrypt, encrypt
from .dbindexes import PostgresIndex, company_name_bytes, company_prefix_key, contact_search_indexes
from .validation import AddressField


class Team(models.Model):
    """A sales team; the tenant boundary."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    unsubscribe_footer = models.BooleanField(
        default=False, help_text="End every message with an unsubscribe link (besides the List-Unsubscribe header).")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """Links a user to exactly one team, with a role.

    Owners and admins manage the team (mailboxes, provider accounts, members); members compose,
    import and work leads. A team always keeps at least one owner.
    """

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)

    def __str__(self) -> str:
        return f"{self.user} @ {self.team}"


class TeamQuerySet(models.QuerySet):
    def for_team(self, team: Team) -> "TeamQuerySet":
        """Rows of ``team`` only."""
        return self.filter(team=team)


class TeamOwned(models.Model):
    """Base of every team-owned row. ``team`` and ``created_at`` carry no single-column index:
    each concrete model declares composite ``(team, <sort column>, id)`` indexes that serve its
    list pages (and the team's cascade delete) instead."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        abstract = True


class Contact(TeamOwned):
    """A person the team writes to. ``email`` is stored lower-cased and unique per team."""

    email = AddressField(max_length=254)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    company = models.CharField(max_length=200, blank=True)
    title = models.CharField("job title", max_length=200, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    linkedin_url = models.URLField("LinkedIn URL", max_length=500, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="Where the contact came from (an import's name, 'manual').")
    time_zone = models.CharField("time zone", max_length=64, blank=True, default="", db_default="",
                                 help_text="IANA name (e.g. America/New_York); campaign send windows are read in it.")
    # Vendor ids some provider documents require (lemlist contactId…) are rows of ExternalId.
    # The import that created the contact and its spreadsheet row: the timeline shows "Imported
    # from …" from these instead of one stored event per imported contact (see outreach.imports.selectors).
    import_job = models.ForeignKey("ImportJob", null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False,
                                   db_index=False, related_name="+", editable=False)
    import_row = models.PositiveIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        # One index per sortable column of the contacts list (the unique (team, email) serves
        # the email sort; (team, company, id) also the company filter), the trigram indexes over
        # the searched text (one per team shard, partial: dbindexes.contact_search_indexes), and
        # the company autocomplete's prefix index (both PostgreSQL only).
        indexes = [
            models.Index(fields=["team", "created_at", "id"], name="contact_team_created"),
            models.Index(fields=["team", "last_name", "first_name", "id"], name="contact_team_name"),
            models.Index(fields=["team", "company", "id"], name="contact_team_company"),
            models.Index(fields=["team", "title", "id"], name="contact_team_title"),
            *contact_search_indexes(),
            PostgresIndex(models.F("team"), company_prefix_key(), company_name_bytes(), name="contact_company_prefix"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["team", "email"], name="contact_email_unique_per_team"),
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="contact_email_lowercase"),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} <{self.email}>" if self.full_name else self.email

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def linkedin_href(self) -> str:
        """``linkedin_url`` when it is an http(s) link, else "": templates link only to this."""
        from .validation import http_url_or_empty

        return http_url_or_empty(self.linkedin_url)


class Lead(TeamOwned):
    """A contact being worked by the team, with a status and an owner."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        CONTACTED = "contacted", "Contacted"
        REPLIED = "replied", "Replied"
        INTERESTED = "interested", "Interested"
        NOT_INTERESTED = "not_interested", "Not interested"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="lead")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=200, blank=True)
    # Vendor ids (lemlist leadId; leadlex deal_id) are rows of ExternalId with object "lead".

    class Meta:
        ordering = ["-created_at", "-id"]
        # (team, status, created_at, id) serves the status filter with the default sort and the
        # status sort; the email/name/company sorts walk the contact indexes.
        indexes = [
            models.Index(fields=["team", "created_at", "id"], name="lead_team_created"),
            models.Index(fields=["team", "status", "created_at", "id"], name="lead_team_status"),
        ]

    def __str__(self) -> str:
        return f"Lead: {self.contact}"


class ExternalId(TeamOwned):
    """A vendor's id for a contact or its lead (lemlist contactId, leadlex deal_id…), shaped like
    allauth's ``SocialAccount(provider, uid, extra_data)``: the core tables carry no column per provider.

    ``object`` says whose id it is. A lead is one-to-one with its contact, so ``contact`` identifies
    both: a real foreign key (cascade with the contact, a plain join, the team checked against it)
    instead of a generic relation (no constraint, no cascade, a ContentType lookup per row). A
    lead's ids are deleted with the lead by ``lead_delete``. ``provider``/``kind`` are a declared
    pair (``Provider.external_id_kinds``, see :mod:`outreach.external_ids`); ``value`` is never blank
    (clearing an id deletes its row); ``extra_data`` keeps whatever else the vendor said about it.
    Written through :mod:`outreach.services.external_ids` and the import writer.
    """

    class Object(models.TextChoices):
        CONTACT = "contact", "Contact"
        LEAD = "lead", "Lead"

    # No single-column index: the unique constraint leads with the contact.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="external_ids", db_index=False)
    object = models.CharField(max_length=10, choices=Object.choices, default=Object.CONTACT)
    provider = models.CharField(max_length=50)
    kind = models.CharField(max_length=50, help_text="The vendor document's name for the id, e.g. contactId.")
    value = models.CharField(max_length=255)
    extra_data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["contact", "object", "provider", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "object", "provider", "kind", "team"],
                                    name="externalid_unique_per_contact"),
        ]
        # "Which contact is lemlist's ctc_123?" (webhooks, operators' search) and the team's cascade delete.
        indexes = [models.Index(fields=["team", "provider", "kind", "value"], name="externalid_team_value")]

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} {self.value}"

    @property
    def key(self) -> str:
        """The id's name in forms and ``OutgoingMessage.vendor_ids`` (e.g. ``lemlist_contact_id``)."""
        from .external_ids import key_of

        return key_of(self.provider, self.kind)


class Suppression(TeamOwned):
    """An address the team must not write to (bounce, complaint, unsubscribe, manual)."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce", "Bounce"
        COMPLAINT = "complaint", "Complaint"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
        MANUAL = "manual", "Manual"

    email = AddressField(max_length=254, help_text="Stored lower-cased.")
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.MANUAL)
    detail = models.TextField(blank=True)
    # What caused it (either may be empty): the message that bounced or was unsubscribed from,
    # and the inbound mail (DSN, unsubscribe request) that said so.
    sent_message = models.ForeignKey("SentMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    inbound_message = models.ForeignKey("InboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "created_at", "id"], name="suppression_team_created")]
        constraints = [
            models.UniqueConstraint(fields=["team", "email"], name="suppression_unique_per_team"),
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="suppression_email_lowercase"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"

    def clean(self) -> None:
        """Lower-case the address (admin and model forms), so the unique and lower-case
        constraints hold and a mixed-case entry still suppresses."""
        self.email = (self.email or "").strip().lower()


class ProviderAccount(TeamOwned):
    """A team's account at an HTTP sending provider (lemlist, leadlex, OpenMail, Unipile).

    ``api_key`` is encrypted at rest and write-only in every form; ``base_url`` defaults to the
    provider document's server and can be overridden (tests, self-hosted gateways).
    """

    provider = models.CharField(max_length=30, choices=http_provider_choices)
    name = models.CharField(max_length=200)
    base_url = models.URLField(max_length=500, blank=True)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key = EncryptedSecret("api_key_encrypted", "API key")

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["team", "name", "id"], name="provideraccount_team_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"


class Mailbox(TeamOwned):
    """A sending identity: an SMTP/IMAP account, or a sender at a provider account.

    What the provider's document needs from the mailbox (SMTP/IMAP servers, lemlist sender ids,
    OpenMail inbox id, Unipile account id and tracking…) is declared by the provider
    (``Provider.config_class``, a :class:`providers.config.MailboxConfig`) and stored in
    ``provider_config``, keyed by setting name, with secrets encrypted (outreach.crypto). Only the
    mailbox services write it (they validate it against the declaration); providers read it as
    :attr:`provider_settings`.
    """

    provider = models.CharField(max_length=30, default="smtp", choices=provider_choices,
                                help_text="SMTP, or the HTTP provider of the mailbox's provider account.")
    sender_name = models.CharField(max_length=200, blank=True)  # optional: the From header is then the bare address
    sender_email = AddressField(max_length=254)
    is_active = models.BooleanField(default=True)

    provider_config = models.JSONField(
        "provider settings", default=dict, blank=True, editable=False,
        help_text="The settings the provider declares, by name; secrets encrypted (never shown).")
    # Provider-bound mailboxes: the account (API key, base URL) they send through.
    provider_account = models.ForeignKey(ProviderAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="mailboxes")

    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)

    # Sending rules, enforced when the dispatcher claims due messages (defaults suit a cold mailbox).
    daily_cap = models.PositiveIntegerField("daily cap", default=50, help_text="Messages per day in the mailbox's time zone (0 = no cap).")
    min_interval_seconds = models.PositiveIntegerField("minimum interval (s)", default=90, help_text="Seconds between two sends (0 = none).")
    interval_jitter_seconds = models.PositiveIntegerField("interval jitter (s)", default=60, help_text="Up to this many random seconds added to each interval.")
    send_days = models.CharField("send days", max_length=20, default="0,1,2,3,4", blank=True,
                                 help_text="Days of the week sending is allowed, 0 = Monday … 6 = Sunday, comma-separated (blank = every day).")
    send_window_start = models.TimeField("window opens", default=datetime.time(8, 0), help_text="Local time of day sending starts.")
    send_window_end = models.TimeField("window closes", default=datetime.time(18, 0), help_text="Local time of day sending stops (equal to the start = all day).")
    time_zone = models.CharField("time zone", max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Paris.")
    next_send_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="Earliest next send (minimum interval + jitter).")

    class Meta:
        ordering = ["sender_email"]
        verbose_name_plural = "mailboxes"
        indexes = [models.Index(fields=["team", "sender_email", "id"], name="mailbox_team_sender")]

    def __str__(self) -> str:
        return f"{self.sender_name} <{self.sender_email}>" if self.sender_name else self.sender_email

    @property
    def config_class(self) -> type[MailboxConfig]:
        """The provider's declared config class (the empty base for an unknown provider)."""
        provider_cls = PROVIDERS.get(self.provider)
        return provider_cls.config_class if provider_cls is not None else MailboxConfig

    def setting(self, name: str) -> Any:
        """The stored value of the non-secret setting ``name`` (its declared default when unset)."""
        if name in self.config_class.secrets():
            raise KeyError(f"{name} is a secret: read provider_settings (decrypted) or has_secret()")
        return (self.provider_config or {}).get(name, self.config_class.defaults().get(name, ""))

    def has_secret(self, name: str) -> bool:
        """Whether a secret setting (e.g. ``smtp_password``) is stored."""
        return bool((self.provider_config or {}).get(name))

    def set_secret(self, name: str, plaintext: str) -> None:
        """Store secret setting ``name`` encrypted ('' removes it); saving is the caller's."""
        self.provider_config = {**(self.provider_config or {}), name: encrypt(plaintext) if plaintext else ""}

    @property
    def provider_settings(self) -> dict[str, Any]:
        """{setting name: value} of ``provider_config`` with its secrets decrypted — what providers
        read (``Provider.from_mailbox``). Raises CredentialDecryptionError on a wrong key. Never
        render or log it."""
        values = dict(self.provider_config or {})
        labels = dict(self.config_class.settings())
        for name in self.config_class.secrets():
            if values.get(name):
                values[name] = decrypt(values[name], what=f"{labels[name].label} of Mailbox {self.pk}")
        return values

    @property
    def has_imap(self) -> bool:
        """Whether the mailbox has an IMAP server (replies, bounces, copies to Sent)."""
        return bool((self.provider_config or {}).get("imap_host"))

    def clean(self) -> None:
        """``provider_config`` holds only the provider's declared settings, each of its declared
        type (secrets are checked by the services that encrypt them)."""
        from django.core.exceptions import ValidationError

        config_class = self.config_class
        stored = dict(self.provider_config or {}) if isinstance(self.provider_config, dict) else None
        if stored is None:
            raise ValidationError({"provider_config": "The provider settings must be a JSON object."})
        unknown = sorted(set(stored) - set(config_class.defaults()))
        secrets = set(config_class.secrets())
        _, problems = config_class.coerce({k: v for k, v in stored.items() if k not in secrets and k not in unknown})
        messages = [f"{name}: {text}" for name, text in problems.items()]
        if unknown:
            messages.append(f"Not a setting of {self.provider} mailboxes: {', '.join(unknown)}.")
        if messages:
            raise ValidationError({"provider_config": messages})


class SentMessage(TeamOwned):
    """One outgoing email and its delivery state; the table is the outbox (the database is the queue).

    ``scheduled`` / ``queued`` (waiting until ``due_at``) → ``sending`` (claimed: ``claimed_by`` holds
    it until ``lease_until``) → ``sent`` | ``failed`` | ``unknown`` (it passed the hand-over point and
    then the answer was lost: it may have been delivered; the user marks it sent or sends it again)
    | ``cancelled``. ``handed_over_at`` is written durably just before the point of no return of the
    current attempt (SMTP DATA, the HTTP request); ``prepared_request`` is the provider request built
    once and reused verbatim by every retry.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "May have been delivered"
        CANCELLED = "cancelled", "Cancelled"

    #: Waiting in the outbox (the dispatcher claims these once ``due_at`` has passed).
    WAITING = (Status.SCHEDULED, Status.QUEUED)
    #: Final states (``unknown`` waits for a user decision, but nothing more happens on its own).
    SETTLED = (Status.SENT, Status.FAILED, Status.UNKNOWN, Status.CANCELLED)

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="sent_messages")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="sent_messages")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to = models.JSONField(default=list, help_text="Recipient addresses (list of str).")
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    reply_to = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=998)
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    # Unique (threading looks replies up by it); PostgreSQL's extra ``_like`` index for prefix LIKE
    # is dropped in 0020: nothing searches message ids by prefix (the admin's icontains cannot use it).
    message_id = models.CharField("Message-ID", max_length=255, unique=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    thread_id = models.CharField(max_length=255, blank=True, help_text="Provider thread to reply in, if any.")

    # No index of its own: every status query is served by an index that starts with status
    # (sentmessage_outbox, sentmessage_leases) or by (team, status, …) for the list (0020).
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0, help_text="Provider attempts (time waiting in a limiter does not count).")
    provider = models.CharField(max_length=30)
    provider_message_id = models.CharField(max_length=255, blank=True)
    provider_thread_id = models.CharField(max_length=255, blank=True)
    provider_status = models.CharField(max_length=30, blank=True)
    provider_response = models.JSONField(default=dict, blank=True)
    recipient_results = models.JSONField(default=dict, blank=True,
                                         help_text="Per recipient: {address: {status, code, reply}} (anymail's shape).")
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)

    # The outbox: when it may go, who holds it, and how far the current attempt got.
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="Send later: the time the user chose.")
    due_at = models.DateTimeField(null=True, blank=True, help_text="Earliest time of the next attempt.")
    hold_reason = models.CharField(max_length=300, blank=True, help_text="Why a due message is held back (sending rules).")
    claimed_by = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    handed_over_at = models.DateTimeField(null=True, blank=True,
                                          help_text="Set just before the point of no return of the current attempt.")
    prepared_request = models.BinaryField(null=True, blank=True, editable=False,
                                          help_text="The provider request, built once and reused verbatim on retries.")

    queued_at = models.DateTimeField(null=True, blank=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    # Threading (RFC 5322 §3.6.4) for a reply composed from the timeline; set by outreach.inbound.
    in_reply_to = models.CharField("In-Reply-To", max_length=255, blank=True)
    references = models.TextField(blank=True, help_text="Message-IDs for the References header, space-separated.")
    # Custom X- headers the user set, in order ([[name, value], …]: a JSON object would lose the order),
    # validated by outreach.validation.validate_custom_headers and sent only where the provider's
    # capabilities allow custom headers (SMTP, Unipile).
    headers = models.JSONField("custom headers", default=list, blank=True,
                               help_text="Custom X- headers sent with the message, in order: [[name, value], …].")
    # Outcome read back from the mailbox by outreach.inbound (a DSN, a reply).
    bounced_at = models.DateTimeField(null=True, blank=True)
    bounce_reason = models.TextField(blank=True, help_text="Status code and diagnostic of the bounce.")
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The messages list: default and "sent" sorts, the status filter/sort, the attempts sort.
        # ``status`` keeps its own index for the send queue, which looks across teams.
        indexes = [
            models.Index(fields=["team", "created_at", "id"], name="sentmessage_team_created"),
            models.Index(fields=["team", "sent_at", "id"], name="sentmessage_team_sent"),
            models.Index(fields=["team", "status", "created_at", "id"], name="sentmessage_team_status"),
            models.Index(fields=["team", "attempts", "id"], name="sentmessage_team_attempts"),
            models.Index(fields=["status", "due_at"], name="sentmessage_outbox"),
            models.Index(fields=["status", "lease_until"], name="sentmessage_leases"),
            models.Index(fields=["mailbox", "sent_at"], name="sentmessage_mailbox_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.subject!r} to {', '.join(self.to)} [{self.status}]"

    @property
    def is_settled(self) -> bool:
        return self.status in self.SETTLED

    @property
    def can_cancel(self) -> bool:
        return self.status in self.WAITING

    @property
    def can_send_again(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.UNKNOWN, self.Status.CANCELLED)


class Attachment(models.Model):
    """A file attached to a SentMessage; content kept in the database with its message."""

    sent_message = models.ForeignKey(SentMessage, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveIntegerField(help_text="Bytes.")
    content = models.BinaryField()

    def __str__(self) -> str:
        return f"{self.filename} ({self.size} bytes)"


#: The timeline kinds that stop a campaign enrolment (``outreach.campaigns.services``: replies,
#: bounces, unsubscribes, auto-replies), indexed by ``timeline_stop_events``.
TIMELINE_STOP_KINDS = ["auto_reply", "message_bounced", "reply_received", "unsubscribed"]


class TimelineEvent(TeamOwned):
    """Something that happened to a contact; the contact page lists them newest first."""

    class Kind(models.TextChoices):
        CONTACT_CREATED = "contact_created", "Contact created"
        CONTACT_IMPORTED = "contact_imported", "Contact imported"
        CONTACT_UPDATED = "contact_updated", "Contact updated"
        LEAD_CREATED = "lead_created", "Lead created"
        LEAD_STATUS = "lead_status", "Lead status changed"
        MESSAGE_QUEUED = "message_queued", "Message queued"
        MESSAGE_SENDING = "message_sending", "Sending attempt"
        MESSAGE_RETRY = "message_retry", "Attempt failed, will retry"
        MESSAGE_SENT = "message_sent", "Message sent"
        MESSAGE_FAILED = "message_failed", "Message failed"
        MESSAGE_UNKNOWN = "message_unknown", "Message may have been delivered"
        MESSAGE_CANCELLED = "message_cancelled", "Message cancelled"
        MESSAGE_MARKED_SENT = "message_marked_sent", "Message marked as sent"
        SUPPRESSED = "suppressed", "Address suppressed"
        CAMPAIGN_ENROLLED = "campaign_enrolled", "Enrolled in a campaign"
        CAMPAIGN_STOPPED = "campaign_stopped", "Campaign stopped"
        CAMPAIGN_COMPLETED = "campaign_completed", "Campaign completed"
        REPLY_RECEIVED = "reply_received", "Reply received"
        MESSAGE_BOUNCED = "message_bounced", "Message bounced"
        AUTO_REPLY = "auto_reply", "Auto-reply received"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        INBOUND_MAIL = "inbound_mail", "Email received"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="timeline_events", db_index=False)
    # The three optional links are indexed only where set (partial indexes in Meta): most events
    # have none of them, and a full index of 10,000,000 mostly-NULL entries is ~130 MB each.
    sent_message = models.ForeignKey(SentMessage, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="timeline_events", db_index=False)
    inbound_message = models.ForeignKey("InboundMessage", null=True, blank=True, on_delete=models.CASCADE,
                                        related_name="timeline_events", db_index=False)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", db_index=False)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    summary = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The contact page pages through (contact, created_at, id), which also serves the
        # contact's cascade delete; the admin list walks the primary key. The message, inbound
        # message and actor links are indexed where not NULL (a message's events, the cascades
        # and the actor's SET NULL all look up one value). ``timeline_stop_events`` holds only
        # the rare stop kinds: the campaign scheduler's "stop events since …" reads it every run
        # instead of scanning the whole table (4.6 s at 20,000,000 events).
        indexes = [
            models.Index(fields=["contact", "created_at", "id"], name="timeline_contact_created"),
            models.Index(fields=["sent_message"], condition=models.Q(sent_message__isnull=False),
                         name="timeline_sent_message"),
            models.Index(fields=["inbound_message"], condition=models.Q(inbound_message__isnull=False),
                         name="timeline_inbound_message"),
            models.Index(fields=["actor"], condition=models.Q(actor__isnull=False), name="timeline_actor"),
            models.Index(fields=["created_at"], condition=models.Q(kind__in=TIMELINE_STOP_KINDS),
                         name="timeline_stop_events"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"


def _import_upload_to(instance: "ImportJob", filename: str) -> str:
    return f"imports/{instance.team_id}/{uuid.uuid4().hex}.csv"


class ImportJob(TeamOwned):
    """One CSV import: the uploaded file (under MEDIA_ROOT), the chosen mapping and options, and
    its progress and outcome. Every data row ends as exactly one of created / updated /
    unchanged / rejected, so ``created + updated + unchanged + rejected == total_rows`` once done.
    """

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting for column mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Policy(models.TextChoices):
        SKIP = "skip", "Skip existing contacts"
        UPDATE = "update", "Update existing contacts"
        FILL = "fill", "Fill only blank fields of existing contacts"

    name = models.CharField(max_length=200, help_text="Shown as the source of imported contacts and leads.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    file = models.FileField(upload_to=_import_upload_to, max_length=500)
    original_filename = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    encoding = models.CharField(max_length=30, blank=True)
    delimiter = models.CharField(max_length=2, blank=True)
    headers = models.JSONField(default=list, blank=True, help_text="Column names (duplicates suffixed).")
    header_row = models.PositiveIntegerField(default=1, help_text="The header's row number as a spreadsheet shows it; rows above it are skipped.")
    header_line = models.PositiveIntegerField(default=1, help_text="The physical line where the header starts.")
    mapping = models.JSONField(default=list, blank=True, help_text="One target per column: a field name, '__custom__' or '' (ignored).")
    policy = models.CharField(max_length=10, choices=Policy.choices, default=Policy.SKIP)
    as_leads = models.BooleanField(default=False)
    lead_status = models.CharField(max_length=20, default="new")
    lead_owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    campaign = models.ForeignKey("outreach.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 help_text="The created (and, with enrol_updated, updated) contacts are enrolled in it.")
    enrol_updated = models.BooleanField(default=False, help_text="Also enrol the existing contacts the import updated.")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=100, blank=True)
    total_rows = models.PositiveIntegerField(null=True, blank=True, help_text="Data rows in the file (blank lines not counted).")
    rows_done = models.PositiveIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0, help_text="About how much of the file is read (progress while the rows are not counted).")
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    blanked_count = models.PositiveIntegerField(default=0, help_text="Imported rows with a cell left out because it was invalid (listed in the error report).")
    suppressed_count = models.PositiveIntegerField(default=0, help_text="Imported rows whose address is on the team's suppression list.")
    leads_created_count = models.PositiveIntegerField(default=0)
    enrolled_count = models.PositiveIntegerField(default=0, help_text="Contacts enrolled in the campaign.")
    enrol_already_count = models.PositiveIntegerField(default=0, help_text="Contacts that were already in the campaign.")
    enrol_skipped = models.JSONField(default=dict, blank=True,
                                     help_text="Contacts not enrolled, by reason (Enrolment.Reason value): count.")
    error_message = models.TextField(blank=True)
    error_report = models.FileField(upload_to="imports/errors/", max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "created_at", "id"], name="importjob_team_created")]

    def __str__(self) -> str:
        return f"{self.name} [{self.status}]"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.CANCELLED)

    def counts(self) -> dict[str, int]:
        """The outcome counters as a plain dict (the management command prints this as JSON)."""
        return {"rows": self.total_rows or 0, "created": self.created_count, "updated": self.updated_count,
                "unchanged": self.unchanged_count, "rejected": self.rejected_count,
                "suppressed": self.suppressed_count, "leads_created": self.leads_created_count}

    def enrolment_counts(self) -> dict | None:
        """None without a campaign, else {"campaign_id", "campaign", "enrolled", "already",
        "skipped": {reason: count}, "skipped_total"}."""
        if self.campaign_id is None and not self.enrolled_count and not self.enrol_skipped:
            return None
        skipped = dict(self.enrol_skipped or {})
        return {"campaign_id": self.campaign_id, "campaign": self.campaign.name if self.campaign else None,
                "enrolled": self.enrolled_count, "already": self.enrol_already_count, "skipped": skipped,
                "skipped_total": sum(skipped.values())}


class BulkJob(TeamOwned):
    """A list page's bulk action on "all N matching" a filter, run by a Celery task in batches
    (``outreach.services.bulk_jobs``) instead of inside the web request.

    The selection is stored as the list query (``query``: {"q", "filters", "order"}) and re-read
    batch by batch in primary-key order (keyset: ``cursor`` is the last pk whose batch committed),
    bounded by ``max_pk`` (rows created after the job was queued are not part of it). Each batch
    and the job's counters commit in one transaction under the worker's claim (``claimed_by``,
    ``lease_until``), so a crashed or duplicated task neither skips nor repeats a batch.
    Counters: ``done`` rows of the selection handled, of which ``changed`` were written (leads
    made, statuses changed, contacts deleted, contacts enrolled) and the rest already were so
    (``done - changed``); ``details`` holds per-kind extras (enrolment skips by reason).
    """

    class Kind(models.TextChoices):
        MAKE_LEADS = "make_leads", "Make leads"
        SET_STATUS = "set_status", "Set lead status"
        DELETE = "delete", "Delete contacts"
        ENROL = "enrol", "Enrol in campaign"
        DELETE_LEADS = "delete_leads", "Delete leads"
        DELETE_EVENTS = "delete_events", "Delete timeline events"
        REMOVE_ENROLMENTS = "remove_enrolments", "Remove from campaign"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    query = models.JSONField(default=dict, blank=True, help_text='The list query: {"q": …, "filters": {…}, "order": …}.')
    value = models.CharField(max_length=100, blank=True, help_text="The action's value: a lead status, a campaign id.")
    max_pk = models.BigIntegerField(default=0, help_text="Rows with a larger id were created after the job and are left alone.")
    cursor = models.BigIntegerField(default=0, help_text="The last id of the last committed batch.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    total = models.PositiveIntegerField(null=True, blank=True, help_text="Rows matching when the run started.")
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True, help_text="The outcome in words, or the error.")
    task_id = models.CharField(max_length=100, blank=True)
    claimed_by = models.CharField(max_length=36, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["team", "created_at", "id"], name="bulkjob_team_created"),
            # The sweep's query: unfinished jobs (a handful) by status.
            models.Index(fields=["status", "lease_until"], name="bulkjob_open",
                         condition=models.Q(status__in=["queued", "running"])),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} [{self.status}]"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def percent(self) -> int:
        """Rows done as a whole percentage of ``total`` (0 while not counted, 100 when finished)."""
        if self.status == self.Status.DONE:
            return 100
        if not self.total:
            return 0
        return min(100, self.done * 100 // self.total)


class MessageTemplate(TeamOwned):
    """A saved subject and HTML body with merge fields and spintax (``outreach.message_templates.engine``).

    Checked when saved: an unknown field or a syntax error is refused with its line. Compose can
    start from one; campaign steps render one per contact.
    """

    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=998)
    html_body = models.TextField("body (HTML)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="message_template_name_unique_per_team")]

    def __str__(self) -> str:
        return self.name


# Campaign tables live with their feature (outreach/campaigns/); importing them here registers them.
from .campaigns.models import Campaign, CampaignMessage, CampaignStep, Enrolment, StepVariant  # noqa: E402,F401
# Inbound mail (outreach/inbound/): its models live with the feature and belong to this app.
from .inbound.models import InboundMessage, MailboxSyncState, UnsubscribeKey  # noqa: E402,F401
