"""leadlex: send through the workspace's connected Gmail / Office 365 account.

Source: seed 001 (``POST {base}/v1/email/send``). Auth: ``Authorization: Bearer wbk_…``.
Optional Idempotency-Key (24 h dedup, original response replayed, 409 on reuse with another
payload): we always send the SentMessage's key, so retries are safe. ``to`` is a list of RFC 5322
addresses; body_html and body_text; cc, bcc, reply_to, contact_id, deal_id, thread_id;
attachments as base64. Response ``{data: {id, thread_id, provider, status, sent_at}}``.
"""
from __future__ import annotations

import base64
from typing import Any

import requests

from .base import Capabilities, OutgoingMessage, SendResult
from .errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InvalidRequest,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from .http import HttpProvider, HttpRequest, error_for_status, response_json
from .ratelimit import RateLimit
from .schemas import leadlex as schema
from .base import ExternalIdKind

#: leadlex data.status → our closed vocabulary.
STATUS_MAP = {"queued": "queued", "sent": "sent", "failed": "failed"}


def error_code_and_message(body: Any) -> tuple[str, str]:
    """(code, message) from a leadlex error body. The document names the codes but shows no body;
    accepted shapes: ``{"error": {"code", "message"}}``, ``{"error": "<code>", "message"}``, ``{"code", "message"}``."""
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("code", "")), str(error.get("message", ""))
    if isinstance(error, str):
        return error, str(body.get("message", ""))
    return str(body.get("code", "")), str(body.get("message", ""))


class LeadlexProvider(HttpProvider):
    """leadlex Send Email (seed 001). contact_id and deal_id are optional in the document; when the
    contact/lead has them they are sent (so leadlex logs the message on their timeline)."""

    external_id_kinds = (ExternalIdKind("contact", "contact_id"), ExternalIdKind("lead", "deal_id", aliases=("dealId",)))
    name = "leadlex"
    label = "leadlex"
    default_base_url = schema.DEFAULT_BASE_URL
    # No config: the API key identifies the sender, no per-mailbox id (base.MailboxConfig).
    # The document says "per-second or per-day send cap" without numbers: a conservative pace,
    # and every 429's Retry-After is honoured.
    rate_limit = RateLimit(requests=5, period=1.0)
    idempotency_header = True
    capabilities = Capabilities(
        cc=True, bcc=True, multiple_recipients=True, attachments=True, max_attachments_bytes=0,
        html=True, text=True, reply_to=True, threads=True, custom_headers=False, tracking=False, idempotent=True,
    )

    def __init__(self, *, api_key: str, base_url: str = "", config=None, require_contact_id: bool = False):
        super().__init__(api_key=api_key, base_url=base_url, config=config)
        self.require_contact_id = require_contact_id

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def check_vendor_ids(self, message: OutgoingMessage) -> None:
        """contact_id is optional in the document; required only when built with ``require_contact_id``."""
        if self.require_contact_id:
            self.require(message.vendor_ids.get("leadlex_contact_id", ""), "contact's leadlex contact_id", code="leadlex_contact_id")

    def build_request(self, message: OutgoingMessage) -> HttpRequest:
        body: dict[str, Any] = {"to": [a.formatted() for a in message.to], "subject": message.subject}
        if message.html:
            body["body_html"] = message.html
        if message.text:
            body["body_text"] = message.text
        if message.cc:
            body["cc"] = [a.formatted() for a in message.cc]
        if message.bcc:
            body["bcc"] = [a.formatted() for a in message.bcc]
        if message.reply_to:
            body["reply_to"] = message.reply_to.email
        for ours, theirs in (("leadlex_contact_id", "contact_id"), ("leadlex_deal_id", "deal_id")):
            if message.vendor_ids.get(ours):
                body[theirs] = message.vendor_ids[ours]
        if message.thread_id:
            body["thread_id"] = message.thread_id
        if message.attachments:
            body["attachments"] = [
                {"filename": a.filename, "mime_type": a.content_type, "content_base64": base64.b64encode(a.content).decode("ascii")}
                for a in message.attachments
            ]
        return HttpRequest(path="/v1/email/send", json=body)

    def parse_result(self, response: requests.Response, message: OutgoingMessage) -> SendResult:
        """``data.id`` → provider message id, ``data.thread_id`` → thread, ``data.status`` → queued/sent.
        A 2xx with status ``failed`` raises a permanent ProviderError (a retry replays the same answer)."""
        payload = response_json(response)
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or not data.get("id"):
            raise ProviderError("leadlex answered without data.id.", provider=self.name, status=response.status_code,
                                body=response.text, provider_code="bad_response")
        status = STATUS_MAP.get(str(data.get("status", "")), "unknown")
        if status == "failed":
            raise ProviderError("leadlex reports the message as failed.", provider=self.name, status=response.status_code,
                                provider_code="failed", body=response.text)
        raw = dict(payload)
        if response.headers.get("X-Request-ID"):
            raw["request_id"] = response.headers["X-Request-ID"]
        return SendResult(provider_message_id=str(data["id"]), provider_thread_id=str(data.get("thread_id") or ""),
                          provider_status=status, raw=raw)

    def map_error(self, response: requests.Response, retry_after: float | None) -> ProviderError:
        """The Errors table of seed 001, by code (falling back to the status)."""
        status = response.status_code
        code, text = error_code_and_message(response_json(response))
        common = dict(provider=self.name, status=status, provider_code=code, provider_message=text, body=response.text)
        detail = f": {text}" if text else ""
        if code == "validation_error" or (status == 400 and not code):
            lowered = text.lower()
            field = next((f for f in ("to", "subject", "body_html", "reply_to", "cc", "bcc", "attachments") if f in lowered), "")
            return InvalidRequest(f"leadlex refused the message (validation_error){detail}.", field=field, **common)
        if code == "invalid_key":
            return AuthenticationFailed(f"leadlex refused the API key (invalid_key){detail}.", **common)
        if code == "insufficient_permissions":
            return PermissionDenied(f"leadlex: missing write:email permission or no connected email provider{detail}.", **common)
        if code == "idempotency_conflict":
            return IdempotencyConflict(f"leadlex: the Idempotency-Key was already used for another payload{detail}.", **common)
        if code == "rate_limited":
            return RateLimited(f"leadlex send cap exceeded{detail}.", retry_after=retry_after, **common)
        if code == "provider_error":
            return ProviderUnavailable(f"leadlex: the upstream email provider returned an error{detail}.", retry_after=retry_after, **common)
        return error_for_status(f"leadlex answered HTTP {status}{detail}.", retry_after=retry_after, **common)
