"""Inbound mail is hostile input: bytes → a bounded, plain-``str`` :class:`ParsedMail`.

Every header value is taken with ``str()`` from the parsed message and cleaned (CR, LF and NUL
removed, length capped) before anything else sees it: CVE-2024-6923 (unpatched on Python
3.11.7) lets a parsed header object carry a new header line into an outgoing message.
Message-IDs are re-validated against the RFC 5322 ``msg-id`` shape, addresses with
email-validator. Bodies are capped; HTML is kept as received and sanitised only for display.
"""
from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from email.message import Message

from django.core.exceptions import ValidationError

from ..validation import normalize_email

MAX_HEADER_CHARS = 998  # RFC 5322 §2.1.1 line limit
MAX_BODY_CHARS = 200_000
MAX_REFERENCES = 50
#: msg-id (RFC 5322 §3.6.4) without obsolete forms: no spaces, no angle brackets, one "@".
_MSG_ID = re.compile(r"<([^<>\s@\"]{1,200}@[^<>\s@\"]{1,200})>")
_CONTROL = re.compile(r"[\r\n\x00]+")

#: Headers kept (as cleaned strings) for classification and display.
KEPT_HEADERS = ("auto-submitted", "x-autoreply", "x-autorespond", "x-auto-response-suppress", "precedence",
                "content-type", "return-path", "x-failed-recipients", "delivered-to", "x-original-to",
                "list-id", "list-unsubscribe", "x-mailer", "reply-to")


@dataclass
class ParsedMail:
    """A parsed inbound message; every field is a plain ``str`` (or list/None), already cleaned.

    ``message_id``/``in_reply_to`` are ``<…>`` or ''; ``references`` the ids of References in
    order; ``to`` lower-cased addresses of To and Cc; ``headers`` the :data:`KEPT_HEADERS`
    present (lower-case names). ``message`` is the parsed (compat32) ``Message`` for the bounce
    parser — never copy a header from it into outgoing mail.
    """

    message_id: str
    in_reply_to: str
    references: list[str]
    from_email: str
    from_name: str
    to: list[str]
    subject: str
    date: datetime | None
    text: str
    html: str
    headers: dict[str, str]
    message: Message = field(repr=False)
    digest: str = ""

    @property
    def key(self) -> str:
        """The identity stored once per mailbox: the Message-ID, else ``sha256:<digest of the bytes>``."""
        return self.message_id or f"sha256:{self.digest}"


def clean_header(value) -> str:
    """``str(value)`` with CR/LF/NUL collapsed to a space and capped at 998 characters; '' for None
    or a value the email package cannot render."""
    if value is None:
        return ""
    try:
        text = str(value)
    except Exception:  # a malformed header the parser kept as a defect
        return ""
    return _CONTROL.sub(" ", text).strip()[:MAX_HEADER_CHARS]


def _decoded(raw: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except Exception:
        return raw


def message_ids(value: str, limit: int = MAX_REFERENCES) -> list[str]:
    """Every well-formed ``<id@domain>`` in ``value``, in order, de-duplicated, at most ``limit``."""
    found = dict.fromkeys(f"<{m}>" for m in _MSG_ID.findall(value or ""))
    return list(found)[:limit]


def first_message_id(value: str) -> str:
    """The first well-formed ``<id@domain>`` of ``value``, or ''."""
    ids = message_ids(value, limit=1)
    return ids[0] if ids else ""


def safe_address(value: str) -> str:
    """A validated, lower-cased address, or '' for anything email-validator refuses."""
    value = (value or "").strip()
    if not value or len(value) > 254:
        return ""
    try:
        return normalize_email(value)
    except ValidationError:
        return ""


def part_text(part) -> str:
    """The decoded text of a text/* part ('' for None): transfer encoding undone, its charset
    applied (UTF-8 when unknown), undecodable bytes replaced."""
    if part is None:
        return ""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            text = payload.decode(charset, "replace")
        except LookupError:  # an unknown charset name
            text = payload.decode("utf-8", "replace")
    else:
        text = str(payload or "")
    return text.replace("\x00", "").replace("\r\n", "\n")[:MAX_BODY_CHARS]


def _bodies(message: Message) -> tuple[Message | None, Message | None]:
    """(first text/plain part, first text/html part) that are not attachments."""
    plain = html = None
    for part in message.walk():
        if part.is_multipart() or (part.get("content-disposition") or "").lower().startswith("attachment"):
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = part
        elif ctype == "text/html" and html is None:
            html = part
        elif ctype in ("message/rfc822", "message/delivery-status", "text/rfc822-headers"):
            break  # a returned message inside a report: not this mail's own body
        if plain is not None and html is not None:
            break
    return plain, html


def _raw_headers(message: Message) -> dict[str, str]:
    """The message's top-level headers as on the wire (first occurrence of each, lower-case names)."""
    found: dict[str, str] = {}
    for key, value in message.raw_items():
        found.setdefault(key.lower(), value if isinstance(value, str) else str(value))
    return found


def _raw_addresses(*values: str | None) -> list[tuple[str, str]]:
    """[(display name, validated address)] from raw address header values. The raw value is split
    first (encoded words still encoded, so a decoded name cannot fake a separator), then each name
    is decoded and cleaned; invalid addresses are dropped."""
    result = []
    for name, addr in email.utils.getaddresses([v for v in values if v]):
        valid = safe_address(clean_header(addr))
        if valid:
            result.append((clean_header(_decoded(name))[:200], valid))
    return result


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse ``raw`` (bounded by the caller). Never raises on malformed input: missing or invalid
    parts come back empty. Top-level headers are decoded from their raw form (``decode_header``),
    which is both stricter and much cheaper than the header registry's objects."""
    # compat32: plain strings from the parser (no header-registry objects to leak, and far cheaper).
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    headers = _raw_headers(message)

    def value(name: str) -> str:
        raw_value = headers.get(name)
        return clean_header(_decoded(raw_value)) if raw_value is not None else ""

    sender = _raw_addresses(headers.get("from"))
    from_name, from_email = sender[0] if sender else ("", "")
    plain, html = _bodies(message)
    kept = {name: value(name) for name in KEPT_HEADERS if headers.get(name) is not None}
    try:
        date = email.utils.parsedate_to_datetime(value("date"))
        date = date.replace(tzinfo=dt_timezone.utc) if date and date.tzinfo is None else date
    except (TypeError, ValueError, IndexError):
        date = None
    return ParsedMail(
        message_id=first_message_id(value("message-id")),
        in_reply_to=first_message_id(value("in-reply-to")),
        references=message_ids(value("references")),
        from_email=from_email, from_name=from_name,
        to=list(dict.fromkeys(a for _, a in _raw_addresses(headers.get("to"), headers.get("cc")))),
        subject=value("subject"),
        date=date,
        text=part_text(plain), html=part_text(html),
        headers={k: v for k, v in kept.items() if v}, message=message, digest=hashlib.sha256(raw).hexdigest(),
    )
