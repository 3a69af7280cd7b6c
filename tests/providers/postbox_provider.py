"""Postbox: a made-up HTTP sending provider, written exactly as a real one would be, to prove
that adding a provider is one module, its registry line, its fake and its contract-test subclass.

The (invented) document: ``POST /v1/channels/{channel_id}/messages`` with a Bearer API key and
a JSON body ``{from, to, subject, html?, text?, priority}``; 202 ``{id, status: "accepted"}``;
errors ``{code, message}``: 400 invalid, 401 bad key, 404 unknown channel, 429 with Retry-After.
Optional ``Idempotency-Key`` header. One recipient, no cc/bcc/attachments.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import requests

from providers.base import Capabilities, OutgoingMessage, SendResult
from providers.config import CHOICE, MailboxConfig, setting
from providers.errors import InvalidRequest, ProviderError
from providers.http import ErrorAnswer, HttpProvider, HttpRequest, response_json
from providers.ratelimit import RateLimit

DEFAULT_BASE_URL = "https://api.postbox.example"

SEND_REQUEST = {
    "type": "object",
    "properties": {
        "from": {"type": "string", "minLength": 3}, "to": {"type": "string", "minLength": 3},
        "subject": {"type": "string", "minLength": 1}, "html": {"type": "string"}, "text": {"type": "string"},
        "priority": {"enum": ["normal", "bulk"]},
    },
    "required": ["from", "to", "subject", "priority"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class PostboxConfig(MailboxConfig):
    """The channel that sends (in the path) and its priority."""

    prefix = "postbox_"
    channel_id: str = setting("Postbox channel id", required=True, max_length=100, help="The id of /v1/channels/{id}/messages.")
    priority: str = setting("Postbox priority", kind=CHOICE, default="normal",
                            choices=(("normal", "Normal"), ("bulk", "Bulk (slower, cheaper)")))


class PostboxProvider(HttpProvider):
    """Postbox Send a message. Needs the mailbox's channel id."""

    name = "postbox"
    label = "Postbox"
    default_base_url = DEFAULT_BASE_URL
    config_class = PostboxConfig
    rate_limit = RateLimit(requests=5, period=1.0)
    capabilities = Capabilities(cc=False, bcc=False, multiple_recipients=False, attachments=False, reply_to=False,
                                idempotent=True)

    def build_request(self, message: OutgoingMessage) -> HttpRequest:
        body = {"from": message.sender.formatted(), "to": message.to[0].email, "subject": message.subject,
                "priority": self.config.priority}
        if message.html:
            body["html"] = message.html
        if message.text:
            body["text"] = message.text
        return HttpRequest(path=f"/v1/channels/{quote(self.config.channel_id, safe='')}/messages", json=body)

    def parse_result(self, response: requests.Response, message: OutgoingMessage) -> SendResult:
        """202 ``{id, status: "accepted"}`` → queued."""
        data = self.json_body(response, required=("id",))
        return self.send_result(response, data, message_id=data["id"], status=data.get("status"),
                                statuses={"accepted": "queued"})

    def read_error(self, response: requests.Response) -> tuple[str, str]:
        body = response_json(response)
        body = body if isinstance(body, dict) else {}
        return str(body.get("code", "")), str(body.get("message", ""))

    def map_error(self, answer: ErrorAnswer) -> ProviderError:
        """Every error row: 400, 401, 404 (unknown channel), 429; plus 5xx."""
        if answer.status == 404:
            return answer.error(InvalidRequest, f"Postbox: unknown channel ({answer.message}).", field="postbox_channel_id")
        return answer.by_status(f"Postbox answered HTTP {answer.status}: {answer.message}")
