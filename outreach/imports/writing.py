"""Set-based writes of one batch of import rows.

:func:`plan_batch` decides in Python, from the rows and the team's existing contacts (locked with
SELECT … FOR UPDATE), the exact outcome of every row — created, updated or unchanged — as if the
rows were applied one after another (so in-file duplicates behave like later rows of the file).
The writer then applies the plan with a handful of statements per batch:

* PostgreSQL: the batch's addresses as one array parameter, joined to lock and read the
  existing contacts (``FOR UPDATE``) and the suppressions; new contacts ``COPY``'d
  straight into the table with ids taken from its sequence (a concurrent insert of the same
  address violates the unique constraint and the batch is retried); changed contacts ``COPY``'d
  to a temporary table and applied with one ``UPDATE … FROM``; leads via a temporary table and
  ``INSERT … ON CONFLICT (contact_id) DO NOTHING RETURNING``; vendor ids (ExternalId rows: a new or
  changed contact's, a new lead's) with one ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE``;
  the timeline rows with one ``COPY``.
  A created contact gets no timeline row: it carries ``import_job_id``/``import_row`` and the
  timeline shows "Imported from …" from those (``outreach.imports.selectors.contact_imported_event``);
  updates, leads and suppressed addresses still get stored events.
* Other databases (SQLite, the embedded default): ``bulk_create`` / ``bulk_update`` in chunks.

Callers run :meth:`BatchWriter.write` inside ``transaction.atomic()``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, connection

from ..external_ids import external_id_fields
from ..models import Contact, ExternalId, Lead, Suppression, TimelineEvent
from .rows import Row, copy_text as _text, values_tail

CONTACT_COLUMNS = ("first_name", "last_name", "company", "title", "phone", "linkedin_url", "time_zone")
# Vendor ids the providers declare (outreach.external_ids): key -> (provider, kind).
_CONTACT_IDS = {f.key: (f.provider, f.kind) for f in external_id_fields("contact")}
_LEAD_IDS = {f.key: (f.provider, f.kind) for f in external_id_fields("lead")}
EXTERNAL_ID_COLUMNS = tuple(_CONTACT_IDS)
VALUE_COLUMNS = CONTACT_COLUMNS + EXTERNAL_ID_COLUMNS  # the keys of Row.values
LEAD_COLUMNS = tuple(_LEAD_IDS)
MAX_LENGTH = {name: Contact._meta.get_field(name).max_length for name in CONTACT_COLUMNS}
MAX_LENGTH.update({name: ExternalId._meta.get_field("value").max_length for name in EXTERNAL_ID_COLUMNS})
MAX_LENGTH.update({f"lead.{name}": ExternalId._meta.get_field("value").max_length for name in LEAD_COLUMNS})
IN_CHUNK = 900  # parameters per IN (...) on SQLite


class ConcurrentInsert(Exception):
    """Another transaction inserted one of this batch's addresses meanwhile; redo the batch."""


@dataclass(slots=True)
class _State:
    contact_id: int | None
    values: dict[str, str]
    custom: dict
    new: bool
    dirty: bool = False
    lead: dict[str, str] = field(default_factory=dict)
    first_row: Row | None = None
    owned: bool = True  # False while values/custom/lead are still the first row's own dicts


@dataclass
class BatchResult:
    """Per-batch counters; ``created + updated + unchanged`` equals the rows written.
    ``created_ids`` / ``updated_ids``: the contacts created / the existing contacts changed (each
    once, however many rows of the batch named it)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    leads_created: int = 0
    created_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)


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
                # Only the non-blank cells; writers fill the missing columns with "". The row's
                # dicts are taken as they are and copied only if a later row changes them.
                states[row.email] = _State(None, row.values, row.custom, True, lead=row.lead, first_row=row,
                                           owned=False)
                result.created += 1
                events.append((row, "created", []))
                continue
            state = states[row.email] = _State(found[0], dict(found[1]), dict(found[2] or {}), False)
        elif not state.owned:
            state.values, state.custom, state.lead = dict(state.values), dict(state.custom), dict(state.lead)
            state.owned = True
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


def _copy_lines(cur, sql: str, lines) -> None:
    """COPY pre-formatted text-format lines (fields already escaped with :func:`_text`, joined by
    tabs; ``\\N`` for NULL). ~40% less CPU than ``write_row`` for these all-text rows. No lines:
    no statement (a COPY costs two round trips even when empty)."""
    lines = iter(lines)
    first = next(lines, None)
    if first is None:
        return
    with cur.copy(sql) as copy:
        buffer: list[str] = [first]
        for line in lines:
            buffer.append(line)
            if len(buffer) >= 2000:
                copy.write("\n".join(buffer) + "\n")
                buffer.clear()
        if buffer:
            copy.write("\n".join(buffer) + "\n")


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
        self._sequence = ""
        #: PostgreSQL: each batch commits with ``synchronous_commit = off`` (the caller's choice,
        #: see ``outreach.imports.services._Run``); set in the batch's first round trip.
        self.commit_async = False
        self._lookups: tuple[list[str], tuple] | None = None

    # --- reads -----------------------------------------------------------------------------------

    def _lookup_pg(self, emails: list[str]) -> tuple[list[tuple], list[tuple]]:
        """PostgreSQL: (the team's contacts among ``emails``, locked FOR UPDATE: rows of id, email,
        CONTACT_COLUMNS, custom_fields and — when providers declare contact ids — the contact's
        vendor ids as a JSON list of [provider, kind, value]; the suppressed ones: rows of email),
        read once per batch.

        Both queries (and, with ``commit_async``, ``SET LOCAL synchronous_commit = off``) go in one
        round trip (psycopg's pipeline mode), and the vendor ids ride in the contacts query: each
        round trip costs the writing thread a wait for the GIL while the parsing thread holds it,
        ~10-20 ms here, more than the queries. The addresses travel as one newline-joined text
        parameter that the server splits (``string_to_array``), not as a ``text[]`` parameter:
        psycopg quotes an array element by element in Python, ~9 ms per 5,000 addresses and
        query here, against ~1 ms for the one string. A validated address never contains a line
        break; one that did is refused here rather than split."""
        if self._lookups is not None and self._lookups[0] is emails:
            return self._lookups[1]
        if any("\n" in email for email in emails):
            raise ValueError("An address with a line break cannot be looked up.")
        joined = "\n".join(emails)
        # Driven from the batch's addresses (in the order given: sorted, so two imports into one
        # team lock in the same order and wait for each other instead of deadlocking — new
        # addresses are inserted in that order too): one probe of the (team_id, email) index each.
        # The team is given as ``(SELECT %s)``, which the planner cannot look up in the table's
        # statistics: those lag far behind during a big import (a new team is "not in the table"),
        # and planned from them a probe walks every row of the team through another (team_id, ...)
        # index. Cheaper than the ANALYZE between batches this replaces (~15 % of an import's
        # database time).
        addresses = "unnest(string_to_array(%s, E'\\n')) e(email)"
        vendor_ids = ""
        if _CONTACT_IDS:  # one probe of the external ids' unique index per existing contact
            vendor_ids = (f", (SELECT json_agg(json_build_array(x.provider, x.kind, x.value)) "
                          f"FROM {ExternalId._meta.db_table} x WHERE x.contact_id = c.id AND x.object = 'contact')")
        connection.ensure_connection()
        raw = connection.connection
        with raw.cursor() as settings, raw.cursor() as contacts, raw.cursor() as suppressions:
            with raw.pipeline():
                if self.commit_async:
                    settings.execute("SET LOCAL synchronous_commit = off")
                contacts.execute(
                    f"SELECT x.* FROM {addresses} CROSS JOIN LATERAL ("
                    f"SELECT c.id, c.email, {', '.join('c.' + c for c in CONTACT_COLUMNS)}, c.custom_fields{vendor_ids} "
                    f"FROM {Contact._meta.db_table} c WHERE c.team_id = (SELECT %s::bigint) AND c.email = e.email "
                    "FOR UPDATE OF c) x", (joined, self.team_id))
                suppressions.execute(
                    f"SELECT x.email FROM {addresses} CROSS JOIN LATERAL ("
                    f"SELECT s.email FROM {Suppression._meta.db_table} s "
                    "WHERE s.team_id = (SELECT %s::bigint) AND s.email = e.email) x", (joined, self.team_id))
            result = (contacts.fetchall(), suppressions.fetchall())
        self._lookups = (emails, result)
        return result

    def _existing(self, emails: list[str]) -> dict[str, tuple[int, dict[str, str], dict]]:
        """The team's contacts among ``emails`` (locked FOR UPDATE on PostgreSQL):
        email -> (id, {column: value, vendor id key: value}, custom_fields)."""
        found = {}
        if self.postgres:
            keys = {ids: key for key, ids in _CONTACT_IDS.items()}
            width = 3 + len(CONTACT_COLUMNS)
            for row in self._lookup_pg(emails)[0]:
                contact_id, email, *values, custom = row[:width]
                if isinstance(custom, str):
                    custom = json.loads(custom)
                values = dict(zip(CONTACT_COLUMNS, values))
                ids = row[width] if len(row) > width else None
                for provider, kind, value in (json.loads(ids) if isinstance(ids, str) else ids or ()):
                    if (provider, kind) in keys:
                        values[keys[provider, kind]] = value
                found[email] = (contact_id, values, custom or {})
            return found
        for chunk in _chunks(emails):
            qs = (Contact.objects.filter(team_id=self.team_id, email__in=chunk).order_by()
                  .values_list("id", "email", *CONTACT_COLUMNS, "custom_fields"))
            for contact_id, email, *values, custom in qs:
                found[email] = (contact_id, dict(zip(CONTACT_COLUMNS, values)), custom or {})
        return self._with_external_ids(found)

    def _with_external_ids(self, found: dict[str, tuple[int, dict[str, str], dict]]):
        """``found`` with each contact's declared vendor ids added to its values (one query per
        IN_CHUNK contacts)."""
        if not found or not _CONTACT_IDS:
            return found
        keys = {ids: key for key, ids in _CONTACT_IDS.items()}
        by_id = {contact_id: values for contact_id, values, _ in found.values()}
        for chunk in _chunks(list(by_id)):
            for contact_id, provider, kind, value in (ExternalId.objects.filter(contact_id__in=chunk, object="contact")
                                                      .order_by().values_list("contact_id", "provider", "kind", "value")):
                key = keys.get((provider, kind))
                if key:
                    by_id[contact_id][key] = value
        return found

    def _suppressed(self, emails: list[str]) -> set[str]:
        """The addresses among ``emails`` on the team's suppression list."""
        if self.postgres:
            return {email for (email,) in self._lookup_pg(emails)[1]}
        found: set[str] = set()
        for chunk in _chunks(emails):
            found.update(Suppression.objects.filter(team_id=self.team_id, email__in=chunk)
                         .order_by().values_list("email", flat=True))
        return found

    def prepare(self) -> None:
        """PostgreSQL: create this session's staging tables (temporary, emptied at every commit).
        Call once per connection before the first :meth:`write`; a no-op elsewhere."""
        if not self.postgres:
            return
        columns = ", ".join(f"{c} text" for c in CONTACT_COLUMNS)
        with connection.cursor() as wrapper:
            wrapper.cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS _import_upd (id bigint, {columns}, custom_fields jsonb) "
                "ON COMMIT DELETE ROWS; "
                "CREATE TEMP TABLE IF NOT EXISTS _import_lead (contact_id bigint) ON COMMIT DELETE ROWS")

    def _reset_staging(self) -> None:
        """PostgreSQL, inside an outer transaction (no commit empties the staging tables between
        batches): empty them."""
        if len(connection.atomic_blocks) > 1:
            with connection.cursor() as wrapper:
                wrapper.cursor.execute("TRUNCATE _import_upd, _import_lead")

    # --- the batch -------------------------------------------------------------------------------

    def write(self, rows: list[Row], now: datetime) -> BatchResult:
        """Apply ``rows`` (valid rows, in file order). Returns the counters.

        Must run inside ``transaction.atomic()``; raises ConcurrentInsert when another transaction
        inserted one of the addresses meanwhile (roll back and call again)."""
        emails = sorted(set(row.email for row in rows))
        if self.postgres:
            self._reset_staging()
        plan = plan_batch(rows, self._existing(emails), self.policy)
        suppressed = self._suppressed(emails)
        self._lookups = None
        plan.result.suppressed = sum(1 for row in rows if row.email in suppressed)
        if self.postgres:
            self._write_pg(plan, now, suppressed)
        else:
            self._write_orm(plan, now, suppressed)
        for state in plan.states.values():
            if state.new:
                plan.result.created_ids.append(state.contact_id)
            elif state.dirty:
                plan.result.updated_ids.append(state.contact_id)
        return plan.result

    def _event_rows(self, plan: Plan, new_leads: set[int], suppressed: set[str], as_json: bool = False):
        """Yield (contact_id, kind, summary, data) for every timeline event of the batch; ``data`` is
        a dict, or its JSON text when ``as_json``."""
        note = " The address is on the suppression list: it will not be emailed."
        for row, outcome, changed in plan.events:
            state = plan.states[row.email]
            if outcome == "created" and self._derived(row.email, suppressed):
                continue  # shown from the contact's import_job_id/import_row (contact_imported_event)
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
            yield (state.contact_id, kind, (summary + (note if is_suppressed else ""))[:500],
                   json.dumps(data) if as_json else data)
        if new_leads:
            label = Lead.Status(self.lead_options["status"]).label
            for email, state in plan.states.items():
                if state.contact_id in new_leads:
                    data = {"import_id": self.import_id, "import": self.source}
                    yield (state.contact_id, TimelineEvent.Kind.LEAD_CREATED,
                           f"Became a lead ({label}) from import {self.source}."[:500],
                           json.dumps(data) if as_json else data)

    @staticmethod
    def _external_id_rows(plan: Plan, new_leads: set[int]):
        """Yield (contact_id, object, provider, kind, value) for the batch's vendor ids to write: the
        non-blank ones of every new or changed contact, and of every lead the batch created."""
        for state in plan.states.values():
            if state.new or state.dirty:
                for key, (provider, kind) in _CONTACT_IDS.items():
                    if state.values.get(key):
                        yield state.contact_id, "contact", provider, kind, state.values[key]
            if state.contact_id in new_leads:
                for key, (provider, kind) in _LEAD_IDS.items():
                    if state.lead.get(key):
                        yield state.contact_id, "lead", provider, kind, state.lead[key]

    # --- PostgreSQL: COPY + set-based statements ---------------------------------------------------

    def _derived(self, email: str, suppressed: set[str]) -> bool:
        """True when a created contact's "imported" entry is derived from the contact itself (no
        event row); a suppressed address gets a stored event carrying the suppression note."""
        return self.import_id is not None and email not in suppressed

    def _import_ref(self, state: _State, suppressed: set[str]) -> tuple[int | None, int | None]:
        """(import_job_id, import_row) stored on a new contact."""
        if state.first_row is None or not self._derived(state.first_row.email, suppressed):
            return None, None
        return self.import_id, state.first_row.row

    @staticmethod
    def values_tail(email: str, values: dict[str, str], custom: dict) -> str:
        """COPY text of a new contact: ``email``, the CONTACT_COLUMNS values and the custom
        fields' JSON (``outreach.imports.rows.values_tail``)."""
        return values_tail(email, values, custom, CONTACT_COLUMNS)

    def _contact_tail(self, email: str, state: _State) -> str:
        if not state.dirty and state.first_row is not None and state.first_row.contact_tail:
            return state.first_row.contact_tail
        return self.values_tail(email, state.values, state.custom)

    def _write_pg(self, plan: Plan, now: datetime, suppressed: set[str]) -> None:
        from psycopg import errors as psycopg_errors

        stamp = now.isoformat()
        contact_table = Contact._meta.db_table
        columns = ", ".join(CONTACT_COLUMNS)
        # In address order: the unique index entries are taken in the same order by every import.
        new = sorted(((email, state) for email, state in plan.states.items() if state.new), key=lambda item: item[0])
        with connection.cursor() as wrapper:
            cur = wrapper.cursor
            if new:
                # The batch's existing contacts are locked and known, so new addresses are COPY'd
                # straight into the table with ids drawn from its sequence; a concurrent insert of
                # the same address fails the unique constraint and the batch is retried.
                if not self._sequence:
                    cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (contact_table,))
                    self._sequence = cur.fetchone()[0]
                cur.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", (self._sequence, len(new)))
                for (email, state), (contact_id,) in zip(new, cur.fetchall()):
                    state.contact_id = contact_id
                head = f"\t{self.team_id}\t{stamp}\t{stamp}\t{_text(self.source)}\t"

                def ref(state):
                    job_id, row = self._import_ref(state, suppressed)
                    return "\\N\t\\N\t" if job_id is None else f"{job_id}\t{row}\t"

                # No savepoint around it (two round trips): a failure aborts the caller's
                # transaction, which the caller rolls back before it redoes the batch.
                try:
                    _copy_lines(cur, f"COPY {contact_table} (id, team_id, created_at, updated_at, source, "
                                     f"import_job_id, import_row, email, {columns}, custom_fields) FROM STDIN",
                                (f"{state.contact_id}{head}{ref(state)}{self._contact_tail(email, state)}"
                                 for email, state in new))
                except (IntegrityError, psycopg_errors.UniqueViolation) as err:
                    raise ConcurrentInsert() from err
            dirty = [state for state in plan.states.values() if state.dirty and not state.new]
            if dirty:
                with cur.copy(f"COPY _import_upd (id, {columns}, custom_fields) FROM STDIN") as copy:
                    for state in dirty:
                        copy.write_row((state.contact_id, *(state.values[c] for c in CONTACT_COLUMNS),
                                        json.dumps(state.custom)))
                assignments = ", ".join(f"{c} = u.{c}" for c in (*CONTACT_COLUMNS, "custom_fields"))
                cur.execute(f"UPDATE {contact_table} c SET {assignments}, updated_at = %s FROM _import_upd u "
                            "WHERE c.id = u.id AND c.team_id = (SELECT %s::bigint)", (now, self.team_id))
            new_leads: set[int] = set()
            if self.lead_options is not None:
                with cur.copy("COPY _import_lead (contact_id) FROM STDIN") as copy:
                    for state in plan.states.values():
                        copy.write_row((state.contact_id,))
                cur.execute(
                    f"INSERT INTO {Lead._meta.db_table} (team_id, created_at, updated_at, contact_id, status, owner_id, "
                    "source) SELECT %s, %s, %s, contact_id, %s, %s, %s FROM _import_lead "
                    "ON CONFLICT (contact_id) DO NOTHING RETURNING contact_id",
                    (self.team_id, now, now, self.lead_options["status"], self.lead_options.get("owner_id"), self.source))
                new_leads = {contact_id for (contact_id,) in cur.fetchall()}
                plan.result.leads_created = len(new_leads)
            ids = list(zip(*self._external_id_rows(plan, new_leads)))
            if ids:
                table = ExternalId._meta.db_table
                cur.execute(
                    f"INSERT INTO {table} (team_id, created_at, updated_at, extra_data, contact_id, object, provider, "
                    "kind, value) SELECT %s, %s, %s, '{}'::jsonb, t.* FROM unnest(%s::bigint[], %s::text[], %s::text[], "
                    "%s::text[], %s::text[]) t ON CONFLICT (contact_id, object, provider, kind, team_id) DO UPDATE "
                    f"SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at WHERE {table}.value <> EXCLUDED.value",
                    (self.team_id, now, now, *map(list, ids)))
            head = f"{self.team_id}\t{stamp}\t{stamp}\t"
            actor = "\\N" if self.actor_id is None else str(self.actor_id)
            _copy_lines(cur, f"COPY {TimelineEvent._meta.db_table} (team_id, created_at, updated_at, contact_id, actor_id, "
                             "kind, summary, data) FROM STDIN",
                        (f"{head}{contact_id}\t{actor}\t"
                         + f"{kind}\t{_text(summary)}\t{_text(data)}"
                         for contact_id, kind, summary, data in self._event_rows(plan, new_leads, suppressed, as_json=True)))

    # --- Other databases: the ORM's bulk operations ------------------------------------------------

    def _write_orm(self, plan: Plan, now: datetime, suppressed: set[str]) -> None:
        new = [(email, state) for email, state in plan.states.items() if state.new]
        if new:
            objs = [Contact(team_id=self.team_id, email=email, source=self.source, custom_fields=state.custom,
                            created_at=now, updated_at=now, **dict(zip(("import_job_id", "import_row"),
                                                                       self._import_ref(state, suppressed))),
                            **state.values) for email, state in new]
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
                          owner_id=self.lead_options.get("owner_id"), source=self.source, created_at=now, updated_at=now)
                     for state in plan.states.values() if state.contact_id not in have]
            Lead.objects.bulk_create(leads, batch_size=500)
            new_leads = {lead.contact_id for lead in leads}
            plan.result.leads_created = len(new_leads)
        ExternalId.objects.bulk_create(
            [ExternalId(team_id=self.team_id, contact_id=contact_id, object=obj, provider=provider, kind=kind, value=value,
                        created_at=now, updated_at=now)
             for contact_id, obj, provider, kind, value in self._external_id_rows(plan, new_leads)],
            batch_size=500, update_conflicts=True, unique_fields=["contact", "object", "provider", "kind", "team"],
            update_fields=["value", "updated_at"])
        events = [TimelineEvent(team_id=self.team_id, contact_id=contact_id, actor_id=self.actor_id, kind=kind,
                                summary=summary, data=data, created_at=now, updated_at=now)
                  for contact_id, kind, summary, data in self._event_rows(plan, new_leads, suppressed)]
        TimelineEvent.objects.bulk_create(events, batch_size=500)
