"""Strict fake provider servers: real HTTP on 127.0.0.1 that reject whatever each document rejects.

One module per provider (``lemlist``, ``leadlex``, ``openmail``, ``unipile``) on a shared base
(``base.FakeServer``): auth, schema validation of every body (schemas from ``providers.schemas``,
transcribed from the seed documents), documented error bodies, rate limits with Retry-After and
X-RateLimit-*, idempotent replay / 409, recorded deliveries and fault injection.
"""
