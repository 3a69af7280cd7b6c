"""Migration operations that run on PostgreSQL and on SQLite (the embedded default)."""
from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently as _PgAddIndexConcurrently
from django.contrib.postgres.operations import TrigramExtension as _PgTrigramExtension
from django.db.migrations.operations import AddIndex


class AddIndexConcurrently(_PgAddIndexConcurrently):
    """``CREATE INDEX CONCURRENTLY`` on PostgreSQL (writes to the table go on while it builds; the
    migration must set ``atomic = False``); a plain ``CREATE INDEX`` elsewhere.

    The model state changes exactly as with ``AddIndex``, so ``makemigrations --check`` is clean.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class TrigramExtension(_PgTrigramExtension):
    """``CREATE EXTENSION pg_trgm`` on PostgreSQL, nothing elsewhere (Django's own operation skips
    other databases going forwards but not backwards)."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
