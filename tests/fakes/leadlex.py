"""Strict fake of the leadlex API "Send Email" (https://docs.leadlex.com;
``POST https://data.leadlex.com/functions/v1/api-gateway/v1/email/send``).

``Authorization: Bearer wbk_…``; body per the Body Parameters (to as an RFC 5322 address or a
list of them, subject ≤ 998, body_html and/or body_text, …); the Errors table's codes in
``{"error": {"code", "message"}}`` bodies; optional Idempotency-Key (replay / 409); X-RateLimit-*
and X-Request-ID on every answer. ``permissions_ok`` False → 403 insufficient_permissions.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from email.utils import getaddresses

from providers.schemas import leadlex as schema

from .base import FakeServer, Reply

PATH = "/functions/v1/api-gateway/v1/email/send"  # the document's base path + endpoint


def error(status: int, message: str) -> Reply:
    return Reply(status, {"error": {"code": schema.ERROR_CODES[status], "message": message}})


def _valid_rfc5322(value: str) -> bool:
    pairs = getaddresses([value])
    if len(pairs) != 1:
        return False
    name, addr = pairs[0]
    local, _, domain = addr.rpartition("@")
    return bool(local) and "." in domain and " " not in addr


class FakeLeadlex(FakeServer):
    name = "leadlex"
    rate_limit = (10, 1.0)  # undocumented numbers; the fake enforces a per-second cap
    idempotency = "optional"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.permissions_ok = True

    @staticmethod
    def make_api_key():
        return "wbk_" + uuid.uuid4().hex

    def common_headers(self):
        return {**self.rate_headers(), "X-Request-ID": "req_" + uuid.uuid4().hex[:16]}

    def check_auth(self, headers):
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return error(401, "Invalid or expired API key")
        if not self.permissions_ok:
            return error(403, "Missing write:email permission, or no connected email provider")
        return None

    def rate_limited_reply(self, retry_after, limit):
        return Reply(429, {"error": {"code": "rate_limited", "message": "Per-second or per-day send cap exceeded"}},
                     headers={"Retry-After": str(retry_after)})

    def conflict_reply(self):
        return error(409, "Same Idempotency-Key reused with a different payload")

    def error_reply(self, status):
        if status in schema.ERROR_CODES:
            return error(status, f"injected {schema.ERROR_CODES[status]}")
        return Reply(status, {"error": {"code": "internal_error", "message": f"HTTP {status}"}})

    def handle(self, method, path, headers, body):
        if path != PATH:
            return Reply(404, {"error": {"code": "not_found", "message": "Not found"}})
        if method != "POST":
            return Reply(405, {"error": {"code": "method_not_allowed", "message": "Method not allowed"}})
        if not headers.get("content-type", "").startswith("application/json"):
            return error(400, "Content-Type must be application/json")
        try:
            data = json.loads(body)
        except ValueError:
            return error(400, "Body is not JSON")
        problems = self.validate(schema.SEND_EMAIL_REQUEST, data)
        if not isinstance(data, dict) or not data.get("to"):
            return error(400, "Missing `to`")
        if not data.get("subject"):
            return error(400, "Missing `subject`")
        if not data.get("body_html") and not data.get("body_text"):
            return error(400, "Either `body_html` or `body_text` is required")
        if problems:
            return error(400, "; ".join(problems))
        recipients = [data["to"]] if isinstance(data["to"], str) else data["to"]
        for name in ("cc", "bcc"):
            recipients += data.get(name, [])
        if data.get("reply_to"):
            recipients.append(data["reply_to"])
        bad = [r for r in recipients if not _valid_rfc5322(r)]
        if bad:
            return error(400, f"Invalid address: {bad[0]}")
        message_id = uuid.uuid4().hex[:16]
        thread_id = data.get("thread_id") or message_id
        self.accept(data)
        return Reply(200, {"data": {"id": message_id, "thread_id": thread_id, "provider": "gmail", "status": "sent",
                                    "sent_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}})
