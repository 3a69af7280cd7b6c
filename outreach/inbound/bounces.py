"""Delivery status notifications (bounces) → failed recipient, status code, diagnostic, and the
Message-ID of the message that bounced.

Two layers:

* RFC 3464 ``multipart/report; report-type=delivery-status`` (Gmail, Office 365, modern Postfix
  and Exim): the ``message/delivery-status`` part gives, per recipient, ``Final-Recipient``,
  ``Action``, ``Status`` (RFC 3463) and ``Diagnostic-Code``; the returned message or its headers
  (``message/rfc822``, ``text/rfc822-headers``) give the original Message-ID.
* Non-standard layouts (plain-text Postfix, Exim's "This message was created automatically by
  mail delivery software", Exchange's "Delivery has failed to these recipients", Gmail's
  "Address not found", Yahoo's "Sorry, we were unable to deliver your message"): the failed
  recipients come from GNU Mailman's maintained detector library **flufl.bounce** (one detector
  per MTA layout, plus ``X-Failed-Recipients``); flufl.bounce reports only addresses, so the
  status code and diagnostic are read from the text next to the address here, and the
  original Message-ID from the attached message or the quoted headers in the body.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

from flufl.bounce import all_failures

from .parsing import ParsedMail, clean_header, first_message_id, part_text, safe_address

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"(?<![\d.])([45]\d\d)(?![\d.])")
_EMBEDDED_MSGID = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]+>)", re.I | re.M)
_ADDRESS = re.compile(r"[A-Za-z0-9._%+'=-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
_RETURNED = re.compile(r"^(-+ ?(this is a copy|below this line|returned message|original message)|"
                       r"(From|Received|Return-Path|Message-ID|Subject):\s)", re.I | re.M)
_TEMPORARY = re.compile(r"temporar|not yet been delivered|delayed|will (continue|retry)|try again", re.I)
_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery (subsystem|system)|microsoftexchange", re.I)
_SUBJECT = re.compile(r"undeliver|delivery (status notification|failure|has failed)|mail delivery failed|"
                      r"returned mail|failure notice|delivery notification|non[- ]?delivery|could not be delivered|"
                      r"delayed|delivery (delay|warning)", re.I)


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient of a bounce: ``status`` is an RFC 3463 code ("5.1.1", or "5.0.0"/"4.0.0"
    derived from a bare SMTP reply code, or "" when none was found); ``hard`` is True for 5.x.x."""

    email: str
    status: str
    diagnostic: str
    action: str = "failed"

    @property
    def hard(self) -> bool:
        return self.status.startswith("5")


@dataclass
class Bounce:
    """What a DSN says: its failed recipients and the Message-ID of the message that bounced."""

    recipients: list[FailedRecipient] = field(default_factory=list)
    original_message_id: str = ""
    layout: str = ""  # "rfc3464" or "text"


def looks_like_bounce(mail: ParsedMail) -> bool:
    """A report of type delivery-status, or a mail from a mailer daemon with a bounce subject, or
    with ``X-Failed-Recipients``."""
    message = mail.message
    if message.get_content_type() == "multipart/report" and \
            clean_header(message.get_param("report-type", "")).lower() == "delivery-status":
        return True
    if mail.headers.get("x-failed-recipients"):
        return True
    sender = f"{mail.from_name} {mail.from_email}"
    return bool(_SENDER.search(sender) and _SUBJECT.search(mail.subject)) or \
        bool(_SUBJECT.search(mail.subject) and not mail.in_reply_to and _STATUS.search(mail.text or ""))


def _status_near(text: str, address: str) -> tuple[str, str]:
    """(status, diagnostic line) closest after ``address`` in ``text`` (else anywhere in it)."""
    lowered = text.lower()
    start = lowered.find(address.lower())
    windows = [text[start:start + 1500]] if start >= 0 else []
    windows.append(text)
    for window in windows:
        lines = [line.strip() for line in window.splitlines()]
        for i, line in enumerate(lines):
            m = _STATUS.search(line)
            if m:
                return m.group(0), _diagnostic(lines, i)
        for i, line in enumerate(lines):
            m = _SMTP_CODE.search(line)
            if m and re.search(r"said|error|reply|remote|host|smtp|#", line, re.I):
                return f"{m.group(1)[0]}.0.0", _diagnostic(lines, i)
    return "", ""


def _diagnostic(lines: list[str], i: int) -> str:
    """The line at ``i`` with its continuation lines (up to a blank line), or with the next line
    when it is only a lead-in ("Remote host said:")."""
    parts = [lines[i]]
    for line in lines[i + 1:i + 4]:
        if not line or _RETURNED.match(line):
            break
        parts.append(line)
    return clean_header(" ".join(parts).strip("# "))[:500]


def _report_part(text: str) -> str:
    """The bounce's own report: the text before the returned message (its quoted headers)."""
    cut = _RETURNED.search(text)
    return text[:cut.start()] if cut else text


def _rfc3464(message: Message) -> tuple[list[FailedRecipient], str]:
    recipients: list[FailedRecipient] = []
    original = ""
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else []:
                final = clean_header(block.get("final-recipient")) or clean_header(block.get("original-recipient"))
                if not final:
                    continue
                address = safe_address(final.split(";", 1)[-1].strip().strip("<>"))
                action = clean_header(block.get("action")).lower() or "failed"
                if not address or action not in ("failed", "delayed"):
                    continue
                status_field = clean_header(block.get("status"))
                m = _STATUS.search(status_field)
                status = m.group(0) if m else ("4.0.0" if action == "delayed" else "5.0.0")
                diagnostic = clean_header(block.get("diagnostic-code"))
                diagnostic = diagnostic.split(";", 1)[-1].strip() if ";" in diagnostic[:12] else diagnostic
                recipients.append(FailedRecipient(address, status, diagnostic[:500], action))
        elif ctype in ("message/rfc822", "message/global") and not original:
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                original = first_message_id(clean_header(inner.get("message-id")))
        elif ctype in ("text/rfc822-headers", "text/rfc822-header") and not original:
            original = _embedded_message_id(part_text(part))
    return recipients, original


def _embedded_message_id(text: str) -> str:
    m = _EMBEDDED_MSGID.search(text or "")
    return first_message_id(m.group(1)) if m else ""


def _all_text(message: Message, limit: int = 400_000) -> str:
    chunks, total = [], 0
    for part in message.walk():
        if part.get_content_maintype() == "text":
            chunk = part_text(part)
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                break
    return "\n".join(chunks)[:limit]


def parse_bounce(mail: ParsedMail) -> Bounce | None:
    """The :class:`Bounce` in ``mail``, or None when it is not a bounce (see :func:`looks_like_bounce`)
    or names no failed recipient."""
    if not looks_like_bounce(mail):
        return None
    message = mail.message
    recipients, original = _rfc3464(message)
    layout = "rfc3464" if recipients else "text"
    text = _all_text(message)
    if not original:
        # The returned message's headers, quoted in the body ("--- Below this line is a copy…").
        for m in _EMBEDDED_MSGID.finditer(text):
            candidate = first_message_id(m.group(1))
            if candidate and candidate != mail.message_id:
                original = candidate
                break
    if not recipients:
        try:
            temporary, permanent = all_failures(message)
        except Exception:  # a detector tripping over a malformed message
            temporary, permanent = frozenset(), frozenset()
        found: dict[str, bool] = {}
        for raw, hard in [(a, False) for a in temporary] + [(a, True) for a in permanent]:
            address = safe_address(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
            if address:
                found[address] = found.get(address, False) or hard
        for value in mail.headers.get("x-failed-recipients", "").split(","):
            address = safe_address(value)
            if address:
                found.setdefault(address, True)
        report = _report_part(text)
        if not found:
            ours = {mail.from_email, *mail.to}
            for match in _ADDRESS.finditer(report):
                address = safe_address(match.group(0))
                if address and address not in ours and not _SENDER.search(address):
                    found.setdefault(address, not _TEMPORARY.search(report))
        for address, hard in found.items():
            status, diagnostic = _status_near(report, address)
            if not status:
                status = "5.0.0" if hard else "4.0.0"
            recipients.append(FailedRecipient(address, status, diagnostic, "failed" if status.startswith("5") else "delayed"))
    if not recipients:
        return None
    return Bounce(recipients=recipients, original_message_id=original, layout=layout)
