"""Strict fake of the lemlist API (https://developer.lemlist.com): "Send Email" (``POST /inbox/email``)
and "Connect Email Account" (``POST /user/email-accounts``).

Basic auth with an EMPTY login and the API key as password; 20 requests per 2 s per key
(429 + Retry-After + X-RateLimit-* on every answer); every 400 is text/plain with one of the
document's texts. The fake knows the team's send users, contacts, leads and members
(``add_send_user``, ``add_lead``, ``members``) and answers the documented texts for unknown ones.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import uuid

from providers.schemas import lemlist as schema

from .base import FakeServer, Reply

UNAUTHORIZED = Reply(401, schema.UNAUTHORIZED_TEXT, "text/plain")
GMAIL_HOSTS = ("gmail.com", "googlemail.com")
BANNED_HOSTS = ("localhost", "metadata.google.internal")


def text(status: int, body: str) -> Reply:
    return Reply(status, body, "text/plain")


class FakeLemlist(FakeServer):
    name = "lemlist"
    rate_limit = (20, 2.0)
    idempotency = "none"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.team_ok = True
        self.fail_sending = False  # answer "Failed to send email"
        self.send_users: dict[str, tuple[str, str]] = {}  # sendUserId -> (email, mailboxId)
        self.leads: dict[str, str] = {}  # leadId -> contactId
        self.members = {"usr_owner"}
        self.accounts: dict[str, dict] = {}  # sender_email -> created account

    def add_send_user(self, user_id="usr_FU6yAd3UdBFel0UDy", email="john@example.com", mailbox_id="usm_pmZsNNO1gl5nwCQ07"):
        self.send_users[user_id] = (email, mailbox_id)
        return user_id, email, mailbox_id

    def add_lead(self, contact_id="ctc_ei6zVayP9B2ugwUPN", lead_id="lea_wadZOcDDSFWSbFaCf"):
        self.leads[lead_id] = contact_id
        return contact_id, lead_id

    def common_headers(self):
        return self.rate_headers()

    def check_auth(self, headers):
        auth = headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return UNAUTHORIZED
        try:
            login, _, password = base64.b64decode(auth[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return UNAUTHORIZED
        if login != "" or password != self.api_key:  # "the login is always empty"
            return UNAUTHORIZED
        return None

    def rate_limited_reply(self, retry_after, limit):
        return Reply(429, "Too many requests", "text/plain",
                     headers={"Retry-After": str(retry_after), **self.rate_headers(remaining=0)})

    def error_reply(self, status):
        return text(status, {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error"))

    def handle(self, method, path, headers, body):
        if path not in ("/api/inbox/email", "/api/user/email-accounts"):  # base URL .../api as in servers[0]
            return text(404, "Not found")
        if method != "POST":
            return text(405, "Method not allowed")
        if not headers.get("content-type", "").startswith("application/json"):
            return text(400, "Missing required fields" if path.endswith("email-accounts") else "Invalid sendUserId")
        try:
            data = json.loads(body)
        except ValueError:
            return text(400, "Invalid JSON")
        if path.endswith("/inbox/email"):
            return self.send_email(data)
        return self.connect_account(data)

    def send_email(self, data):
        problems = self.validate(schema.SEND_EMAIL_REQUEST, data)
        if not isinstance(data, dict):
            return text(400, "Invalid sendUserId")
        if not self.team_ok:
            return text(400, "Bad team")
        if not data.get("contactId") or not data.get("leadId"):
            return text(400, "contactId or leadId is required")
        user = self.send_users.get(data.get("sendUserId")) if isinstance(data.get("sendUserId"), str) else None
        if user is None:
            return text(400, "Invalid sendUserId")
        if data.get("sendUserEmail") != user[0]:
            return text(400, "Invalid sendUserEmail")
        if data.get("sendUserMailboxId") != user[1]:
            return text(400, "Invalid sendUserMailboxId")
        lead_id = data["leadId"]
        if not isinstance(lead_id, str) or not lead_id.startswith("lea_"):
            return text(400, "Invalid leadId")
        if self.leads.get(lead_id) != data["contactId"]:
            return text(400, "Lead not found")
        if problems:  # any other break of the documented schema (types, unknown fields)
            return text(400, "Failed to send email")
        if self.fail_sending:
            return text(400, "Failed to send email")
        self.accept(data)
        return Reply(200, {"ok": True})

    def connect_account(self, data):
        problems = self.validate(schema.CONNECT_ACCOUNT_REQUEST, data)
        if not isinstance(data, dict) or any(not data.get(f) for f in schema.CONNECT_ACCOUNT_REQUEST["required"]):
            return text(400, "Missing required fields")
        if not self.team_ok:
            return text(400, "Bad team")
        if problems:
            return text(400, "Missing required fields")
        for host in (data["smtp_host"], data["imap_host"]):
            if _invalid_host(host):
                return text(400, "Invalid host")
        if "userId" in data and data["userId"] not in self.members:
            return Reply(403, schema.CONNECT_ACCOUNT_403_TEXT, "text/plain")
        email = data["sender_email"].lower()
        if email in self.accounts:
            return text(400, "This SMTP mailbox already exists")
        account = {"id": "umx_" + uuid.uuid4().hex[:18].upper(), "email": data["sender_email"], "provider": "custom"}
        self.accounts[email] = {**data, "id": account["id"]}
        self.accept({"connect_account": data})
        return Reply(201, account)


def _invalid_host(host: str) -> bool:
    """Banned hosts, Gmail (OAuth only) and SSRF targets (IP literals that are not public)."""
    lowered = host.lower().rstrip(".")
    if not lowered or lowered in BANNED_HOSTS or any(lowered == g or lowered.endswith("." + g) for g in GMAIL_HOSTS):
        return True
    try:
        return not ipaddress.ip_address(lowered).is_global
    except ValueError:
        return "." not in lowered
