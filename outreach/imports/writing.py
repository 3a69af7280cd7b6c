"""Set-based writes of one batch of import rows.

:func:`plan_batch` decides in Python, from the rows and the team's existing contacts (locked with
SELECT … FOR UPDATE), the exact outcome of every row — created, updated or unchanged — as if the
rows were applied one after another (so in-file duplicates behave like later rows of the file).
The writer then applies the plan with a handful of statements per batch:

* PostgreSQL: psycopg 3 ``COPY`` into temporary tables, then ``INSERT … ON CONFLICT (team_id,
  email) DO NOTHING RETURNING`` (a concurrent insert of the same address is detected and the batch
  retried), ``UPDATE … FROM``, leads with ``ON CONFLICT (contact_id) DO NOTHING RETURNING``, and the
  timeline rows with one ``COPY``.
* Other databases (SQLite, the embedded default): ``bulk_create`` / ``bulk_update`` in chunks.

Callers run :meth:`BatchWriter.write` inside ``transaction.atomic()``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from ..models import Contact, Lead, Suppression, TimelineEvent

CONTACT_COLUMNS = ("first_name", "last_name", "company", "title", "phone", "linkedin_url",
                   "lemlist_contact_id", "leadlex_contact_id")
LEAD_COLUMNS = ("lemlist_lead_id", "leadlex_deal_id")
MAX_LENGTH = {name: Contact._meta.get_field(name).max_length for name in CONTACT_COLUMNS}
MAX_LENGTH.update({f"lead.{name}": Lead._meta.get_field(name).max_length for name in LEAD_COLUMNS})
IN_CHUNK = 900  # parameters per IN (...) on SQLite


class ConcurrentInsert(Exception):
    """Another transaction inserted one of this batch's addresses meanwhile; redo the batch."""


@dataclass
class Row:
    """A valid row: lower-cased ``email``; non-blank ``values`` (CONTACT_COLUMNS), ``custom`` and
    ``lead`` (LEAD_COLUMNS) cells."""

    row: int
    line: int
    email: str
    values: dict[str, str]
    custom: dict[str, str]
    lead: dict[str, str]


@dataclass
class _State:
    contact_id: int | None
    values: dict[str, str]
    custom: dict
    new: bool
    dirty: bool = False
    lead: dict[str, str] = field(default_factory=dict)


@dataclass
class BatchResult:
    """Per-batch counters; ``created + updated + unchanged`` equals the rows written."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    leads_created: int = 0


@dataclass
class Plan:
    states: dict[str, _State]
    events: list[tuple[Row, str, list[str]]]  # (row, "created"|"updated", changed fields)
    result: BatchResult


def plan_batch(rows: list[Row], existing: dict[str, tuple[int, dict[str, str], dict]], policy: str) -> Plan:
    """Decide every row's outcome. ``existing`` maps email -> (id, values, custom_fields) of the
    team's current contacts among the batch's addresses; ``policy`` is skip, update or fill.

    Blank cells never erase data; ``update`` overwrites with non-blank cells, ``fill`` writes only
    into blank fields (custom fields merge key by key the same way)."""
    states: dict[str, _State] = {}
    events: list[tuple[Row, str, list[str]]] = []
    result = BatchResult()
    for row in rows:
        state = states.get(row.email)
        if state is None:
            found = existing.get(row.email)
            if found is None:
                values = {name: row.values.get(name, "") for name in CONTACT_COLUMNS}
                states[row.email] = _State(None, values, dict(row.custom), True, lead=dict(row.lead))
                result.created += 1
                events.append((row, "created", []))
                continue
            state = states[row.email] = _State(found[0], dict(found[1]), dict(found[2] or {}), False)
        for name, value in row.lead.items():
            state.lead.setdefault(name, value)
        if policy == "skip":
            result.unchanged += 1
            continue
        changed = []
        for name, value in row.values.items():
            current = state.values.get(name, "")
            if (current != value) if policy == "update" else not current:
                state.values[name] = value
                changed.append(name)
        for key, value in row.custom.items():
            current = state.custom.get(key)
            if (current != value) if policy == "update" else current in (None, ""):
                state.custom[key] = value
                changed.append(f"custom:{key}")
        if changed:
            state.dirty = True
            result.updated += 1
            events.append((row, "updated", changed))
        else:
            result.unchanged += 1
    return Plan(states, events, result)


def _chunks(items: list, size: int = IN_CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


class BatchWriter:
    """Writes batches for one import. ``source`` is the import's name; ``lead_options`` None for a
    contacts-only import, else {"status": str, "owner_id": int|None}."""

    def __init__(self, *, team_id: int, import_id: int | None, source: str, policy: str,
                 lead_options: dict | None, actor_id: int | None = None):
        self.team_id = team_id
        self.import_id = import_id
        self.source = source[:200]
        self.policy = policy
        self.lead_options = lead_options
        self.actor_id = actor_id
        self.postgres = connection.vendor == "postgresql"

    # --- reads -----------------------------------------------------------------------------------

    def _existing(self, emails: list[str]) -> dict[str, tuple[int, dict[str, str], dict]]:
        found = {}
        for chunk in _chunks(emails, 10_000 if self.postgres else IN_CHUNK):
            qs = (Contact.objects.filter(team_id=self.team_id, email__in=chunk).order_by()
                  .values_list("id", "email", *CONTACT_COLUMNS, "custom_fields"))
            if self.postgres:
                qs = qs.select_for_update()
            for contact_id, email, *values, custom in qs:
                found[email] = (contact_id, dict(zip(CONTACT_COLUMNS, values)), custom or {})
        return found

    def _suppressed(self, emails: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(emails, 10_000 if self.postgres else IN_CHUNK):
            found.update(Suppression.objects.filter(team_id=self.team_id, email__in=chunk)
                         .order_by().values_list("email", flat=True))
        return found

    # --- the batch -------------------------------------------------------------------------------

    def write(self, rows: list[Row], now: datetime) -> BatchResult:
        """Apply ``rows`` (valid rows, in file order). Returns the counters.

        Must run inside ``transaction.atomic()``; raises ConcurrentInsert when another transaction
        inserted one of the addresses meanwhile (roll back and call again)."""
        emails = list(dict.fromkeys(row.email for row in rows))
        plan = plan_batch(rows, self._existing(emails), self.policy)
        suppressed = self._suppressed(emails)
        plan.result.suppressed = sum(1 for row in rows if row.email in suppressed)
        if self.postgres:
            self._write_pg(plan, now, suppressed)
        else:
            self._write_orm(plan, now, suppressed)
        return plan.result

    def _event_rows(self, plan: Plan, new_leads: set[int], suppressed: set[str]):
        """Yield (contact_id, kind, summary, data) for every timeline event of the batch."""
        note = " The address is on the suppression list: it will not be emailed."
        for row, outcome, changed in plan.events:
            state = plan.states[row.email]
            data = {"import_id": self.import_id, "import": self.source, "row": row.row, "line": row.line,
                    "outcome": outcome}
            is_suppressed = row.email in suppressed
            if is_suppressed:
                data["suppressed"] = True
            if outcome == "created":
                kind = TimelineEvent.Kind.CONTACT_IMPORTED
                summary = f"Imported from {self.source} (row {row.row})."
            else:
                kind = TimelineEvent.Kind.CONTACT_UPDATED
                data["fields"] = changed
                summary = (f"Updated by import {self.source} (row {row.row}): "
                           + ", ".join(name.replace("_", " ") for name in changed) + ".")
            yield state.contact_id, kind, (summary + (note if is_suppressed else ""))[:500], data
        if new_leads:
            label = Lead.Status(self.lead_options["status"]).label
            for email, state in plan.states.items():
                if state.contact_id in new_leads:
                    yield (state.contact_id, TimelineEvent.Kind.LEAD_CREATED,
                           f"Became a lead ({label}) from import {self.source}."[:500],
                           {"import_id": self.import_id, "import": self.source})

    # --- PostgreSQL: COPY + set-based statements ---------------------------------------------------

    def _write_pg(self, plan: Plan, now: datetime, suppressed: set[str]) -> None:
        contact_table = Contact._meta.db_table
        columns = ", ".join(CONTACT_COLUMNS)
        new = [(email, state) for email, state in plan.states.items() if state.new]
        with connection.cursor() as wrapper:
            cur = wrapper.cursor
            if new:
                cur.execute("CREATE TEMP TABLE _import_new (email text, %s, custom_fields jsonb) ON COMMIT DROP"
                            % ", ".join(f"{c} text" for c in CONTACT_COLUMNS))
                with cur.copy(f"COPY _import_new (email, {columns}, custom_fields) FROM STDIN") as copy:
                    for email, state in new:
                        copy.write_row((email, *(state.values[c] for c in CONTACT_COLUMNS), json.dumps(state.custom)))
                cur.execute(
                    f"INSERT INTO {contact_table} (team_id, created_at, updated_at, source, email, {columns}, custom_fields) "
                    f"SELECT %s, %s, %s, %s, email, {columns}, custom_fields FROM _import_new "
                    "ON CONFLICT (team_id, email) DO NOTHING RETURNING id, email",
                    (self.team_id, now, now, self.source))
                ids = dict((email, contact_id) for contact_id, email in cur.fetchall())
                if len(ids) != len(new):
                    raise ConcurrentInsert()
                for email, state in new:
                    state.contact_id = ids[email]
                cur.execute("DROP TABLE _import_new")
            dirty = [state for state in plan.states.values() if state.dirty and not state.new]
            if dirty:
                cur.execute("CREATE TEMP TABLE _import_upd (id bigint, %s, custom_fields jsonb) ON COMMIT DROP"
                            % ", ".join(f"{c} text" for c in CONTACT_COLUMNS))
                with cur.copy(f"COPY _import_upd (id, {columns}, custom_fields) FROM STDIN") as copy:
                    for state in dirty:
                        copy.write_row((state.contact_id, *(state.values[c] for c in CONTACT_COLUMNS),
                                        json.dumps(state.custom)))
                assignments = ", ".join(f"{c} = u.{c}" for c in (*CONTACT_COLUMNS, "custom_fields"))
                cur.execute(f"UPDATE {contact_table} c SET {assignments}, updated_at = %s FROM _import_upd u "
                            "WHERE c.id = u.id AND c.team_id = %s", (now, self.team_id))
                cur.execute("DROP TABLE _import_upd")
            new_leads: set[int] = set()
            if self.lead_options is not None:
                cur.execute("CREATE TEMP TABLE _import_lead (contact_id bigint, lemlist_lead_id text, "
                            "leadlex_deal_id text) ON COMMIT DROP")
                with cur.copy("COPY _import_lead (contact_id, lemlist_lead_id, leadlex_deal_id) FROM STDIN") as copy:
                    for state in plan.states.values():
                        copy.write_row((state.contact_id, state.lead.get("lemlist_lead_id", ""),
                                        state.lead.get("leadlex_deal_id", "")))
                cur.execute(
                    f"INSERT INTO {Lead._meta.db_table} (team_id, created_at, updated_at, contact_id, status, owner_id, "
                    "source, lemlist_lead_id, leadlex_deal_id) "
                    "SELECT %s, %s, %s, contact_id, %s, %s, %s, lemlist_lead_id, leadlex_deal_id FROM _import_lead "
                    "ON CONFLICT (contact_id) DO NOTHING RETURNING contact_id",
                    (self.team_id, now, now, self.lead_options["status"], self.lead_options.get("owner_id"), self.source))
                new_leads = {contact_id for (contact_id,) in cur.fetchall()}
                plan.result.leads_created = len(new_leads)
                cur.execute("DROP TABLE _import_lead")
            with cur.copy(f"COPY {TimelineEvent._meta.db_table} (team_id, created_at, updated_at, contact_id, actor_id, "
                          "kind, summary, data) FROM STDIN") as copy:
                for contact_id, kind, summary, data in self._event_rows(plan, new_leads, suppressed):
                    copy.write_row((self.team_id, now, now, contact_id, self.actor_id, kind, summary, json.dumps(data)))

    # --- Other databases: the ORM's bulk operations ------------------------------------------------

    def _write_orm(self, plan: Plan, now: datetime, suppressed: set[str]) -> None:
        new = [(email, state) for email, state in plan.states.items() if state.new]
        if new:
            objs = [Contact(team_id=self.team_id, email=email, source=self.source, custom_fields=state.custom,
                            created_at=now, updated_at=now, **state.values) for email, state in new]
            Contact.objects.bulk_create(objs, batch_size=500)
            if any(obj.pk is None for obj in objs):  # a backend that cannot return ids from bulk inserts
                ids = {}
                for chunk in _chunks([email for email, _ in new]):
                    ids.update(Contact.objects.filter(team_id=self.team_id, email__in=chunk).values_list("email", "id"))
                for obj in objs:
                    obj.pk = ids[obj.email]
            for (email, state), obj in zip(new, objs):
                state.contact_id = obj.pk
        dirty = [state for state in plan.states.values() if state.dirty and not state.new]
        if dirty:
            objs = [Contact(pk=state.contact_id, team_id=self.team_id, custom_fields=state.custom, updated_at=now,
                            **state.values) for state in dirty]
            Contact.objects.bulk_update(objs, [*CONTACT_COLUMNS, "custom_fields", "updated_at"], batch_size=500)
        new_leads: set[int] = set()
        if self.lead_options is not None:
            ids = [state.contact_id for state in plan.states.values()]
            have: set[int] = set()
            for chunk in _chunks(ids):
                have.update(Lead.objects.filter(contact_id__in=chunk).values_list("contact_id", flat=True))
            leads = [Lead(team_id=self.team_id, contact_id=state.contact_id, status=self.lead_options["status"],
                          owner_id=self.lead_options.get("owner_id"), source=self.source,
                          lemlist_lead_id=state.lead.get("lemlist_lead_id", ""),
                          leadlex_deal_id=state.lead.get("leadlex_deal_id", ""), created_at=now, updated_at=now)
                     for state in plan.states.values() if state.contact_id not in have]
            Lead.objects.bulk_create(leads, batch_size=500)
            new_leads = {lead.contact_id for lead in leads}
            plan.result.leads_created = len(new_leads)
        events = [TimelineEvent(team_id=self.team_id, contact_id=contact_id, actor_id=self.actor_id, kind=kind,
                                summary=summary, data=data, created_at=now, updated_at=now)
                  for contact_id, kind, summary, data in self._event_rows(plan, new_leads, suppressed)]
        TimelineEvent.objects.bulk_create(events, batch_size=500)
