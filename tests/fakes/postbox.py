"""Strict fake of the made-up Postbox provider (tests/providers/postbox_provider.py's document).

Bearer API key (401 otherwise); ``POST /v1/channels/{id}/messages`` only (404 for an unknown
channel); the JSON body must match the document's schema exactly (400 otherwise); optional
Idempotency-Key (a replay answers the first reply); 10 requests per second per key (429 with
Retry-After). Error bodies ``{code, message}``.
"""
from __future__ import annotations

import json
import re
import uuid

from .base import FakeServer, Reply

_PATH = re.compile(r"^/v1/channels/([^/]+)/messages$")


def error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message})


class FakePostbox(FakeServer):
    name = "postbox"
    rate_limit = (10, 1.0)
    idempotency = "optional"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.channels: set[str] = set()

    def add_channel(self, channel_id: str = "chn_1") -> str:
        self.channels.add(channel_id)
        return channel_id

    def check_auth(self, headers):
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return error(401, "unauthorized", "Invalid API key")
        return None

    def rate_limited_reply(self, retry_after, limit):
        return Reply(429, {"code": "rate_limited", "message": "Slow down"}, headers={"Retry-After": str(retry_after)})

    def error_reply(self, status):
        return error(status, "unavailable", f"HTTP {status}")

    def handle(self, method, path, headers, body):
        from tests.providers.postbox_provider import SEND_REQUEST

        match = _PATH.match(path)
        if not match or method != "POST":
            return error(404 if not match else 405, "not_found", "Not found")
        if not headers.get("content-type", "").startswith("application/json"):
            return error(400, "invalid_body", "Send JSON")
        try:
            data = json.loads(body)
        except ValueError:
            return error(400, "invalid_body", "Body is not JSON")
        problems = self.validate(SEND_REQUEST, data)
        if problems:
            return error(400, "invalid_body", "; ".join(problems))
        if match.group(1) not in self.channels:
            return error(404, "channel_not_found", f"No channel {match.group(1)}")
        message_id = "pbx_" + uuid.uuid4().hex
        self.accept({"id": message_id, "channel": match.group(1), **data})
        return Reply(202, {"id": message_id, "status": "accepted"})
