"""One rate limiter per provider API key, shared by every Celery worker and process.

Why not a moving window (``limits``)? We measured 2–9 × 429 per 100 calls from a strict
20 req / 2 s server with a Redis moving window across 12 processes: a window admits a burst of
20 at its edge, and the server's clock and request arrival times are not the limiter's.
This limiter *spaces* requests instead (a GCRA / leaky bucket without burst): every caller
reserves the next free slot, slots are ``period / requests × (1 + margin)`` seconds apart, and
one clock decides (Redis ``TIME`` when shared), so any window the server looks at holds fewer
requests than its limit even with some network jitter.

- Redis-backed (one atomic Lua script) when ``settings.REDIS_URL`` is set; an in-process,
  thread-safe fallback otherwise (the embedded single-worker default).
- A 429's Retry-After is pushed into the limiter with :meth:`RateLimiter.block`, so every
  process holding the same key waits, not only the one that was refused.
- A caller that would have to wait longer than ``settings.OUTREACH_RATE_LIMIT_MAX_WAIT`` seconds
  does not reserve a slot: :class:`providers.errors.RateLimited` is raised with that wait as
  ``retry_after``, and the send pipeline re-queues the message instead of holding a worker.

Keys are a SHA-256 prefix of the API key, never the key itself.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from .errors import RateLimited

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """A documented limit: ``requests`` per ``period`` seconds (e.g. lemlist 20 per 2.0)."""

    requests: int
    period: float

    def interval(self, margin: float) -> float:
        """Seconds between two slots, ``margin`` (e.g. 0.1 = 10 %) slower than the documented pace."""
        return self.period / self.requests * (1.0 + margin)


def limiter_key(provider: str, api_key: str) -> str:
    """The shared key of one provider API key: ``outreach:ratelimit:<provider>:<sha256[:24]>``."""
    digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:24]
    return f"outreach:ratelimit:{provider}:{digest}"


# Reserve the next slot. KEYS[1] = key; ARGV = interval, max_wait (seconds, float strings).
# The stored value is the next free slot time ("theoretical arrival time") in seconds on Redis' clock.
# Returns the wait (seconds, as a string) before the reserved slot, or "-<wait>" when it would exceed max_wait.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat, now)
local wait = slot - now
if wait > max_wait then
  return '-' .. tostring(wait)
end
local ttl = math.ceil((slot + interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', ttl)
return tostring(wait)
"""

# Push the next free slot to now + seconds (never earlier than it already is).
_BLOCK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > tat then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""


class RateLimiter:
    """Paces calls for one limiter key. Use :func:`get_limiter`; do not build directly."""

    def reserve(self, key: str, interval: float, max_wait: float) -> float:
        """Reserve the next slot; return seconds to wait before using it, or a negative number
        (minus the wait) when the wait would exceed ``max_wait`` (nothing reserved then)."""
        raise NotImplementedError

    def block(self, key: str, seconds: float) -> None:
        """No slot for ``key`` before ``seconds`` from now (a 429's Retry-After)."""
        raise NotImplementedError

    def acquire(self, *, key: str, limit: RateLimit, provider: str = "") -> float:
        """Block until this caller may send one request under ``limit``. Returns seconds waited.

        Raises RateLimited(retry_after=seconds) without waiting when the queue ahead is longer
        than settings.OUTREACH_RATE_LIMIT_MAX_WAIT seconds.
        """
        interval = limit.interval(settings.OUTREACH_RATE_LIMIT_MARGIN)
        max_wait = float(settings.OUTREACH_RATE_LIMIT_MAX_WAIT)
        wait = self.reserve(key, interval, max_wait)
        if wait < 0:
            raise RateLimited(
                f"Rate limit of {limit.requests} requests per {limit.period:g} s is fully booked for the next "
                f"{-wait:.0f} s; will retry.", provider=provider, reason="local_rate_limit", retry_after=-wait)
        if wait > 0:
            time.sleep(wait)
        return wait


class LocalRateLimiter(RateLimiter):
    """In-process limiter (threads of one process share it). Uses ``time.monotonic``."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}

    def reserve(self, key: str, interval: float, max_wait: float) -> float:
        with self._lock:
            now = time.monotonic()
            slot = max(self._tat.get(key, 0.0), now)
            wait = slot - now
            if wait > max_wait:
                return -wait
            self._tat[key] = slot + interval
            return wait

    def block(self, key: str, seconds: float) -> None:
        with self._lock:
            self._tat[key] = max(self._tat.get(key, 0.0), time.monotonic() + seconds)

    def reset(self) -> None:
        """Forget every reservation (tests)."""
        with self._lock:
            self._tat.clear()


class RedisRateLimiter(RateLimiter):
    """Limiter shared through Redis; one clock (Redis ``TIME``) for every process."""

    def __init__(self, url: str):
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._reserve = self._client.register_script(_RESERVE_LUA)
        self._block = self._client.register_script(_BLOCK_LUA)

    def reserve(self, key: str, interval: float, max_wait: float) -> float:
        value = self._reserve(keys=[key], args=[repr(interval), repr(max_wait)])
        return float(value.decode() if isinstance(value, bytes) else value)

    def block(self, key: str, seconds: float) -> None:
        self._block(keys=[key], args=[repr(float(seconds))])


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def get_limiter() -> RateLimiter:
    """The process' limiter: Redis-backed when settings.REDIS_URL is set, else in-process.

    Cached per URL, so a test changing REDIS_URL gets a matching limiter.
    """
    url = getattr(settings, "REDIS_URL", "") or ""
    with _limiters_lock:
        limiter = _limiters.get(url)
        if limiter is None:
            limiter = RedisRateLimiter(url) if url else LocalRateLimiter()
            _limiters[url] = limiter
        return limiter
