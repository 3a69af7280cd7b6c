"""Strict fake of the Unipile API "Send an email" (https://developer.unipile.com/docs/send-email;
``POST {base}/api/v1/emails``).

``X-API-KEY``; multipart/form-data only, with ``from``/``to``/``cc``/``bcc``/``custom_headers``/
``tracking_options`` as JSON-encoded values (see providers/schemas/unipile.py); the document's
schema enforced (account_id, to, body required; attendee identifier required; header names);
typed errors ``{title, detail, type, status}``: 401 missing/invalid credentials, 404 account
not found, 422 invalid_headers / parent_mail_not_found / blocked_recipient; 201 EmailSent.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid

from providers.schemas import unipile as schema

from .base import FakeServer, Reply, parse_multipart

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 422: "Unprocessable Entity",
           500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}
_DEFAULT_TYPE = {401: "errors/invalid_credentials", 403: "errors/insufficient_permissions", 404: "errors/resource_not_found",
                 422: "errors/unprocessable_entity", 500: "errors/unexpected_error", 503: "errors/service_unavailable",
                 504: "errors/request_timeout"}


def typed(status: int, kind: str, detail: str = "") -> Reply:
    body = {"title": _TITLES.get(status, "Error"), "type": kind, "status": status}
    if detail:
        body["detail"] = detail
    return Reply(status, body)


class FakeUnipile(FakeServer):
    name = "unipile"
    rate_limit = (10, 1.0)  # undocumented; the fake enforces a cap
    idempotency = "none"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.accounts: set[str] = set()
        self.mails: set[str] = set()  # ids of mails that can be replied to
        self.blocked: set[str] = set()

    def add_account(self, account_id="acc_Y2FkZjE3"):
        self.accounts.add(account_id)
        return account_id

    def check_auth(self, headers):
        key = headers.get("x-api-key")
        if not key:
            return typed(401, "errors/missing_credentials", "Some credentials are necessary to perform the request.")
        if key != self.api_key:
            return typed(401, "errors/invalid_credentials", "The provided credentials are invalid.")
        return None

    def rate_limited_reply(self, retry_after, limit):
        return Reply(429, {"title": "Too Many Requests", "type": "errors/too_many_requests", "status": 429},
                     headers={"Retry-After": str(retry_after)})

    def error_reply(self, status):
        return typed(status, _DEFAULT_TYPE.get(status, "errors/unexpected_error"), "injected")

    def handle(self, method, path, headers, body):
        if path != "/api/v1/emails":
            return typed(404, "errors/resource_not_found", "Not found")
        if method != "POST":
            return typed(404, "errors/resource_not_found", "Not found")
        parts = parse_multipart(headers.get("content-type", ""), body)
        if parts is None:
            return typed(400, "errors/invalid_request", "multipart/form-data expected")
        data, attachments = {}, []
        for part in parts:
            if part.name == "attachments" and part.filename is not None:
                attachments.append(part)
                continue
            if part.name in data:
                return typed(400, "errors/invalid_request", f"repeated field {part.name}")
            value = part.text
            if part.name in schema.JSON_FIELDS:
                try:
                    value = json.loads(value)
                except ValueError:
                    return typed(400, "errors/invalid_request", f"{part.name} must be JSON")
            data[part.name] = value
        header_names = [h.get("name") for h in data.get("custom_headers", []) if isinstance(h, dict)] \
            if isinstance(data.get("custom_headers"), list) else []
        problems = self.validate(schema.SEND_EMAIL_REQUEST, data)
        if any(not isinstance(n, str) or not re.match(schema.CUSTOM_HEADER_NAME_PATTERN, n) for n in header_names):
            return typed(422, "errors/invalid_headers", "Header names must start with X- or be Unscribe-List, Reply-To, Content-Type.")
        if problems:
            return typed(400, "errors/invalid_request", "; ".join(problems))
        if data["account_id"] not in self.accounts:
            return typed(404, "errors/resource_not_found", "Account not found")
        if data.get("reply_to") and data["reply_to"] not in self.mails:
            return typed(422, "errors/parent_mail_not_found", "The parent mail could not be found.")
        for attendee in data["to"] + data.get("cc", []) + data.get("bcc", []):
            if attendee["identifier"].lower() in self.blocked:
                return typed(422, "errors/blocked_recipient", f"{attendee['identifier']} is blocked.")
        tracking_id = uuid.uuid4().hex
        self.mails.add(tracking_id)
        self.accept({**data, "attachments": [(p.filename, p.content_type, hashlib.sha256(p.value).hexdigest()) for p in attachments]})
        return Reply(201, {"object": "EmailSent", "tracking_id": tracking_id})
