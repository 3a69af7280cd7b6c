"""JSON Schemas of the provider request and response bodies, copied from each provider's document.

Each module names its source (the vendor document's title and URL, and the OpenAPI path). They are used by the
strict fake servers in ``tests/fakes`` to validate every request the providers send, and by the
tests to check the recorded fixtures. ``additionalProperties: false`` is added where the
document lists every field, so that a field the document does not know is caught in tests.
"""
from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator


def validation_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Messages for every way ``instance`` breaks ``schema`` (formats checked), sorted by path; [] when valid."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    found = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in err.absolute_path) or "(body)"
        found.append(f"{where}: {err.message}")
    return found
