"""Input checks shared by forms, services and commands: header values and email addresses."""
from __future__ import annotations

import re
from typing import Iterable, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from email_validator import EmailNotValidError, validate_email


def validate_header_value(value: str) -> None:
    """Raise ValidationError if ``value`` contains CR, LF or NUL (header injection)."""
    if value and any(ch in value for ch in "\r\n\x00"):
        raise ValidationError("Line breaks are not allowed in this field.", code="header_injection")


#: A custom header name: "X-" and RFC 9110 token characters (§5.6.2), e.g. ``X-Campaign``.
_CUSTOM_HEADER_NAME = re.compile(r"[Xx]-[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
MAX_CUSTOM_HEADERS = 20
MAX_HEADER_LINE = 998  # RFC 5322 §2.1.1: a line is at most 998 characters


def parse_header_lines(lines: str | Iterable[str]) -> dict[str, str]:
    """``Name: value`` lines (a text with one per line, or a list such as ``send_email --header``)
    → {name: value} in order, blank lines skipped. The names and values are checked by
    :func:`validate_custom_headers`, not here. Raises ValidationError naming a line without a colon."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    headers: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValidationError(f"“{line.strip()[:80]}” is not a header: write it as X-Name: value.", code="header_line")
        headers[name.strip()] = value.strip()
    return headers


def validate_custom_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return ``headers`` ({name: value}) checked for sending: each name an ``X-`` token (RFC 9110
    token characters), no name twice (ignoring case), each value without CR/LF/NUL and the line within
    998 characters (RFC 5322 §2.1.1), at most :data:`MAX_CUSTOM_HEADERS`. Values are stripped.

    Raises ValidationError listing every problem."""
    problems: list[str] = []
    seen: set[str] = set()
    checked: dict[str, str] = {}
    if len(headers) > MAX_CUSTOM_HEADERS:
        problems.append(f"At most {MAX_CUSTOM_HEADERS} custom headers; these are {len(headers)}.")
    for name, value in headers.items():
        name, value = str(name).strip(), str(value).strip()
        if not _CUSTOM_HEADER_NAME.match(name):
            problems.append(f"“{name[:80]}” is not a custom header name: it must start with X- and hold only "
                            "letters, digits and - (no spaces).")
            continue
        if name.lower() in seen:
            problems.append(f"{name} is given twice.")
            continue
        seen.add(name.lower())
        if any(ch in value for ch in "\r\n\x00"):
            problems.append(f"The value of {name} contains a line break.")
        elif len(name) + 2 + len(value) > MAX_HEADER_LINE:
            problems.append(f"{name} is longer than {MAX_HEADER_LINE} characters.")
        checked[name] = value
    if problems:
        raise ValidationError(problems, code="custom_header")
    return checked


def normalize_email(value: str) -> str:
    """Validate one address (syntax only, no DNS) and return it lower-cased.

    Raises ValidationError with email-validator's human reason.
    """
    validate_header_value(value or "")
    value = (value or "").strip()
    if not value:
        raise ValidationError("Enter an email address.", code="required")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as err:
        raise ValidationError(f"{value} is not a valid email address: {err}", code="invalid_email") from err
    return result.normalized.lower()


def validate_address(value: str) -> None:
    """Field validator with :func:`normalize_email`'s rules (RFC 5321 syntax, and RFC 6531
    internationalised local parts such as ``jösé@example.com``, which Django's own EmailValidator
    refuses). Raises ValidationError with the reason; returns None."""
    normalize_email(value)


class AddressFormField(forms.CharField):
    """A form field for one address, validated by :func:`validate_address` (so the admin's forms
    accept and refuse exactly what the services do). Renders as ``<input type="email">``."""

    widget = forms.EmailInput
    default_validators = [validate_address]


class AddressField(models.EmailField):
    """An ``EmailField`` (varchar 254) whose validation is the services' :func:`validate_address`
    instead of Django's ASCII-only EmailValidator: a row the services wrote (an SMTPUTF8 address,
    say) passes ``full_clean`` again on every later edit, in services and admin alike."""

    default_validators = [validate_address]

    def formfield(self, **kwargs):
        """The admin's form field: :class:`AddressFormField` (``max_length`` kept)."""
        return models.CharField.formfield(self, **{"form_class": AddressFormField, **kwargs})


def parse_address_list(value: str) -> list[str]:
    """Split a comma/semicolon/newline separated list of addresses; returns normalized addresses.

    Raises ValidationError listing every invalid address.
    """
    if not value:
        return []
    parts = [p.strip() for p in value.replace(";", ",").replace("\n", ",").split(",")]
    addresses, errors = [], []
    for part in filter(None, parts):
        try:
            addresses.append(normalize_email(part))
        except ValidationError as err:
            errors.extend(err.messages)
    if errors:
        raise ValidationError(errors)
    return list(dict.fromkeys(addresses))


# A lower-case http(s) URL with a plain ASCII host name: a shape Django's URLValidator accepts
# as it is (labels without a leading or trailing hyphen, a letters-only TLD, any non-space path).
_PLAIN_HTTPS_URL = re.compile(r"https?://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}(?:[/?#]\S*)?\Z")
_url_field = None


def normalize_http_url(value: str) -> str:
    """Validate a web link like the contact form's URL field does (``https://`` assumed when the
    scheme is missing) and accept only ``http``/``https``. Returns the URL (blank stays blank).

    Raises ValidationError naming the problem (``javascript:…``, ``ftp://…``, malformed)."""
    global _url_field
    value = (value or "").strip()
    if not value or (len(value) <= 500 and _PLAIN_HTTPS_URL.match(value)):  # the common shape, fast
        return value
    if _url_field is None:
        from django import forms

        _url_field = forms.URLField(assume_scheme="https", max_length=500)
    url = _url_field.clean(value)
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise ValidationError("Enter a web link starting with http:// or https://.", code="invalid_url")
    return url


def http_url_or_empty(value: str) -> str:
    """``value`` when it is an http(s) link that is safe as an ``href``, else "" (for templates:
    anything else is shown as text, never as a link)."""
    try:
        return normalize_http_url(value) if value else ""
    except ValidationError:
        return ""


def sender_problems(*, name: str, email: str) -> dict[str, str]:
    """{field: message} for a mailbox sender that cannot become a From header: CR/LF/NUL in the name or
    address, or an address without the local@domain shape. Empty when fine. (Forms, ``add_mailbox``,
    the admin and the send pipeline all use it.)"""
    problems: dict[str, str] = {}
    for field, value in (("sender_name", name or ""), ("sender_email", email or "")):
        try:
            validate_header_value(value)
        except ValidationError as err:
            problems[field] = " ".join(err.messages)
    if "sender_email" not in problems:
        local, at, domain = (email or "").rpartition("@")
        if not at or not local or not domain or any(ch.isspace() for ch in email):
            problems["sender_email"] = f"{email!r} is not an email address."
    return problems


def validate_zone(name: str) -> None:
    """Raise ValidationError unless ``name`` is an IANA time zone name (e.g. Europe/Paris)."""
    try:
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValidationError(f"Unknown time zone “{name}”; use an IANA name such as Europe/Paris.") from err
