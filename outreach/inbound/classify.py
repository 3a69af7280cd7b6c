"""What an inbound mail is, and what of ours it refers to.

Order: an unsubscribe request carrying our signed token → a bounce (DSN) → an auto-reply →
a reply to one of our messages → other mail from a contact → mail from a stranger.
A reply is matched by ``In-Reply-To``, then ``References`` (newest first), then the provider's
thread id — never by subject (RFC 5322 §3.6.4; Chatwoot #10028).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..models import Contact, Mailbox, SentMessage
from .bounces import Bounce, parse_bounce
from .models import InboundMessage, UnsubscribeKey
from .parsing import ParsedMail
from .unsubscribe import unsubscribe_key_for_token

Kind = InboundMessage.Kind

#: Out-of-office subjects in the languages sales teams write in most.
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|autoreply|auto:|out of (the )?office|ooo\b|"
    r"abwesenheit|absence|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|"
    r"automatisch antwoord|away from)", re.I)
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\b\s*(\S*)", re.I)


@dataclass
class Verdict:
    """The classification of one mail. ``matched_by`` says how ``sent_message`` was found
    (``in_reply_to``, ``references``, ``thread_id``, ``embedded_headers``, ``token``, ``sender``)."""

    kind: str
    contact: Contact | None = None
    sent_message: SentMessage | None = None
    matched_by: str = ""
    bounce: Bounce | None = None
    unsubscribe_key: UnsubscribeKey | None = None


def is_auto_reply(mail: ParsedMail) -> bool:
    """RFC 3834 ``Auto-Submitted`` (anything but "no"), ``X-Autoreply``, ``X-Autorespond``,
    ``Precedence: auto_reply/bulk/junk``, or an out-of-office subject."""
    h = mail.headers
    auto = h.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return True
    if h.get("x-autoreply") or h.get("x-autorespond"):
        return True
    if h.get("precedence", "").strip().lower() in ("auto_reply", "bulk", "junk"):
        return True
    return bool(_AUTO_SUBJECT.search(mail.subject))


def find_our_message(*, mailbox: Mailbox, mail: ParsedMail, thread_id: str = "") -> tuple[SentMessage | None, str]:
    """(our SentMessage this mail answers, how it was matched) or (None, "")."""
    ours = SentMessage.objects.for_team(mailbox.team).select_related("contact")
    if mail.in_reply_to:
        found = ours.filter(message_id=mail.in_reply_to).first()
        if found:
            return found, "in_reply_to"
    if mail.references:
        by_id = {m.message_id: m for m in ours.filter(message_id__in=mail.references)}
        for ref in reversed(mail.references):  # the last reference is the direct parent
            if ref in by_id:
                return by_id[ref], "references"
    if thread_id:
        found = ours.filter(mailbox=mailbox, provider_thread_id=thread_id).order_by("-created_at").first()
        if found:
            return found, "thread_id"
    return None, ""


def _contact(mailbox: Mailbox, email: str) -> Contact | None:
    return Contact.objects.for_team(mailbox.team).filter(email=email).first() if email else None


def classify_mail(*, mailbox: Mailbox, mail: ParsedMail, thread_id: str = "") -> Verdict:
    """Classify ``mail`` read from ``mailbox`` (``thread_id``: the server's thread id, if any)."""
    m = _UNSUBSCRIBE_SUBJECT.search(mail.subject)
    if m:
        key = unsubscribe_key_for_token(m.group(1), team=mailbox.team) if m.group(1) else None
        if key is not None:
            message = key.sent_message
            contact = message.contact if message else _contact(mailbox, key.email)
            return Verdict(Kind.UNSUBSCRIBE, contact=contact, sent_message=message, matched_by="token", unsubscribe_key=key)
        contact = _contact(mailbox, mail.from_email)
        if contact is not None and mailbox.sender_email.lower() in mail.to:
            return Verdict(Kind.UNSUBSCRIBE, contact=contact, matched_by="sender")

    bounce = parse_bounce(mail)
    if bounce is not None:
        message = None
        if bounce.original_message_id:
            message = SentMessage.objects.for_team(mailbox.team).select_related("contact").filter(
                message_id=bounce.original_message_id).first()
        contact = message.contact if message else _contact(mailbox, bounce.recipients[0].email)
        return Verdict(Kind.BOUNCE, contact=contact, sent_message=message,
                       matched_by="embedded_headers" if message else ("sender" if contact else ""), bounce=bounce)

    message, matched_by = find_our_message(mailbox=mailbox, mail=mail, thread_id=thread_id)
    contact = message.contact if message else _contact(mailbox, mail.from_email)
    if not matched_by and contact:
        matched_by = "sender"
    if is_auto_reply(mail):
        return Verdict(Kind.AUTO_REPLY if contact else Kind.UNMATCHED, contact=contact, sent_message=message, matched_by=matched_by)
    if message is not None:
        return Verdict(Kind.REPLY, contact=contact, sent_message=message, matched_by=matched_by)
    if contact is not None:
        return Verdict(Kind.INBOUND, contact=contact, matched_by="sender")
    return Verdict(Kind.UNMATCHED)
