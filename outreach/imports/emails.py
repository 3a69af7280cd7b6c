"""Email checks at import speed: a fast path for plain ASCII addresses, email-validator for the rest.

``normalize_email`` (email-validator) costs ~28 µs per address here, more than the whole rest of
an import row. Most real addresses are plain ASCII dot-atoms; for those the local part is checked
with the RFC 5322 dot-atom pattern, and the domain is checked once per distinct domain by
email-validator itself, so the verdict is the same as calling it on every address.
"""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from ..validation import normalize_email

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_SIMPLE = re.compile(r"[^@\s]+@[A-Za-z0-9.-]+\Z")


class EmailChecker:
    """Callable: ``checker(value) -> lower-cased address``; raises ValidationError like
    :func:`outreach.validation.normalize_email`. Caches domain verdicts (bounded)."""

    def __init__(self, max_domains: int = 100_000):
        self._domains: dict[str, str | None] = {}
        self._max = max_domains

    def _domain(self, domain: str) -> str | None:
        key = domain.lower()
        if key in self._domains:
            return self._domains[key]
        try:
            normalized = normalize_email("a@" + key).split("@", 1)[1]
        except ValidationError:
            normalized = None
        if len(self._domains) < self._max:
            self._domains[key] = normalized
        return normalized

    def __call__(self, value: str) -> str:
        if "\n" in value or "\r" in value or "\x00" in value:
            return normalize_email(value)  # raises, like normalize_email itself
        value = value.strip()
        if len(value) <= 254 and _SIMPLE.match(value):
            local, domain = value.split("@", 1)
            if len(local) <= 64 and _LOCAL.match(local):
                normalized_domain = self._domain(domain)
                if normalized_domain is not None:
                    return f"{local.lower()}@{normalized_domain}"
        return normalize_email(value)
