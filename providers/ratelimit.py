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
- A caller that wakes up more than :func:`late_tolerance` after its slot (its process was
  paused: a garbage collection, a long call holding the GIL, a busy machine) gives that slot up
  and takes the next free one: sent late, it would go out together with the callers after it,
  who keep the pace, and a strict server counts more than its limit in one window (measured: a
  0.3 s pause every 1.3 s in the sending process gave 4–8 × 429 per 100 lemlist sends; none now).
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


def late_tolerance(limit: RateLimit, interval: float) -> float:
    """How late (seconds) after its slot a request may still go out: half of what the margin
    leaves, ``((requests - 1) × interval - period) / 2`` (lemlist's 20 per 2 s with the default 10 %
    margin: (19 × 0.11 − 2) / 2 = 45 ms), 0 without a margin (no lateness check then).

    Requests sent within ``tolerance`` of slots ``interval`` apart put, in any ``period`` window,
    the requests of slots spanning ``period + tolerance``: fewer than ``requests - 1`` intervals, so
    at most ``requests - 1`` of them, which leaves room for one request the server itself counts
    late (its own processing, the network)."""
    return max(((limit.requests - 1) * interval - limit.period) / 2, 0.0)


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

    #: Slots given up in a row (the caller woke too late each time) before acquire() gives up.
    MAX_LATE_SLOTS = 10

    def acquire(self, *, key: str, limit: RateLimit, provider: str = "") -> float:
        """Block until this caller may send one request under ``limit``. Returns seconds waited.

        A caller that wakes up later than :func:`late_tolerance` after its slot (the process or
        thread was descheduled during the sleep, e.g. on a loaded machine) does not use it: its
        request would go out together with the callers whose slots come next, which keep their
        pace, and a window starting at that late request would hold more than the limit (the
        cause of the 429s a strict server gave under load). It gives the slot up and reserves
        the next free one instead.

        Raises RateLimited(retry_after=seconds) without waiting when the queue ahead is longer
        than settings.OUTREACH_RATE_LIMIT_MAX_WAIT seconds, or after ``MAX_LATE_SLOTS`` slots
        missed in a row (the process is too slow to keep the pace; the send is re-queued).
        """
        interval = limit.interval(settings.OUTREACH_RATE_LIMIT_MARGIN)
        max_wait = float(settings.OUTREACH_RATE_LIMIT_MAX_WAIT)
        tolerance = late_tolerance(limit, interval)
        waited = 0.0
        for _attempt in range(self.MAX_LATE_SLOTS):
            wait = self.reserve(key, interval, max_wait)
            if wait < 0:
                raise RateLimited(
                    f"Rate limit of {limit.requests} requests per {limit.period:g} s is fully booked for the next "
                    f"{-wait:.0f} s; will retry.", provider=provider, reason="local_rate_limit", retry_after=-wait)
            slot = time.monotonic() + wait  # no earlier than the limiter's slot: lateness is never overstated
            if wait > 0:
                time.sleep(wait)
            late = time.monotonic() - slot
            waited += max(wait, 0.0) + max(late, 0.0)
            if late <= tolerance or tolerance <= 0:
                return waited
            logger.debug("Rate limiter %s: woke %.0f ms after its slot (tolerance %.0f ms); taking the next one.",
                        key, late * 1000, tolerance * 1000)
        raise RateLimited(f"This process missed {self.MAX_LATE_SLOTS} rate-limit slots in a row (it is too busy to "
                          "keep the pace); will retry.", provider=provider, reason="local_rate_limit",
                          retry_after=limit.period)


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
