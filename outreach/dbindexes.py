"""Index types and indexed expressions shared by models, migrations and selectors.

PostgreSQL serves the list searches with a ``pg_trgm`` GIN index over one expression (the
searched columns joined by spaces, upper-cased); the selectors filter on exactly that expression
so the planner can use it. SQLite (the embedded default) has no GIN indexes: there the index is
skipped at migration time and searches scan, which is fine at the sizes SQLite is meant for.
"""
from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db.models import F, Value
from django.db.models.functions import Concat, Upper

CONTACT_SEARCH_COLUMNS = ("email", "first_name", "last_name", "company")


def search_text(*columns: str, prefix: str = "") -> Concat:
    """The searched text of a row: ``columns`` (ORM paths under ``prefix``) joined by single spaces.

    The trigram index and the search filter must build the same SQL expression; both call this.
    """
    parts: list = []
    for column in columns:
        if parts:
            parts.append(Value(" "))
        parts.append(F(prefix + column))
    return Concat(*parts)


def contact_search_text(prefix: str = "") -> Concat:
    """A contact's searched text (email, first name, last name, company); ``prefix`` such as
    ``"contact__"`` reaches it from a related model."""
    return search_text(*CONTACT_SEARCH_COLUMNS, prefix=prefix)


class _NoStatement(str):
    """What a skipped index renders to: an empty statement (a no-op for every backend)."""


class TrigramIndex(GinIndex):
    """A ``pg_trgm`` GIN index on ``UPPER(expression)`` that serves ``icontains``/``istartswith``
    on ``expression`` (Django compiles those to ``UPPER(expr::text) LIKE UPPER(%s)``).

    PostgreSQL only: on other databases its create/remove statements are empty, so the same
    model state migrates everywhere and ``makemigrations --check`` stays clean. Needs the
    ``pg_trgm`` extension (``TrigramExtension()`` in the migration that adds the first one).
    """

    def __init__(self, expression, *, name: str, **kwargs):
        super().__init__(OpClass(Upper(expression), name="gin_trgm_ops"), name=name, **kwargs)

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        # Rebuild from the inner expression so migrations read TrigramIndex(<expression>).
        (opclass,) = args
        upper = opclass.get_source_expressions()[0]
        return "outreach.dbindexes.TrigramIndex", (upper.get_source_expressions()[0],), kwargs

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return _NoStatement()
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model, schema_editor, **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return _NoStatement()
        return super().remove_sql(model, schema_editor, **kwargs)
