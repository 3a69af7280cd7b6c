"""Unsubscribe tokens and the headers every outgoing message carries.

``List-Unsubscribe: <https://SITE/u/TOKEN/>, <mailto:SENDER?subject=unsubscribe%20TOKEN>`` (RFC
2369) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), plus ``In-Reply-To``
/ ``References`` (RFC 5322 §3.6.4) for a reply — only through providers whose document lets us set
message headers (``Capabilities.mail_headers``: SMTP). The token is ``django.core.signing`` over a
random key (:class:`UnsubscribeKey`): it identifies team + address through that row and reveals
nothing; a forged or altered token fails the signature check before any lookup.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from urllib.parse import quote

from django.utils.html import escape

from django.conf import settings
from django.core import signing
from django.db import connection
from django.db.models.constants import OnConflict
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.encoding import force_bytes
from django.utils import timezone

from providers.registry import get_provider_class

from ..models import SentMessage, Team
from .models import UnsubscribeKey

SALT = "outreach.inbound.unsubscribe"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def unsubscribe_token(key: UnsubscribeKey) -> str:
    """The signed token for ``key`` (``<key>:<signature>``, URL-safe): what ``django.core.signing.Signer(salt=SALT)
    .sign(key.key)`` gives (HMAC-SHA256 under a key derived from SECRET_KEY, base64url without padding), with
    the derived key computed once per SECRET_KEY instead of once per message (the send path signs every
    message it builds). Checked by :func:`unsubscribe_key_for_token` with Django's own Signer."""
    value = key.key
    digest = hmac.new(_hmac_key(force_bytes(settings.SECRET_KEY)), force_bytes(value), hashlib.sha256).digest()
    return f"{value}:{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


@functools.lru_cache(maxsize=4)
def _hmac_key(secret: bytes) -> bytes:
    """Django's ``salted_hmac`` key for the Signer of :func:`_signer` (salt ``SALT + "signer"``, SHA-256)."""
    return hashlib.sha256(force_bytes(SALT + "signer") + secret).digest()


def unsubscribe_key_for_token(token: str, *, team: Team | None = None) -> UnsubscribeKey | None:
    """The UnsubscribeKey of a valid ``token`` (of ``team`` when given), or None when the token is
    forged, altered or unknown."""
    try:
        key = _signer().unsign((token or "").strip()[:200])
    except signing.BadSignature:
        return None
    qs = UnsubscribeKey.objects.select_related("sent_message__contact", "team")
    if team is not None:
        qs = qs.filter(team=team)
    return qs.filter(key=key).first()


def unsubscribe_key_for_message(*, sent_message: SentMessage) -> UnsubscribeKey:
    """The key of ``sent_message`` (created on first use), for its first To address. No query when the
    key was loaded with the message (``select_related("unsubscribe_key")``)."""
    try:
        existing = sent_message.unsubscribe_key  # cached by select_related, else one query
    except UnsubscribeKey.DoesNotExist:
        existing = None
    if existing is not None:
        return existing
    email = (sent_message.to or [sent_message.contact.email])[0]
    key, _ = UnsubscribeKey.objects.get_or_create(
        sent_message=sent_message, defaults={"team_id": sent_message.team_id, "email": email, "key": secrets.token_urlsafe(18)})
    return key


def unsubscribe_keys_attach(*, sent_messages: list[SentMessage]) -> int:
    """Give each of ``sent_messages`` (loaded with ``select_related("unsubscribe_key")`` and ``contact``)
    its key, creating the missing ones: no query when all have one, else two (insert, read back) for
    the whole batch of sends. Returns how many were created. Concurrent creators are harmless (conflicts
    are ignored; each message keeps the key that was stored first).

    The insert is one plain multi-row ``INSERT … ON CONFLICT DO NOTHING`` (SQLite: ``INSERT OR IGNORE``),
    Django's own statement for ``bulk_create(ignore_conflicts=True)`` without building and compiling a model
    instance per row (a send batch runs this for up to OUTREACH_DISPATCH_CHUNK messages)."""
    missing = []
    for message in sent_messages:
        try:
            message.unsubscribe_key
        except UnsubscribeKey.DoesNotExist:
            missing.append(message)
    if not missing:
        return 0
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params: list = []
    for m in missing:
        params.extend((m.team_id, m.pk, (m.to or [m.contact.email])[0], secrets.token_urlsafe(18), now, now))
    with connection.cursor() as cursor:
        cursor.execute(_keys_insert_sql(len(missing)), params)
    keys = {k.sent_message_id: k for k in UnsubscribeKey.objects.filter(sent_message__in=missing)}
    for message in missing:
        if message.pk in keys:
            message.unsubscribe_key = keys[message.pk]
    return len(missing)


#: The columns :func:`unsubscribe_keys_attach` writes, in its parameters' order (``used_at`` stays NULL).
_KEY_FIELDS = ("team", "sent_message", "email", "key", "created_at", "updated_at")


@functools.lru_cache(maxsize=8)
def _keys_insert_sql(rows: int) -> str:
    """The INSERT of :func:`unsubscribe_keys_attach` for ``rows`` keys, conflicts ignored (a key or message
    that has one already), in Django's placeholder style: what ``bulk_create(ignore_conflicts=True)``
    writes on this database (``connection.ops.insert_statement`` / ``on_conflict_suffix_sql``)."""
    ops, meta = connection.ops, UnsubscribeKey._meta
    fields = [meta.get_field(name) for name in _KEY_FIELDS]
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    suffix = ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)
    return (f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} {ops.quote_name(meta.db_table)} ({columns}) "
            f"VALUES {', '.join([row] * rows)} {suffix}").rstrip()


def public_url(path: str) -> str:
    """``path`` on the public site (settings.OUTREACH_PUBLIC_BASE_URL)."""
    return settings.OUTREACH_PUBLIC_BASE_URL.rstrip("/") + path


def unsubscribe_urls(*, sent_message: SentMessage) -> tuple[str, str]:
    """(one-click https URL, mailto: URL) of ``sent_message``."""
    token = unsubscribe_token(unsubscribe_key_for_message(sent_message=sent_message))
    web = public_url(_unsubscribe_path(token))
    mailto = f"mailto:{sent_message.mailbox.sender_email}?subject={quote('unsubscribe ' + token)}"
    return web, mailto


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_:-]+")  #: what a token is made of; none of it is quoted in a URL path


def _unsubscribe_path(token: str) -> str:
    """``reverse("unsubscribe", args=[token])``, with the URL resolver's work done once per URL configuration and
    script prefix: a token of base64url characters and ``:`` is put in the path as it is (reverse quotes
    nothing of it, and the ``<str:token>`` converter takes it), anything else through ``reverse``."""
    if not _TOKEN_CHARS.fullmatch(token):
        return reverse("unsubscribe", args=[token])
    head, tail = _unsubscribe_path_around(get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    return f"{head}{token}{tail}"


@functools.lru_cache(maxsize=8)
def _unsubscribe_path_around(prefix: str, urlconf) -> tuple[str, str]:
    """(what comes before, what comes after) the token in the unsubscribe path, for this prefix and URL conf."""
    path = reverse("unsubscribe", args=[_PLACEHOLDER], urlconf=urlconf)
    head, found, tail = path.rpartition(_PLACEHOLDER)
    assert found, path
    return head, tail


_PLACEHOLDER = "TOKEN0placeholder0TOKEN"


def outgoing_headers(*, sent_message: SentMessage) -> dict[str, str]:
    """Extra RFC 5322 headers for ``sent_message``: threading and List-Unsubscribe(-Post), or {} when
    its provider cannot carry message headers. Values are ours (validated ids, our URLs): nothing
    from an inbound mail is copied into them unchecked."""
    if not get_provider_class(sent_message.provider).capabilities.mail_headers:
        return {}
    headers: dict[str, str] = {}
    if sent_message.in_reply_to:
        headers["In-Reply-To"] = sent_message.in_reply_to
    if sent_message.references:
        headers["References"] = sent_message.references
    if settings.OUTREACH_PUBLIC_BASE_URL:
        web, mailto = unsubscribe_urls(sent_message=sent_message)
        headers["List-Unsubscribe"] = f"<{web}>, <{mailto}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def with_unsubscribe_footer(*, sent_message: SentMessage) -> dict[str, str]:
    """{"html", "text"} of ``sent_message``, ending with an unsubscribe link when its team chose the
    footer (``Team.unsubscribe_footer``) — a link in the body works through every provider."""
    html, text = sent_message.html_body, sent_message.text_body
    if not sent_message.team.unsubscribe_footer or not settings.OUTREACH_PUBLIC_BASE_URL:
        return {"html": html, "text": text}
    web, _ = unsubscribe_urls(sent_message=sent_message)
    if html:
        html = f'{html}\n<p><small><a href="{escape(web)}">Unsubscribe</a> from these emails.</small></p>'
    if text:
        text = f"{text.rstrip()}\n\n--\nUnsubscribe from these emails: {web}\n"
    return {"html": html, "text": text}
