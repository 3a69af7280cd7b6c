"""Helpers every update service shares."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.utils import timezone

M = TypeVar("M", bound=models.Model)


def model_update(instance: M, *, fields: Iterable[str], data: Mapping[str, Any]) -> tuple[M, bool]:
    """Set the ``fields`` of ``instance`` that ``data`` carries and differ from the current values,
    then ``full_clean()`` and ``save(update_fields=[those fields, updated_at])``.

    Fields named in ``fields`` but absent from ``data`` are left alone; keys of ``data`` not in
    ``fields`` are ignored. Returns ``(instance, has_updated)``; nothing is written when no value
    changed. Raises ValidationError from ``full_clean`` (the instance then holds the new, unsaved
    values) and ValueError for a name that is not a concrete field of the model.
    Shaped after the HackSoft Django Styleguide's ``model_update``
    (https://github.com/HackSoftware/Django-Styleguide-Example, ``styleguide_example/common/services.py``).
    """
    concrete = {f.name: f for f in instance._meta.concrete_fields}
    changed: list[str] = []
    for name in fields:
        if name not in data:
            continue
        field = concrete.get(name)
        if field is None:
            raise ValueError(f"{type(instance).__name__} has no concrete field {name!r}.")
        # A foreign key compares by id so an unchanged owner costs no query.
        current = getattr(instance, field.attname) if field.is_relation else getattr(instance, name)
        new = data[name]
        if field.is_relation:
            new = new.pk if isinstance(new, models.Model) else new
        if current != new:
            setattr(instance, field.attname if field.is_relation else name, new)
            changed.append(name)
    if not changed:
        return instance, False
    if "updated_at" in concrete and "updated_at" not in changed:
        instance.updated_at = timezone.now()
        changed.append("updated_at")
    instance.full_clean()
    instance.save(update_fields=changed)
    return instance, True


def model_create(model: type[M], **values: Any) -> M:
    """Insert a new ``model`` row from ``values`` (field names → values) after the same field
    checks :func:`model_update` makes, so a create and an edit accept the same values (length,
    choices, validators such as the URL check).

    Relations are not re-checked (the services pass team, contact and user objects they already
    hold, and a lookup per relation would cost a query each), nor are unique constraints: the
    database stays the arbiter there, so two concurrent creates cannot both pass a check, and the
    caller turns the IntegrityError into its own words. Returns the saved instance; raises
    ValidationError ({field: [messages]}) before anything is written.
    """
    instance = model(**values)
    relations = [f.name for f in instance._meta.concrete_fields if f.is_relation]
    instance.full_clean(exclude=relations, validate_unique=False, validate_constraints=False)
    instance.save(force_insert=True)
    return instance


def is_unique_violation(err: ValidationError) -> bool:
    """Whether ``err`` (from :func:`model_update`'s ``full_clean``) reports a unique constraint over
    several fields, e.g. a second campaign named alike in one team (Django's "… with this Team and
    Name already exists.", code ``unique_together``): services replace it with their own words."""
    return any(e.code == "unique_together" for e in getattr(err, "error_dict", {}).get(NON_FIELD_ERRORS, []))
