"""The normalized errors every provider maps its failures onto (after django-anymail's ``exceptions.py``).

Two families that nothing confuses:

- :class:`ProviderError`: the outcome of one send attempt (the provider refused it, was unreachable,
  answered something unreadable). Retries are decided by type: :class:`TransientProviderError`
  subclasses may be retried, everything else is permanent.
- :class:`ConfigurationError`: the mailbox, the account or the deployment is set up wrongly (a missing
  sender id, a private base URL, an undecryptable key). Not a ``ProviderError``: nothing retries it
  or mistakes it for a provider's answer; the send pipeline records it as failed and the forms show
  it on the field at fault.

Each error carries three distinct codes: ``code`` (our normalized class code, stored as
SentMessage.error_code), ``provider_code`` (the vendor's own code or text only, '' when the vendor
said none) and ``reason`` (our own reason where no vendor spoke: ``read_timeout``,
``local_rate_limit``, ``bad_response``…). ``field`` names the form field or setting at fault.
No error ever carries a credential.
"""
from __future__ import annotations

from typing import Any, ClassVar


class _ErrorFields(Exception):
    """The fields both families carry (not caught anywhere by itself).

    Attributes: message (str, for humans), provider (str, e.g. "smtp"), status (HTTP status or SMTP
    reply code, int | None), provider_code (the vendor's code, str), provider_message (the vendor's
    message, str), body (raw response body, str, trimmed to 2,000 characters), reason (our own
    reason, str), field (the form field or setting at fault, str); plus the keyword arguments a
    subclass declares in ``details`` ({name: default}, e.g. RateLimited's ``retry_after``).
    Raises TypeError for an undeclared keyword.
    """

    code: ClassVar[str] = "error"
    transient: ClassVar[bool] = False
    details: ClassVar[dict[str, Any]] = {}

    def __init__(self, message: str, *, provider: str = "", status: int | None = None, provider_code: str = "",
                 provider_message: str = "", body: str = "", reason: str = "", field: str = "", **details: Any):
        unknown = set(details) - set(self.details)
        if unknown:
            raise TypeError(f"{type(self).__name__} takes no {', '.join(sorted(unknown))}")
        super().__init__(message)
        for name, default in self.details.items():
            setattr(self, name, details.get(name, default))
        self.message = message
        self.provider = provider
        self.status = status
        self.provider_code = provider_code
        self.provider_message = provider_message
        self.body = (body or "")[:2000]
        self.reason = reason
        self.field = field

    def __str__(self) -> str:
        return self.message


class ConfigurationError(_ErrorFields):
    """The mailbox, account or deployment is set up wrongly (missing sender id, bad host or base URL,
    an API key that cannot be decrypted). Never retried; ``field`` names the setting to fix.
    Where a vendor's answer revealed the mistake (lemlist's 405 on a wrong base URL), its status,
    code and body are kept too."""

    code = "configuration"


class ProviderError(_ErrorFields):
    """Base class of every send outcome that is an error. ``message`` is for humans; ``code`` is ours."""

    code = "provider_error"


class BadResponse(ProviderError):
    """A 2xx answer whose body is not the JSON the document promises (not JSON, or a promised field
    missing). Permanent: the request was accepted, so sending it again could send it twice. The send
    pipeline records it as ``unknown`` (may have been delivered) where the provider has no idempotency
    key, and as ``failed`` where it deduplicates on ours."""

    code = "bad_response"


class UnsupportedFeature(ProviderError):
    """The message uses something this provider cannot carry accurately (e.g. attachments on lemlist).
    ``feature`` is the capability's name (:data:`providers.base.FEATURES`)."""

    code = "unsupported"
    details = {"feature": ""}


class AuthenticationFailed(ProviderError):
    """Credentials refused (HTTP 401, SMTP 535, IMAP LOGIN NO)."""

    code = "authentication"


class PermissionDenied(ProviderError):
    """Authenticated but not allowed (HTTP 403)."""

    code = "permission"


class InvalidRequest(ProviderError):
    """The provider rejected the message as invalid; permanent. ``field`` names the offending field if known."""

    code = "validation"


class RecipientRefused(InvalidRequest):
    """The recipient address was refused (SMTP 550 on RCPT, unknown user); permanent."""

    code = "recipient_refused"


class RecipientSuppressed(ProviderError):
    """The provider will not send to this recipient (bounce/complaint list); permanent."""

    code = "recipient_suppressed"
    details = {"recipient": ""}


class IdempotencyConflict(ProviderError):
    """The idempotency key was already used with a different payload (HTTP 409); permanent."""

    code = "idempotency_conflict"


class OutcomeUnknown(ProviderError):
    """The connection broke after the message was handed over: it may have been sent. Not retried,
    to avoid sending twice where the provider offers no idempotency."""

    code = "outcome_unknown"


class TransientProviderError(ProviderError):
    """A failure that may succeed later. ``retry_after`` (seconds, float | None) if the provider said."""

    code = "unavailable"
    transient = True
    details = {"retry_after": None}


class ProviderUnavailable(TransientProviderError):
    """Server down, connection refused, 5xx, temporary 4xx SMTP reply."""

    code = "unavailable"


class ProviderTimeout(ProviderUnavailable):
    """Connect or read timed out."""

    code = "timeout"


class RateLimited(TransientProviderError):
    """HTTP 429; ``retry_after`` seconds from the Retry-After header. ``reason`` is
    ``local_rate_limit`` when our own limiter (not the provider) refused the slot."""

    code = "rate_limited"
