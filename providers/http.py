"""Shared base of the HTTP API providers (lemlist, leadlex, OpenMail, Unipile).

Like django-anymail's ``AnymailRequestsBackend``, :class:`HttpProvider` runs every send the
same way and a concrete provider writes only its small steps::

    send(message)
      check_supported(message)          capabilities by feature (base.py), before any HTTP
      config.check()                    the declared mailbox settings (providers/config.py)
      check_vendor_ids(message)         ConfigurationError naming the missing id, before any HTTP
      build_request(message)            -> HttpRequest (path, json | data + files, extra headers)
      call(request, idempotency_key)    rate limiter, session, timeouts, Idempotency-Key,
                                        transport errors; an error status ->
                                        read_error(response) -> (vendor code, message),
                                        map_error(ErrorAnswer) -> the normalized error
      parse_result(response)            json_body(response, required=...) raises BadResponse,
                                        send_result(...) -> SendResult

What the base owns: one ``requests.Session`` per account and thread; connect and read timeouts
(settings.OUTREACH_HTTP_CONNECT_TIMEOUT / OUTREACH_HTTP_READ_TIMEOUT, seconds); the user agent;
one shared rate limiter per API key (:mod:`providers.ratelimit`); the Idempotency-Key header
where the document supports it (``capabilities.idempotent``); Retry-After parsing; the error
helpers (:class:`ErrorAnswer`, :class:`providers.errors.BadResponse`); and the base URL check (the document's
server by default, overridable per ProviderAccount.base_url, refused when it points at a
private or loopback address unless settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS).
"""
from __future__ import annotations

import base64
import datetime
import email.utils
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, TypeVar
from urllib.parse import urlsplit

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .base import OutgoingMessage, Provider, SendResult
from .errors import (
    AuthenticationFailed,
    BadResponse,
    ConfigurationError,
    IdempotencyConflict,
    InvalidRequest,
    OutcomeUnknown,
    PermissionDenied,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TransientProviderError,
)
from .netguard import address_problem
from .ratelimit import RateLimit, get_limiter, limiter_key

logger = logging.getLogger(__name__)

USER_AGENT = "Outreach/1.0 (+https://github.com/; python-requests)"

ErrorType = TypeVar("ErrorType", ProviderError, ConfigurationError)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header value (RFC 9110: delay-seconds or an HTTP-date).

    Returns a float >= 0, or None when the header is absent or unparsable.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def parse_rate_limit_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds until an X-RateLimit-Reset value: epoch seconds, delta seconds (small numbers), an HTTP date,
    or lemlist's JavaScript date string ("Tue Feb 16 2021 09:02:42 GMT+0100 (Central European Standard Time)").
    Returns a float >= 0, or None when absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    now = time.time() if now is None else now
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return max(number - now, 0.0) if number > 1e9 else max(number, 0.0)
    text = value.split(" (", 1)[0]  # drop the zone's name in parentheses
    for fmt in ("%a %b %d %Y %H:%M:%S GMT%z", "%a, %d %b %Y %H:%M:%S %Z"):
        try:
            when = datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return max(when.timestamp() - now, 0.0)
    return parse_retry_after(value, now=now)


@dataclass
class HttpRequest:
    """One request a provider wants made. ``path`` is appended to the base URL.

    Exactly one of ``json`` (a JSON body) or ``data``/``files`` (multipart/form-data, as
    requests takes them: ``data`` a list of (name, str) pairs, ``files`` a list of
    (name, (filename, bytes, content_type))) is used.
    """

    path: str
    method: str = "POST"
    json: Any = None
    data: list[tuple[str, str]] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


_sessions = threading.local()


def _session_for(key: tuple) -> requests.Session:
    """One requests.Session per (provider, base URL, API key digest) and thread (Sessions are not thread-safe)."""
    cache = getattr(_sessions, "cache", None)
    if cache is None:
        cache = _sessions.cache = {}
    session = cache.get(key)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        session.trust_env = False  # never route provider traffic through an environment proxy by surprise
        cache[key] = session
    return session


def check_base_url(url: str, *, provider: str) -> str:
    """Validate a provider base URL; returns it without a trailing slash.

    Raises ConfigurationError (``field`` "base_url") for a non-http(s) URL, credentials in the URL,
    an unresolvable host, or a host resolving to a private/loopback/metadata address (allowed for
    private/loopback only with settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS).
    """
    def refused(text: str) -> ConfigurationError:
        return ConfigurationError(f"{provider} base URL {text}", provider=provider, field="base_url")

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refused(f"{url!r} must be an http(s) URL.")
    if parts.username or parts.password:
        raise refused("must not contain credentials.")
    allow_private = settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS
    if parts.scheme == "http" and not allow_private:
        raise refused("must use https.")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise refused(f"host {parts.hostname} could not be resolved.") from err
    for address in dict.fromkeys(info[4][0] for info in infos):
        problem = address_problem(address, allow_private=allow_private)
        if problem:
            raise refused(f"host {parts.hostname} is {problem}.")
    return url.rstrip("/")


def status_error_class(status: int) -> type[ProviderError]:
    """The generic status → normalized error class, used where a document says no more.

    400/404/422 → InvalidRequest, 401 → AuthenticationFailed, 403 → PermissionDenied,
    409 → IdempotencyConflict, 429 → RateLimited, 504 → ProviderTimeout, other 5xx →
    ProviderUnavailable, anything else → ProviderError (permanent).
    """
    by_status = {401: AuthenticationFailed, 403: PermissionDenied, 409: IdempotencyConflict, 429: RateLimited,
                 504: ProviderTimeout, 400: InvalidRequest, 404: InvalidRequest, 422: InvalidRequest}
    return by_status.get(status) or (ProviderUnavailable if status >= 500 else ProviderError)


@dataclass(frozen=True)
class ErrorAnswer:
    """One error response (status >= 400) and what the vendor said in it: ``code`` and ``message``
    as the provider's :meth:`HttpProvider.read_error` found them in the body, ``retry_after``
    seconds from the Retry-After header. :meth:`error` builds the normalized error that keeps them,
    so a provider's ``map_error`` only chooses the class, the human text and the field."""

    provider: str
    response: requests.Response
    code: str = ""
    message: str = ""
    retry_after: float | None = None

    @property
    def status(self) -> int:
        return self.response.status_code

    def error(self, cls: type[ErrorType], text: str, *, field: str = "") -> ErrorType:
        """``cls(text)`` carrying the provider, status, the vendor's code and message, the body and
        ``field``; transient classes also get ``retry_after``."""
        extra: dict[str, Any] = {"retry_after": self.retry_after} if issubclass(cls, TransientProviderError) else {}
        return cls(text, provider=self.provider, status=self.status, provider_code=self.code,
                   provider_message=self.message, body=self.response.text, field=field, **extra)

    def by_status(self, text: str, *, field: str = "") -> ProviderError:
        """:meth:`error` with the class :func:`status_error_class` gives for the status."""
        return self.error(status_error_class(self.status), text, field=field)


def response_json(response: requests.Response) -> Any:
    """The response's JSON body, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


class HttpProvider(Provider):
    """Base for HTTP API providers. Subclasses set the class attributes and write
    ``config_class`` (what it needs from a mailbox; ``from_mailbox`` is the base's), :meth:`auth_headers`,
    :meth:`check_vendor_ids` (contact/lead ids), :meth:`build_request`, :meth:`parse_result`,
    :meth:`read_error` and :meth:`map_error`.

    Class attributes: ``default_base_url`` (the document's server), ``auth_header`` /
    ``auth_format`` (how the API key travels; Bearer by default), ``rate_limit``
    (:class:`providers.ratelimit.RateLimit`), ``capabilities`` — whose ``idempotent`` flag (the
    document supports an Idempotency-Key and deduplicates on it) also decides whether the
    ``Idempotency-Key`` header is sent: one flag, so the two can never disagree.
    """

    default_base_url: ClassVar[str]
    rate_limit: ClassVar[RateLimit]

    def __init__(self, *, api_key: str, base_url: str = "", config: Any = None):
        """``config``: an instance of the provider's ``config_class`` (None = its defaults)."""
        self.config = config if config is not None else self.config_class()
        if not api_key:
            raise ConfigurationError(f"The {self.label} provider account has no API key.", provider=self.name, field="api_key")
        self.api_key = api_key
        self.base_url = check_base_url(base_url or self.default_base_url, provider=self.name)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # --- helpers for from_mailbox ------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Any, *, mailbox: Any) -> "HttpProvider":
        """The provider with ``config`` and the key and base URL of the mailbox's provider account."""
        account = cls.account_of(mailbox)
        return cls(api_key=account.api_key, base_url=account.base_url, config=config)

    @classmethod
    def account_of(cls, mailbox: Any) -> Any:
        """The mailbox's ProviderAccount (read by attribute). Raises ConfigurationError when it is
        missing or belongs to another provider."""
        account = getattr(mailbox, "provider_account", None)
        if account is None:
            raise ConfigurationError(f"Mailbox {mailbox} has no {cls.label} provider account.",
                                     provider=cls.name, field="provider_account")
        if account.provider != cls.name:
            raise ConfigurationError(f"Mailbox {mailbox} is bound to a {account.provider} account, not {cls.label}.",
                                     provider=cls.name, field="provider_account")
        return account

    @classmethod
    def require(cls, value: str, what: str, *, code: str) -> str:
        """Return ``value`` or raise ConfigurationError("… is missing <what>") whose ``field`` is ``code``."""
        if not value:
            raise ConfigurationError(f"Cannot send through {cls.label}: the {what} is missing.", provider=cls.name, field=code)
        return value

    # --- the send skeleton --------------------------------------------------------------------

    def prepare(self, message: OutgoingMessage) -> bytes:
        """Checks and build: the request as JSON bytes (:func:`encode_request`), stored by the pipeline and
        sent verbatim on every retry, so an edit to the contact between attempts cannot change it."""
        self.check_supported(message)
        self.config.check(provider=self.name, provider_label=self.label)  # the declared mailbox settings
        self.check_vendor_ids(message)
        return encode_request(self.build_request(message))

    def deliver(self, prepared: bytes, message: OutgoingMessage, *, on_handover: Callable[[], None],
                idle: Callable[[], None] | None = None) -> SendResult:
        """Call the stored request (``on_handover()`` just before it goes out) and parse the answer.
        Returns a SendResult; raises ProviderError subclasses (see :meth:`call`). ``idle`` is not called
        (requests gives no moment between writing the request and reading the answer)."""
        response = self.call(decode_request(prepared), idempotency_key=message.idempotency_key, on_handover=on_handover)
        return self.parse_result(response, message)

    def check_vendor_ids(self, message: OutgoingMessage) -> None:
        """Raise ConfigurationError naming the first vendor id the document requires and ``message`` lacks."""

    #: How the API key travels, as the document prescribes: header ``auth_header`` with the value
    #: ``auth_format`` (``{key}`` is the key). The default is a Bearer token (leadlex, OpenMail).
    auth_header: ClassVar[str] = "Authorization"
    auth_format: ClassVar[str] = "Bearer {key}"

    def auth_headers(self) -> dict[str, str]:
        """Authentication headers as the document prescribes ({:attr:`auth_header`: :attr:`auth_format`})."""
        return {self.auth_header: self.auth_format.format(key=self.api_key)}

    def build_request(self, message: OutgoingMessage) -> HttpRequest:
        raise NotImplementedError

    def parse_result(self, response: requests.Response, message: OutgoingMessage) -> SendResult:
        raise NotImplementedError

    def read_error(self, response: requests.Response) -> tuple[str, str]:
        """(the vendor's code, the vendor's message) from an error response's body, as the document
        shapes it; ('', '') when it says nothing readable."""
        return "", ""

    def map_error(self, answer: ErrorAnswer) -> ProviderError | ConfigurationError:
        """Turn an error answer into a normalized error (``answer.error(cls, text)`` keeps the vendor's
        code and message). The default maps by status only."""
        return answer.by_status(f"{self.label} answered HTTP {answer.status}.")

    # --- reading a successful answer ----------------------------------------------------------

    def json_body(self, response: requests.Response, *, required: tuple[str, ...] = ()) -> dict[str, Any]:
        """The 2xx body as the JSON object the document promises, with a value (not empty, not an
        object or list) at each dotted path of ``required`` (e.g. ``"data.id"``).

        Raises BadResponse (permanent; ``reason`` "bad_response") when the body is not a JSON object
        or a required value is missing."""
        data = response_json(response)
        if not isinstance(data, dict):
            raise self.bad_response(response, "a JSON object")
        for path in required:
            value: Any = data
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if value is None or value == "" or isinstance(value, (dict, list, bool)):
                raise self.bad_response(response, path)
        return data

    def bad_response(self, response: requests.Response, missing: str) -> BadResponse:
        """The BadResponse for a 2xx answer that lacks ``missing`` (what the document promises)."""
        return BadResponse(f"{self.label} answered HTTP {response.status_code} without {missing}.", provider=self.name,
                           status=response.status_code, body=response.text, reason="bad_response")

    def send_result(self, response: requests.Response, raw: Mapping[str, Any], *, message_id: Any = "",
                    thread_id: Any = "", status: Any = "sent", statuses: Mapping[str, str] | None = None) -> SendResult:
        """A SendResult from a 2xx answer: ``status`` is the vendor's status, mapped through ``statuses``
        (vendor → :data:`providers.base.PROVIDER_STATUSES`; one not listed is "unknown"). A vendor
        status that maps to "failed" raises ProviderError (permanent: a retry replays the same answer),
        with the vendor's status as ``provider_code``."""
        ours = statuses.get(str(status or ""), "unknown") if statuses is not None else str(status)
        if ours == "failed":
            raise ProviderError(f"{self.label} reports the message as failed.", provider=self.name, status=response.status_code,
                                provider_code=str(status), body=response.text, reason="reported_failed")
        return SendResult(provider_message_id=str(message_id or ""), provider_thread_id=str(thread_id or ""),
                          provider_status=ours, raw=dict(raw))

    # --- transport -------------------------------------------------------------------------------

    @property
    def limiter_key(self) -> str:
        return limiter_key(self.name, self.api_key)

    def session(self) -> requests.Session:
        return _session_for((self.name, self.base_url, self.limiter_key))

    def call(self, request: HttpRequest, *, idempotency_key: str = "", map_error=None,
             on_handover: Callable[[], None] | None = None) -> requests.Response:
        """Make ``request`` under the rate limiter, with timeouts. Returns the 2xx Response.

        Sends ``Idempotency-Key: idempotency_key`` when ``capabilities.idempotent``. Raises
        RateLimited (429 or fully booked limiter; the Retry-After is also pushed into the shared
        limiter), ProviderTimeout / ProviderUnavailable (transient; a read timeout counts as
        transient only when the provider deduplicates on our key, otherwise OutcomeUnknown,
        since the message may have been sent), or the error of ``map_error(ErrorAnswer)``
        (default :meth:`map_error`; a ConfigurationError where the answer shows a setup mistake).
        ``on_handover()`` runs after the limiter granted the slot, just before the request goes out.
        Without an idempotency key only answers that mean "not processed" stay retriable (429, 503,
        refused connection); 500/502/504 become OutcomeUnknown.
        """
        headers = {"Accept": "application/json", **self.auth_headers(), **request.headers}
        if self.capabilities.idempotent and idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        limiter = get_limiter()
        limiter.acquire(key=self.limiter_key, limit=self.rate_limit, provider=self.name)
        if on_handover is not None:
            on_handover()
        url = self.base_url + request.path
        timeout = (settings.OUTREACH_HTTP_CONNECT_TIMEOUT, settings.OUTREACH_HTTP_READ_TIMEOUT)
        try:
            response = self.session().request(
                request.method, url, headers=headers, json=request.json, data=request.data, files=request.files,
                timeout=timeout, allow_redirects=False)
        except requests.ConnectTimeout as err:
            raise ProviderTimeout(f"{self.label} did not accept a connection within {timeout[0]:g} s.",
                                  provider=self.name, reason="connect_timeout") from err
        except requests.ReadTimeout as err:
            raise self._lost_response(f"{self.label} did not answer within {timeout[1]:g} s", "read_timeout") from err
        except requests.ConnectionError as err:
            if _never_reached(err):
                raise ProviderUnavailable(f"{self.label} at {self.base_url} could not be reached.",
                                          provider=self.name, reason="connection_failed") from err
            raise self._lost_response(f"The connection to {self.label} broke before its answer", "connection_lost") from err
        except requests.RequestException as err:
            raise ProviderUnavailable(f"{self.label} request failed ({type(err).__name__}).",
                                      provider=self.name, reason="request_failed") from err
        self._follow_server_window(limiter, response)
        if response.status_code < 300:
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if response.status_code == 429:
            # Everyone sharing this key waits, not only this caller; a 429 without a header waits one period.
            limiter.block(self.limiter_key, retry_after if retry_after is not None else self.rate_limit.period)
        if 300 <= response.status_code < 400:
            raise ProviderError(f"{self.label} answered with a redirect (HTTP {response.status_code}); check the base URL.",
                                provider=self.name, status=response.status_code, reason="redirect")
        code, text = self.read_error(response)
        answer = ErrorAnswer(self.name, response, code=code, message=text, retry_after=retry_after)
        error = (map_error or self.map_error)(answer)
        if error.transient and response.status_code in (500, 502, 504) and not self.capabilities.idempotent:
            raise OutcomeUnknown(f"{error.message} The request may have been processed, so it is not retried "
                                 f"automatically ({self.label} offers no idempotency key).", provider=self.name,
                                 status=response.status_code, provider_code=error.provider_code,
                                 provider_message=error.provider_message, body=error.body, reason="answer_after_processing")
        raise error

    def _follow_server_window(self, limiter, response: requests.Response) -> None:
        """Stay in step with the server's own window where the document gives X-RateLimit-Remaining /
        X-RateLimit-Reset (lemlist's and leadlex's Send Email documents): when the server says nothing
        remains, nobody sharing the key sends before its reset. The Reset date has whole seconds and is
        rounded down, so the wait is never longer than the server's."""
        remaining = response.headers.get("X-RateLimit-Remaining")
        if remaining is None or remaining.strip() != "0":
            return
        wait = parse_rate_limit_reset(response.headers.get("X-RateLimit-Reset"))
        if wait:
            limiter.block(self.limiter_key, min(wait, self.rate_limit.period))

    def _lost_response(self, what: str, reason: str) -> ProviderError:
        if self.capabilities.idempotent:
            return ProviderTimeout(f"{what}; retrying with the same Idempotency-Key cannot send twice.",
                                   provider=self.name, reason=reason)
        return OutcomeUnknown(f"{what}: the message may have been sent, so it is not retried automatically "
                              f"({self.label} offers no idempotency key).", provider=self.name, reason=reason)


def _never_reached(err: requests.ConnectionError) -> bool:
    """True when the request provably never reached the server (DNS, refused, connect timeout)."""
    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError))


def encode_request(request: HttpRequest) -> bytes:
    """``request`` as JSON bytes (file contents base64-encoded); :func:`decode_request` reverses it exactly."""
    files = None
    if request.files is not None:
        files = [[name, [fname, base64.b64encode(content).decode("ascii"), ctype]] for name, (fname, content, ctype) in request.files]
    return json.dumps({"path": request.path, "method": request.method, "json": request.json,
                       "data": request.data, "files": files, "headers": request.headers},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_request(raw: bytes) -> HttpRequest:
    """The HttpRequest stored by :func:`encode_request`."""
    value = json.loads(bytes(raw).decode("utf-8"))
    files = None
    if value.get("files") is not None:
        files = [(name, (fname, base64.b64decode(content), ctype)) for name, (fname, content, ctype) in value["files"]]
    data = [tuple(pair) for pair in value["data"]] if value.get("data") is not None else None
    return HttpRequest(path=value["path"], method=value["method"], json=value.get("json"), data=data, files=files,
                       headers=dict(value.get("headers") or {}))


def compact_json(value: Any) -> str:
    """JSON without spaces (multipart form fields that carry objects)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def text_or_none(value: Mapping | None, key: str) -> str:
    """``value[key]`` as str when ``value`` is a dict holding a string there, else ''."""
    if isinstance(value, Mapping) and isinstance(value.get(key), str):
        return value[key]
    return ""
