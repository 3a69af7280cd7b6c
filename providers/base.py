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


#: The features a message can use that a provider may lack, by the names :class:`Capabilities` gives them.
#: outreach maps them onto its form fields in one place (``outreach.services.sending.FEATURE_FIELDS``).
FEATURES = ("cc", "bcc", "multiple_recipients", "attachments", "reply_to", "html", "threads", "custom_headers")


@dataclass(frozen=True)
class Usage:
    """What one message uses, in the terms of :class:`Capabilities`: built from an OutgoingMessage
    (:meth:`of`) or, before anything is stored, from a compose form's values.

    ``recipients`` counts the To addresses; ``attachments_bytes`` is the total size in bytes;
    ``html_only`` is True when there is an HTML body and no plain-text one; ``headers`` holds the
    names of the custom headers.
    """

    cc: bool = False
    bcc: bool = False
    recipients: int = 1
    attachments: bool = False
    attachments_bytes: int = 0
    reply_to: bool = False
    html_only: bool = False
    thread: bool = False
    headers: tuple[str, ...] = ()

    @classmethod
    def of(cls, message: "OutgoingMessage") -> "Usage":
        """The usage of ``message``."""
        return cls(cc=bool(message.cc), bcc=bool(message.bcc), recipients=len(message.to),
                   attachments=bool(message.attachments), attachments_bytes=message.attachments_size,
                   reply_to=message.reply_to is not None, html_only=bool(message.html) and not message.text,
                   thread=bool(message.thread_id), headers=tuple(message.headers))


@dataclass(frozen=True)
class Capabilities:
    """What a provider can carry, one flag per feature of :data:`FEATURES` (plus ``text``, ``tracking``).

    ``max_attachments_bytes`` is the total per message in bytes (0 = no limit of the provider's own);
    ``idempotent`` means the provider deduplicates on our idempotency key (an HTTP provider then
    sends it as the ``Idempotency-Key`` header: one flag, both meanings); ``mail_headers`` means the
    message's own RFC 5322 headers (In-Reply-To, References, List-Unsubscribe, List-Unsubscribe-Post)
    can be set — only SMTP: no HTTP provider document allows these names.
    """

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
    idempotent: bool = False
    mail_headers: bool = False

    def problems(self, usage: Usage, *, label: str) -> dict[str, str]:
        """Return {feature name (:data:`FEATURES`): message} for every feature ``usage`` needs that this
        provider lacks; ``label`` (e.g. "lemlist") starts each message. Empty when all can be carried."""
        attachments = (usage.attachments and not self.attachments, "cannot send attachments.")
        if self.attachments and self.max_attachments_bytes and usage.attachments_bytes > self.max_attachments_bytes:
            attachments = (True, f"accept at most {self.max_attachments_bytes // (1024 * 1024)} MB of attachments per "
                                 f"message; these are {usage.attachments_bytes / (1024 * 1024):.1f} MB.")
        checks = {
            "cc": (usage.cc and not self.cc, "cannot send Cc."),
            "bcc": (usage.bcc and not self.bcc, "cannot send Bcc."),
            "multiple_recipients": (usage.recipients > 1 and not self.multiple_recipients, "send to one recipient per message."),
            "attachments": attachments,
            "reply_to": (usage.reply_to and not self.reply_to, "cannot set Reply-To."),
            "html": (usage.html_only and not self.html, "send plain text only."),
            "threads": (usage.thread and not self.threads, "cannot reply in a thread."),
            "custom_headers": (bool(usage.headers) and not self.custom_headers, "cannot send custom headers."),
        }
        return {feature: f"{label} mailboxes {text}" for feature, (lacking, text) in checks.items() if lacking}


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

        Raises ConfigurationError naming the missing or malformed setting (``field`` its
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
    def deliver(self, prepared: bytes, message: OutgoingMessage, *, on_handover: Callable[[], None],
                idle: Callable[[], None] | None = None) -> SendResult:
        """Send the ``prepared`` request (from :meth:`prepare`) for ``message`` (envelope and ids are read
        from it). Calls ``on_handover()`` once, just before the point of no return; errors raised before it
        mean nothing was handed over. ``idle()``, when given, may be called (at most once between two
        network writes and reads) while the provider waits for an answer, so the caller's own work overlaps
        the wait; it must not raise. A provider with nothing to wait on never calls it.
        Returns a SendResult or raises a providers.errors.ProviderError."""

    def send(self, message: OutgoingMessage, *, on_handover: Callable[[], None] | None = None) -> SendResult:
        """Prepare and deliver in one go (account checks, benchmarks); the send pipeline stores the prepared request."""
        return self.deliver(self.prepare(message), message, on_handover=on_handover or (lambda: None))

    def check_supported(self, message: OutgoingMessage) -> None:
        """Raise UnsupportedFeature (``feature`` set) for the first feature of ``message`` this provider cannot carry."""
        problems = self.capabilities.problems(Usage.of(message), label=self.label)
        if problems:
            feature, text = next(iter(problems.items()))
            raise UnsupportedFeature(text, provider=self.name, feature=feature)
