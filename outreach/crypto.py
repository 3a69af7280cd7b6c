"""Encryption at rest for stored credentials (mailbox passwords, provider API keys).

Uses ``cryptography``'s MultiFernet over ``settings.OUTREACH_ENCRYPTION_KEYS`` (newest
key first): the first key encrypts, every key decrypts, ``rotate`` re-encrypts under
the first. A token that no configured key opens raises :class:`CredentialDecryptionError`;
a ciphertext is never handed back as if it were the secret.
"""
from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialDecryptionError(Exception):
    """A stored credential cannot be decrypted with the configured keys (wrong or missing key)."""


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("OUTREACH_ENCRYPTION_KEYS is not set: stored credentials can be neither encrypted nor decrypted (see .env.example).")
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except (ValueError, TypeError) as err:
        raise ImproperlyConfigured(
            "OUTREACH_ENCRYPTION_KEYS holds a malformed key: each must be 32 url-safe base64-encoded bytes "
            "(Fernet.generate_key())."
        ) from err


def _fernet() -> MultiFernet:
    return _multifernet(tuple(settings.OUTREACH_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` (str) under the newest key; returns the Fernet token as str ('' stays '')."""
    if not plaintext:
        return ""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, what: str = "credential") -> str:
    """Decrypt a token made by :func:`encrypt`; returns the plaintext str ('' stays '').

    Raises CredentialDecryptionError naming ``what`` (never the token) when no configured key opens it.
    """
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as err:
        raise CredentialDecryptionError(
            f"The stored {what} cannot be decrypted with the configured OUTREACH_ENCRYPTION_KEYS: "
            "the key it was encrypted with is missing or wrong. Restore that key (older keys stay listed "
            "after the newest) or enter the secret again."
        ) from err


def rotate(token: str, *, what: str = "credential") -> str:
    """Re-encrypt ``token`` under the newest key; returns the new token. Raises CredentialDecryptionError."""
    if not token:
        return ""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as err:
        raise CredentialDecryptionError(
            f"The stored {what} cannot be decrypted with any configured key, so it cannot be rotated."
        ) from err


class EncryptedSecret:
    """Model attribute that stores a secret encrypted in the text field ``field_name``.

    Reading decrypts (raising CredentialDecryptionError on a wrong key); assigning encrypts.
    Example: ``api_key = EncryptedSecret("api_key_encrypted", "API key")`` (mailbox secrets live encrypted in
    ``Mailbox.provider_config`` instead: ``Mailbox.set_secret`` / ``provider_settings``).
    """

    def __init__(self, field_name: str, label: str):
        self.field_name = field_name
        self.label = label

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return decrypt(getattr(instance, self.field_name), what=f"{self.label} of {owner.__name__} {instance.pk}")

    def __set__(self, instance, value: str) -> None:
        setattr(instance, self.field_name, encrypt(value or ""))
