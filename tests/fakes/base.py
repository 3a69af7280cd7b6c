"""The shared machinery of the strict fake servers.

A :class:`FakeServer` is a ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a daemon thread.
Each request goes through :meth:`FakeServer.dispatch`:

1. recorded in ``requests`` (method, path, headers, raw body);
2. an injected fault, if queued (``fail_next``), answers instead — the request is not processed;
3. ``check_auth`` (subclass), then the rate limit (moving window per API key, 429 with
   Retry-After and X-RateLimit-*; refused requests do not count);
4. idempotency (``idempotency`` = "optional" | "required" | "none"): same key and same body →
   the stored answer replayed, no second message; same key, other body → ``conflict_reply``;
5. ``handle`` (subclass) validates against the document and calls :meth:`accept` to deliver;
6. an injected delay (``delay_next_response``) holds the answer after the message was accepted,
   to simulate a response lost to the client's read timeout.

``messages`` holds every accepted delivery; ``schema_violations`` every body that broke the
document's schema (tests assert it stays empty for what our providers send).
"""
from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from providers.schemas import validation_errors


@dataclass
class Reply:
    """An HTTP answer. ``body``: dict/list → JSON, str → text (``content_type`` decides the header)."""

    status: int
    body: Any = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode()
        if isinstance(self.body, str):
            return self.body.encode()
        return self.body or b""


@dataclass
class RecordedRequest:
    """One request as it arrived: ``headers`` keeps the sender's header names; ``body`` raw bytes."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    at: float = field(default_factory=time.monotonic)  # arrival, time.monotonic() seconds

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FormPart:
    """One multipart/form-data part: ``filename`` is None for a plain field."""

    name: str
    value: bytes
    filename: str | None
    content_type: str

    @property
    def text(self) -> str:
        return self.value.decode("utf-8")


def parse_multipart(content_type: str, body: bytes) -> list[FormPart] | None:
    """Parse a multipart/form-data body; None when it is not well-formed multipart/form-data."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        return None
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        return None
    parts = []
    for part in message.iter_parts():
        disposition = part.get("Content-Disposition", "")
        if not str(disposition).startswith("form-data"):
            return None
        name = part.get_param("name", header="content-disposition")
        if not name:
            return None
        parts.append(FormPart(name=name, value=part.get_payload(decode=True) or b"",
                              filename=part.get_param("filename", header="content-disposition"),
                              content_type=part.get_content_type()))
    return parts


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections close after this many seconds

    def log_message(self, format, *args):  # quiet
        pass

    def _serve(self):
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding"):
            reply, delay = Reply(411, "Length Required", "text/plain"), 0.0
        else:
            body = self.rfile.read(length) if length else b""
            reply, delay = fake.dispatch(self.command, self.path, dict(self.headers.items()), body)
        payload = reply.encoded()
        if delay:
            time.sleep(delay)
        try:
            self.send_response(reply.status)
            if payload or reply.status != 204:
                self.send_header("Content-Type", reply.content_type + ("; charset=utf-8" if reply.content_type.startswith("text/") else ""))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class FakeServer:
    """Base of the fakes. Subclasses set ``name``, ``rate_limit`` ((requests, seconds) or None),
    ``idempotency`` and write :meth:`check_auth`, :meth:`handle` and the documented replies."""

    name = "fake"
    rate_limit: tuple[int, float] | None = None
    idempotency = "none"  # "none" | "optional" | "required"

    def __init__(self, *, api_key: str | None = None, rate_limit: tuple[int, float] | None | str = "default"):
        self.api_key = api_key or self.make_api_key()
        if rate_limit != "default":
            self.rate_limit = rate_limit  # type: ignore[assignment]
        self.lock = threading.RLock()  # rate_limited_reply → rate_headers takes it again inside _rate_limit
        self.requests: list[RecordedRequest] = []
        self.messages: list[dict[str, Any]] = []
        self.schema_violations: list[str] = []
        self.rate_limited = 0
        self._hits: dict[str, deque] = {}
        self._faults: deque[Reply] = deque()
        self._delays: deque[float] = deque()
        self._idempotent: dict[str, tuple[str, Reply]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def make_api_key() -> str:
        return "key_" + uuid.uuid4().hex

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> "FakeServer":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        assert self._server, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- test controls ----------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 503, reply: Reply | None = None) -> None:
        """Answer the next ``count`` requests with ``reply`` (default: this fake's documented
        error for ``status``) before processing them: nothing is delivered."""
        with self.lock:
            for _ in range(count):
                self._faults.append(reply or self.error_reply(status))

    def delay_next_response(self, seconds: float, count: int = 1) -> None:
        """Accept the next ``count`` requests normally but hold each answer ``seconds`` (a lost response)."""
        with self.lock:
            self._delays.extend([seconds] * count)

    def statuses(self) -> list[int]:
        return [r.status for r in self.requests]

    # --- the pipeline -----------------------------------------------------------------------

    def dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[Reply, float]:
        recorded = RecordedRequest(method, path, headers, body)
        with self.lock:
            self.requests.append(recorded)
            fault = self._faults.popleft() if self._faults else None
        reply, delay = (fault, 0.0) if fault else self._process(method, path, headers, body)
        reply.headers = {**self.common_headers(), **reply.headers}
        recorded.status = reply.status
        return reply, delay

    def _process(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[Reply, float]:
        lowered = {k.lower(): v for k, v in headers.items()}
        refused = self.check_auth(lowered)
        if refused:
            return refused, 0.0
        limited = self._rate_limit(self.api_key)
        if limited:
            return limited, 0.0
        key = lowered.get("idempotency-key")
        digest = hashlib.sha256(method.encode() + path.encode() + self.canonical_body(lowered, body)).hexdigest()
        if self.idempotency != "none" and key:
            with self.lock:
                stored = self._idempotent.get(key)
            if stored:
                if stored[0] == digest:
                    return self.replayed(stored[1]), 0.0
                return self.conflict_reply(), 0.0
        elif self.idempotency == "required" and method == "POST":
            return self.missing_key_reply(), 0.0
        reply = self.handle(method, path, lowered, body)
        if self.idempotency != "none" and key and 200 <= reply.status < 300:
            with self.lock:
                self._idempotent[key] = (digest, reply)
        delay = 0.0
        if 200 <= reply.status < 300:
            with self.lock:
                delay = self._delays.popleft() if self._delays else 0.0
        return reply, delay

    def canonical_body(self, headers: dict[str, str], body: bytes) -> bytes:
        """What "the same payload" means for idempotency (multipart boundaries differ between tries)."""
        return body

    def replayed(self, reply: Reply) -> Reply:
        return Reply(reply.status, reply.body, reply.content_type, dict(reply.headers))

    def _rate_limit(self, api_key: str) -> Reply | None:
        if not self.rate_limit:
            return None
        limit, period = self.rate_limit
        now = time.monotonic()
        with self.lock:
            hits = self._hits.setdefault(api_key, deque())
            while hits and hits[0] <= now - period:
                hits.popleft()
            if len(hits) >= limit:
                retry_after = max(1, math.ceil(hits[0] + period - now))
                self.rate_limited += 1
                return self.rate_limited_reply(retry_after, limit)
            hits.append(now)
        return None

    def accept(self, message: dict[str, Any]) -> None:
        """Record one delivered message."""
        with self.lock:
            self.messages.append(message)

    def validate(self, schema: dict, instance: Any) -> list[str]:
        """Validate against the document's schema; violations are also kept in ``schema_violations``."""
        problems = validation_errors(schema, instance)
        if problems:
            with self.lock:
                self.schema_violations.extend(problems)
        return problems

    # --- per provider -----------------------------------------------------------------------

    def common_headers(self) -> dict[str, str]:
        return {}

    def check_auth(self, headers: dict[str, str]) -> Reply | None:
        raise NotImplementedError

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def error_reply(self, status: int) -> Reply:
        return Reply(status, {"error": "injected", "message": f"HTTP {status}"})

    def rate_limited_reply(self, retry_after: int, limit: int) -> Reply:
        return Reply(429, {"error": "rate_limited"}, headers={"Retry-After": str(retry_after)})

    def conflict_reply(self) -> Reply:
        return Reply(409, {"error": "idempotency_conflict"})

    def missing_key_reply(self) -> Reply:
        return Reply(400, {"error": "missing_idempotency_key"})

    def rate_headers(self, remaining: int | None = None) -> dict[str, str]:
        """X-RateLimit-* for the current window (Reset as the document's JS date string)."""
        if not self.rate_limit:
            return {}
        limit, period = self.rate_limit
        now = time.monotonic()
        with self.lock:
            hits = [h for h in self._hits.get(self.api_key, ()) if h > now - period]
        reset = time.time() + (hits[0] + period - now if hits else period)
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(limit - len(hits), 0) if remaining is None else remaining),
            "X-RateLimit-Reset": time.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", time.gmtime(reset)),
        }
