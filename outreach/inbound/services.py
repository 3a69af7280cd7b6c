"""Inbound writes: the mailbox sync, what each classified mail changes, suppressions, replies.

Path of one inbound mail: ``mailbox_sync`` claims the mailbox folder (a lease on its
MailboxSyncState, so two workers never read the same folder at once), opens one IMAP
connection (``providers.imap.ImapReader``: SSRF-checked, pinned), compares UIDVALIDITY, searches
UIDs above the last one stored (the first sync and a changed UIDVALIDITY look back
OUTREACH_INBOUND_LOOKBACK_DAYS), and fetches them in batches with a size bound. Each batch is
parsed (``parsing``), classified (``classify``) and written in one transaction together with its
timeline events, suppressions, lead changes and the folder's new last UID — the checkpoint moves
with the rows it covers. A failure is recorded on the state (shown on the mailbox page) with an
exponential backoff before the periodic task tries that mailbox again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from providers import errors as perr
from providers.imap import FetchedMail, ImapReader

from ..crypto import CredentialDecryptionError
from ..html_text import html_to_text
from ..models import Contact, Lead, Mailbox, SentMessage, Suppression, Team, TimelineEvent
from ..services.timeline import timeline_event_record
from ..validation import normalize_email
from .classify import Verdict, classify_mail
from .models import InboundMessage, MailboxSyncState
from .parsing import ParsedMail, parse_mail
from .trimming import trim_reply

logger = logging.getLogger(__name__)
Kind = InboundMessage.Kind
Event = TimelineEvent.Kind

#: Lead statuses a reply moves to "replied" (later ones — interested, won… — are the team's call).
LEAD_STATUSES_BEFORE_REPLY = (Lead.Status.NEW, Lead.Status.CONTACTED)


@dataclass
class SyncResult:
    """Counts of one sync run of one mailbox folder (printed as JSON by ``sync_mailboxes``)."""

    mailbox: int
    folder: str = "INBOX"
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    uidvalidity_changed: bool = False
    more: bool = False
    skipped: str = ""
    error: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {"mailbox": self.mailbox, "folder": self.folder, "fetched": self.fetched, "stored": self.stored,
                "duplicates": self.duplicates, **{k: self.kinds.get(k, 0) for k in Kind.values},
                "uidvalidity_changed": self.uidvalidity_changed, "more": self.more, "skipped": self.skipped,
                "error": self.error, "seconds": round(self.seconds, 3)}


# --- suppressions -----------------------------------------------------------------------------

def suppression_add(*, team: Team, email: str, reason: str, detail: str = "", sent_message: SentMessage | None = None,
                    inbound_message: InboundMessage | None = None, actor=None) -> tuple[Suppression, bool]:
    """Put ``email`` (validated, lower-cased) on ``team``'s suppression list; returns (row, created).

    An address already listed keeps its first reason. When the address is a contact, a
    ``suppressed`` timeline event is written in the same transaction. Raises ValidationError for
    an invalid address or reason.
    """
    address = normalize_email(email)
    if reason not in Suppression.Reason.values:
        raise ValidationError({"reason": f"Unknown reason {reason!r}."})
    with transaction.atomic():
        row, created = Suppression.objects.get_or_create(
            team=team, email=address,
            defaults={"reason": reason, "detail": detail[:2000], "sent_message": sent_message, "inbound_message": inbound_message})
        if created:
            contact = Contact.objects.for_team(team).filter(email=address).first()
            if contact is not None:
                timeline_event_record(contact=contact, kind=Event.SUPPRESSED, sent_message=sent_message, actor=actor,
                                      summary=f"{address} added to the suppression list ({row.get_reason_display().lower()})"
                                              + (f": {detail}" if detail else "."),
                                      data={"reason": reason})
    return row, created


def suppressions_remove(*, team: Team, ids: list[int]) -> int:
    """Delete the team's suppressions among ``ids``; returns how many were removed."""
    deleted, _ = Suppression.objects.for_team(team).filter(pk__in=ids).delete()
    return deleted


# --- one mail -----------------------------------------------------------------------------------

def _lead_replied(contact: Contact) -> None:
    lead = Lead.objects.filter(contact=contact).first()
    if lead is None or lead.status not in LEAD_STATUSES_BEFORE_REPLY:
        return
    old = lead.get_status_display()
    Lead.objects.filter(pk=lead.pk).update(status=Lead.Status.REPLIED, updated_at=timezone.now())
    timeline_event_record(contact=contact, kind=Event.LEAD_STATUS, summary=f"Lead status {old} → Replied (reply received).",
                          data={"from": lead.status, "to": Lead.Status.REPLIED})


def _event_data(row: InboundMessage, text: str) -> dict[str, Any]:
    return {"inbound_id": row.pk, "from": row.from_email, "subject": row.subject[:300], "text": text[:2000]}


def _apply(row: InboundMessage, verdict: Verdict, mail: ParsedMail) -> None:
    """Write what ``row`` means: timeline events, suppressions, message and lead state."""
    contact, message = verdict.contact, verdict.sent_message
    team = row.team
    if row.kind == Kind.REPLY:
        timeline_event_record(contact=contact, kind=Event.REPLY_RECEIVED, inbound_message=row,
                              summary=f"Reply from {row.from_email}: “{row.subject}”", data=_event_data(row, row.reply_text))
        SentMessage.objects.filter(pk=message.pk, replied_at__isnull=True).update(replied_at=timezone.now())
        _lead_replied(contact)
    elif row.kind == Kind.BOUNCE:
        for failed in verdict.bounce.recipients:
            reason = f"{failed.status} {failed.diagnostic}".strip()
            hard = failed.hard
            if contact is not None:
                timeline_event_record(
                    contact=contact, kind=Event.MESSAGE_BOUNCED, sent_message=message, inbound_message=row,
                    summary=f"{'Bounced' if hard else 'Delivery delayed (soft bounce)'} for {failed.email}: {reason}",
                    data={**_event_data(row, ""), "recipient": failed.email, "status": failed.status, "hard": hard})
            if message is not None and hard:
                SentMessage.objects.filter(pk=message.pk).update(bounced_at=timezone.now(), bounce_reason=reason[:2000])
            if hard and (message is not None or contact is not None):
                suppression_add(team=team, email=failed.email, reason=Suppression.Reason.BOUNCE, detail=reason,
                                sent_message=message, inbound_message=row)
    elif row.kind == Kind.AUTO_REPLY:
        timeline_event_record(contact=contact, kind=Event.AUTO_REPLY, inbound_message=row,
                              summary=f"Auto-reply from {row.from_email}: “{row.subject}”", data=_event_data(row, row.reply_text))
    elif row.kind == Kind.UNSUBSCRIBE:
        address = verdict.unsubscribe_key.email if verdict.unsubscribe_key else row.from_email
        if contact is not None:
            timeline_event_record(contact=contact, kind=Event.UNSUBSCRIBED, inbound_message=row, sent_message=message,
                                  summary=f"{address} asked by email to be unsubscribed.", data=_event_data(row, ""))
        suppression_add(team=team, email=address, reason=Suppression.Reason.UNSUBSCRIBE, detail="Unsubscribe request by email.",
                        sent_message=message, inbound_message=row)
    elif row.kind == Kind.INBOUND:
        timeline_event_record(contact=contact, kind=Event.INBOUND_MAIL, inbound_message=row,
                              summary=f"Email from {row.from_email}: “{row.subject}”", data=_event_data(row, row.reply_text))


def _row(*, mailbox: Mailbox, folder: str, uidvalidity: int, fetched: FetchedMail, mail: ParsedMail, verdict: Verdict) -> InboundMessage:
    bounce = verdict.bounce
    first = bounce.recipients[0] if bounce else None
    text = mail.text or (html_to_text(mail.html) if mail.html else "")
    trimmed = trim_reply(text) if verdict.kind in (Kind.REPLY, Kind.AUTO_REPLY, Kind.INBOUND) else ""
    return InboundMessage(
        team_id=mailbox.team_id, mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=fetched.uid,
        message_key=mail.key[:255], message_id=mail.message_id[:255], in_reply_to=mail.in_reply_to[:255],
        references=" ".join(mail.references), from_email=mail.from_email, from_name=mail.from_name, to=mail.to[:50],
        subject=mail.subject, sent_date=mail.date, text_body=mail.text, html_body=mail.html, reply_text=trimmed,
        size=fetched.size, truncated=fetched.truncated, headers=mail.headers, kind=verdict.kind,
        matched_by=verdict.matched_by, contact=verdict.contact, sent_message=verdict.sent_message,
        bounce_type=("hard" if first.hard else "soft") if first else "", bounce_recipient=first.email if first else "",
        bounce_status=first.status if first else "", bounce_diagnostic=first.diagnostic if first else "",
    )


def inbound_store(*, mailbox: Mailbox, folder: str, uidvalidity: int, fetched: FetchedMail) -> InboundMessage | None:
    """Parse, classify and store one fetched mail with its effects, in the caller's transaction.

    Returns the new InboundMessage, or None when the mailbox already has it (same Message-ID, or
    same bytes for a mail without one).
    """
    mail = parse_mail(fetched.raw)
    if InboundMessage.objects.filter(mailbox=mailbox, message_key=mail.key[:255]).exists():
        return None
    verdict = classify_mail(mailbox=mailbox, mail=mail, thread_id=fetched.thread_id)
    row = _row(mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, fetched=fetched, mail=mail, verdict=verdict)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # the same message under another UID stored concurrently
        return None
    _apply(row, verdict, mail)
    return row


# --- the sync -----------------------------------------------------------------------------------

def _backoff_seconds(failures: int) -> float:
    base = settings.OUTREACH_INBOUND_RETRY_BASE_SECONDS * (2 ** max(failures - 1, 0))
    return min(base, settings.OUTREACH_INBOUND_RETRY_MAX_SECONDS)


def _claim(state: MailboxSyncState, now: datetime) -> bool:
    lease = now + timedelta(seconds=settings.OUTREACH_INBOUND_MAX_SECONDS_PER_RUN + 120)
    return bool(MailboxSyncState.objects.filter(pk=state.pk).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
                .update(lease_until=lease, last_run_at=now))


def mailbox_sync(*, mailbox: Mailbox, folder: str = "INBOX", now: datetime | None = None,
                 honour_backoff: bool = True) -> SyncResult:
    """Read new mail of ``mailbox``'s ``folder`` once; returns a SyncResult.

    Bounded per run by OUTREACH_INBOUND_MAX_MESSAGES_PER_RUN messages,
    OUTREACH_INBOUND_MAX_SECONDS_PER_RUN seconds and OUTREACH_INBOUND_MAX_MESSAGE_BYTES per message
    (``more`` says whether mail is left for the next run). Skips (``skipped``) a mailbox without
    IMAP, one another run holds, or — with ``honour_backoff`` — one still in its error backoff.
    Connection and server errors do not raise: they are recorded on the MailboxSyncState
    (``last_error``, ``next_attempt_at``) and returned in ``error``.
    """
    started = time.monotonic()
    now = now or timezone.now()
    result = SyncResult(mailbox=mailbox.pk, folder=folder)
    if mailbox.provider != "smtp" or not mailbox.has_imap:
        result.skipped = "no IMAP settings"
        return result
    state, _ = MailboxSyncState.objects.get_or_create(mailbox=mailbox, folder=folder)
    if honour_backoff and state.next_attempt_at and state.next_attempt_at > now:
        result.skipped = f"backing off after an error until {state.next_attempt_at.isoformat()}"
        return result
    if not _claim(state, now):
        result.skipped = "another sync of this mailbox is running"
        return result
    try:
        _sync(mailbox, state, result, started)
    except (perr.ProviderError, perr.ConfigurationError, CredentialDecryptionError) as err:
        message = getattr(err, "message", None) or str(err)
        failures = state.consecutive_failures + 1
        MailboxSyncState.objects.filter(pk=state.pk).update(
            last_error=message[:2000], consecutive_failures=failures, lease_until=None,
            next_attempt_at=timezone.now() + timedelta(seconds=_backoff_seconds(failures)))
        result.error = message
        logger.warning("Sync of mailbox %s failed (%s in a row): %s", mailbox.pk, failures, message)
    else:
        MailboxSyncState.objects.filter(pk=state.pk).update(
            last_error="", consecutive_failures=0, next_attempt_at=None, lease_until=None, last_success_at=timezone.now())
    finally:
        result.seconds = time.monotonic() - started
        MailboxSyncState.objects.filter(pk=state.pk, lease_until__isnull=False).update(lease_until=None)
    return result


def _sync(mailbox: Mailbox, state: MailboxSyncState, result: SyncResult, started: float) -> None:
    limit = settings.OUTREACH_INBOUND_MAX_MESSAGES_PER_RUN
    deadline = started + settings.OUTREACH_INBOUND_MAX_SECONDS_PER_RUN
    batch_size = settings.OUTREACH_INBOUND_BATCH_SIZE
    with ImapReader.from_mailbox(mailbox, max_message_bytes=settings.OUTREACH_INBOUND_MAX_MESSAGE_BYTES) as reader:
        folder = reader.select(state.folder)
        last_uid, since = state.last_uid, state.reread_since
        if state.uidvalidity != folder.uidvalidity:
            # First sync, or the server renumbered the folder: read the look-back window again;
            # messages already stored are recognised by Message-ID and skipped. The window stays
            # in force over further runs until the folder has been read to its end.
            result.uidvalidity_changed = state.uidvalidity is not None
            last_uid = 0
            since = (timezone.now() - timedelta(days=settings.OUTREACH_INBOUND_LOOKBACK_DAYS)).date()
            MailboxSyncState.objects.filter(pk=state.pk).update(uidvalidity=folder.uidvalidity, last_uid=0, reread_since=since)
        if folder.uidnext is not None and since is None and folder.uidnext <= last_uid + 1:
            return  # nothing new: no SEARCH needed
        uids = reader.new_uids(after_uid=last_uid, since=since)
        if len(uids) > limit:
            uids, result.more = uids[:limit], True
        for start in range(0, len(uids), batch_size):
            if time.monotonic() > deadline:
                result.more = True
                break
            batch = reader.fetch(uids[start:start + batch_size])
            result.fetched += len(batch)
            with transaction.atomic():
                for fetched in batch:
                    row = inbound_store(mailbox=mailbox, folder=state.folder, uidvalidity=folder.uidvalidity, fetched=fetched)
                    if row is None:
                        result.duplicates += 1
                    else:
                        result.stored += 1
                        result.kinds[row.kind] = result.kinds.get(row.kind, 0) + 1
                # The checkpoint moves with the rows it covers.
                top = uids[min(start + batch_size, len(uids)) - 1]
                MailboxSyncState.objects.filter(pk=state.pk).update(last_uid=top)
        if not result.more and since is not None:
            MailboxSyncState.objects.filter(pk=state.pk).update(reread_since=None)
        if result.stored:
            MailboxSyncState.objects.filter(pk=state.pk).update(messages_stored=F("messages_stored") + result.stored)


def mailboxes_to_sync(*, now: datetime | None = None):
    """Active SMTP/IMAP mailboxes whose folder state is not in an error backoff (QuerySet)."""
    now = now or timezone.now()
    backing_off = MailboxSyncState.objects.filter(next_attempt_at__gt=now).values("mailbox_id")
    return Mailbox.objects.filter(provider="smtp", is_active=True).filter(
        provider_config__has_key="imap_host").exclude(provider_config__imap_host="").exclude(pk__in=backing_off)


# --- replying from the timeline ------------------------------------------------------------------

#: Which id of our earlier SentMessage threads a reply at each HTTP provider, per its document:
#: leadlex ``thread_id`` ("Send Email": the thread_id its response returned), OpenMail ``threadId``
#: ("Send email": only a thread id it returned, never a Message-ID), Unipile ``reply_to`` ("Send an
#: email": "the Unipile ID or the provider ID of the email to reply to"). lemlist has no threading.
PROVIDER_THREAD_FIELD = {"leadlex": "provider_thread_id", "openmail": "provider_thread_id", "unipile": "provider_message_id"}
MAX_REFERENCES = 20


@dataclass
class ReplyDraft:
    """What a reply starts from: the contact and address it goes to, "Re: …" subject, the RFC 5322
    threading ids, the SentMessage of ours that began the thread (for a provider thread id, and
    the mailbox to prefer), and the quoted text (plain, "> " prefixed)."""

    contact: Contact
    to: str
    subject: str
    in_reply_to: str
    references: str
    root: SentMessage | None
    quote: str
    inbound: InboundMessage | None = None


def _re(subject: str) -> str:
    subject = " ".join((subject or "").split())
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()


def _quote(when, who: str, text: str) -> str:
    lines = (text or "").strip().splitlines()[:200]
    head = f"On {when:%a, %d %b %Y %H:%M}, {who} wrote:" if when else f"{who} wrote:"
    return head + "\n" + "\n".join(f"> {line}" for line in lines)


def reply_draft(*, team: Team, inbound: InboundMessage | None = None, sent_message: SentMessage | None = None) -> ReplyDraft:
    """The draft of a reply to ``inbound`` (a mail we received) or to ``sent_message`` (a follow-up in
    our own thread). Raises ValidationError when the mail is not the team's or has no contact.

    Ids are re-validated (``<id@domain>`` only) before reuse: nothing of the inbound mail's header
    objects travels into the reply (CVE-2024-6923).
    """
    from .parsing import first_message_id, message_ids

    if inbound is not None:
        if inbound.team_id != team.pk or inbound.contact is None:
            raise ValidationError("This mail is not from one of your contacts.")
        own = first_message_id(inbound.message_id)
        refs = message_ids(inbound.references) + ([own] if own else [])
        return ReplyDraft(contact=inbound.contact, to=inbound.from_email or inbound.contact.email, subject=_re(inbound.subject),
                          in_reply_to=own, references=" ".join(refs[-MAX_REFERENCES:]), root=inbound.sent_message,
                          quote=_quote(inbound.sent_date, inbound.from_name or inbound.from_email, inbound.text_body),
                          inbound=inbound)
    if sent_message is None or sent_message.team_id != team.pk:
        raise ValidationError("This message is not your team's.")
    own = first_message_id(sent_message.message_id)
    refs = message_ids(sent_message.references) + ([own] if own else [])
    return ReplyDraft(contact=sent_message.contact, to=(sent_message.to or [sent_message.contact.email])[0],
                      subject=_re(sent_message.subject), in_reply_to=own, references=" ".join(refs[-MAX_REFERENCES:]),
                      root=sent_message, quote=_quote(sent_message.sent_at, sent_message.mailbox.sender_email, sent_message.text_body))


def reply_threading(*, draft: ReplyDraft, mailbox: Mailbox) -> dict[str, str]:
    """{"in_reply_to", "references", "thread_id"} for sending ``draft`` through ``mailbox``.

    SMTP carries the RFC 5322 headers. An HTTP provider threads only with the id it gave our
    earlier message sent through the same mailbox (PROVIDER_THREAD_FIELD). Raises ValidationError
    ({"mailbox": …}) when the mailbox's provider cannot thread this reply (lemlist never can).
    """
    from providers.registry import get_provider_class

    provider = get_provider_class(mailbox.provider)
    if provider.capabilities.mail_headers:
        return {"in_reply_to": draft.in_reply_to, "references": draft.references, "thread_id": ""}
    if not provider.capabilities.threads:
        raise ValidationError({"mailbox": f"{provider.label} cannot reply in a thread: its API has no threading. "
                                          "Choose an SMTP mailbox to answer in the same conversation."})
    root = draft.root
    thread = getattr(root, PROVIDER_THREAD_FIELD.get(mailbox.provider, ""), "") if root and root.mailbox_id == mailbox.pk else ""
    if not thread:
        raise ValidationError({"mailbox": f"{provider.label} can only reply in a thread it started: choose the mailbox "
                                          "the conversation began from, or an SMTP mailbox."})
    return {"in_reply_to": "", "references": "", "thread_id": thread}


def reply_send(*, team: Team, actor, draft: ReplyDraft, mailbox: Mailbox, subject: str, body: str, include_quote: bool,
               idempotency_key=None) -> SentMessage:
    """Queue the reply (``sent_message_create``) threaded as :func:`reply_threading` says, with the
    quote appended when ``include_quote``. Raises ValidationError like ``sent_message_create``."""
    from ..services.sending import sent_message_create

    if not (body or "").strip():
        raise ValidationError({"body": "Write your reply."})
    text = body.rstrip() + ("\n\n" + draft.quote if include_quote and draft.quote else "") + "\n"
    return sent_message_create(team=team, actor=actor, mailbox=mailbox, contact=draft.contact, to=[draft.to],
                               subject=subject, text=text, idempotency_key=idempotency_key,
                               **reply_threading(draft=draft, mailbox=mailbox))


# --- one-click unsubscribe ------------------------------------------------------------------------

def unsubscribe_by_token(*, token: str) -> Suppression | None:
    """RFC 8058 one-click: suppress the address behind ``token`` (idempotent). Returns the
    Suppression, or None for a forged, altered or unknown token (nothing changes)."""
    from .unsubscribe import unsubscribe_key_for_token

    key = unsubscribe_key_for_token(token)
    if key is None:
        return None
    row, created = suppression_add(team=key.team, email=key.email, reason=Suppression.Reason.UNSUBSCRIBE,
                                   detail="One-click unsubscribe link.", sent_message=key.sent_message)
    if created:
        contact = key.sent_message.contact if key.sent_message else Contact.objects.for_team(key.team).filter(email=key.email).first()
        if contact is not None:
            timeline_event_record(contact=contact, kind=Event.UNSUBSCRIBED, sent_message=key.sent_message,
                                  summary=f"{key.email} unsubscribed with the one-click link.")
    if key.used_at is None:
        type(key).objects.filter(pk=key.pk).update(used_at=timezone.now())
    return row
