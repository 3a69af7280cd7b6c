"""Typed mailbox settings: what each provider's document needs from a mailbox, declared once.

A provider declares a frozen dataclass subclassing :class:`MailboxConfig`; each field is made with
:func:`setting` (label, kind, required, help text). outreach stores a mailbox's values in one JSON
field (``Mailbox.provider_config``, keyed by the dataclass field names, secrets encrypted) and
builds its forms, admin fields and ``add_mailbox`` options from the declaration, so adding a
provider needs no migration and no edit to forms or templates::

    @dataclass(frozen=True)
    class OpenMailConfig(MailboxConfig):
        prefix = "openmail_"
        inbox_id: str = setting("OpenMail inbox id", required=True, help="The id of /v1/inboxes/{id}/send.")

Names: a setting ``inbox_id`` is the form field, error field and option ``openmail_inbox_id``
(``prefix`` + name), so the names of two providers never collide on one form.

Kinds: ``text`` (single line: CR, LF and NUL refused), ``email``, ``int`` (``min_value`` ..
``max_value``), ``choice`` (one of ``choices``), ``bool`` and ``secret`` (write-only: outreach
encrypts it at rest and never renders it back; ``bound_to`` names the settings it was saved for —
change one and the secret must be entered again).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from .errors import ConfigurationError

TEXT, EMAIL, INT, CHOICE, BOOL, SECRET = "text", "email", "int", "choice", "bool", "secret"
KINDS = (TEXT, EMAIL, INT, CHOICE, BOOL, SECRET)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UNSAFE = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True)
class Setting:
    """One declared mailbox setting (see the module docstring for ``kind``).

    ``group`` is the fieldset it is shown in (a legend; "" = the provider's label);
    ``editable`` False means a service sets it (e.g. the id lemlist returns when an SMTP mailbox is
    registered there): it is stored and shown, never a form field.
    """

    label: str
    kind: str = TEXT
    required: bool = False
    help: str = ""
    max_length: int = 254
    min_value: int | None = None
    max_value: int | None = None
    choices: tuple[tuple[str, str], ...] = ()
    group: str = ""
    editable: bool = True
    bound_to: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Setting kind {self.kind!r} is not one of {KINDS}")


def setting(label: str, *, default: Any = "", **options: Any) -> Any:
    """A dataclass field carrying a :class:`Setting` (``options`` are Setting's): ``default`` is
    the value of an empty mailbox ("" for text; None for an int without one)."""
    return dataclasses.field(default=default, metadata={"setting": Setting(label, **options)})


@dataclass(frozen=True)
class Server:
    """A mail server login declared by a config: the names of its host, port, login, secret and
    security settings, and its protocol (``smtp`` or ``imap``) for the host checks."""

    protocol: str
    host: str
    port: str
    login: str
    password: str
    security: str


@dataclass(frozen=True)
class MailboxConfig:
    """Base of every provider's typed mailbox config (no settings: the API key identifies the sender)."""

    #: Prepended to a setting's name to make its form field, error field and option name.
    prefix: ClassVar[str] = ""
    #: Mail server logins among the settings (host checks, connection tests, credential binding).
    servers: ClassVar[tuple[Server, ...]] = ()

    @classmethod
    def settings(cls) -> list[tuple[str, Setting]]:
        """[(name, Setting)] in declaration order."""
        return [(f.name, f.metadata["setting"]) for f in dataclasses.fields(cls) if "setting" in f.metadata]

    @classmethod
    def secrets(cls) -> list[str]:
        """Names of the secret settings."""
        return [name for name, s in cls.settings() if s.kind == SECRET]

    @classmethod
    def form_name(cls, name: str) -> str:
        """The form field / error field / option name of setting ``name`` (``prefix + name``)."""
        return cls.prefix + name

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """{name: default} of every setting."""
        return {f.name: f.default for f in dataclasses.fields(cls) if "setting" in f.metadata}

    @classmethod
    def coerce(cls, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Check and convert ``values`` ({name: raw value}, missing names take their defaults).

        Returns (clean values by name, problems {form name: message}). Required settings are not
        checked here (:meth:`problems` does, after :meth:`normalize`): a secret may be stored already.
        """
        clean, problems = cls.defaults(), {}
        for name, spec in cls.settings():
            if name not in values:
                continue
            try:
                clean[name] = _coerce(spec, values[name], default=clean[name])
            except ValueError as err:
                problems[cls.form_name(name)] = str(err)
        return clean, problems

    @classmethod
    def normalize(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Cross-setting normalisation of clean ``values`` (e.g. an optional group left empty is
        cleared as a whole). Returns the values; the default changes nothing."""
        return values

    @classmethod
    def problems(cls, values: Mapping[str, Any], *, provider_label: str, present: Mapping[str, bool] | None = None) -> dict[str, str]:
        """{form name: message} for every required setting blank in ``values`` and every
        cross-setting rule broken. ``present`` says, for a secret, whether one is stored already
        (its value in ``values`` may then be blank)."""
        present = present or {}
        found = {}
        for name, spec in cls.settings():
            if spec.required and spec.editable and _blank(values.get(name)) and not present.get(name):
                found[cls.form_name(name)] = missing_text(spec, provider_label=provider_label)
        return found

    @classmethod
    def load(cls, values: Mapping[str, Any], *, provider: str, provider_label: str) -> "MailboxConfig":
        """Build the config from stored ``values`` ({name: value}, secrets in plaintext).

        Raises ConfigurationError (``field`` the form name) for the first malformed or
        missing required setting: what ``Provider.from_mailbox`` raises before any network call."""
        clean, problems = cls.coerce({k: v for k, v in values.items() if k in cls.defaults()})
        clean = cls.normalize(clean)
        problems = {**problems, **cls.problems(clean, provider_label=provider_label)}
        if problems:
            code, text = next(iter(problems.items()))
            raise ConfigurationError(f"Cannot send through {provider_label}: {text}", provider=provider, field=code)
        return cls(**clean)

    def as_dict(self) -> dict[str, Any]:
        """{name: value} of every setting (secrets in plaintext: never log or render this)."""
        return {name: getattr(self, name) for name, _ in self.settings()}


def missing_text(spec: Setting, *, provider_label: str) -> str:
    """The message for a missing required setting."""
    if spec.kind == SECRET:
        return f"Enter the {spec.label}."
    return f"Enter the {spec.label}: {provider_label} cannot send from this mailbox without it."


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _coerce(spec: Setting, value: Any, *, default: Any) -> Any:
    """One raw value → its typed value; ValueError with a message for the user."""
    if spec.kind == BOOL:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if spec.kind == INT:
        if _blank(value):
            return default
        try:
            number = int(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"Enter a whole number for the {spec.label}.") from err
        if (spec.min_value is not None and number < spec.min_value) or (spec.max_value is not None and number > spec.max_value):
            raise ValueError(f"The {spec.label} must be between {spec.min_value} and {spec.max_value}.")
        return number
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"The {spec.label} must be text.")
    if spec.kind == SECRET:
        if len(value) > spec.max_length:
            raise ValueError(f"The {spec.label} is longer than {spec.max_length} characters.")
        return value
    value = value.strip()
    if _UNSAFE.search(value):
        raise ValueError(f"The {spec.label} must be a single line.")
    if len(value) > spec.max_length:
        raise ValueError(f"The {spec.label} is longer than {spec.max_length} characters.")
    if spec.kind == CHOICE:
        if not value:
            return default
        if value not in dict(spec.choices):
            raise ValueError(f"Choose one of {', '.join(dict(spec.choices))} for the {spec.label}.")
    if spec.kind == EMAIL and value:
        if not _EMAIL.match(value):
            raise ValueError(f"Enter a valid email address for the {spec.label}.")
        value = value.lower()
    return value
