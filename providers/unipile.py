"""Unipile: send from a mailbox connected at Unipile.

Source: the Unipile API reference, "Send an email" (https://developer.unipile.com/docs/send-email;
OpenAPI operation MailsController_sendMail, ``POST https://{subdomain}.unipile.com:{port}/api/v1/emails``).
Auth: ``X-API-KEY``.
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
from .http import ErrorAnswer, HttpProvider, HttpRequest, compact_json, response_json
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
    """The sending account of "Send an email" and its ``tracking_options`` (opens, links,
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
    """Unipile "Send an email". Needs the mailbox's Unipile account_id."""

    name = "unipile"
    label = "Unipile"
    default_base_url = schema.DEFAULT_BASE_URL
    auth_header, auth_format = "X-API-KEY", "{key}"
    config_class = UnipileConfig
    # No limit in the document: a conservative pace; every 429's Retry-After is honoured.
    rate_limit = RateLimit(requests=5, period=1.0)
    # Everything a plain mailbox carries, plus reply_to (a thread), custom_headers and tracking_options;
    # no idempotency key.
    capabilities = Capabilities(threads=True, custom_headers=True, tracking=True)

    def check_supported(self, message: OutgoingMessage) -> None:
        """Capabilities, plus custom header names the document allows (``X-…`` or a listed few)."""
        super().check_supported(message)
        for name in message.headers:
            if not _HEADER_NAME.match(name):
                raise UnsupportedFeature(
                    f"Unipile accepts only X-… custom headers (or {', '.join(schema.CUSTOM_HEADER_NAMES)}); not {name!r}.",
                    provider=self.name, feature="custom_headers", field="headers")

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
        """201 ``{object: "EmailSent", tracking_id}`` → provider message id = tracking_id, status sent.
        Raises BadResponse for any other body."""
        data = self.json_body(response, required=("tracking_id",))
        if data.get("object") != "EmailSent":
            raise self.bad_response(response, 'object "EmailSent"')
        return self.send_result(response, data, message_id=data["tracking_id"])

    def read_error(self, response: requests.Response) -> tuple[str, str]:
        """(``type``, "title — detail") of the document's typed error ``{title, detail, type, status}``."""
        body = response_json(response)
        body = body if isinstance(body, dict) else {}
        text = " — ".join(str(body[k]) for k in ("title", "detail") if body.get(k))
        return str(body.get("type", "")), text or response.text[:300]

    def map_error(self, answer: ErrorAnswer) -> ProviderError:
        """Every typed error of "Send an email" (401, 403, 404, 422, 500, 503, 504) by ``type``."""
        status, kind = answer.status, answer.code
        detail = f" ({kind}): {answer.message}" if kind else f": {answer.message}"
        if status == 401:
            if kind in _401_PERMISSION:
                return answer.error(PermissionDenied, f"Unipile refused access{detail}.")
            return answer.error(AuthenticationFailed, f"Unipile refused the credentials{detail}.")
        if status == 403:
            return answer.error(PermissionDenied, f"Unipile refused the action{detail}.")
        if status == 404:
            return answer.error(InvalidRequest, f"Unipile: account or resource not found{detail}.", field="unipile_account_id")
        if status == 422:
            cls, field = _422.get(kind, (InvalidRequest, ""))
            return answer.error(cls, f"Unipile could not send{detail}.", field=field)  # deliver() names a suppressed recipient
        if status == 504:
            return answer.error(OutcomeUnknown, f"Unipile timed out{detail}; the message may have been sent, so it is not retried.")
        return answer.by_status(f"Unipile answered HTTP {status}{detail}.")

    def deliver(self, prepared: bytes, message: OutgoingMessage, *, on_handover, idle=None) -> SendResult:
        """As HttpProvider.deliver; a blocked_recipient names the first recipient (one-recipient sends)."""
        try:
            return super().deliver(prepared, message, on_handover=on_handover, idle=idle)
        except RecipientSuppressed as err:
            if not err.recipient and len(message.to) == 1 and not message.cc and not message.bcc:
                err.recipient = message.to[0].email
            raise
