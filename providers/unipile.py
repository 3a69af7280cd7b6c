"""Unipile: send from a mailbox connected at Unipile.

Source: seed 003 (``POST /api/v1/emails``, MailsController_sendMail). Auth: ``X-API-KEY``.
multipart/form-data with account_id, from, to/cc/bcc as ``{display_name, identifier}`` lists,
subject, body, reply_to (the id of the mail replied to — our thread id), custom_headers (``X-…``
or Unscribe-List / Reply-To / Content-Type; our Reply-To address travels this way),
tracking_options, attachments. 201 ``{object: "EmailSent", tracking_id}``: the tracking_id is
stored as the provider message id. Typed errors ``{title, detail, type, status}``.
The base URL is per account by design (``https://{subdomain}.unipile.com:{port}``).
No idempotency key: a lost response or a 504 is ``outcome_unknown``, not retried.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import requests

from .addresses import safe_display_name
from .base import Capabilities, OutgoingMessage, SendResult
from .config import BOOL, MailboxConfig, setting
from .errors import (
    AuthenticationFailed,
    InvalidRequest,
    OutcomeUnknown,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RecipientRefused,
    RecipientSuppressed,
    UnsupportedFeature,
)
from .http import HttpProvider, HttpRequest, compact_json, error_for_status, response_json
from .ratelimit import RateLimit
from .schemas import unipile as schema

_HEADER_NAME = re.compile(schema.CUSTOM_HEADER_NAME_PATTERN)

# 422 types → (error class, field). Types not listed are InvalidRequest.
_422: dict[str, tuple[type[ProviderError], str]] = {
    "errors/blocked_recipient": (RecipientSuppressed, "to"),
    "errors/invalid_recipient": (RecipientRefused, "to"),
    "errors/recipient_rejected": (RecipientRefused, "to"),
    "errors/user_unreachable": (RecipientRefused, "to"),
    "errors/no_connection_with_recipient": (RecipientRefused, "to"),
    "errors/limit_exceeded": (RateLimited, ""),
    "errors/cannot_resend_yet": (RateLimited, ""),
    "errors/provider_unreachable": (ProviderUnavailable, ""),
    "errors/realtime_client_not_initialized": (ProviderUnavailable, ""),
    "errors/invalid_account": (PermissionDenied, "unipile_account_id"),
    "errors/account_configuration_error": (PermissionDenied, "unipile_account_id"),
    "errors/send_as_denied": (PermissionDenied, "sender_email"),
    "errors/sender_rejected": (PermissionDenied, "sender_email"),
    "errors/unauthorized": (PermissionDenied, ""),
    "errors/ip_rejected_by_server": (PermissionDenied, ""),
    "errors/invalid_headers": (InvalidRequest, "headers"),
    "errors/parent_mail_not_found": (InvalidRequest, "thread_id"),
    "errors/invalid_thread": (InvalidRequest, "thread_id"),
    "errors/invalid_reply_subject": (InvalidRequest, "subject"),
}
# 401 types that mean "authenticated, but not allowed".
_401_PERMISSION = {"errors/insufficient_privileges", "errors/disconnected_feature"}


@dataclass(frozen=True)
class UnipileConfig(MailboxConfig):
    """The sending account of Send an email (seed 003) and its ``tracking_options`` (opens, links,
    label, custom_domain: all optional; sent only when one is set)."""

    prefix = "unipile_"
    account_id: str = setting("Unipile account_id", required=True, max_length=100,
                              help="The connected email account's id at Unipile.")
    track_opens: bool = setting("Track opens", kind=BOOL, default=False, group="Unipile tracking",
                                help="Unipile adds an open-tracking pixel (tracking_options.opens).")
    track_links: bool = setting("Track links", kind=BOOL, default=False, group="Unipile tracking",
                                help="Unipile rewrites links to count clicks (tracking_options.links).")
    tracking_label: str = setting("Tracking label", max_length=200, group="Unipile tracking",
                                  help="Optional label of the tracked events (tracking_options.label).")
    tracking_domain: str = setting("Tracking domain", max_length=253, group="Unipile tracking",
                                   help="Optional custom domain of tracked links (tracking_options.custom_domain).")

    @property
    def tracking(self) -> dict[str, Any]:
        """The document's ``tracking_options`` object ({} when nothing is tracked or labelled)."""
        if not (self.track_opens or self.track_links or self.tracking_label or self.tracking_domain):
            return {}
        options: dict[str, Any] = {"opens": self.track_opens, "links": self.track_links}
        if self.tracking_label:
            options["label"] = self.tracking_label
        if self.tracking_domain:
            options["custom_domain"] = self.tracking_domain
        return options


class UnipileProvider(HttpProvider):
    """Unipile Send an email (seed 003). Needs the mailbox's Unipile account_id."""

    name = "unipile"
    label = "Unipile"
    default_base_url = schema.DEFAULT_BASE_URL
    config_class = UnipileConfig
    # No limit in the document: a conservative pace; every 429's Retry-After is honoured.
    rate_limit = RateLimit(requests=5, period=1.0)
    idempotency_header = False
    capabilities = Capabilities(
        cc=True, bcc=True, multiple_recipients=True, attachments=True, max_attachments_bytes=0,
        html=True, text=True, reply_to=True, threads=True, custom_headers=True, tracking=True, idempotent=False,
    )

    def auth_headers(self) -> dict[str, str]:
        return {"X-API-KEY": self.api_key}

    def check_supported(self, message: OutgoingMessage) -> None:
        """Capabilities, plus custom header names the document allows (``X-…`` or a listed few)."""
        super().check_supported(message)
        for name in message.headers:
            if not _HEADER_NAME.match(name):
                raise UnsupportedFeature(
                    f"Unipile accepts only X-… custom headers (or {', '.join(schema.CUSTOM_HEADER_NAMES)}); not {name!r}.",
                    provider=self.name, provider_code="headers")

    def check_vendor_ids(self, message: OutgoingMessage) -> None:
        self.require(self.config.account_id, "mailbox's Unipile account_id", code="unipile_account_id")

    def build_request(self, message: OutgoingMessage) -> HttpRequest:
        def attendee(a):
            name = safe_display_name(a)  # a name that would parse as more addresses is neutralised
            return {"display_name": name, "identifier": a.email} if name else {"identifier": a.email}

        def attendees(addresses):
            return [attendee(a) for a in addresses]

        data: list[tuple[str, str]] = [
            ("account_id", self.config.account_id),
            ("from", compact_json(attendee(message.sender))),
            ("to", compact_json(attendees(message.to))),
        ]
        if message.cc:
            data.append(("cc", compact_json(attendees(message.cc))))
        if message.bcc:
            data.append(("bcc", compact_json(attendees(message.bcc))))
        data.append(("subject", message.subject))
        data.append(("body", message.html or message.text))
        if message.thread_id:
            data.append(("reply_to", message.thread_id))
        headers = [{"name": k, "value": v} for k, v in message.headers.items()]
        if message.reply_to:
            headers.append({"name": "Reply-To", "value": message.reply_to.formatted()})
        if headers:
            data.append(("custom_headers", compact_json(headers)))
        if self.config.tracking:
            data.append(("tracking_options", compact_json(self.config.tracking)))
        files = [("attachments", (a.filename, a.content, a.content_type or "application/octet-stream")) for a in message.attachments]
        # requests sends multipart/form-data only when files are present; an empty file list would
        # send urlencoded, so the form fields go as (None, value) parts instead.
        form = [(k, (None, v.encode("utf-8"), "text/plain; charset=utf-8")) for k, v in data]
        return HttpRequest(path="/api/v1/emails", files=form + files)

    def parse_result(self, response: requests.Response, message: OutgoingMessage) -> SendResult:
        """201 ``{object: "EmailSent", tracking_id}`` → provider message id = tracking_id, status sent."""
        data = response_json(response)
        if not isinstance(data, dict) or data.get("object") != "EmailSent" or not data.get("tracking_id"):
            raise ProviderError("Unipile answered without an EmailSent tracking_id.", provider=self.name,
                                status=response.status_code, body=response.text, provider_code="bad_response")
        return SendResult(provider_message_id=str(data["tracking_id"]), provider_status="sent", raw=data)

    def map_error(self, response: requests.Response, retry_after: float | None) -> ProviderError:
        """Every typed error of seed 003 (401, 403, 404, 422, 500, 503, 504) by ``type``."""
        status = response.status_code
        body = response_json(response)
        body = body if isinstance(body, dict) else {}
        kind = str(body.get("type", ""))
        title, detail_text = str(body.get("title", "")), str(body.get("detail", ""))
        text = " — ".join(p for p in (title, detail_text) if p) or response.text[:300]
        common = dict(provider=self.name, status=status, provider_code=kind, provider_message=text, body=response.text)
        detail = f" ({kind}): {text}" if kind else f": {text}"
        if status == 401:
            if kind in _401_PERMISSION:
                return PermissionDenied(f"Unipile refused access{detail}.", **common)
            return AuthenticationFailed(f"Unipile refused the credentials{detail}.", **common)
        if status == 403:
            return PermissionDenied(f"Unipile refused the action{detail}.", **common)
        if status == 404:
            return InvalidRequest(f"Unipile: account or resource not found{detail}.", field="unipile_account_id", **common)
        if status == 422:
            cls, field = _422.get(kind, (InvalidRequest, ""))
            message = f"Unipile could not send{detail}."
            if issubclass(cls, InvalidRequest):
                return cls(message, field=field, **common)
            if cls is RecipientSuppressed:
                return RecipientSuppressed(message, **common)  # send() names the recipient
            if cls in (RateLimited, ProviderUnavailable):
                return cls(message, retry_after=retry_after, **common)
            return cls(message, **common)
        if status == 504:
            return OutcomeUnknown(f"Unipile timed out{detail}; the message may have been sent, so it is not retried.", **common)
        return error_for_status(f"Unipile answered HTTP {status}{detail}.", retry_after=retry_after, **common)

    def deliver(self, prepared: bytes, message: OutgoingMessage, *, on_handover) -> SendResult:
        """As HttpProvider.deliver; a blocked_recipient names the first recipient (one-recipient sends)."""
        try:
            return super().deliver(prepared, message, on_handover=on_handover)
        except RecipientSuppressed as err:
            if not err.recipient and len(message.to) == 1 and not message.cc and not message.bcc:
                err.recipient = message.to[0].email
            raise
