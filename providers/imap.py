"""IMAP reading for the inbound sync: transport only (RFC 9051 / RFC 3501).

Connects through :func:`providers.smtp.open_imap` (the same SSRF check and pinned socket as
sending, TLS verified against the host name), opens a folder read-only (``EXAMINE``, so no
``\\Seen`` flag changes), reports its UIDVALIDITY, finds new messages by UID (``UID SEARCH``)
and fetches them by UID with a size bound (``RFC822.SIZE`` first; messages over the bound are
read with a partial ``BODY.PEEK[]<0.N>``). It knows nothing about outreach: it returns bytes.
"""
from __future__ import annotations

import datetime as dt
import imaplib
import re
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import ConfigurationError, ProviderError, ProviderUnavailable
from .smtp import ServerSettings, SmtpConfig, _network_error, open_imap

_SIZE_ITEM = re.compile(rb"UID (\d+)|RFC822\.SIZE (\d+)|X-GM-THRID (\d+)")
_UID_ITEM = re.compile(rb"UID (\d+)")


@dataclass(frozen=True)
class FolderState:
    """A selected folder: ``uidvalidity`` (RFC 9051 §2.3.1.1), ``uidnext`` (None if the server did
    not say) and ``exists`` (number of messages)."""

    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True)
class FetchedMail:
    """One fetched message: ``raw`` bytes (at most the reader's ``max_message_bytes``; ``truncated``
    when the message is larger), ``size`` in bytes on the server, and the Gmail thread id
    (``X-GM-THRID``) when the server offers the X-GM-EXT-1 extension, else ''."""

    uid: int
    size: int
    raw: bytes
    truncated: bool
    thread_id: str = ""


def uid_set(uids: Iterable[int]) -> str:
    """An IMAP sequence set for ``uids`` with runs compressed: [1, 2, 3, 7] → "1:3,7"."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = None
    for uid in ordered:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            parts.append(f"{start}:{prev}" if prev != start else str(start))
            start = prev = uid
    if start is not None:
        parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapReader:
    """A read-only IMAP session on one mailbox; use as a context manager (one connection per run).

    ``max_message_bytes`` bounds what is read of each message. Every method raises a
    :class:`providers.errors.ProviderError` subclass (AuthenticationFailed, ProviderUnavailable,
    ProviderTimeout) or a ConfigurationError (HostNotAllowed, a plaintext login) with a message for the user.
    """

    def __init__(self, server: ServerSettings, *, max_message_bytes: int):
        self.server = server
        self.max_message_bytes = max_message_bytes
        self.client: imaplib.IMAP4 | None = None
        self.gmail = False

    @classmethod
    def from_mailbox(cls, mailbox: Any, *, max_message_bytes: int) -> "ImapReader":
        """The IMAP server of an SMTP mailbox's config (``mailbox.provider_settings``, password
        decrypted; a blank login is the sender address). Raises ConfigurationError when it has no IMAP."""
        values = {k: v for k, v in mailbox.provider_settings.items() if k in SmtpConfig.defaults()}
        config = SmtpConfig(**{**SmtpConfig.defaults(), **values})
        server = config.imap_server(default_login=mailbox.sender_email)
        if server is None:
            raise ConfigurationError("This mailbox has no IMAP host.", provider="smtp", field="imap_host")
        return cls(server, max_message_bytes=max_message_bytes)

    def __enter__(self) -> "ImapReader":
        self.client = open_imap(self.server)
        self.gmail = "X-GM-EXT-1" in (self.client.capabilities or ())
        return self

    def __exit__(self, *exc) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error, EOFError):
            pass

    def _call(self, what: str, fn, *args):
        try:
            typ, data = fn(*args)
        except imaplib.IMAP4.abort as err:
            raise _network_error(err, label="IMAP", server=self.server) from err
        except imaplib.IMAP4.error as err:
            raise ProviderUnavailable(f"IMAP {what} failed on {self.server.host}: {err}", provider="smtp",
                                      reason="imap_command") from err
        except (OSError, EOFError) as err:
            raise _network_error(err, label="IMAP", server=self.server) from err
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")[:300]
            raise ProviderUnavailable(f"IMAP {what} on {self.server.host} answered {typ}: {text}", provider="smtp",
                                      reason="imap_command")
        return data

    def select(self, folder: str = "INBOX") -> FolderState:
        """Open ``folder`` read-only; return its FolderState. Raises ProviderUnavailable if it cannot be
        opened or the server reports no UIDVALIDITY."""
        data = self._call(f"EXAMINE {folder}", self.client.select, _quote(folder), True)
        exists = int(data[0]) if data and data[0] and data[0].isdigit() else 0
        _, validity = self.client.response("UIDVALIDITY")
        _, uidnext = self.client.response("UIDNEXT")
        if not validity or not validity[0]:
            raise ProviderUnavailable(f"IMAP server {self.server.host} reported no UIDVALIDITY for {folder}.",
                                      provider="smtp", reason="imap_uidvalidity")
        return FolderState(uidvalidity=int(validity[0]), uidnext=int(uidnext[0]) if uidnext and uidnext[0] else None,
                           exists=exists)

    def new_uids(self, *, after_uid: int, since: dt.date | None = None) -> list[int]:
        """UIDs greater than ``after_uid`` (ascending), restricted to messages with an internal date on
        or after ``since`` when given (the first sync's look-back window)."""
        criteria = [f"UID {after_uid + 1}:*"]
        if since is not None:
            criteria.append("SINCE " + since.strftime("%d-%b-%Y"))
        data = self._call("UID SEARCH", self.client.uid, "SEARCH", None, *criteria)
        found = [int(x) for x in b" ".join(d for d in data if d).split()] if data else []
        # "n:*" always matches the highest UID, even when it is below n (RFC 9051 §6.4.4).
        return sorted(uid for uid in set(found) if uid > after_uid)

    def fetch(self, uids: list[int]) -> list[FetchedMail]:
        """Fetch ``uids`` (one batch: a size query, then at most two body queries). Messages deleted
        meanwhile are simply missing from the result; the result is in ascending UID order."""
        if not uids:
            return []
        items = "(UID RFC822.SIZE X-GM-THRID)" if self.gmail else "(UID RFC822.SIZE)"
        sizes: dict[int, tuple[int, str]] = {}
        for line in self._call("UID FETCH sizes", self.client.uid, "FETCH", uid_set(uids), items):
            text = line[0] if isinstance(line, tuple) else line
            if not isinstance(text, bytes):
                continue
            uid = size = None
            thread = ""
            for m in _SIZE_ITEM.finditer(text):
                if m.group(1):
                    uid = int(m.group(1))
                elif m.group(2):
                    size = int(m.group(2))
                elif m.group(3):
                    thread = m.group(3).decode()
            if uid is not None:
                sizes[uid] = (size or 0, thread)
        whole = [u for u, (size, _) in sizes.items() if size <= self.max_message_bytes]
        large = [u for u, (size, _) in sizes.items() if size > self.max_message_bytes]
        bodies: dict[int, bytes] = {}
        if whole:
            bodies.update(self._bodies(whole, "(UID BODY.PEEK[])"))
        if large:
            bodies.update(self._bodies(large, f"(UID BODY.PEEK[]<0.{self.max_message_bytes}>)"))
        result = []
        for uid in sorted(bodies):
            size, thread = sizes[uid]
            raw = bodies[uid][: self.max_message_bytes]
            result.append(FetchedMail(uid=uid, size=size, raw=raw, truncated=size > self.max_message_bytes, thread_id=thread))
        return result

    def _bodies(self, uids: list[int], items: str) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        data = self._call("UID FETCH bodies", self.client.uid, "FETCH", uid_set(uids), items)
        for i, part in enumerate(data):
            if isinstance(part, tuple) and len(part) >= 2:
                # The UID item may come before the literal or (some servers) after it.
                after = data[i + 1] if i + 1 < len(data) and isinstance(data[i + 1], bytes) else b""
                m = _UID_ITEM.search(part[0]) or _UID_ITEM.search(after)
                if m:
                    found[int(m.group(1))] = part[1]
        return found
