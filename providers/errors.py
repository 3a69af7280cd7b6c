"""The normalized error hierarchy every provider maps its failures onto.

Retries are decided by type: :class:`TransientProviderError` subclasses may be retried,
everything else is permanent. Each error keeps the provider's own code and message
(``provider_code``, ``provider_message``) for the timeline, and never a credential.
"""
from __future__ import annotations


class ProviderError(Exception):
    """Base class. ``message`` is for humans; ``code`` is our normalized code.

    Attributes: provider (str, e.g. "smtp"), code (str), message (str),
    status (HTTP status or SMTP reply code, int | None), provider_code (str), provider_message (str),
    body (raw response body, str, trimmed to 2,000 characters).
    """

    code = "provider_error"
    transient = False

    def __init__(self, message: str, *, provider: str = "", status: int | None = None,
                 provider_code: str = "", provider_message: str = "", body: str = ""):
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.provider_code = provider_code
        self.provider_message = provider_message
        self.body = (body or "")[:2000]

    def __str__(self) -> str:
        return self.message


class ConfigurationError(ProviderError):
    """The mailbox or account is set up wrongly (missing sender id, bad host). Never retried."""

    code = "configuration"


class UnsupportedFeature(ProviderError):
    """The message uses something this provider cannot carry accurately (e.g. attachments on lemlist)."""

    code = "unsupported"


class AuthenticationFailed(ProviderError):
    """Credentials refused (HTTP 401, SMTP 535, IMAP LOGIN NO)."""

    code = "authentication"


class PermissionDenied(ProviderError):
    """Authenticated but not allowed (HTTP 403)."""

    code = "permission"


class InvalidRequest(ProviderError):
    """The provider rejected the message as invalid; permanent. ``field`` names the offending field if known."""

    code = "validation"

    def __init__(self, message: str, *, field: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.field = field


class RecipientRefused(InvalidRequest):
    """The recipient address was refused (SMTP 550 on RCPT, unknown user); permanent."""

    code = "recipient_refused"


class RecipientSuppressed(ProviderError):
    """The provider will not send to this recipient (bounce/complaint list); permanent."""

    code = "recipient_suppressed"

    def __init__(self, message: str, *, recipient: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.recipient = recipient


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

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderUnavailable(TransientProviderError):
    """Server down, connection refused, 5xx, temporary 4xx SMTP reply."""

    code = "unavailable"


class ProviderTimeout(ProviderUnavailable):
    """Connect or read timed out."""

    code = "timeout"


class RateLimited(TransientProviderError):
    """HTTP 429; ``retry_after`` seconds from the Retry-After header."""

    code = "rate_limited"
