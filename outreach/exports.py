"""CSV export of the contacts and leads lists for the current search and filters.

Streamed (``StreamingHttpResponse``; rows read in keyset order in chunks, so memory stays flat
at any size), UTF-8 with a BOM so Excel detects the encoding, every cell formula-escaped with
the import's own ``escape_cell``. The contact columns carry the import's own field labels and
custom fields are one column each (header = key), so an exported file imports back unchanged.
"""
from __future__ import annotations

import csv
from typing import Callable, Iterable, Iterator

from django.db import connections
from django.db.models import QuerySet

from .external_ids import external_id_fields
from .imports.mapping import CONTACT_TARGETS, TARGETS
from .imports.report import escape_cell

BOM = "\ufeff"
CHUNK_ROWS = 2_000
MAX_CUSTOM_COLUMNS = 200


class _Line:
    """A file-like object whose ``write`` returns what it was given (csv.writer → one line)."""

    def write(self, value: str) -> str:
        return value


def custom_field_keys(qs: QuerySet, *, field: str = "custom_fields", limit: int = MAX_CUSTOM_COLUMNS) -> list[str]:
    """The distinct keys of the JSON ``field`` over the rows of ``qs``, sorted (at most ``limit``),
    computed in the database (jsonb_object_keys on PostgreSQL, json_each on SQLite)."""
    sql, params = qs.order_by().values(field).query.sql_with_params()
    column = connections[qs.db].ops.quote_name(field)
    if connections[qs.db].vendor == "postgresql":
        keys_sql = f"SELECT DISTINCT k FROM ({sql}) s, jsonb_object_keys(s.{column}) k ORDER BY k LIMIT {int(limit)}"
    else:
        keys_sql = (f"SELECT DISTINCT j.key FROM ({sql}) s, json_each(s.{column}) j "
                    f"WHERE json_type(s.{column}) = 'object' ORDER BY j.key LIMIT {int(limit)}")
    with connections[qs.db].cursor() as cursor:
        cursor.execute(keys_sql, params)
        return [row[0] for row in cursor.fetchall()]


def csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """The BOM plus header line, then one escaped CSV line per row (``None`` → empty cell)."""
    writer = csv.writer(_Line())
    yield BOM + writer.writerow([escape_cell(h) for h in header])
    for row in rows:
        yield writer.writerow([escape_cell("" if v is None else v) for v in row])


def contact_columns(custom_keys: list[str], *, path: Callable = lambda obj: obj) -> tuple[list[str], Callable]:
    """Header and row function for contacts: the import's contact fields, then one column per
    custom field. ``path`` reaches the contact from the exported object (a lead → its contact).
    The contact's vendor ids are read from its prefetched ``external_ids``."""
    header = [TARGETS[t] for t in CONTACT_TARGETS] + custom_keys
    id_keys = {f.key for f in external_id_fields("contact")}

    def row(obj) -> list:
        contact = path(obj)
        custom = contact.custom_fields if isinstance(contact.custom_fields, dict) else {}
        ids = {e.key: e.value for e in contact.external_ids.all() if e.object == "contact"}
        return ([ids.get(t, "") if t in id_keys else getattr(contact, t) for t in CONTACT_TARGETS]
                + [custom.get(k, "") for k in custom_keys])

    return header, row


def contacts_csv(qs: QuerySet) -> Iterator[str]:
    """CSV lines for the contacts of ``qs`` (in its order): only columns the import maps back to
    the same fields (lead status and owner are in the leads export)."""
    header, row = contact_columns(custom_field_keys(qs))
    return csv_lines(header, (row(c) for c in qs.prefetch_related("external_ids").iterator(chunk_size=CHUNK_ROWS)))


def leads_csv(qs: QuerySet) -> Iterator[str]:
    """CSV lines for the leads of ``qs`` (in its order): the contact's columns, then status and owner."""
    contacts = qs.model.contact.field.related_model.objects.filter(pk__in=qs.order_by().values("contact_id"))
    header, row = contact_columns(custom_field_keys(contacts), path=lambda lead: lead.contact)
    return csv_lines(header + ["Lead status", "Lead owner"],
                     (row(lead) + [lead.get_status_display(), lead.owner.get_username() if lead.owner else ""]
                      for lead in qs.prefetch_related("contact__external_ids").iterator(chunk_size=CHUNK_ROWS)))
