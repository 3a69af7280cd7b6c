"""Migration operations that run on PostgreSQL and on SQLite (the embedded default)."""
from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently as _PgAddIndexConcurrently
from django.contrib.postgres.operations import RemoveIndexConcurrently as _PgRemoveIndexConcurrently
from django.contrib.postgres.operations import TrigramExtension as _PgTrigramExtension
from django.db.migrations.operations import AddIndex, RemoveIndex, RunSQL
from django.db.migrations.operations.base import Operation


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


class RemoveIndexConcurrently(_PgRemoveIndexConcurrently):
    """``DROP INDEX CONCURRENTLY`` on PostgreSQL (the migration must set ``atomic = False``); a
    plain ``RemoveIndex`` elsewhere. The model state changes exactly as with ``RemoveIndex``."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return RemoveIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return RemoveIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class PostgresSQL(RunSQL):
    """``RunSQL`` on PostgreSQL only (nothing elsewhere, both directions): for statements other
    databases do not have, such as ``CREATE STATISTICS``."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class TrigramExtension(_PgTrigramExtension):
    """``CREATE EXTENSION pg_trgm`` on PostgreSQL, nothing elsewhere (Django's own operation skips
    other databases going forwards but not backwards)."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class DropFieldIndexConcurrently(Operation):
    """Drop the plain single-column indexes Django gave ``model_name.field_name`` — the index of
    ``db_index=True`` and, on PostgreSQL, the ``…_like`` (``varchar_pattern_ops``) index it adds
    for a ``CharField``/``TextField`` with ``db_index`` or ``unique`` — with ``DROP INDEX
    CONCURRENTLY`` on PostgreSQL (the table stays writable; a plain ``DROP INDEX`` elsewhere);
    backwards, build again what the field's earlier state gets from Django (concurrently on
    PostgreSQL): the plain index when it had ``db_index``, the ``_like`` index when it had
    ``db_index`` or ``unique``. A unique constraint is never touched.

    Database only. For ``db_index`` pair it with the field's ``AlterField(db_index=False)`` in
    ``SeparateDatabaseAndState`` (Django's own AlterField drops the index inside the migration's
    lock-holding statement order and never concurrently). For only the ``_like`` index of a
    unique field use it alone: the state keeps ``unique=True``, and a later AlterField that
    changes the column drops the (absent) ``_like`` index with ``IF EXISTS``. The indexes are
    found by introspection (one column, not unique, not one of the model's declared
    ``Meta.indexes``), so their generated names do not matter. The migration must set
    ``atomic = False``.
    """

    reversible = True

    def __init__(self, model_name: str, field_name: str):
        self.model_name = model_name
        self.field_name = field_name

    def deconstruct(self):
        return self.__class__.__qualname__, [], {"model_name": self.model_name, "field_name": self.field_name}

    def state_forwards(self, app_label, state):
        pass

    def describe(self):
        return f"Drop the index of {self.model_name}.{self.field_name} (concurrently on PostgreSQL)"

    @staticmethod
    def _concurrently(schema_editor) -> str:
        return "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        column = model._meta.get_field(self.field_name).column
        declared = {index.name for index in model._meta.indexes}
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
        for name, info in constraints.items():
            if (info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == [column]
                    and name not in declared):
                schema_editor.execute(f"DROP INDEX {self._concurrently(schema_editor)}IF EXISTS "
                                      f"{schema_editor.quote_name(name)}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        field = model._meta.get_field(self.field_name)
        postgres = schema_editor.connection.vendor == "postgresql"
        extra = {"concurrently": True} if postgres else {}
        if field.db_index and not field.unique:
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field], **extra))
        opclass = self._like_opclass(schema_editor, field) if postgres and (field.db_index or field.unique) else ""
        if opclass:  # as PostgreSQL's schema editor's _create_like_index_sql, but concurrently
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field], suffix="_like",
                                                                  opclasses=[opclass], **extra))

    @staticmethod
    def _like_opclass(schema_editor, field) -> str:
        """The pattern operator class of Django's ``_like`` index for ``field`` ("" when it gets none)."""
        db_type = field.db_type(connection=schema_editor.connection) or ""
        if "[" in db_type or getattr(field, "db_collation", None):
            return ""
        if db_type.startswith("varchar"):
            return "varchar_pattern_ops"
        if db_type.startswith("text"):
            return "text_pattern_ops"
        return ""
