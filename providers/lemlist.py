"""lemlist: send from a lemlist mailbox, and connect an SMTP/IMAP account to the team.

Sources: the lemlist API reference (https://developer.lemlist.com, index
https://developer.lemlist.com/llms.txt), pages "Send Email" (``POST https://api.lemlist.com/api/inbox/email``)
and "Connect Email Account" (``POST https://api.lemlist.com/api/user/email-accounts``).
Auth: HTTP Basic with an empty login and the API key as password.
Rate limit: 20 requests per 2 s per API key (Retry-After, X-RateLimit-* headers). 400 bodies
are text/plain. No idempotency key: a lost response is reported as ``outcome_unknown``, not retried.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any

import requests

from .base import Capabilities, OutgoingMessage, SendResult
from .config import EMAIL, MailboxConfig, setting
from .errors import (
    AuthenticationFailed,
    ConfigurationError,
    InvalidRequest,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
)
from .http import ErrorAnswer, HttpProvider, HttpRequest, response_json
from .ratelimit import RateLimit
from .schemas import lemlist as schema
from .base import ExternalIdKind

# Send Email 400 texts → (error class, field). "Failed to send email" means lemlist's mailbox
# could not send (nothing went out), so it is retried with backoff.
_SEND_400: dict[str, tuple[type[ProviderError], str]] = {
    "Bad team": (PermissionDenied, ""),
    "Invalid sendUserId": (InvalidRequest, "lemlist_send_user_id"),
    "Invalid sendUserEmail": (InvalidRequest, "lemlist_send_user_email"),
    "Invalid sendUserMailboxId": (InvalidRequest, "lemlist_send_user_mailbox_id"),
    "contactId or leadId is required": (InvalidRequest, "lemlist_contact_id"),
    "Invalid leadId": (InvalidRequest, "lemlist_lead_id"),
    "Lead not found": (InvalidRequest, "lemlist_lead_id"),
    "Failed to send email": (ProviderUnavailable, ""),
}

#: Connect Email Account 400 texts → the connect form's field.
CONNECT_400_FIELDS: dict[str, str] = {
    "Bad team": "__all__",
    "Missing required fields": "__all__",
    "Invalid host": "smtp_host",
    "This SMTP mailbox already exists": "sender_email",
}


def _text_to_html(text: str) -> str:
    """Plain text as minimal HTML (the document's ``message`` is HTML)."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs) or "<p></p>"


@dataclass(frozen=True)
class ConnectedAccount:
    """lemlist's 201 answer to Connect Email Account: ``id`` (e.g. "umx_…"), ``email``, ``provider`` ("custom")."""

    id: str
    email: str
    provider: str
    raw: dict


@dataclass(frozen=True)
class LemlistConfig(MailboxConfig):
    """The sender of "Send Email": all three ids are required by the document."""

    prefix = "lemlist_"
    send_user_id: str = setting("lemlist sendUserId", required=True, max_length=100,
                                help="The lemlist user who sends, e.g. usr_FU6yAd3UdBFel0UDy.")
    send_user_email: str = setting("lemlist sendUserEmail", kind=EMAIL, required=True,
                                   help="That user's sending address at lemlist.")
    send_user_mailbox_id: str = setting("lemlist sendUserMailboxId", required=True, max_length=100,
                                        help="The lemlist mailbox it sends from, e.g. usm_pmZsNNO1gl5nwCQ07.")


class LemlistProvider(HttpProvider):
    """lemlist "Send Email". Needs the mailbox's sendUserId, sendUserEmail and
    sendUserMailboxId, and the contact's contactId and the lead's leadId (all required by the document)."""

    external_id_kinds = (ExternalIdKind("contact", "contactId"), ExternalIdKind("lead", "leadId"))
    name = "lemlist"
    label = "lemlist"
    default_base_url = schema.DEFAULT_BASE_URL
    config_class = LemlistConfig
    rate_limit = RateLimit(requests=20, period=2.0)
    # The document's body: one contact (contactId/leadId), subject, HTML message, cc. Nothing else.
    capabilities = Capabilities(bcc=False, multiple_recipients=False, attachments=False, text=False, reply_to=False)

    @classmethod
    def for_account(cls, account: Any) -> "LemlistProvider":
        """A client for account-level calls (connect account) from a ProviderAccount."""
        return cls(api_key=account.api_key, base_url=account.base_url)

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Basic base64(":" + api_key)`` — the login is always empty ("Send Email", Authentication)."""
        token = base64.b64encode(f":{self.api_key}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def check_vendor_ids(self, message: OutgoingMessage) -> None:
        self.require(self.config.send_user_id, "mailbox's lemlist sendUserId", code="lemlist_send_user_id")
        self.require(self.config.send_user_email, "mailbox's lemlist sendUserEmail", code="lemlist_send_user_email")
        self.require(self.config.send_user_mailbox_id, "mailbox's lemlist sendUserMailboxId", code="lemlist_send_user_mailbox_id")
        self.require(message.vendor_ids.get("lemlist_contact_id", ""), "contact's lemlist contactId", code="lemlist_contact_id")
        self.require(message.vendor_ids.get("lemlist_lead_id", ""), "lead's lemlist leadId", code="lemlist_lead_id")

    def build_request(self, message: OutgoingMessage) -> HttpRequest:
        body = {
            "sendUserId": self.config.send_user_id,
            "sendUserEmail": self.config.send_user_email,
            "sendUserMailboxId": self.config.send_user_mailbox_id,
            "contactId": message.vendor_ids["lemlist_contact_id"],
            "leadId": message.vendor_ids["lemlist_lead_id"],
            "subject": message.subject,
            "message": message.html or _text_to_html(message.text),
        }
        if message.cc:
            body["cc"] = [a.email for a in message.cc]
        return HttpRequest(path="/inbox/email", json=body)

    def parse_result(self, response: requests.Response, message: OutgoingMessage) -> SendResult:
        """200 ``{"ok": true}`` (additionalProperties) → status "sent"; lemlist returns no message id and
        its document promises no field, so a body that is not JSON is kept as text, not refused."""
        data = response_json(response)
        return self.send_result(response, data if isinstance(data, dict) else {"body": response.text[:2000]})

    def read_error(self, response: requests.Response) -> tuple[str, str]:
        """lemlist's error bodies are text/plain: the text is both the code and the message."""
        text = response.text.strip()
        return text[:100], text

    def map_error(self, answer: ErrorAnswer) -> ProviderError | ConfigurationError:
        """Every row of "Send Email"'s responses: 400 texts, 401, 405; plus 429/5xx."""
        status, text = answer.status, answer.message
        if status == 400:
            cls, field = _SEND_400.get(text, (InvalidRequest, ""))
            return answer.error(cls, f"lemlist refused the message: {text or 'HTTP 400'}.", field=field)
        if status == 401:
            return answer.error(AuthenticationFailed, f"lemlist refused the API key: {text or 'HTTP 401'}.")
        if status == 405:
            return answer.error(ConfigurationError, "lemlist answered 405 Method not allowed: check the account's base URL.",
                                field="base_url")
        return answer.by_status(f"lemlist answered HTTP {status}: {text[:200]}")

    # --- Connect Email Account ----------------------------------------------------------------

    def connect_account(self, payload: dict[str, Any]) -> ConnectedAccount:
        """POST /user/email-accounts with ``payload`` (the document's fields: sender_name, sender_email,
        smtp_host/port/login/password/secure, imap_host/port/login/password/secure, optional userId).

        Returns ConnectedAccount from the 201 answer. Raises InvalidRequest with ``field`` set to the
        form field (CONNECT_400_FIELDS) for the 400 texts, PermissionDenied for 403, and the usual
        transport errors. Not retried automatically by anyone.
        """
        response = self.call(HttpRequest(path="/user/email-accounts", json=payload), map_error=self.connect_error)
        data = self.json_body(response, required=("id",))
        return ConnectedAccount(id=str(data["id"]), email=str(data.get("email", "")), provider=str(data.get("provider", "")), raw=data)

    def connect_error(self, answer: ErrorAnswer) -> ProviderError | ConfigurationError:
        """"Connect Email Account"'s 400 texts (onto the form's fields) and 403; the rest as :meth:`map_error`."""
        status, text = answer.status, answer.message
        if status == 400:
            if text == "Bad team":
                return answer.error(PermissionDenied, f"lemlist: {text}.")
            return answer.error(InvalidRequest, f"lemlist: {text or 'HTTP 400'}.", field=CONNECT_400_FIELDS.get(text, "__all__"))
        if status == 403:
            return answer.error(PermissionDenied, f"lemlist: {text or 'User is not a member of this team'}.")
        return self.map_error(answer)
