"""Index types and indexed expressions shared by models, migrations and selectors.

PostgreSQL serves the list searches with a ``pg_trgm`` GIN index over one expression (the
searched columns joined by spaces, upper-cased); the selectors filter on exactly that expression
so the planner can use it. SQLite (the embedded default) has no GIN indexes: there the index is
skipped at migration time and searches scan, which is fine at the sizes SQLite is meant for.
The company autocomplete's prefix index (``COLLATE "C"``) is PostgreSQL-only for the same reason.

The contacts' trigram index is split by team: :data:`SEARCH_SHARDS` partial indexes, each over the
contacts whose ``team_id % SEARCH_SHARDS`` is its shard (:func:`contact_search_indexes`), so a
team's search reads posting lists that hold its own shard's rows only, not every team's.
"""
from __future__ import annotations

import re

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db.models import F, Index, Q, Value
from django.db.models.functions import Collate, Concat, Mod, Upper
from django.db.models.lookups import Exact

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


#: How many partial trigram indexes share the contacts' searched text, by ``team_id`` modulo this.
#: Every contact is in exactly one of them, so an insert writes one GIN index as before; a team's
#: search reads the posting lists of its shard's teams only (at two teams of 1,000,000 contacts
#: each, in different shards: half the index pages and half the rows to check, see README #12).
SEARCH_SHARDS = 8


def search_shard_key(team_path: str = "team") -> Mod:
    """``MOD(team_id, SEARCH_SHARDS)`` of the contact at ``team_path`` (``"contact__team"`` from a
    related model): the partial trigram indexes' predicate expression. A query's shard condition
    must be written with exactly this expression (PostgreSQL proves the index predicate by
    comparing expressions, see :func:`search_shard_sql`)."""
    return Mod(F(team_path), SEARCH_SHARDS)


def search_shard_sql(team_sql: str, shard: int | None) -> str:
    """The SQL condition that lets PostgreSQL use the partial trigram index of ``shard`` (an int
    in ``range(SEARCH_SHARDS)``) for a contact whose team column compiles to ``team_sql``: the
    index predicate itself, ``MOD(team_id, 8) = shard``. With ``shard=None`` (a search over every
    team, as a superuser's admin list) the OR of every shard's predicate, which the planner turns
    into a BitmapOr of every partial index (each OR arm implies one index's predicate). The
    shard numbers are ints written into the SQL (not parameters), so a plan made with bound
    parameters can still prove the predicate."""
    if shard is not None:
        return f"MOD({team_sql}, {SEARCH_SHARDS}) = {int(shard)}"
    return "(" + " OR ".join(f"MOD({team_sql}, {SEARCH_SHARDS}) = {k}" for k in range(SEARCH_SHARDS)) + ")"


def contact_search_indexes() -> list:
    """The contacts' trigram indexes: one :class:`TrigramIndex` over :func:`contact_search_text`
    per shard, ``contact_search_trgm_<k>``, partial on ``MOD(team_id, SEARCH_SHARDS) = k``."""
    return [TrigramIndex(contact_search_text(), name=f"contact_search_trgm_{k}",
                         condition=Q(Exact(search_shard_key(), k))) for k in range(SEARCH_SHARDS)]


#: A word as pg_trgm splits text: a run of letters and digits (anything else separates words).
_WORD = re.compile(r"[^\W_]+")


def trigram_fragments(term: str) -> list[str]:
    """Substrings of the search ``term`` for the trigram index to look up instead of the whole
    term: one per word of the term (a run of letters and digits), each giving the index one
    trigram or two, so the index reads a few posting lists instead of every trigram's.

    Why: pg_trgm turns ``LIKE '%term%'`` into every trigram of the term (a word with ``"  "``
    before and ``" "`` after it where the term itself marks a word boundary; pg_trgm docs, F.35
    "Index Support"), and a GIN scan decodes the posting list of each one across every team.
    Within a word the trigrams find nearly the same rows, so looking up one of them and checking
    the whole term on those rows reads a third to a half of what the whole term does (at
    1,000,000 contacts: 16 ms instead of 27 ms for "Terra North Group 4"). Every fragment is a
    substring of the term, so a row containing the term contains each fragment: the fragments
    only narrow the candidates, the whole term is still checked (``apply_text_search``).

    Per word: with 3 or more characters, its middle 3 characters (``"TERRA"`` → ``"ERR"``); with 1
    or 2 characters and a separator before it in the term, the word with that separator and the
    one after it, if any (``"elena.ng"`` → ``".ng"``, the trigrams ``"  n"`` and ``" ng"``, which
    say "a word starting with ng"); else nothing (``"4"``, or ``"ab"`` alone, gives the index no
    trigram at all). Returns [] when no word gives a fragment (then search for the term itself).
    """
    fragments = []
    for word in _WORD.finditer(term):
        start, end = word.span()
        if end - start >= 3:
            middle = start + (end - start - 3) // 2
            fragment = term[middle:middle + 3]
        elif start > 0:
            fragment = term[start - 1:end + 1]
        elif end - start == 2 and end < len(term):
            fragment = term[start:end + 1]  # "na." → the trigram "na ": a word ending in na
        else:
            continue
        if fragment not in fragments:
            fragments.append(fragment)
    return fragments


class _NoStatement(str):
    """What a skipped index renders to: an empty statement (a no-op for every backend)."""


class _PostgresOnly:
    """An index created and dropped on PostgreSQL only: elsewhere its statements are empty, so the
    same model state migrates everywhere and ``makemigrations --check`` stays clean."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return _NoStatement()
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model, schema_editor, **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return _NoStatement()
        return super().remove_sql(model, schema_editor, **kwargs)


class PostgresIndex(_PostgresOnly, Index):
    """A b-tree index on PostgreSQL only (for expressions other databases cannot index, such as
    ``COLLATE "C"``)."""

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        return "outreach.dbindexes.PostgresIndex", args, kwargs


#: The b-tree collation under which ``LIKE 'prefix%'`` is an index range (PostgreSQL cannot
#: use an index in a linguistic collation such as en_US.UTF-8 for LIKE) and which orders by bytes.
BYTE_ORDER = "C"


def company_prefix_key() -> Collate:
    """The contact's company upper-cased, in byte order: the company autocomplete's search key
    (``LIKE UPPER('term') || '%'``) and first sort column, indexed by ``contact_company_prefix``."""
    return Collate(Upper("company"), BYTE_ORDER)


def company_name_bytes() -> Collate:
    """The contact's company in byte order: the autocomplete's second sort column (exact names
    that differ only in case are listed apart)."""
    return Collate(F("company"), BYTE_ORDER)


class TrigramIndex(_PostgresOnly, GinIndex):
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
