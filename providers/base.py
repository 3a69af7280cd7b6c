"""The provider contract: what every sending provider takes, returns and declares.

outreach turns a SentMessage into an :class:`OutgoingMessage` and calls
``provider.send(message)``; a provider returns a :class:`SendResult` or raises one
of :mod:`providers.errors`. Providers never import outreach: they read the mailbox
they are built from by attribute (``Provider.from_mailbox``): its ``provider_settings`` (the
values of the provider's declared :class:`providers.config.MailboxConfig`, secrets decrypted)
and, for HTTP providers, its ``provider_account``.
"""
from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from .addresses import format_address
from .config import MailboxConfig
from .errors import UnsupportedFeature

#: Closed vocabulary of provider statuses (anymail's), stored in SentMessage.provider_status.
PROVIDER_STATUSES = ("sent", "queued", "invalid", "rejected", "failed", "unknown")


@dataclass(frozen=True)
class Address:
    """An email address with an optional display name."""

    email: str
    name: str = ""

    def formatted(self) -> str:
        """RFC 5322 form, e.g. ``"Ann Lee" <ann@example.com>``, that parses back to exactly this
        one address (a hostile display name is neutralised: :func:`providers.addresses.format_address`)."""
        return format_address(self)


@dataclass(frozen=True)
class OutgoingAttachment:
    """A file to attach: ``content`` bytes, ``size`` in bytes."""

    filename: str
    content_type: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class ExternalIdKind:
    """One vendor id a provider's document needs on a contact or a lead (allauth's
    ``SocialAccount(provider, uid)`` idea: outreach stores it in one table of external ids).

    ``object`` is ``"contact"`` or ``"lead"``; ``kind`` is the document's own name for the id
    (lemlist ``contactId``); ``aliases`` are other CSV header spellings of it in the vendor's
    exports (leadlex ``dealId``). outreach builds its forms, admin, import mapping targets and
    :attr:`OutgoingMessage.vendor_ids` from these declarations (:attr:`Provider.external_id_kinds`).
    """

    object: str
    kind: str
    aliases: tuple[str, ...] = ()

    def __post_init__(self):
        if self.object not in ("contact", "lead"):
            raise ValueError(f"ExternalIdKind.object must be 'contact' or 'lead', not {self.object!r}")

    def key(self, provider: str) -> str:
        """This id's name in :attr:`OutgoingMessage.vendor_ids`: :func:`vendor_id_key`."""
        return vendor_id_key(provider, self.kind)


def vendor_id_key(provider: str, kind: str) -> str:
    """The name of ``provider``'s id ``kind`` in :attr:`OutgoingMessage.vendor_ids` (and outreach's
    form fields): ``<provider>_<kind in snake case>``, e.g. ``lemlist_contact_id`` for lemlist's ``contactId``."""
    return provider + "_" + re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", kind).lower()


@dataclass(frozen=True)
class OutgoingMessage:
    """One email as every provider receives it.

    ``message_id`` is the RFC 5322 Message-ID we generated (with angle brackets);
    ``idempotency_key`` (str) is stable across every retry of the same SentMessage;
    ``vendor_ids`` carries the ids every provider declares in ``external_id_kinds``, keyed by
    :meth:`ExternalIdKind.key` (``lemlist_contact_id``, ``lemlist_lead_id``, ``leadlex_contact_id``,
    ``leadlex_deal_id``…; missing ones are '').
    """

    sender: Address
    to: tuple[Address, ...]
    subject: str
    html: str = ""
    text: str = ""
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: Address | None = None
    attachments: tuple[OutgoingAttachment, ...] = ()
    message_id: str = ""
    idempotency_key: str = ""
    thread_id: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    vendor_ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def attachments_size(self) -> int:
        """Total attachment bytes."""
        return sum(a.size for a in self.attachments)


@dataclass(frozen=True)
class SendResult:
    """A normalized successful send.

    ``provider_status`` is one of :data:`PROVIDER_STATUSES`; ``raw`` is the provider's response
    as a JSON-serialisable dict, stored beside the normalized fields.
    """

    provider_message_id: str = ""
    provider_thread_id: str = ""
    provider_status: str = "sent"
    raw: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.provider_status not in PROVIDER_STATUSES:
            raise ValueError(f"provider_status {self.provider_status!r} is not one of {PROVIDER_STATUSES}")


@dataclass(frozen=True)
class Capabilities:
    """What a provider can carry. ``max_attachments_bytes`` is the total per message in bytes (0 = none)."""

    cc: bool = True
    bcc: bool = True
    multiple_recipients: bool = True
    attachments: bool = True
    max_attachments_bytes: int = 0
    html: bool = True
    text: bool = True
    reply_to: bool = True
    threads: bool = False
    custom_headers: bool = False
    tracking: bool = False
    idempotent: bool = False  # the provider deduplicates on our idempotency key
    # The message's own RFC 5322 headers can be set (In-Reply-To, References, List-Unsubscribe,
    # List-Unsubscribe-Post). Only SMTP: no HTTP provider document allows these names.
    mail_headers: bool = False

    def problems(self, *, provider_label: str, has_cc: bool, has_bcc: bool, recipients: int,
                 attachments_bytes: int, has_attachments: bool, has_reply_to: bool,
                 has_html: bool, has_text: bool, has_thread: bool = False) -> dict[str, str]:
        """Return {form field name: message} for every feature the message uses that this provider lacks."""
        found: dict[str, str] = {}
        label = provider_label
        if has_cc and not self.cc:
            found["cc"] = f"{label} mailboxes cannot send Cc."
        if has_bcc and not self.bcc:
            found["bcc"] = f"{label} mailboxes cannot send Bcc."
        if recipients > 1 and not self.multiple_recipients:
            found["to"] = f"{label} mailboxes send to one recipient per message."
        if has_attachments and not self.attachments:
            found["attachments"] = f"{label} mailboxes cannot send attachments."
        elif self.max_attachments_bytes and attachments_bytes > self.max_attachments_bytes:
            found["attachments"] = (
                f"{label} mailboxes accept at most {self.max_attachments_bytes // (1024 * 1024)} MB of attachments "
                f"per message; these are {attachments_bytes / (1024 * 1024):.1f} MB."
            )
        if has_reply_to and not self.reply_to:
            found["reply_to"] = f"{label} mailboxes cannot set Reply-To."
        if has_html and not has_text and not self.html:
            found["html_body"] = f"{label} mailboxes send plain text only."
        if has_thread and not self.threads:
            found["thread_id"] = f"{label} mailboxes cannot reply in a thread."
        return found


class Provider(abc.ABC):
    """A sending provider. Subclasses set ``name``, ``label`` and ``capabilities`` and implement
    :meth:`from_mailbox` and :meth:`send`."""

    name: ClassVar[str]
    label: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: What this provider's document needs from a mailbox (sender ids, servers), declared once:
    #: forms, admin, ``add_mailbox`` and the stored JSON (Mailbox.provider_config) follow from it.
    config_class: ClassVar[type[MailboxConfig]] = MailboxConfig
    #: Vendor ids this provider's document needs on contacts and leads (lemlist's contactId and
    #: leadId). outreach builds forms, admin, import mapping and ``vendor_ids`` from them.
    external_id_kinds: ClassVar[tuple[ExternalIdKind, ...]] = ()

    @classmethod
    def from_mailbox(cls, mailbox: Any) -> "Provider":
        """Build a provider bound to ``mailbox`` (an outreach Mailbox, read by attribute): its
        ``provider_settings`` ({setting name: value}, secrets decrypted) are loaded into
        :attr:`config_class`, then :meth:`from_config` finishes.

        Raises ConfigurationError naming the missing or malformed setting (``provider_code`` its
        form field name, e.g. ``lemlist_send_user_id``) before any network call."""
        config = cls.config_class.load(mailbox.provider_settings, provider=cls.name, provider_label=cls.label)
        return cls.from_config(config, mailbox=mailbox)

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: MailboxConfig, *, mailbox: Any) -> "Provider":
        """Build the provider from its loaded ``config`` (and, for HTTP providers, the mailbox's
        ``provider_account``). Raises ConfigurationError."""

    # Two-phase send: ``prepare`` builds the request once (the caller stores it), ``deliver`` makes it,
    # calling ``on_handover()`` just before the point of no return (SMTP DATA, the HTTP request) so the
    # caller can record that durably; an exception from ``on_handover`` aborts before anything is sent.

    @abc.abstractmethod
    def prepare(self, message: OutgoingMessage) -> bytes:
        """Check and build the provider request for ``message``; return it as bytes to store and reuse
        verbatim on every retry (MIME for SMTP, a JSON request for HTTP APIs).

        Raises UnsupportedFeature / ConfigurationError / InvalidRequest before any network call."""

    @abc.abstractmethod
    def deliver(self, prepared: bytes, message: OutgoingMessage, *, on_handover: Callable[[], None]) -> SendResult:
        """Send the ``prepared`` request (from :meth:`prepare`) for ``message`` (envelope and ids are read
        from it). Calls ``on_handover()`` once, just before the point of no return; errors raised before it
        mean nothing was handed over. Returns a SendResult or raises a providers.errors.ProviderError."""

    def send(self, message: OutgoingMessage, *, on_handover: Callable[[], None] | None = None) -> SendResult:
        """Prepare and deliver in one go (account checks, benchmarks); the send pipeline stores the prepared request."""
        return self.deliver(self.prepare(message), message, on_handover=on_handover or (lambda: None))

    def check_supported(self, message: OutgoingMessage) -> None:
        """Raise UnsupportedFeature for the first feature of ``message`` this provider cannot carry."""
        problems = self.capabilities.problems(
            provider_label=self.label, has_cc=bool(message.cc), has_bcc=bool(message.bcc),
            recipients=len(message.to), attachments_bytes=message.attachments_size,
            has_attachments=bool(message.attachments), has_reply_to=message.reply_to is not None,
            has_html=bool(message.html), has_text=bool(message.text), has_thread=bool(message.thread_id),
        )
        if problems:
            field_name, text = next(iter(problems.items()))
            raise UnsupportedFeature(text, provider=self.name, provider_code=field_name)
