"""Explicit provider registry: name → Provider class. Forms and admin read their choices here."""
from __future__ import annotations

from .base import Provider
from .leadlex import LeadlexProvider
from .lemlist import LemlistProvider
from .openmail import OpenMailProvider
from .smtp import SmtpProvider
from .unipile import UnipileProvider

PROVIDERS: dict[str, type[Provider]] = {
    SmtpProvider.name: SmtpProvider,
    LemlistProvider.name: LemlistProvider,
    LeadlexProvider.name: LeadlexProvider,
    OpenMailProvider.name: OpenMailProvider,
    UnipileProvider.name: UnipileProvider,
}


def http_providers() -> tuple[str, ...]:
    """Names of the providers reached over HTTP with a ProviderAccount (API key, base URL), in
    registry order. A function, not a constant: everything reads the registry when it runs."""
    return tuple(name for name in PROVIDERS if name != "smtp")


#: Every provider's name; kept for readers of the old constant (read at import time: prefer http_providers()).
HTTP_PROVIDERS = http_providers()


def get_provider_class(name: str) -> type[Provider]:
    """Return the Provider class registered as ``name``; raises KeyError naming the unknown provider."""
    try:
        return PROVIDERS[name]
    except KeyError as err:
        raise KeyError(f"Unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from err


def provider_choices(*, include_smtp: bool = True) -> list[tuple[str, str]]:
    """[(name, label)] for form and admin choices (``Mailbox.provider`` takes it as callable choices,
    so a new provider needs no migration)."""
    return [(name, cls.label) for name, cls in PROVIDERS.items() if include_smtp or name != "smtp"]


def http_provider_choices() -> list[tuple[str, str]]:
    """[(name, label)] of the HTTP providers (``ProviderAccount.provider``'s callable choices)."""
    return provider_choices(include_smtp=False)


def provider_for_mailbox(mailbox) -> Provider:
    """Build the provider a Mailbox sends through. Raises KeyError or ConfigurationError."""
    return get_provider_class(mailbox.provider).from_mailbox(mailbox)
