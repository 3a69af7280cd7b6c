"""Strict fake of the OpenMail API "Send email" (https://openmail-docs-cc-replies.mintlify.site;
``POST https://api.openmail.sh/v1/inboxes/{id}/send``).

Bearer API key; Idempotency-Key REQUIRED (400 without; replay / 409 on reuse with another body);
``POST /v1/inboxes/{id}/send`` with JSON or multipart/form-data (attachments ≤ 25 MB total);
``to`` one addr-spec; 404 for an unknown inbox or thread; 403 ``external_reply_to`` on the free
plan; 422 for a suppressed recipient; 429 with Retry-After. Error bodies ``{error, message}``.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid

from providers.schemas import openmail as schema

from .base import FakeServer, Reply, parse_multipart

_PATH = re.compile(r"^/v1/inboxes/([^/]+)/send$")
_ADDR_SPEC = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def error(status: int, code: str, message: str, **extra) -> Reply:
    return Reply(status, {"error": code, "message": message, **extra})


class FakeOpenMail(FakeServer):
    name = "openmail"
    rate_limit = (10, 1.0)  # "per-inbox burst": undocumented numbers
    idempotency = "required"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inboxes: dict[str, str] = {}  # inbox id -> address
        self.threads: set[str] = set()
        self.suppressed: set[str] = set()
        self.plan = "developer"  # or "free"

    def add_inbox(self, inbox_id="inb_8f2a1c", address="sales@openmail.example"):
        self.inboxes[inbox_id] = address
        return inbox_id

    def check_auth(self, headers):
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return error(401, "unauthorized", "Invalid API key")
        return None

    def rate_limited_reply(self, retry_after, limit):
        return Reply(429, {"error": "rate_limited", "message": "Per-inbox burst limit exceeded"}, headers={"Retry-After": str(retry_after)})

    def conflict_reply(self):
        return error(409, "idempotency_conflict", "Idempotency-Key reused with a different payload")

    def missing_key_reply(self):
        return error(400, "missing_idempotency_key", "Missing Idempotency-Key header")

    def error_reply(self, status):
        return error(status, {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable"}.get(status, "error"), f"HTTP {status}")

    def canonical_body(self, headers, body):
        parts = parse_multipart(headers.get("content-type", ""), body)
        if parts is None:
            return body
        return json.dumps([(p.name, p.filename, hashlib.sha256(p.value).hexdigest()) for p in parts]).encode()

    def handle(self, method, path, headers, body):
        match = _PATH.match(path)
        if not match or method != "POST":
            return error(404 if not match else 405, "not_found", "Not found")
        inbox_id = match.group(1)
        content_type = headers.get("content-type", "")
        attachments = []
        if content_type.startswith("application/json"):
            try:
                data = json.loads(body)
            except ValueError:
                return error(400, "invalid_body", "Body is not JSON")
            problems = self.validate(schema.SEND_EMAIL_JSON_REQUEST, data)
        elif content_type.startswith("multipart/form-data"):
            parts = parse_multipart(content_type, body)
            if parts is None:
                return error(400, "invalid_body", "Malformed multipart body")
            data = {}
            for part in parts:
                if part.name == "attachments" and part.filename is not None:
                    attachments.append(part)
                elif part.name in data:
                    return error(400, "invalid_body", f"Repeated field {part.name}")
                else:
                    data[part.name] = part.text
            if "includeQuote" in data:
                if data["includeQuote"] not in ("true", "false"):
                    return error(400, "invalid_body", "includeQuote must be a boolean")
                data["includeQuote"] = data["includeQuote"] == "true"
            problems = self.validate(schema.SEND_EMAIL_MULTIPART_REQUEST, data)
        else:
            return error(400, "invalid_body", "Content-Type must be application/json or multipart/form-data")
        if inbox_id not in self.inboxes:
            return error(404, "not_found", "Inbox not found")
        if not isinstance(data, dict) or not isinstance(data.get("to"), str) or not _ADDR_SPEC.match(data["to"]):
            return error(400, "invalid_to", "Invalid 'to' address")
        if data.get("replyTo") is not None and (not isinstance(data["replyTo"], str) or not _ADDR_SPEC.match(data["replyTo"])):
            return error(400, "invalid_reply_to", "Invalid 'replyTo' address")
        if problems:
            return error(400, "validation_error", "; ".join(problems))
        if sum(len(p.value) for p in attachments) > schema.MAX_ATTACHMENTS_BYTES:
            return error(400, "attachments_too_large", "Attachments exceed 25 MB total per email")
        if data.get("threadId") and data["threadId"] not in self.threads:
            return error(404, "not_found", "Thread not found")
        if data.get("replyTo") and self.plan == "free" and data["replyTo"] not in self.inboxes.values():
            return error(403, "plan_required", "Feature requires a paid plan", feature="external_reply_to")
        if data["to"].lower() in self.suppressed:
            return error(422, "recipient_suppressed", f"Recipient {data['to']} is suppressed (bounce/complaint)")
        message_id = "msg_" + uuid.uuid4().hex[:12]
        thread_id = data.get("threadId") or "thr_" + uuid.uuid4().hex[:12]
        self.threads.add(thread_id)
        self.accept({**data, "inbox": inbox_id, "attachments": [(p.filename, p.content_type, len(p.value)) for p in attachments]})
        return Reply(200, {"messageId": message_id, "threadId": thread_id, "providerMessageId": f"<{message_id}@openmail.sh>", "status": "sent"})
