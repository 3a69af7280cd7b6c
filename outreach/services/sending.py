"""The send pipeline: queue a SentMessage, send it through its mailbox's provider, record the outcome.

Path of one message: ``sent_message_create`` (queued + timeline, task enqueued on commit)
→ Celery task ``outreach.send_message`` → ``sent_message_send``: claim queued→sending in a short
transaction, call the provider outside any transaction, then record sent/failed (or back to
queued for a retry) together with its TimelineEvent.
"""
from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.utils import make_msgid
from typing import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from providers import errors as perr
from providers.base import Address, OutgoingAttachment, OutgoingMessage
from providers.registry import get_provider_class, provider_for_mailbox

from ..crypto import CredentialDecryptionError
from ..html_text import html_to_text, sanitize_outgoing_html
from ..models import Attachment, Contact, Mailbox, SentMessage, Suppression, Team, TimelineEvent
from ..validation import normalize_email, validate_header_value
from .timeline import timeline_event_record
from ..inbound.unsubscribe import outgoing_headers, with_unsubscribe_footer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttachmentData:
    """An uploaded file: ``content`` bytes."""

    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class SendOutcome:
    """What one run of the task did: ``retry_in`` seconds when it should run again, else None."""

    sent_message: SentMessage
    retry_in: float | None = None


def capability_problems(*, mailbox: Mailbox, to: list[str], cc: list[str], bcc: list[str], reply_to: str,
                        html: str, text: str, attachments: Iterable[AttachmentData], thread_id: str = "") -> dict[str, str]:
    """{form field: message} for what ``mailbox``'s provider cannot carry (e.g. attachments on lemlist)."""
    provider_cls = get_provider_class(mailbox.provider)
    files = list(attachments)
    return provider_cls.capabilities.problems(
        provider_label=provider_cls.label, has_cc=bool(cc), has_bcc=bool(bcc), recipients=len(to),
        attachments_bytes=sum(len(f.content) for f in files), has_attachments=bool(files),
        has_reply_to=bool(reply_to), has_html=bool(html), has_text=bool(text), has_thread=bool(thread_id),
    )


def suppressed_addresses(*, team: Team, addresses: Iterable[str]) -> list[str]:
    """The subset of ``addresses`` on the team's suppression list."""
    return list(Suppression.objects.for_team(team).filter(email__in=list(addresses)).values_list("email", flat=True))


def sent_message_create(*, team: Team, actor, mailbox: Mailbox, contact: Contact, subject: str, html: str = "",
                        text: str = "", cc: list[str] | None = None, bcc: list[str] | None = None,
                        reply_to: str = "", attachments: Iterable[AttachmentData] = (), thread_id: str = "",
                        to: list[str] | None = None, idempotency_key: uuid.UUID | None = None,
                        in_reply_to: str = "", references: str = "") -> SentMessage:
    """Queue one email to ``contact`` (or ``to``) from ``mailbox``. Returns the SentMessage (status queued).

    ``idempotency_key`` (e.g. the compose form's submission key): when the team already has a
    message with that key, that message is returned and nothing new is queued, so a form
    submitted twice sends once. The key then travels to providers that support one.

    ``in_reply_to`` / ``references`` (a reply composed from the timeline, built by
    ``outreach.inbound.services.reply_draft``) become the RFC 5322 threading headers where the
    provider carries headers; ``thread_id`` is the provider's own thread.

    The HTML is sanitised and a plain-text alternative derived when ``text`` is empty. The
    Celery task is enqueued when the transaction commits; nothing waits for SMTP.
    Raises ValidationError ({field: message}) for another team's objects, header injection,
    invalid addresses, suppressed recipients, attachments over the size limit, or features
    the mailbox's provider cannot carry.
    """
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
            raise ValidationError({name: err.messages}) from None
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
    files = list(attachments)
    total = sum(len(f.content) for f in files)
    if total > settings.OUTREACH_MAX_ATTACHMENTS_BYTES:
        raise ValidationError({"attachments": f"Attachments total {total / 1048576:.1f} MB; the limit is "
                                              f"{settings.OUTREACH_MAX_ATTACHMENTS_BYTES / 1048576:.0f} MB."})
    problems = capability_problems(mailbox=mailbox, to=to, cc=cc, bcc=bcc, reply_to=reply_to, html=html,
                                   text=text, attachments=files, thread_id=thread_id)
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
                         threading={"in_reply_to": in_reply_to, "references": references})
    except IntegrityError:
        if idempotency_key is None:
            raise
        # The same submission raced us and won: it is the one message.
        existing = SentMessage.objects.for_team(team).filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise ValidationError("This form was already used; reload the page and send again.") from None
        return existing
    return message


def _queue(*, team, actor, mailbox, contact, to, cc, bcc, reply_to, subject, html, text, thread_id, files,
           message_id, idempotency_key, threading=None) -> SentMessage:
    """Store the SentMessage, its attachments and the queued event; enqueue the task on commit."""
    with transaction.atomic():
        message = SentMessage.objects.create(
            team=team, mailbox=mailbox, contact=contact, created_by=actor, to=to, cc=cc, bcc=bcc,
            reply_to=reply_to, subject=subject, html_body=html, text_body=text, thread_id=thread_id,
            message_id=message_id, idempotency_key=idempotency_key, provider=mailbox.provider,
            queued_at=timezone.now(), **(threading or {}),
        )
        Attachment.objects.bulk_create([
            Attachment(sent_message=message, filename=f.filename, content_type=f.content_type or "application/octet-stream",
                       size=len(f.content), content=f.content) for f in files
        ])
        timeline_event_record(contact=contact, kind=TimelineEvent.Kind.MESSAGE_QUEUED, sent_message=message, actor=actor,
                              summary=f"Queued “{subject}” from {mailbox.sender_email}"
                                      + (f" with {len(files)} attachment(s)" if files else "") + ".")
        transaction.on_commit(lambda: _enqueue(message.pk))
    return message


def _enqueue(sent_message_id: int) -> None:
    from ..tasks import send_message

    send_message.delay(sent_message_id)


def sent_message_outgoing(message: SentMessage) -> OutgoingMessage:
    """Build the provider-neutral OutgoingMessage for ``message`` (reads attachments and vendor ids)."""
    mailbox, contact = message.mailbox, message.contact
    lead = getattr(contact, "lead", None)  # reverse one-to-one: None when the contact is no lead
    return OutgoingMessage(
        sender=Address(mailbox.sender_email, mailbox.sender_name),
        to=tuple(Address(a, contact.full_name if a == contact.email else "") for a in message.to),
        cc=tuple(Address(a) for a in message.cc),
        bcc=tuple(Address(a) for a in message.bcc),
        reply_to=Address(message.reply_to) if message.reply_to else None,
        subject=message.subject, **with_unsubscribe_footer(sent_message=message),
        attachments=tuple(OutgoingAttachment(a.filename, a.content_type, bytes(a.content)) for a in message.attachments.all()),
        message_id=message.message_id, idempotency_key=str(message.idempotency_key), thread_id=message.thread_id,
        headers=outgoing_headers(sent_message=message),  # threading + List-Unsubscribe (outreach.inbound)
        vendor_ids={
            "lemlist_contact_id": contact.lemlist_contact_id, "leadlex_contact_id": contact.leadlex_contact_id,
            "lemlist_lead_id": lead.lemlist_lead_id if lead else "", "leadlex_deal_id": lead.leadlex_deal_id if lead else "",
        },
    )


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the provider's Retry-After if given, else
    exponential backoff (base OUTREACH_RETRY_BASE_SECONDS × 2^(attempt-1), capped at
    OUTREACH_RETRY_MAX_SECONDS) with full jitter in its upper half."""
    if retry_after is not None:
        return max(float(retry_after), 0.0)
    base = settings.OUTREACH_RETRY_BASE_SECONDS * (2 ** max(attempt - 1, 0))
    capped = min(base, settings.OUTREACH_RETRY_MAX_SECONDS)
    return capped / 2 + random.uniform(0, capped / 2)


def sent_message_send(*, sent_message_id: int) -> SendOutcome:
    """Send one queued message exactly once. Returns a SendOutcome.

    Only a message in ``queued`` is claimed (an atomic conditional update), so a task that runs
    twice sends once. A message found ``sending`` longer than OUTREACH_SENDING_STALE_SECONDS
    (its worker died mid-send) is failed as ``outcome_unknown`` rather than risk a duplicate,
    unless its provider deduplicates on our idempotency key, in which case it is sent again.
    """
    now = timezone.now()
    with transaction.atomic():
        claimed = SentMessage.objects.filter(pk=sent_message_id, status=SentMessage.Status.QUEUED).update(
            status=SentMessage.Status.SENDING, attempts=F("attempts") + 1, sending_started_at=now)
        message = SentMessage.objects.select_related("mailbox", "contact", "team").get(pk=sent_message_id)
        if not claimed:
            return _not_claimed(message)
        timeline_event_record(contact=message.contact, kind=TimelineEvent.Kind.MESSAGE_SENDING, sent_message=message,
                              summary=f"Attempt {message.attempts} via {message.provider}.", data={"attempt": message.attempts})
    blocked = suppressed_addresses(team=message.team, addresses=[*message.to, *message.cc, *message.bcc])
    try:
        if blocked:
            raise perr.RecipientSuppressed(f"Not sent: {', '.join(blocked)} is on your suppression list.",
                                           provider=message.provider, recipient=blocked[0])
        provider = provider_for_mailbox(message.mailbox)
        result = provider.send(sent_message_outgoing(message))
    except perr.ProviderError as err:
        return _record_failure(message, err)
    except CredentialDecryptionError as err:
        return _record_failure(message, perr.ConfigurationError(str(err), provider=message.provider, provider_code="credentials"))
    except Exception as err:  # a bug must not leave the message in 'sending' forever
        logger.exception("Unexpected error sending SentMessage %s", message.pk)
        return _record_failure(message, perr.OutcomeUnknown(
            f"Unexpected error while sending ({type(err).__name__}); not retried automatically.",
            provider=message.provider, provider_code="internal_error"))
    with transaction.atomic():
        message.status = SentMessage.Status.SENT
        message.sent_at = timezone.now()
        message.provider_message_id = result.provider_message_id
        message.provider_thread_id = result.provider_thread_id
        message.provider_status = result.provider_status
        message.provider_response = dict(result.raw)
        message.error_code = message.error_message = ""
        message.save()
        note = ""
        imap = result.raw.get("imap") if isinstance(result.raw, dict) else None
        if imap:
            note = f" Copy saved to {imap.get('folder')}." if imap.get("appended") else f" (Sent-folder copy failed: {imap.get('error')})"
        timeline_event_record(contact=message.contact, kind=TimelineEvent.Kind.MESSAGE_SENT, sent_message=message,
                              summary=f"Sent “{message.subject}” to {', '.join(message.to)} via {message.provider}.{note}",
                              data={"provider_message_id": result.provider_message_id, "attempt": message.attempts})
    return SendOutcome(message)


def _not_claimed(message: SentMessage) -> SendOutcome:
    stale = timezone.now() - timedelta(seconds=settings.OUTREACH_SENDING_STALE_SECONDS)
    if message.status == SentMessage.Status.SENDING and message.sending_started_at and message.sending_started_at < stale:
        if get_provider_class(message.provider).capabilities.idempotent:
            SentMessage.objects.filter(pk=message.pk, status=SentMessage.Status.SENDING).update(status=SentMessage.Status.QUEUED)
            return sent_message_send(sent_message_id=message.pk)
        return _record_failure(message, perr.OutcomeUnknown(
            "The worker stopped while this message was being sent; it may have been delivered, so it is not sent again.",
            provider=message.provider, provider_code="worker_lost"))
    return SendOutcome(message)


def _record_failure(message: SentMessage, err: perr.ProviderError) -> SendOutcome:
    """Put the message back in the queue (transient, attempts left) or fail it; timeline either way."""
    retry = err.transient and message.attempts < settings.OUTREACH_SEND_MAX_ATTEMPTS
    detail = {"code": err.code, "provider_code": err.provider_code, "provider_message": err.provider_message,
              "status": err.status, "attempt": message.attempts}
    with transaction.atomic():
        message.error_code = err.code
        message.error_message = err.message
        if retry:
            delay = retry_delay(message.attempts, getattr(err, "retry_after", None))
            message.status = SentMessage.Status.QUEUED
            message.save()
            timeline_event_record(contact=message.contact, kind=TimelineEvent.Kind.MESSAGE_RETRY, sent_message=message,
                                  summary=f"Attempt {message.attempts} failed: {err.message} Retrying in {delay:.0f} s.",
                                  data={**detail, "retry_in": delay})
        else:
            delay = None
            message.status = SentMessage.Status.FAILED
            message.failed_at = timezone.now()
            message.save()
            timeline_event_record(contact=message.contact, kind=TimelineEvent.Kind.MESSAGE_FAILED, sent_message=message,
                                  summary=f"Failed to send “{message.subject}”: {err.message}", data=detail)
            if isinstance(err, perr.RecipientSuppressed) and err.recipient:
                _suppress(message, err)
    return SendOutcome(message, retry_in=delay)


def _suppress(message: SentMessage, err: perr.RecipientSuppressed) -> None:
    _, created = Suppression.objects.get_or_create(
        team=message.team, email=err.recipient.lower(),
        defaults={"reason": Suppression.Reason.BOUNCE, "detail": f"{message.provider}: {err.provider_message or err.message}"})
    if created:
        timeline_event_record(contact=message.contact, kind=TimelineEvent.Kind.SUPPRESSED, sent_message=message,
                              summary=f"{err.recipient} added to the suppression list ({message.provider}).")
