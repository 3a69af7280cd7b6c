"""The send pipeline's front: validate and queue a SentMessage in the outbox, and the user's actions on it
(cancel, send again, mark as sent). Delivery itself (claims, leases, retries, recovery) is
:mod:`outreach.services.outbox`; the sending rules are :mod:`outreach.services.sending_rules`.

``sent_message_create`` stores the message as ``queued`` (or ``scheduled`` for a later time) with
``due_at``, and after commit publishes a wake-up task carrying only its id. Losing that task changes
nothing: the dispatcher finds every due message in the table.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from email.utils import make_msgid
from typing import Iterable, Mapping

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from providers import errors as perr
from providers.base import Address, OutgoingAttachment, OutgoingMessage, Usage
from providers.registry import get_provider_class

from ..html_text import html_to_text, sanitize_outgoing_html
from ..external_ids import external_id_fields
from ..models import Attachment, Contact, Mailbox, SentMessage, Suppression, Team, TimelineEvent
from ..validation import normalize_email, sender_problems, validate_custom_headers, validate_header_value
from .outbox import SendOutcome, retry_delay, sent_message_send  # noqa: F401  (the pipeline's public names)
from .timeline import timeline_event_record
from ..inbound.unsubscribe import outgoing_headers, with_unsubscribe_footer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttachmentData:
    """An uploaded file: ``content`` bytes."""

    filename: str
    content_type: str
    content: bytes


#: The one map from a provider capability's feature (``providers.base.FEATURES``) to the compose
#: form's field that uses it; problems are shown on that field.
FEATURE_FIELDS = {
    "cc": "cc", "bcc": "bcc", "multiple_recipients": "to", "attachments": "attachments", "reply_to": "reply_to",
    "html": "html_body", "threads": "thread_id", "custom_headers": "headers",
}


def capability_problems(*, mailbox: Mailbox, to: list[str], cc: list[str], bcc: list[str], reply_to: str,
                        html: str, text: str, attachments: Iterable[AttachmentData], thread_id: str = "",
                        headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """{form field: message} for what ``mailbox``'s provider cannot carry (e.g. attachments on lemlist),
    the provider's feature names mapped onto the form through :data:`FEATURE_FIELDS`."""
    provider_cls = get_provider_class(mailbox.provider)
    files = list(attachments)
    usage = Usage(cc=bool(cc), bcc=bool(bcc), recipients=len(to), attachments=bool(files),
                  attachments_bytes=sum(len(f.content) for f in files), reply_to=bool(reply_to),
                  html_only=bool(html) and not text, thread=bool(thread_id), headers=tuple(headers or ()))
    problems = provider_cls.capabilities.problems(usage, label=provider_cls.label)
    return {FEATURE_FIELDS[feature]: message for feature, message in problems.items()}


def suppressed_addresses(*, team: Team, addresses: Iterable[str]) -> list[str]:
    """The subset of ``addresses`` on the team's suppression list."""
    return list(Suppression.objects.for_team(team).filter(email__in=list(addresses)).values_list("email", flat=True))


def sent_message_create(*, team: Team, actor, mailbox: Mailbox, contact: Contact, subject: str, html: str = "",
                        text: str = "", cc: list[str] | None = None, bcc: list[str] | None = None,
                        reply_to: str = "", attachments: Iterable[AttachmentData] = (), thread_id: str = "",
                        to: list[str] | None = None, idempotency_key: uuid.UUID | None = None,
                        in_reply_to: str = "", references: str = "", headers: Mapping[str, str] | None = None,
                        scheduled_at: datetime | None = None, now: datetime | None = None) -> SentMessage:
    """Queue one email to ``contact`` (or ``to``) from ``mailbox``. Returns the SentMessage (status
    ``queued``, or ``scheduled`` when ``scheduled_at``, an aware datetime, is later than ``now``).

    ``idempotency_key`` (e.g. the compose form's submission key): when the team already has a
    message with that key, that message is returned and nothing new is queued, so a form
    submitted twice sends once. The key then travels to providers that support one.

    ``in_reply_to`` / ``references`` (a reply composed from the timeline, built by
    ``outreach.inbound.services.reply_draft``) become the RFC 5322 threading headers where the
    provider carries headers; ``thread_id`` is the provider's own thread.

    ``headers`` ({name: value}) are custom ``X-`` headers (:func:`outreach.validation.validate_custom_headers`),
    accepted only where the provider's capabilities carry custom headers (SMTP, Unipile).

    The HTML is sanitised and a plain-text alternative derived when ``text`` is empty. The
    Celery task is enqueued when the transaction commits; nothing waits for SMTP.
    Raises ValidationError ({field: message}) for another team's objects, header injection (subject,
    reply-to, the mailbox's sender name and address, attachment file names, custom headers), invalid addresses,
    suppressed recipients, attachments over the size limit, a send time in the past or without a time
    zone, or features the mailbox's provider cannot carry. Nothing is saved then.
    """
    now = now or timezone.now()
    if mailbox.team_id != team.pk or contact.team_id != team.pk:
        raise ValidationError("Mailbox and contact must belong to your team.")
    if idempotency_key is not None:
        existing = SentMessage.objects.for_team(team).filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    if not mailbox.is_active:
        raise ValidationError({"mailbox": f"Mailbox {mailbox} is disabled."})
    cc, bcc = list(cc or []), list(bcc or [])
    to = [normalize_email(a) for a in (to or [contact.email])]
    for name, value in (("subject", subject), ("reply_to", reply_to), ("thread_id", thread_id),
                        ("in_reply_to", in_reply_to), ("references", references)):
        try:
            validate_header_value(value)
        except ValidationError as err:
            raise ValidationError({name: err.messages}) from err
    subject = subject.strip()
    if not subject:
        raise ValidationError({"subject": "Enter a subject."})
    if reply_to:
        reply_to = normalize_email(reply_to)
    cc = [normalize_email(a) for a in cc]
    bcc = [normalize_email(a) for a in bcc]
    html = sanitize_outgoing_html(html) if html else ""
    if not html and not text:
        raise ValidationError({"html_body": "Write a message body."})
    text = text or html_to_text(html)
    try:
        headers = validate_custom_headers(headers or {})
    except ValidationError as err:
        raise ValidationError({"headers": err.messages}) from err
    files = list(attachments)
    validate_sender(mailbox)
    for f in files:
        validate_attachment_filename(f.filename)
    if scheduled_at is not None:
        if timezone.is_naive(scheduled_at):
            raise ValidationError({"scheduled_at": "Give the send time with its time zone (e.g. 2026-12-02T09:00+01:00)."})
        if scheduled_at < now - timedelta(minutes=1):
            raise ValidationError({"scheduled_at": f"The send time {scheduled_at:%Y-%m-%d %H:%M %Z} is in the past."})
    total = sum(len(f.content) for f in files)
    if total > settings.OUTREACH_MAX_ATTACHMENTS_BYTES:
        raise ValidationError({"attachments": f"Attachments total {total / 1048576:.1f} MB; the limit is "
                                              f"{settings.OUTREACH_MAX_ATTACHMENTS_BYTES / 1048576:.0f} MB."})
    problems = capability_problems(mailbox=mailbox, to=to, cc=cc, bcc=bcc, reply_to=reply_to, html=html,
                                   text=text, attachments=files, thread_id=thread_id, headers=headers)
    if problems:
        raise ValidationError(problems)
    blocked = suppressed_addresses(team=team, addresses=[*to, *cc, *bcc])
    if blocked:
        raise ValidationError({"to": f"Suppressed address (bounce, complaint or unsubscribe): {', '.join(blocked)}."})

    domain = mailbox.sender_email.rpartition("@")[2] or "outreach.local"
    try:
        message = _queue(team=team, actor=actor, mailbox=mailbox, contact=contact, to=to, cc=cc, bcc=bcc,
                         reply_to=reply_to, subject=subject, html=html, text=text, thread_id=thread_id, files=files,
                         message_id=make_msgid(domain=domain), idempotency_key=idempotency_key or uuid.uuid4(),
                         scheduled_at=scheduled_at, now=now,
                         fields={"in_reply_to": in_reply_to, "references": references,
                                 "headers": [[name, value] for name, value in headers.items()]})
    except IntegrityError as err:
        if idempotency_key is None:
            raise
        # The same submission raced us and won: it is the one message.
        existing = SentMessage.objects.for_team(team).filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise ValidationError("This form was already used; reload the page and send again.") from err
        return existing
    return message


def _queue(*, team, actor, mailbox, contact, to, cc, bcc, reply_to, subject, html, text, thread_id, files,
           message_id, idempotency_key, scheduled_at, now, fields=None) -> SentMessage:
    """Store the SentMessage, its attachments and the queued event; publish the wake-up task on commit."""
    later = scheduled_at is not None and scheduled_at > now
    with transaction.atomic():
        message = SentMessage.objects.create(
            team=team, mailbox=mailbox, contact=contact, created_by=actor, to=to, cc=cc, bcc=bcc,
            reply_to=reply_to, subject=subject, html_body=html, text_body=text, thread_id=thread_id,
            message_id=message_id, idempotency_key=idempotency_key, provider=mailbox.provider,
            queued_at=now, scheduled_at=scheduled_at if later else None, due_at=scheduled_at if later else now,
            status=SentMessage.Status.SCHEDULED if later else SentMessage.Status.QUEUED, **(fields or {}),
        )
        Attachment.objects.bulk_create([
            Attachment(sent_message=message, filename=f.filename, content_type=f.content_type or "application/octet-stream",
                       size=len(f.content), content=f.content) for f in files
        ])
        when = f" for {timezone.localtime(scheduled_at):%Y-%m-%d %H:%M %Z}" if later else ""
        timeline_event_record(contact=contact, kind=TimelineEvent.Kind.MESSAGE_QUEUED, sent_message=message, actor=actor,
                              summary=f"Queued “{subject}” from {mailbox.sender_email}{when}"
                                      + (f" with {len(files)} attachment(s)" if files else "") + ".")
        if not later:
            transaction.on_commit(lambda: wake_up(message.pk))
    return message


def wake_up(sent_message_id: int) -> None:
    """Publish the wake-up task for one due message (``outreach.send_message``, id only, no retries).

    A broker outage is logged, not raised: the message is already in the outbox and the dispatcher
    will pick it up, so the user who queued it never sees an error for it. (Celery's
    ``delay_on_commit`` would raise here, inside the request.)
    """
    from ..tasks import send_message

    try:
        send_message.apply_async((sent_message_id,), retry=False)
    except Exception as err:  # broker down: the outbox row is the truth
        logger.warning("Wake-up for SentMessage %s not published (%s: %s); the dispatcher will send it.",
                       sent_message_id, type(err).__name__, err)


def validate_sender(mailbox: Mailbox) -> None:
    """Raise ValidationError({"mailbox": …}) when the mailbox's sender name or address cannot be a From
    header (CR/LF/NUL, not an address) — mailboxes made by scripts or the admin reach here too."""
    problems = sender_problems(name=mailbox.sender_name, email=mailbox.sender_email)
    if not problems:
        try:
            Address(mailbox.sender_email, mailbox.sender_name or "").formatted()
        except (ValueError, IndexError, HeaderParseError) as err:
            problems["sender"] = f"not a valid From header ({err})."
    if problems:
        raise ValidationError({"mailbox": f"Mailbox {mailbox.pk}'s sender cannot be used: {' '.join(problems.values())} "
                                          "Fix the sender name and address on the mailbox."})


def validate_attachment_filename(filename: str) -> None:
    """Raise ValidationError({"attachments": …}) for an empty attachment name, one with CR/LF/NUL or other
    control characters, a path, or more than 255 characters."""
    name = filename or ""
    if not name.strip():
        raise ValidationError({"attachments": "An attachment has no file name."})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValidationError({"attachments": f"The attachment name {name!r} contains a line break or control character."})
    if "/" in name or "\\" in name:
        raise ValidationError({"attachments": f"The attachment name {name!r} must be a file name, not a path."})
    if len(name) > 255:
        raise ValidationError({"attachments": "An attachment name is longer than 255 characters."})


def sent_message_outgoing(message: SentMessage, *, attachments: Iterable[Attachment] | None = None,
                          external_ids: Iterable | None = None) -> OutgoingMessage:
    """Build the provider-neutral OutgoingMessage for ``message`` (reads attachments and vendor ids).
    A send batch passes what it read for all its messages at once: ``attachments`` (the message's
    Attachment rows) and ``external_ids`` (its contact's ExternalId rows); else they are read here."""
    mailbox, contact = message.mailbox, message.contact
    lead = getattr(contact, "lead", None)  # reverse one-to-one: None when the contact is no lead
    return OutgoingMessage(
        sender=Address(mailbox.sender_email, mailbox.sender_name),
        to=tuple(Address(a, contact.full_name if a == contact.email else "") for a in message.to),
        cc=tuple(Address(a) for a in message.cc),
        bcc=tuple(Address(a) for a in message.bcc),
        reply_to=Address(message.reply_to) if message.reply_to else None,
        subject=message.subject, **with_unsubscribe_footer(sent_message=message),
        attachments=tuple(OutgoingAttachment(a.filename, a.content_type, bytes(a.content))
                          for a in (message.attachments.all() if attachments is None else attachments)),
        message_id=message.message_id, idempotency_key=str(message.idempotency_key), thread_id=message.thread_id,
        # the user's X- headers, then threading + List-Unsubscribe (outreach.inbound) where the provider carries them
        headers={**dict(message.headers), **outgoing_headers(sent_message=message)},
        vendor_ids=vendor_ids(contact=contact, is_lead=lead is not None, rows=external_ids),
    )


def vendor_ids(*, contact: Contact, is_lead: bool, rows: Iterable | None = None) -> dict[str, str]:
    """``OutgoingMessage.vendor_ids`` for ``contact``: every id the providers declare, keyed by
    :meth:`providers.base.ExternalIdKind.key` ('' when unset; a lead's only when ``is_lead``). One query,
    none when the contact was loaded with ``prefetch_related("external_ids")`` or its ExternalId
    ``rows`` are given (a send batch)."""
    ids = {f.key: "" for f in external_id_fields()}
    objects = ("contact", "lead") if is_lead else ("contact",)
    for row in contact.external_ids.all() if rows is None else rows:
        if row.object in objects and row.key in ids:
            ids[row.key] = row.value
    return ids


def suppress_recipient(message: SentMessage, err: perr.RecipientSuppressed) -> None:
    """Add the refused recipient to the team's suppression list (with a timeline event when new)."""
    _, created = Suppression.objects.get_or_create(
        team=message.team, email=err.recipient.lower(),
        defaults={"reason": Suppression.Reason.BOUNCE, "detail": f"{message.provider}: {err.provider_message or err.message}"})
    if created:
        timeline_event_record(contact=message.contact, kind=TimelineEvent.Kind.SUPPRESSED, sent_message=message,
                              summary=f"{err.recipient} added to the suppression list ({message.provider}).")


# --- the user's actions on a message -------------------------------------------------------------

S = SentMessage.Status


def sent_messages_cancel(*, team: Team, ids: Iterable[int], actor=None, now: datetime | None = None) -> int:
    """Cancel the team's ``ids`` that are still waiting (``queued`` or ``scheduled``); a message a worker
    has already claimed (``sending``) is not touched. Returns how many were cancelled."""
    return _transition(team=team, ids=ids, actor=actor, now=now, from_statuses=SentMessage.WAITING,
                       fields=dict(status=S.CANCELLED, claimed_by="", lease_until=None, hold_reason=""),
                       kind=TimelineEvent.Kind.MESSAGE_CANCELLED, summary="Cancelled “{subject}” before it was sent.")


def sent_messages_send_again(*, team: Team, ids: Iterable[int], actor=None, now: datetime | None = None) -> int:
    """Queue the team's ``failed``, ``unknown`` or ``cancelled`` ``ids`` again, due now, as a new send:
    the provider request is rebuilt from the current mailbox and contact, under a new idempotency key
    (the old key must not be reused for a different request), with the attempt count from zero.
    Only this explicit action ever re-sends an ``unknown`` message. Returns how many were queued."""
    now = now or timezone.now()
    count = 0
    for message in SentMessage.objects.for_team(team).filter(pk__in=list(ids), status__in=(S.FAILED, S.UNKNOWN, S.CANCELLED)).select_related("contact"):
        previous = message.get_status_display().lower()
        count += _transition(team=team, ids=[message.pk], actor=actor, now=now, from_statuses=(message.status,),
                             fields=dict(status=S.QUEUED, due_at=now, attempts=0, prepared_request=None,
                                         idempotency_key=uuid.uuid4(), handed_over_at=None, claimed_by="",
                                         lease_until=None, error_code="", error_message="", hold_reason="",
                                         failed_at=None, recipient_results={}),
                             kind=TimelineEvent.Kind.MESSAGE_QUEUED,
                             summary=f"Sent again on request (it was {previous}): “{{subject}}” queued as a new send.")
        transaction.on_commit(lambda pk=message.pk: wake_up(pk))
    return count


def sent_messages_mark_sent(*, team: Team, ids: Iterable[int], actor=None, now: datetime | None = None) -> int:
    """Record the team's ``unknown`` ``ids`` as sent (the user checked it arrived). Returns how many."""
    return _transition(team=team, ids=ids, actor=actor, now=now, from_statuses=(S.UNKNOWN,),
                       fields=dict(status=S.SENT, sent_at=now or timezone.now(), error_code="", error_message=""),
                       kind=TimelineEvent.Kind.MESSAGE_MARKED_SENT, summary="Marked “{subject}” as sent.")


def _transition(*, team, ids, actor, now, from_statuses, fields, kind, summary) -> int:
    """Move each of the team's ``ids`` in ``from_statuses`` to ``fields`` with a conditional UPDATE (a
    worker claiming it at the same moment wins or loses cleanly), with a timeline event each."""
    done = 0
    with transaction.atomic():
        for message in SentMessage.objects.for_team(team).filter(pk__in=list(ids), status__in=from_statuses).select_related("contact"):
            if SentMessage.objects.filter(pk=message.pk, status=message.status).update(**fields):
                done += 1
                timeline_event_record(contact=message.contact, kind=kind, sent_message=message, actor=actor,
                                      summary=summary.format(subject=message.subject))
    return done
