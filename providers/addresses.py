"""Address headers that cannot smuggle recipients: every display name round-trips to one address.

Python 3.11's ``email`` folding can drop the quotes around a display name holding ``,`` ``<``
``>`` when it folds a long line, so ``"Bob (CTO) <boss@evil.example>," <bob@example.com>`` is
re-read as two recipients (seen on CPython 3.11; ``tests/outreach/test_security.py`` keeps such
names). Every header and payload string built here is therefore
serialised, parsed back (with both the modern ``email.policy.default`` parser and the classic
``email.utils.getaddresses``) and compared with the intended addresses. A display name that does
not survive is neutralised (RFC 5322 "specials" replaced by spaces); if even that does not
survive, the name is dropped and the bare address used.

SMTP (``providers.smtp.build_mime``) and every HTTP provider payload use these functions; they
take any objects with ``email`` and ``name`` attributes (``providers.base.Address``).

Source: RFC 5322 section 3.4 (address specification) and 3.2.3 (specials).
"""
from __future__ import annotations

import email
import functools
import re
from email.headerregistry import Address as _HeaderAddress
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.policy import default as DEFAULT_POLICY
from email.utils import getaddresses
from typing import Iterable, NamedTuple, Protocol

class OutgoingPolicy(EmailPolicy):
    """``email.policy.SMTP`` (CRLF line ends) for the mail we write, with two differences.

    Lines are folded at RFC 5322's hard limit of 998 characters, not 78: at 78 a header holding a token
    longer than the line (List-Unsubscribe's URLs, RFC 2369) is rewritten as RFC 2047 encoded-words,
    which mail clients do not decode there, so one-click unsubscribe (RFC 8058) would not work.

    A pure-ASCII value of a header we write ourselves (not a ``Content-*``/``MIME-Version`` header, which
    the content manager edits) is kept as the string it is instead of being parsed into a header object
    and refolded when written; that parsing and refolding is most of the cost of building a message.
    CR or LF in a value is refused with ValueError, as the standard policy does. Non-ASCII values take
    the standard path (encoded-words).
    """

    def header_store_parse(self, name, value):
        if isinstance(value, str) and value.isascii() and not name.lower().startswith(("content-", "mime-version")):
            if "\r" in value or "\n" in value:
                raise ValueError("Header values may not contain linefeed or carriage return characters")
            return (name, value)
        return super().header_store_parse(name, value)


class _CachingHeaderRegistry(HeaderRegistry):
    """``email``'s header factory, minus its two repeated costs: ``HeaderRegistry.__getitem__`` makes a
    new class for every header it parses, and the same values (``Content-Type: text/plain;
    charset="utf-8"``, ``MIME-Version: 1.0``…) are parsed again for every message. Header objects are
    immutable strings (``email.headerregistry.BaseHeader``), so one parsed value can be shared; the cache
    is bounded (:data:`HEADER_CACHE_SIZE` values)."""

    @functools.lru_cache(maxsize=64)
    def __getitem__(self, name):
        return super().__getitem__(name)

    def __call__(self, name, value):
        return _parsed_header(self, name, value)


#: How many distinct (name, value) headers :class:`_CachingHeaderRegistry` keeps parsed.
HEADER_CACHE_SIZE = 512


@functools.lru_cache(maxsize=HEADER_CACHE_SIZE)
def _parsed_header(registry: HeaderRegistry, name: str, value: str):
    return HeaderRegistry.__call__(registry, name, value)


#: The policy outgoing mail is written with (``providers.smtp.build_mime``) and address headers are
#: checked against (:class:`OutgoingPolicy`).
SMTP_POLICY = OutgoingPolicy(linesep="\r\n", max_line_length=998, header_factory=_CachingHeaderRegistry())

#: RFC 5322 3.2.3 specials, plus backslash and the characters that end or nest a header.
_UNSAFE = re.compile(r'[()<>\[\]:;@\\,."\x00-\x1f\x7f]+')


class _HasAddress(Protocol):
    email: str
    name: str


def neutral_display_name(name: str) -> str:
    """``name`` with every RFC 5322 special and control character replaced by a space, spaces collapsed.

    ``'Bob Martin (CTO) <boss@evil.example>,'`` → ``'Bob Martin CTO boss evil example'``.
    """
    return " ".join(_UNSAFE.sub(" ", name or "").split())


def _one(address: _HasAddress, name: str) -> str:
    if not name:
        return address.email
    local, _, domain = address.email.rpartition("@")
    return str(_HeaderAddress(display_name=name, username=local, domain=domain))


def _parsed_emails(header_name: str, value: str) -> tuple[list[str], list[str]]:
    """The addr-specs a receiver reads from ``header_name: value`` once folded for SMTP (modern, classic)."""
    probe = EmailMessage(policy=SMTP_POLICY)
    probe[header_name] = value
    raw = probe.as_bytes()
    parsed = email.message_from_bytes(raw, policy=DEFAULT_POLICY)
    modern = [a.addr_spec.lower() for a in parsed[header_name].addresses]
    folded = email.message_from_bytes(raw).get_all(header_name, [])
    classic = [addr.lower() for _, addr in getaddresses(folded)]
    return modern, classic


def _round_trips(header_name: str, value: str, expected: list[str]) -> bool:
    try:
        modern, classic = _parsed_emails(header_name, value)
    except (ValueError, IndexError, TypeError, AttributeError):  # the parser gave up: not safe
        return False
    return modern == expected and classic == expected


def address_header(header_name: str, addresses: Iterable[_HasAddress]) -> str:
    """The value of the address header ``header_name`` ("To", "Cc", "From", "Reply-To") for ``addresses``.

    Written with SMTP_POLICY and parsed back, the value yields exactly these addresses, in
    order: names that would not are neutralised (:func:`neutral_display_name`), then dropped.
    Raises ValueError when an address itself does not survive (CR/LF or a malformed address).
    """
    return _address_header(header_name, tuple((a.email, a.name or "") for a in addresses))


@functools.lru_cache(maxsize=4096)
def _address_header(header_name: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """address_header on (email, name) pairs, cached: the round trip costs milliseconds and a sender's
    From (and a contact's To) is the same for every message of a batch. A pure function of its input."""
    addresses = [_Pair(email, name) for email, name in pairs]
    expected = [a.email.lower() for a in addresses]
    for variant in (lambda a: a.name or "", lambda a: neutral_display_name(a.name), lambda a: ""):
        value = ", ".join(_one(a, variant(a)) for a in addresses)
        if _round_trips(header_name, value, expected):
            return value
    raise ValueError(f"{header_name}: these addresses cannot be written as a header: {', '.join(expected)}")


class _Pair(NamedTuple):
    email: str
    name: str


def format_address(address: _HasAddress) -> str:
    """One address as an RFC 5322 string (``"Ann Lee" <ann@example.com>``) for provider payloads,
    checked like :func:`address_header`: parsed back, it is exactly ``address.email``."""
    return address_header("To", [address])


def safe_display_name(address: _HasAddress) -> str:
    """The display name for a structured payload field (e.g. Unipile's ``display_name``), which the
    vendor turns into a header we cannot parse back: always neutralised
    (:func:`neutral_display_name`), and '' when even that would not round-trip."""
    name = neutral_display_name(address.name)
    if name and _round_trips("To", _one(address, name), [address.email.lower()]):
        return name
    return ""
