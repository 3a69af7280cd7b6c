"""The vendor ids of contacts and leads that the providers declare (``Provider.external_id_kinds``).

Forms, admin, the import mapping, the exports and ``OutgoingMessage.vendor_ids`` are built from
:func:`external_id_fields`, so a provider that declares a new id needs no edit here or there.
The values live in one table, :class:`outreach.models.ExternalId`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from providers.base import vendor_id_key
from providers.registry import PROVIDERS

OBJECTS = ("contact", "lead")


@dataclass(frozen=True)
class ExternalIdField:
    """One declared id: ``key`` (e.g. ``lemlist_contact_id``) names it in forms, import targets
    (``lead.<key>`` for a lead's) and ``vendor_ids``; ``label`` is e.g. "lemlist contactId"."""

    provider: str
    object: str
    kind: str
    label: str
    aliases: tuple[str, ...]
    key: str


def _all() -> tuple[ExternalIdField, ...]:
    """Read from the registry each time (a handful of providers): a provider added to PROVIDERS
    at run time is seen by forms, admin, services and the send at once. The declarations are built
    once per registry content (:func:`_declared`; the send path asks for them once per message)."""
    return _declared(tuple(PROVIDERS.items()))


@functools.lru_cache(maxsize=8)
def _declared(providers: tuple[tuple[str, type], ...]) -> tuple[ExternalIdField, ...]:
    """The ids declared by ``providers`` ((name, class) pairs, in registry order)."""
    fields = []
    for name, cls in providers:
        for declared in getattr(cls, "external_id_kinds", ()):
            fields.append(ExternalIdField(provider=name, object=declared.object, kind=declared.kind,
                                          label=f"{cls.label} {declared.kind}", aliases=tuple(declared.aliases),
                                          key=declared.key(name)))
    return tuple(fields)


def external_id_fields(object: str | None = None) -> tuple[ExternalIdField, ...]:
    """Every declared id in registry order, or only those of ``object`` ("contact" or "lead")."""
    return tuple(f for f in _all() if object is None or f.object == object)


def external_id_field(key: str) -> ExternalIdField | None:
    """The declared id named ``key`` (e.g. ``leadlex_deal_id``), or None."""
    return next((f for f in _all() if f.key == key), None)


def external_id_declared(*, provider: str, object: str, kind: str) -> ExternalIdField | None:
    """The declaration of ``provider``'s id ``kind`` on ``object``, or None when it declares none."""
    return next((f for f in _all() if (f.provider, f.object, f.kind) == (provider, object, kind)), None)


def key_of(provider: str, kind: str) -> str:
    """The key of a stored id (:func:`providers.base.vendor_id_key`)."""
    return vendor_id_key(provider, kind)
