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
from email.message import EmailMessage, Message

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
    present (lower-case names). ``message`` is the parsed ``EmailMessage`` for the bounce parser
    — never copy a header object from it into outgoing mail.
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
    message: EmailMessage = field(repr=False)
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


def raw_header(message: Message, name: str) -> str | None:
    """Header ``name`` as it is on the wire (encoded words not decoded), or None."""
    for key, value in message.raw_items():
        if key.lower() == name:
            return value if isinstance(value, str) else str(value)
    return None


def _decoded(raw: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except Exception:
        return raw


def header(message: Message, name: str) -> str:
    """The cleaned value of header ``name`` ('' when absent). A value the header registry refuses
    (e.g. an encoded word hiding a line break) is decoded from its raw form and cleaned instead."""
    try:
        return clean_header(message.get(name))
    except Exception:
        raw = raw_header(message, name)
        return clean_header(_decoded(raw)) if raw is not None else ""


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


def addresses(message: Message, *names: str) -> list[tuple[str, str]]:
    """[(display name, validated address)] of the address headers ``names``; invalid ones dropped."""
    pairs: list[tuple[str, str]] = []
    for n in names:
        try:
            value = message.get(n)
            parsed = [(str(a.display_name), str(a.addr_spec)) for a in getattr(value, "addresses", None) or ()]
        except Exception:  # a header the registry refuses: split the raw value, decode the names
            value = raw_header(message, n)
            parsed = [(_decoded(name), addr) for name, addr in email.utils.getaddresses([value])] if value else []
        if value is not None and not parsed:
            parsed = email.utils.getaddresses([clean_header(value)])
        pairs.extend(parsed)
    result = []
    for name, addr in pairs:
        valid = safe_address(clean_header(addr))
        if valid:
            result.append((clean_header(name)[:200], valid))
    return result


def _content(part) -> str:
    if part is None:
        return ""
    try:
        text = part.get_content()
    except Exception:  # unknown charset, broken transfer encoding
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    if not isinstance(text, str):
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else ""
    return text.replace("\x00", "").replace("\r\n", "\n")[:MAX_BODY_CHARS]


def _date(message: Message) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(header(message, "date"))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse ``raw`` (bounded by the caller). Never raises on malformed input: missing or invalid
    parts come back empty."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    sender = addresses(message, "from")
    from_name, from_email = sender[0] if sender else ("", "")
    try:
        plain = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
    except Exception:
        plain = html = None
    if plain is None and html is None and not message.is_multipart() and message.get_content_maintype() == "text":
        plain = message
    kept = {}
    for name in KEPT_HEADERS:
        value = header(message, name)
        if value:
            kept[name] = value
    return ParsedMail(
        message_id=first_message_id(header(message, "message-id")),
        in_reply_to=first_message_id(header(message, "in-reply-to")),
        references=message_ids(header(message, "references")),
        from_email=from_email, from_name=from_name,
        to=list(dict.fromkeys(a for _, a in addresses(message, "to", "cc"))),
        subject=header(message, "subject"),
        date=_date(message),
        text=_content(plain), html=_content(html) if html is not None and html is not plain else "",
        headers=kept, message=message, digest=hashlib.sha256(raw).hexdigest(),
    )
