"""Keyset ("seek") pagination and planner-estimated totals for list pages.

A page is read with ``WHERE (sort columns, id) > (the last row's values) ORDER BY … LIMIT n+1``,
so page 1,000 costs what page 1 costs and rows inserted or deleted between page loads are never
skipped or shown twice. The composite ``(team, <sort column>, id)`` indexes in ``models.py``
serve these queries. Every sort column and the ``pk`` tiebreaker go in one direction; NULL sorts
as the largest value on every backend (PostgreSQL's own default), so one index serves both
directions.

Totals: below ``COUNT_THRESHOLD`` rows the exact count; above it, on PostgreSQL, the planner's
estimate for the filtered query (``EXPLAIN``), shown as "about 1.2 million". SQLite always counts
exactly. :func:`list_page` counts in the page query itself (``COUNT(*) OVER ()``) when the planner
expects few rows: such a query reads every matching row anyway (a bitmap scan of the search
index, then a sort), so a second query for the count would repeat the whole search.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Sequence

from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.db import connections
from django.db.models import Count, F, IntegerField, OrderBy, Q, QuerySet, Window
from django.db.models.expressions import RawSQL
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils.dateparse import parse_date, parse_datetime

COUNT_THRESHOLD = 10_000


# --- Sort specification ---------------------------------------------------------------------


@dataclass(frozen=True)
class SortField:
    """One ORM path of an ordering, its direction, and whether it can be NULL."""

    path: str
    descending: bool
    nullable: bool

    def order_by(self, reverse: bool = False) -> OrderBy:
        """The ORDER BY term (NULL largest), optionally reversed."""
        desc = self.descending != reverse
        if not self.nullable:  # plain ASC/DESC, which every backend's index serves
            return F(self.path).desc() if desc else F(self.path).asc()
        return F(self.path).desc(nulls_first=True) if desc else F(self.path).asc(nulls_last=True)


def _path_nullable(model, path: str) -> bool:
    parts = path.split("__")
    nullable = False
    for i, name in enumerate(parts):
        if name == "pk":
            return nullable
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:  # an annotation
            return True
        if field.is_relation and i < len(parts) - 1:
            # A reverse one-to-one or nullable FK on the way makes every later column nullable.
            nullable = nullable or field.null or field.auto_created
            model = field.related_model
        else:
            return nullable or field.null
    return nullable


def sort_fields(qs: QuerySet) -> list[SortField]:
    """The ordering of ``qs`` (strings or ``F().asc()/desc()``) as SortFields, ``pk`` last."""
    result = []
    for term in qs.query.order_by:
        if isinstance(term, OrderBy):
            path, desc = term.expression.name, term.descending
        else:
            path, desc = term.lstrip("-"), term.startswith("-")
        result.append(SortField(path, desc, _path_nullable(qs.model, path)))
    if not result or result[-1].path not in ("pk", "id"):
        result.append(SortField("pk", result[-1].descending if result else False, False))
    return result


def order_by_keyset(qs: QuerySet, fields: Sequence[SortField], *, reverse: bool = False) -> QuerySet:
    """``qs`` ordered by ``fields`` (NULL largest), or by the exact reverse."""
    return qs.order_by(*(f.order_by(reverse) for f in fields))


# --- Cursors ----------------------------------------------------------------------------------


def _value_of(obj: Any, path: str) -> Any:
    for name in path.split("__"):
        try:
            obj = getattr(obj, name)
        except ObjectDoesNotExist:
            return None
        if obj is None:
            return None
    return obj


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "dt" in value:
            parsed = parse_datetime(value["dt"])
        elif "d" in value:
            parsed = parse_date(value["d"])
        elif "n" in value:
            parsed = Decimal(value["n"])
        else:
            parsed = None
        if parsed is None:
            raise ValueError("bad cursor value")
        return parsed
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise ValueError("bad cursor value")


def cursor_for(obj: Any, fields: Sequence[SortField]) -> str:
    """An opaque URL-safe token holding ``obj``'s values of the sort ``fields``."""
    raw = json.dumps([_encode_value(_value_of(obj, f.path)) for f in fields], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_cursor(token: str, fields: Sequence[SortField]) -> list[Any] | None:
    """The values in ``token``, or None when it is malformed or made for another sort."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = [_decode_value(v) for v in json.loads(raw)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if len(values) != len(fields) or values[-1] is None:
        return None
    return values


def _strictly_after(field: SortField, value: Any, descending: bool) -> Q:
    if descending:  # towards smaller values; NULL (largest) comes first
        if value is None:
            return Q(**{f"{field.path}__isnull": False})
        return Q(**{f"{field.path}__lt": value})
    if value is None:  # nothing is larger than NULL
        return Q(pk__in=[])
    cond = Q(**{f"{field.path}__gt": value})
    return cond | Q(**{f"{field.path}__isnull": True}) if field.nullable else cond


def _equal(field: SortField, value: Any) -> Q:
    return Q(**{f"{field.path}__isnull": True}) if value is None else Q(**{field.path: value})


def after_condition(fields: Sequence[SortField], values: Sequence[Any], *, reverse: bool = False):
    """Rows strictly after ``values`` in the ordering (strictly before it when ``reverse``).

    When every sort column is a non-null column of the model itself this is a row comparison,
    ``(a, b, id) > (x, y, i)``, which PostgreSQL uses as the start of the (team, a, b, id) index
    scan even deep inside a run of equal values. Otherwise (NULLs, joined columns) it is the
    expanded form ``a > x OR (a = x AND (…))`` plus a redundant ``a >= x`` bound for the index.
    """
    if all(not f.nullable and "__" not in f.path for f in fields):
        lookup = TupleLessThan if fields[0].descending != reverse else TupleGreaterThan
        return lookup(Tuple(*(F(f.path) for f in fields)), tuple(values))
    cond: Q | None = None
    for field, value in reversed(list(zip(fields, values))):
        desc = field.descending != reverse
        here = _strictly_after(field, value, desc)
        cond = here if cond is None else here | (_equal(field, value) & cond)
    first, v0 = fields[0], values[0]
    if v0 is not None and not (first.nullable and not (first.descending != reverse)):
        # A redundant bound on the first column: the index scan starts there instead of at the top.
        desc = first.descending != reverse
        cond &= Q(**{f"{first.path}__{'lte' if desc else 'gte'}": v0})
    return cond


# --- Pages ------------------------------------------------------------------------------------


@dataclass
class KeysetPage:
    """One page: ``object_list`` plus the tokens for the neighbouring pages ("" when none)."""

    object_list: list
    next_cursor: str = ""
    previous_cursor: str = ""
    is_first: bool = True
    is_last: bool = True
    #: How many rows ``qs`` matches in all, when the page was asked to count them (``count=True``
    #: on a first or last page); else None.
    matched: int | None = None

    @property
    def has_next(self) -> bool:
        return bool(self.next_cursor)

    @property
    def has_previous(self) -> bool:
        return bool(self.previous_cursor)


_MATCHED = "_keyset_matched"


def _capped_count(qs: QuerySet, cap: int) -> RawSQL:
    """A scalar subquery counting the rows of ``qs`` up to ``cap`` (``SELECT COUNT(*) FROM (… LIMIT
    cap)``). It does not depend on the outer row, so the database runs it once per query."""
    inner = qs.order_by().values("pk")[:cap]
    sql, params = inner.query.get_compiler(using=qs.db).as_sql()
    return RawSQL(f"SELECT COUNT(*) FROM ({sql}) AS capped", params, output_field=IntegerField())


def keyset_page(qs: QuerySet, *, per_page: int, after: str = "", before: str = "", last: bool = False,
                count: bool = False, count_up_to: int | None = None) -> KeysetPage:
    """The page of ``qs`` (already ordered) after the ``after`` token, before the ``before``
    token, the last page (``last``), or else the first page. One query. Pages met going
    backwards end where the previous one began, so the first of them may hold fewer rows.

    ``count``: on a page without a cursor (first or last), the same query also counts every
    row of ``qs`` (``COUNT(*) OVER ()``) into ``matched``. That makes the query read all the
    matching rows, so ask for it only when they are few (:func:`list_page` decides).

    ``count_up_to``: on any page, the same query also counts the rows of ``qs`` (all of them,
    not only those after the cursor), stopping at that many, into ``matched`` (None when the
    page has no row to carry it). The page itself is still read as without it."""
    fields = sort_fields(qs)
    after_values = parse_cursor(after, fields)
    before_values = None if after_values else parse_cursor(before, fields)
    counting = count and after_values is None and before_values is None
    if counting:
        qs = qs.annotate(**{_MATCHED: Window(Count("*"))})
    elif count_up_to is not None:
        qs = qs.annotate(**{_MATCHED: _capped_count(qs, count_up_to)})
        counting = True
    if before_values is not None or (last and after_values is None):
        rows_qs = order_by_keyset(qs, fields, reverse=True)
        if before_values is not None:
            rows_qs = rows_qs.filter(after_condition(fields, before_values, reverse=True))
        rows = list(rows_qs[: per_page + 1])
        more_before = len(rows) > per_page
        rows = rows[:per_page][::-1]
        page = KeysetPage(rows, is_first=not more_before, is_last=before_values is None)
    else:
        rows_qs = order_by_keyset(qs, fields)
        if after_values is not None:
            rows_qs = rows_qs.filter(after_condition(fields, after_values))
        rows = list(rows_qs[: per_page + 1])
        more_after = len(rows) > per_page
        rows = rows[:per_page]
        page = KeysetPage(rows, is_first=after_values is None, is_last=not more_after)
    if rows and not page.is_last:
        page.next_cursor = cursor_for(rows[-1], fields)
    if rows and not page.is_first:
        page.previous_cursor = cursor_for(rows[0], fields)
    if counting:
        page.matched = getattr(rows[0], _MATCHED) if rows else (0 if count_up_to is None else None)
    return page


def list_page(qs: QuerySet, *, per_page: int, after: str = "", before: str = "", last: bool = False,
              threshold: int = COUNT_THRESHOLD) -> tuple[KeysetPage, Total]:
    """A list page of ``qs`` (already ordered, see :func:`keyset_page`) and its :class:`Total`,
    in two queries on PostgreSQL — the same two whether ``qs`` matches ten rows or ten million,
    so a page's query count does not change with the table's size — and one on SQLite.

    On PostgreSQL the page is planned first (``EXPLAIN``, not executed): a first or last page
    plans the page query itself, which gives both the estimated number of matching rows and how
    the page will be read; a page behind a cursor plans ``qs`` (the estimate only). Then:

    - above ``threshold`` rows the total is that estimate (inexact) and the page query stops
      after ``per_page`` rows;
    - when the plan sorts (a bitmap scan of the search index, then a top-N sort) it reads every
      matching row anyway, so the page query counts them too (``COUNT(*) OVER ()``, exact): a
      separate count would run the search (~15 ms at 1,000,000 contacts) a second time;
    - otherwise (an index walk that stops early, or a page behind a cursor) the page query
      carries a count capped at ``threshold + 1`` rows (a scalar subquery, run once), exact
      when within the threshold.

    SQLite counts in the page query (exactly; a page behind a cursor with the capped count, and
    a full count after it only when there are more than ``threshold`` rows)."""
    fields = sort_fields(qs)
    behind_cursor = parse_cursor(after, fields) is not None or parse_cursor(before, fields) is not None
    if behind_cursor:
        estimate = planner_estimate(qs)
        if estimate is not None and estimate > threshold:
            return keyset_page(qs, per_page=per_page, after=after, before=before), Total(estimate, exact=False)
        page = keyset_page(qs, per_page=per_page, after=after, before=before, count_up_to=threshold + 1)
        return page, _capped_total(qs, page, threshold=threshold, estimate=estimate)
    plan = page_plan(order_by_keyset(qs, fields, reverse=last)[: per_page + 1])
    if plan is not None and plan.rows > threshold:
        return keyset_page(qs, per_page=per_page, last=last), Total(plan.rows, exact=False)
    if plan is None or plan.reads_all:
        page = keyset_page(qs, per_page=per_page, last=last, count=True)
        return page, Total(page.matched, exact=True)
    page = keyset_page(qs, per_page=per_page, last=last, count_up_to=threshold + 1)
    return page, _capped_total(qs, page, threshold=threshold, estimate=plan.rows)


def _capped_total(qs: QuerySet, page: KeysetPage, *, threshold: int, estimate: int | None) -> Total:
    """The Total from a page read with ``count_up_to=threshold + 1`` (see :func:`total_of`)."""
    if page.matched is None:  # an empty page behind a cursor carried no count
        return total_of(qs, threshold=threshold, estimate=estimate)
    if page.matched <= threshold:
        return Total(page.matched, exact=True)
    if estimate is None:
        return Total(qs.order_by().count(), exact=True)
    return Total(max(estimate, page.matched), exact=False)


@dataclass(frozen=True)
class PagePlan:
    """What PostgreSQL's plan of a page query says: the estimated rows before the LIMIT, and
    whether it reads all of them (a sort or an aggregate between the LIMIT and the scans)."""

    rows: int
    reads_all: bool


_READS_ALL = {"Sort", "Aggregate", "WindowAgg", "Hash", "Materialize", "Unique", "SetOp"}


def page_plan(page_qs: QuerySet) -> PagePlan | None:
    """The :class:`PagePlan` of ``page_qs`` (ordered and sliced) on PostgreSQL, else None."""
    if connections[page_qs.db].vendor != "postgresql":
        return None
    node = json.loads(page_qs.explain(format="json"))[0]["Plan"]
    if node["Node Type"] == "Limit":
        node = node["Plans"][0]
    rows, reads_all = int(node["Plan Rows"]), False
    while True:  # down the outer side: the rows reach the LIMIT through it
        if node["Node Type"] in _READS_ALL:
            reads_all = True
            break
        if "Scan" in node["Node Type"] or not node.get("Plans"):
            break
        node = node["Plans"][0]
    return PagePlan(rows, reads_all)


# --- Totals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Total:
    """How many rows match: ``value`` and whether it is exact."""

    value: int
    exact: bool

    def __str__(self) -> str:
        return format_total(self.value, self.exact)


def planner_estimate(qs: QuerySet) -> int | None:
    """PostgreSQL's estimate of the rows ``qs`` returns (``EXPLAIN``, no execution), else None."""
    if connections[qs.db].vendor != "postgresql":
        return None
    plan = json.loads(qs.order_by().values("pk").explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def total_of(qs: QuerySet, *, threshold: int = COUNT_THRESHOLD, estimate: int | None = None) -> Total:
    """The exact count up to ``threshold``; beyond it the planner's estimate on PostgreSQL (an
    exact count elsewhere). At most two cheap queries: EXPLAIN (skipped when the caller passes
    the ``estimate`` it already has), then — only when the estimate is within the threshold — a
    count capped at ``threshold + 1`` rows (so an underestimate costs at most ``threshold`` rows
    of counting)."""
    qs = qs.order_by()
    if estimate is None:
        estimate = planner_estimate(qs)
    if estimate is not None and estimate > threshold:
        return Total(estimate, exact=False)
    capped = qs.values("pk")[: threshold + 1].count()
    if capped <= threshold:
        return Total(capped, exact=True)
    if estimate is None:
        return Total(qs.count(), exact=True)
    return Total(max(estimate, capped), exact=False)


def format_total(value: int, exact: bool = True) -> str:
    """``12,345`` when exact; "about 12,000" / "about 1.2 million" (two significant figures) when not."""
    if exact:
        return f"{value:,}"
    if value >= 1_000_000:
        millions = round(value / 1_000_000, 1 if value < 10_000_000 else 0)
        return f"about {millions:g} million"
    digits = len(str(value))
    rounded = round(value, -(digits - 2)) if digits > 2 else value
    return f"about {rounded:,}"


class EstimatedCountPaginator(Paginator):
    """A Django Paginator whose ``count`` is :func:`total_of` (exact up to the threshold, the
    planner's estimate beyond) instead of ``COUNT(*)`` over the whole table: for Django admin's
    change lists of large tables (``ModelAdmin.paginator``)."""

    @cached_property
    def count(self) -> int:
        return total_of(self.object_list).value
