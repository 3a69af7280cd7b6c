"""Read queries for the UI: list search/filter/sort, choices for filters, and the contact timeline.

Every function takes the ``team`` (or an object already loaded through ``for_team``) and never
returns another team's rows. Writes live in ``outreach.services``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Iterator, Sequence

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import BooleanField, Count, Expression, F, Prefetch, Q, QuerySet
from django.db.models.functions import Upper
from django.db.models.fields.json import KeyTextTransform
from django.utils.text import smart_split, unescape_string_literal

from .dbindexes import SEARCH_SHARDS, contact_search_text, search_shard_sql, trigram_fragments
from .external_ids import external_id_fields
from .models import BulkJob, Contact, ExternalId, Lead, Mailbox, Membership, ProviderAccount, SentMessage, Team, TimelineEvent
from .pagination import keyset_page


# --- Generic list helpers ------------------------------------------------------------------


def search_terms(q: str) -> list[str]:
    """Split a search box value into terms; "quoted phrases" stay together (as in Django's admin)."""
    terms = []
    for bit in smart_split(q or ""):
        if bit[:1] in "\"'" and bit[-1:] == bit[:1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        bit = bit.strip()
        if bit:
            terms.append(bit)
    return terms


def apply_search(qs: QuerySet, q: str, fields: Sequence[str]) -> QuerySet:
    """Rows where every term of ``q`` is contained (case-insensitively) in at least one of ``fields``."""
    for term in search_terms(q):
        cond = Q()
        for name in fields:
            cond |= Q(**{f"{name}__icontains": term})
        qs = qs.filter(cond)
    return qs


class _TermsInText(Expression):
    """PostgreSQL's search condition: the upper-cased ``text`` contains every term (see
    :func:`apply_text_search`), written with ``text`` compiled once however many terms and
    fragments there are (compiling the four-column concatenation once per condition cost ~5 ms
    of Python per query for a four-word search).

    ``terms``: ``[(term, fragments)]``; with ``indexed`` each term becomes ``UPPER(text::text) LIKE
    UPPER('%fragment%')`` per fragment (the expression of the trigram index, so the planner uses
    the index for them) and ``STRPOS(UPPER(text::text), UPPER(term)) <> 0``; without, ``UPPER(
    text::text) LIKE UPPER('%term%')`` (Django's ``icontains``, served by the index as it can).
    PostgreSQL estimates ``<> 0`` as true for nearly every row (``1 -`` the default equality
    selectivity), so the row estimate the list totals rely on comes from the index conditions.

    ``team``: the searched contact's team column (an ``F``) when ``text`` is the contacts'
    sharded search text; then ``shard`` (0 … SEARCH_SHARDS - 1, or None for every team) adds the
    partial indexes' predicate (:func:`~outreach.dbindexes.search_shard_sql`), so the planner may
    use the team's shard index (or all of them, OR'ed)."""

    conditional = True

    def __init__(self, text: Expression, terms: Sequence[tuple[str, Sequence[str]]], *, indexed: bool,
                 team: Expression | None = None, shard: int | None = None):
        super().__init__(output_field=BooleanField())
        self.text, self.terms, self.indexed = text, [(t, list(f)) for t, f in terms], indexed
        self.team, self.shard = team, shard

    def get_source_expressions(self):
        return [self.text, self.team]

    def set_source_expressions(self, exprs):
        self.text, self.team = exprs

    def as_sql(self, compiler, connection):
        text_sql, text_params = compiler.compile(self.text)
        upper = f"UPPER(({text_sql})::text)"
        sql, params = [], []
        if self.team is not None:
            team_sql, team_params = compiler.compile(self.team)
            sql.append(search_shard_sql(team_sql, self.shard))
            params += team_params * (1 if self.shard is not None else SEARCH_SHARDS)
        for term, fragments in self.terms:
            for pattern in (fragments if self.indexed else [term]):
                sql.append(f"{upper} LIKE UPPER(%s)")
                params += [*text_params, f"%{connection.ops.prep_for_like_query(pattern)}%"]
            if self.indexed:
                sql.append(f"STRPOS({upper}, UPPER(%s)) <> 0")
                params += [*text_params, term]
        return "(" + " AND ".join(sql) + ")", params


def apply_text_search(qs: QuerySet, q: str, text: Expression, *, team_path: str | None = None,
                      team: Team | None = None) -> QuerySet:
    """Rows whose ``text`` expression contains every term of ``q`` (case-insensitively: the
    upper-cased text contains the upper-cased term, as Django's ``icontains``).

    ``text`` is an indexed expression from ``outreach.dbindexes``: on PostgreSQL a pg_trgm index
    serves ``UPPER(text) LIKE UPPER('%fragment%')``. There each term is looked up in the index by
    its :func:`~outreach.dbindexes.trigram_fragments` (a few trigrams instead of all of them) and
    checked whole on the rows found, with ``strpos(UPPER(text), UPPER(term)) <> 0``, which the
    index cannot serve and so does not make it read every trigram of the term again; a term
    without fragments ("4") is only checked, when another term gives the index something to
    look up (a term without trigrams would make the GIN scan visit every entry). When no term
    has fragments: ``LIKE '%term%'`` for every term, as ``icontains``. Other databases:
    ``icontains`` for every term.

    ``team_path``: for the contacts' search text (``contact_search_text(prefix)``), the ORM path
    of the contact's team (``prefix + "team"``): the contacts' trigram index is one partial index
    per team shard (``dbindexes.contact_search_indexes``), and the condition then names the shard
    of ``team`` (the rows' team; the caller filters by it) or, with ``team=None``, every shard.
    Without ``team_path`` no shard is named (an expression without sharded indexes)."""
    terms = search_terms(q)
    if not terms:
        return qs
    if connections[qs.db].vendor == "postgresql":
        fragments = [(term, trigram_fragments(term)) for term in terms]
        indexed = any(f for _, f in fragments)
        sharded = team_path is not None and (indexed or team is not None)
        return qs.filter(_TermsInText(text, fragments, indexed=indexed, team=F(team_path) if sharded else None,
                                      shard=team.pk % SEARCH_SHARDS if sharded and team is not None else None))
    for term in terms:
        qs = qs.alias(_search_text=text).filter(_search_text__icontains=term)
    return qs


def apply_ordering(qs: QuerySet, key: str, allowed: dict[str, Sequence[str]], default: str) -> tuple[QuerySet, str]:
    """Order ``qs`` by ``key`` ("field" or "-field") if its name is in ``allowed`` (name → ORM fields),
    else by ``default``. Returns (queryset, the key actually used). ``pk`` breaks ties in the same
    direction, so a composite ``(team, <columns>, id)`` index serves the sort and keyset pages
    (``outreach.pagination``)."""
    key = key or default
    name = key.lstrip("-")
    if name not in allowed:
        key, name = default, default.lstrip("-")
    desc = key.startswith("-")
    fields = [f"-{f}" if desc else f for f in (*allowed[name], "pk")]
    return qs.order_by(*fields), key


def id_batches(qs: QuerySet, size: int = 5_000) -> Iterator[list[int]]:
    """The primary keys of ``qs`` in ascending batches of ``size``, read by keyset (no OFFSET), so a
    bulk write over a million rows neither holds them in memory nor rescans them."""
    last = 0
    while True:
        batch = list(qs.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:size])
        if not batch:
            return
        yield batch
        last = batch[-1]


def more_rows_than(qs: QuerySet, limit: int) -> bool:
    """Whether ``qs`` has more than ``limit`` rows, counting at most ``limit + 1`` of them (a
    ``COUNT(*)`` over a ``LIMIT`` subquery), so the answer costs the same at a million rows."""
    return qs.order_by()[: limit + 1].count() > limit


@dataclass
class ListQuery:
    """What a list page asks for: search text, filter values by parameter name, sort key.

    ``lookups`` is set only for a Django admin changelist's "select all" (``outreach.admin_bulk``):
    its list-filter query parameters as ORM lookups, each with its list of values
    (``{"created_at__gte": ["2026-12-01 00:00:00+00:00"], "team__id__exact": ["3"]}``),
    applied by :func:`apply_lookups` as the admin applies them. The UI lists never set it."""

    q: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    order: str = ""
    lookups: dict[str, list[str]] = field(default_factory=dict)


def apply_lookups(qs: QuerySet, lookups: dict[str, list[str]]) -> QuerySet:
    """``qs`` filtered by Django admin list-filter ``lookups`` (``ListQuery.lookups``) exactly as
    the admin changelist filters it (``django.contrib.admin``'s ``prepare_lookup_value`` — ``__in``
    split on commas, ``__isnull`` to a bool — then one Q per parameter, its values OR-ed, the
    parameters AND-ed, as ``build_q_object_from_lookup_parameters``). The lookups must have passed
    the ModelAdmin's ``lookup_allowed`` when they were taken from the request. Raises FieldError
    (unknown field), ValueError or ValidationError (a value of the wrong type) when the query is
    built or run."""
    from django.contrib.admin.utils import build_q_object_from_lookup_parameters, prepare_lookup_value

    if not lookups:
        return qs
    prepared = {key: prepare_lookup_value(key, [str(v) for v in values]) for key, values in lookups.items()}
    return qs.filter(build_q_object_from_lookup_parameters(prepared))


@dataclass(frozen=True)
class Selection:
    """The rows a bulk action (or a campaign enrolment) applies to: the checked ``ids``, or — when
    ``query`` is set — every row matching that list query ("all N matching"), however many.
    Selectors resolve it within one team (``contacts_selected``, ``leads_selected``)."""

    ids: tuple[int, ...] = ()
    query: ListQuery | None = None

    @classmethod
    def of_ids(cls, ids: Iterable[int]) -> "Selection":
        return cls(ids=tuple(int(i) for i in ids))

    @property
    def is_empty(self) -> bool:
        return self.query is None and not self.ids


# --- Contacts ------------------------------------------------------------------------------

# Each sort has a (team, <columns>, id) index (models.py). The lead status is a filter here, not
# a sort: ordering 1,000,000 contacts by a joined column cannot use an index (the leads list
# sorts by status).
CONTACT_ORDERING = {
    "email": ("email",),
    "name": ("last_name", "first_name"),
    "company": ("company",),
    "title": ("title",),
    "created": ("created_at",),
}


def contact_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's contacts for the list page. Filters: ``lead`` ("yes", "no" or a Lead.Status
    value) and ``company`` (exact). Returns (queryset, sort key used). Each contact read carries
    ``lead_or_none``: its Lead, or None."""
    # The page's leads in a second query for its 50 contacts (prefetch), not a join: a search's
    # plan joins before its sort, i.e. a lead lookup for every matching contact. Into an
    # attribute that is None for a contact without a lead: ``contact.lead`` would raise there,
    # and a template's failed lookup costs a dir() of the model instance (a tenth of a list's
    # rendering time with 35 such rows).
    qs = Contact.objects.for_team(team).prefetch_related(Prefetch("lead", to_attr="lead_or_none"))
    qs = apply_text_search(qs, query.q, contact_search_text(), team_path="team", team=team)
    lead = query.filters.get("lead", "")
    if lead == "yes":
        qs = qs.filter(lead__isnull=False)
    elif lead == "no":
        qs = qs.filter(lead__isnull=True)
    elif lead in Lead.Status.values:
        qs = qs.filter(lead__status=lead)
    if query.filters.get("company"):
        qs = qs.filter(company=query.filters["company"])
    return apply_ordering(qs, query.order, CONTACT_ORDERING, "-created")


def company_suggestions(*, team: Team, term: str, limit: int = 20) -> list[str]:
    """Up to ``limit`` distinct company names of the team's contacts that start with ``term``
    (case-insensitively; ``%`` and ``_`` are plain characters), ordered by the upper-cased name
    in byte order, then by the name (so names differing only in case are listed apart, each a
    value of the exact company filter); the company filter's autocomplete. An empty ``term``
    lists the first ``limit`` names.

    On PostgreSQL a loose index scan (a recursive query: one probe of ``contact_company_prefix``
    per name, so the cost does not depend on how many contacts share a name or a prefix;
    ~0.1 ms at 1,000,000 contacts). Elsewhere (SQLite) the same rows by a plain ``DISTINCT``
    (SQLite's ``UPPER`` folds ASCII letters only)."""
    if connection.vendor == "postgresql":
        prefix = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with connection.cursor() as cursor:
            cursor.execute(COMPANY_SUGGESTIONS_SQL, {"team": team.pk, "prefix": prefix, "limit": limit})
            return [row[0] for row in cursor.fetchall()]
    qs = Contact.objects.for_team(team).exclude(company="")
    if term:
        qs = qs.filter(company__istartswith=term)
    names = qs.annotate(_key=Upper("company")).order_by("_key", "company").values_list("_key", "company").distinct()
    return [name for _, name in names[:limit]]


# The next name after (key, name) is one probe of contact_company_prefix (team_id, UPPER(company)
# COLLATE "C", company COLLATE "C"): the row comparison starts the scan, LIKE 'PREFIX%' bounds it.
_KEY = 'UPPER({t}company) COLLATE "C"'
COMPANY_SUGGESTIONS_SQL = f"""
WITH RECURSIVE names (key, name) AS (
    (SELECT {_KEY.format(t="")}, company COLLATE "C" FROM outreach_contact
      WHERE team_id = %(team)s AND {_KEY.format(t="")} LIKE UPPER(%(prefix)s) AND company <> ''
      ORDER BY 1, 2 LIMIT 1)
    UNION ALL
    SELECT next.key, next.name FROM names CROSS JOIN LATERAL (
        SELECT {_KEY.format(t="c.")} AS key, c.company COLLATE "C" AS name FROM outreach_contact c
         WHERE c.team_id = %(team)s AND {_KEY.format(t="c.")} LIKE UPPER(%(prefix)s)
           AND ({_KEY.format(t="c.")}, c.company COLLATE "C") > (names.key, names.name)
         ORDER BY 1, 2 LIMIT 1) AS next
)
SELECT name FROM names LIMIT %(limit)s
"""


def contacts_by_ids(*, team: Team, ids: Iterable[int]) -> QuerySet:
    """The team's contacts among ``ids`` (other teams' ids are silently absent)."""
    return Contact.objects.for_team(team).filter(pk__in=list(ids))


def contacts_selected(*, team: Team, selection: Selection) -> QuerySet:
    """The team's contacts a Selection stands for (unordered): its ids, or every contact matching
    its query (search, filters and admin lookups; the sort is ignored)."""
    if selection.query is not None:
        return apply_lookups(contact_list(team=team, query=selection.query)[0].order_by(), selection.query.lookups)
    return contacts_by_ids(team=team, ids=selection.ids)


# --- Leads ---------------------------------------------------------------------------------

# status and created have lead indexes; email/name/company walk the contact indexes (the
# contact's team is filtered too so the planner can). The owner is a filter, not a sort.
LEAD_ORDERING = {
    "email": ("contact__email",),
    "name": ("contact__last_name", "contact__first_name"),
    "company": ("contact__company",),
    "status": ("status", "created_at"),
    "created": ("created_at",),
}


def lead_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's leads. Filters: ``status`` (Lead.Status value), ``owner`` (user id or "none")."""
    qs = Lead.objects.for_team(team).filter(contact__team=team).select_related("contact", "owner")
    qs = apply_text_search(qs, query.q, contact_search_text("contact__"), team_path="contact__team", team=team)
    status = query.filters.get("status", "")
    if status in Lead.Status.values:
        qs = qs.filter(status=status)
    owner = query.filters.get("owner", "")
    if owner == "none":
        qs = qs.filter(owner__isnull=True)
    elif owner.isdigit():
        qs = qs.filter(owner_id=int(owner))
    return apply_ordering(qs, query.order, LEAD_ORDERING, "-created")


def team_users(*, team: Team) -> QuerySet:
    """Users who are members of ``team``, by username."""
    return get_user_model().objects.filter(membership__team=team).order_by("username")


def lead_owner_choices(*, team: Team) -> list[tuple[str, str]]:
    """Owner filter choices: every team member plus "none" (unassigned)."""
    return [("none", "Unassigned")] + [(str(u.pk), u.get_full_name() or u.get_username()) for u in team_users(team=team)]


def leads_by_ids(*, team: Team, ids: Iterable[int]) -> QuerySet:
    """The team's leads among ``ids``."""
    return Lead.objects.for_team(team).filter(pk__in=list(ids)).select_related("contact")


def leads_selected(*, team: Team, selection: Selection) -> QuerySet:
    """The team's leads a Selection stands for (unordered; contact joined): its ids, or every
    lead matching its query (search, filters and admin lookups)."""
    if selection.query is not None:
        return apply_lookups(lead_list(team=team, query=selection.query)[0].order_by(), selection.query.lookups)
    return leads_by_ids(team=team, ids=selection.ids)


def timeline_events_selected(*, team: Team, selection: Selection) -> QuerySet:
    """The team's timeline events a Selection stands for (unordered): its ids, or every event
    whose contact matches the query's search (``q``, the contact's searched text, as the admin's
    timeline search) and its admin ``lookups``. The query's ``filters`` are not used (no UI list
    of timeline events)."""
    qs = TimelineEvent.objects.for_team(team)
    if selection.query is None:
        return qs.filter(pk__in=list(selection.ids))
    qs = apply_text_search(qs, selection.query.q, contact_search_text("contact__"), team_path="contact__team",
                           team=team)
    return apply_lookups(qs, selection.query.lookups)


# --- Bulk jobs -----------------------------------------------------------------------------

BULK_JOB_ORDERING = {"created": ("created_at",)}  # the (team, created_at, id) index
BULK_JOB_SEARCH = ("message", "actor__username")


def bulk_job_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's bulk jobs, newest first; search in the outcome message and the starter's user
    name. Filters: ``status`` and ``kind`` (BulkJob.Status / BulkJob.Kind values). Returns
    (queryset, sort key used)."""
    qs = apply_search(BulkJob.objects.for_team(team).select_related("actor"), query.q, BULK_JOB_SEARCH)
    status, kind = query.filters.get("status", ""), query.filters.get("kind", "")
    if status in BulkJob.Status.values:
        qs = qs.filter(status=status)
    if kind in BulkJob.Kind.values:
        qs = qs.filter(kind=kind)
    return apply_ordering(qs, query.order, BULK_JOB_ORDERING, "-created")


def bulk_jobs_by_ids(*, team: Team, ids: Iterable[int]) -> QuerySet:
    """The team's bulk jobs among ``ids`` (other teams' ids are silently absent)."""
    return BulkJob.objects.for_team(team).filter(pk__in=list(ids))


# --- Mailboxes -----------------------------------------------------------------------------

MAILBOX_SEARCH = ("sender_email", "sender_name", "provider_config__smtp_host", "provider_config__imap_host")
MAILBOX_ORDERING = {
    "sender": ("sender_email",),
    "provider": ("provider",),
    "smtp_host": ("smtp_host",),
    "imap_host": ("imap_host",),
    "checked": ("last_checked_at",),
    "active": ("is_active",),
}


def mailbox_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's mailboxes. Filters: ``active`` ("yes"/"no"), ``provider``."""
    # The list shows each SMTP mailbox's servers from its settings (provider_config); secrets are
    # never read here.
    qs = Mailbox.objects.for_team(team).annotate(**{
        name: KeyTextTransform(name, "provider_config") for name in ("smtp_host", "smtp_port", "imap_host", "imap_port")})
    qs = apply_search(qs, query.q, MAILBOX_SEARCH)
    active = query.filters.get("active", "")
    if active in ("yes", "no"):
        qs = qs.filter(is_active=(active == "yes"))
    if query.filters.get("provider"):
        qs = qs.filter(provider=query.filters["provider"])
    return apply_ordering(qs, query.order, MAILBOX_ORDERING, "sender")


def mailboxes_by_ids(*, team: Team, ids: Iterable[int]) -> QuerySet:
    """The team's mailboxes among ``ids``."""
    return Mailbox.objects.for_team(team).filter(pk__in=list(ids))


def mailbox_choices(*, team: Team) -> list[tuple[str, str]]:
    """Every mailbox of the team as (id, label) for filters."""
    return [(str(m.pk), str(m)) for m in Mailbox.objects.for_team(team).only("pk", "sender_name", "sender_email")]


def active_mailboxes(*, team: Team) -> QuerySet:
    """Mailboxes the team can send from (active), by sender address."""
    return Mailbox.objects.for_team(team).filter(is_active=True).order_by("sender_email")


# --- Provider accounts ---------------------------------------------------------------------

PROVIDER_ACCOUNT_SEARCH = ("name", "base_url")
PROVIDER_ACCOUNT_ORDERING = {
    "name": ("name",),
    "provider": ("provider",),
    "base_url": ("base_url",),
    "mailboxes": ("mailbox_count",),
    "created": ("created_at",),
}


def provider_account_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's provider accounts with ``mailbox_count`` (the key is never loaded).
    Filter: ``provider``. Returns (queryset, sort key used)."""
    qs = (ProviderAccount.objects.for_team(team).defer("api_key_encrypted")
          .annotate(mailbox_count=Count("mailboxes")))
    qs = apply_search(qs, query.q, PROVIDER_ACCOUNT_SEARCH)
    if query.filters.get("provider"):
        qs = qs.filter(provider=query.filters["provider"])
    return apply_ordering(qs, query.order, PROVIDER_ACCOUNT_ORDERING, "name")


def provider_accounts(*, team: Team) -> QuerySet:
    """The team's provider accounts by name (key not loaded), for choices."""
    return ProviderAccount.objects.for_team(team).defer("api_key_encrypted").order_by("name", "pk")


# --- Sent messages -------------------------------------------------------------------------

MESSAGE_SEARCH = ("subject", "contact__email", "to")
# Each sort has a (team, <column>, id) index; subject, recipient and mailbox are not sortable
# (a 998-character subject makes a poor index key; the recipient and mailbox are joined).
MESSAGE_ORDERING = {
    "status": ("status", "created_at"),
    "attempts": ("attempts",),
    "created": ("created_at",),
    "sent": ("sent_at",),
}


def sent_message_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's sent messages (bodies deferred). Filters: ``status``, ``mailbox`` (id)."""
    qs = (SentMessage.objects.for_team(team).select_related("mailbox", "contact")
          .defer("html_body", "text_body", "provider_response"))
    qs = apply_search(qs, query.q, MESSAGE_SEARCH)
    status = query.filters.get("status", "")
    if status in SentMessage.Status.values:
        qs = qs.filter(status=status)
    mailbox = query.filters.get("mailbox", "")
    if mailbox.isdigit():
        qs = qs.filter(mailbox_id=int(mailbox))
    return apply_ordering(qs, query.order, MESSAGE_ORDERING, "-created")


def sent_message_events(*, sent_message: SentMessage) -> QuerySet:
    """The message's timeline events, newest first."""
    return sent_message.timeline_events.select_related("actor").order_by("-created_at", "-id")


# --- Contact timeline ----------------------------------------------------------------------


@dataclass
class TimelineEntry:
    """One row of a contact's timeline: a message card (with its events) or a contact event."""

    at: datetime
    message: SentMessage | None = None
    event: TimelineEvent | None = None
    events: list[TimelineEvent] = field(default_factory=list)


TIMELINE_PAGE = 50


@dataclass
class TimelinePage:
    """One page of a contact's timeline, newest first; ``older`` is the token of the next older
    page ("" when this is the oldest)."""

    entries: list[TimelineEntry]
    older: str = ""


def contact_timeline(*, contact: Contact, older: str = "", per_page: int = TIMELINE_PAGE) -> TimelinePage:
    """The ``per_page`` newest entries of the contact's timeline (after the ``older`` token, when
    given): each SentMessage once, as a card at its "queued" event with its current status and
    all its events nested, and every other event on its own.

    Two queries, whatever the timeline's length: the page of entry events with their messages
    (keyset over the (contact, created_at, id) index), and those messages' events.
    """
    heads = (contact.timeline_events.filter(Q(sent_message__isnull=True) | Q(kind=TimelineEvent.Kind.MESSAGE_QUEUED))
             .select_related("actor", "sent_message__mailbox")
             .defer("sent_message__html_body", "sent_message__text_body", "sent_message__provider_response")
             .order_by("-created_at", "-id"))
    page = keyset_page(heads, per_page=per_page, after=older)
    message_ids = [e.sent_message_id for e in page.object_list if e.sent_message_id]
    events: dict[int, list[TimelineEvent]] = {}
    if message_ids:
        for event in (TimelineEvent.objects.filter(sent_message_id__in=message_ids).select_related("actor")
                      .order_by("-created_at", "-id")):
            events.setdefault(event.sent_message_id, []).append(event)
    entries = []
    for event in page.object_list:
        message = event.sent_message
        if message is not None:
            entries.append(TimelineEntry(at=message.created_at, message=message, events=events.get(message.pk, [])))
        else:
            entries.append(TimelineEntry(at=event.created_at, event=event))
    if not page.next_cursor:  # the oldest page ends with the import the contact came from, if any
        from .imports.selectors import contact_imported_event

        imported = contact_imported_event(contact=contact)
        if imported is not None:
            entries.append(TimelineEntry(at=imported.created_at, event=imported))
    return TimelinePage(entries=entries, older=page.next_cursor)


# --- Members -------------------------------------------------------------------------------

MEMBER_SEARCH = ("user__username", "user__email", "user__first_name", "user__last_name")
MEMBER_ORDERING = {"user": ("user__username",), "email": ("user__email",), "role": ("role", "user__username"),
                   "joined": ("user__date_joined",)}


def member_list(*, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
    """The team's memberships with their users. Filter: ``role``."""
    qs = Membership.objects.filter(team=team).select_related("user")
    qs = apply_search(qs, query.q, MEMBER_SEARCH)
    if query.filters.get("role") in Membership.Role.values:
        qs = qs.filter(role=query.filters["role"])
    return apply_ordering(qs, query.order, MEMBER_ORDERING, "user")


def members_by_ids(*, team: Team, ids: Iterable[int]) -> QuerySet:
    """The team's memberships among ``ids``."""
    return Membership.objects.filter(team=team, pk__in=list(ids)).select_related("user")


def external_id_values(*, contact: Contact, object: str) -> dict[str, str]:
    """{key: value} of ``contact``'s (``object`` "contact") or its lead's ("lead") declared vendor ids
    that are set, e.g. ``{"lemlist_contact_id": "ctc_1"}`` (keys: :mod:`outreach.external_ids`)."""
    keys = {(f.provider, f.kind): f.key for f in external_id_fields(object)}
    rows = ExternalId.objects.filter(contact=contact, object=object).values_list("provider", "kind", "value")
    return {keys[(p, k)]: v for p, k, v in rows if (p, k) in keys}


def external_id_rows(*, contact: Contact) -> list[dict[str, str]]:
    """What the contact page shows: every declared id of the contact, then of its lead, as
    {"label", "value" ('' when unset), "object"}, in declaration order."""
    objects = ["contact", "lead"]
    values = {(e.object, e.provider, e.kind): e.value for e in ExternalId.objects.filter(contact=contact)}
    return [{"label": f.label, "value": values.get((f.object, f.provider, f.kind), ""), "object": f.object}
            for obj in objects for f in external_id_fields(obj)]
