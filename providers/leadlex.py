"""leadlex: send through the workspace's connected Gmail / Office 365 account.

Source: the leadlex API documentation, page "Send Email" (https://docs.leadlex.com, index
https://docs.leadlex.com/llms.txt): ``POST https://data.leadlex.com/functions/v1/api-gateway/v1/email/send``.
Auth: ``Authorization: Bearer wbk_…``.
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
from .http import ErrorAnswer, HttpProvider, HttpRequest, response_json
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
    """leadlex "Send Email". contact_id and deal_id are optional in the document; when the
    contact/lead has them they are sent (so leadlex logs the message on their timeline)."""

    external_id_kinds = (ExternalIdKind("contact", "contact_id"), ExternalIdKind("lead", "deal_id", aliases=("dealId",)))
    name = "leadlex"
    label = "leadlex"
    default_base_url = schema.DEFAULT_BASE_URL
    # No config: the API key identifies the sender, no per-mailbox id (base.MailboxConfig).
    # The document says "per-second or per-day send cap" without numbers: a conservative pace,
    # and every 429's Retry-After is honoured.
    rate_limit = RateLimit(requests=5, period=1.0)
    # Everything a plain mailbox carries, plus thread_id and the Idempotency-Key; no custom headers.
    capabilities = Capabilities(threads=True, idempotent=True)

    def __init__(self, *, api_key: str, base_url: str = "", config=None, require_contact_id: bool = False):
        super().__init__(api_key=api_key, base_url=base_url, config=config)
        self.require_contact_id = require_contact_id

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
        Raises BadResponse without ``data.id``; a 2xx with status ``failed`` raises a permanent
        ProviderError (a retry replays the same answer)."""
        payload = self.json_body(response, required=("data.id",))
        data = payload["data"]
        raw = dict(payload)
        if response.headers.get("X-Request-ID"):
            raw["request_id"] = response.headers["X-Request-ID"]
        return self.send_result(response, raw, message_id=data["id"], thread_id=data.get("thread_id"),
                                status=data.get("status"), statuses=STATUS_MAP)

    def read_error(self, response: requests.Response) -> tuple[str, str]:
        return error_code_and_message(response_json(response))

    def map_error(self, answer: ErrorAnswer) -> ProviderError:
        """The Errors table of "Send Email", by code (falling back to the status)."""
        code, text = answer.code, answer.message
        detail = f": {text}" if text else ""
        if code == "validation_error" or (answer.status == 400 and not code):
            lowered = text.lower()
            field = next((f for f in ("to", "subject", "body_html", "reply_to", "cc", "bcc", "attachments") if f in lowered), "")
            return answer.error(InvalidRequest, f"leadlex refused the message (validation_error){detail}.", field=field)
        by_code = {
            "invalid_key": (AuthenticationFailed, f"leadlex refused the API key (invalid_key){detail}."),
            "insufficient_permissions": (PermissionDenied, f"leadlex: missing write:email permission or no connected email provider{detail}."),
            "idempotency_conflict": (IdempotencyConflict, f"leadlex: the Idempotency-Key was already used for another payload{detail}."),
            "rate_limited": (RateLimited, f"leadlex send cap exceeded{detail}."),
            "provider_error": (ProviderUnavailable, f"leadlex: the upstream email provider returned an error{detail}."),
        }
        if code in by_code:
            return answer.error(*by_code[code])
        return answer.by_status(f"leadlex answered HTTP {answer.status}{detail}.")
