"""What each index of the contacts table costs the import's writes, on PostgreSQL.

    DATABASE_URL=postgres://... PYTHONPATH=. .venv/bin/python bench/import_indexes.py \
        [--rows 100000] [--runs 2] [--shapes plain,export] [--batch 5000]

Creates (and at the end drops) a scratch database ``<name>_import_indexes`` next to the
configured one (the role needs CREATEDB), migrates it, and runs the real import once per file
shape (``bench/imports.py``'s files: ``plain`` 10 columns, ``export`` 24 quoted columns with
~70 % non-ASCII names; 5 % duplicates) to get the exact contact rows the import stores. Then,
``--runs`` times per configuration, into a fresh copy of the contacts table (its columns,
defaults, check constraints, primary key, unique (team, email), team foreign key; autovacuum off,
so nothing cleans up behind the clock) with only the configuration's secondary indexes, it
``COPY``s those rows in transactions of ``--batch`` input rows (as the import's batches), after
a ``CHECKPOINT``, then runs ``VACUUM`` on the table (which empties the GIN pending lists):

a. no secondary index;
b. only the b-trees (the four (team, sort column, id) ones and ``contact_company_prefix``);
c. the b-trees + the trigram GIN indexes of the table: today the eight partial shard indexes
   ``contact_search_trgm_<k>`` (the import's team writes one), and beside them the same GIN
   over every team (one unpartitioned index, as deployed before the shards);
d. every index exactly as deployed (``pg_get_indexdef`` of the migrated table);
e. as d with the trigram GIN's ``gin_pending_list_limit`` = 64 MB (the list still fills and is
   merged during the COPY: ~8 rows per pending page), = 1 GB (the whole file stays in the pending
   list, so the VACUUM does all the merging), and with ``fastupdate = off``;
f. the b-trees + a word-prefix ``to_tsvector('simple', …)`` GIN over the same searched text
   instead of the trigram one.

Prints, per shape and configuration, COPY seconds and COPY + VACUUM seconds for each run,
scaled to 100,000 contact rows, the matching rows/s, and the GIN pending list left before the
VACUUM (when ``pgstattuple`` is available); the results as JSON on the last line.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONTACTS = "outreach_contact"
SCRATCH = "bench_contact_idx"
COLUMNS = ("id, team_id, created_at, updated_at, source, import_job_id, import_row, email, first_name, last_name, "
           "company, title, phone, linkedin_url, time_zone, custom_fields")
TRIGRAM = "gin_trgm_ops"


def scratch_url(url: str) -> tuple[str, str]:
    """(the scratch database's URL, its name) for the configured ``DATABASE_URL``."""
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_import_indexes"
    return urlunsplit(parts._replace(path="/" + name)), name


def deployed_indexes(cur) -> dict[str, str]:
    """{index name: CREATE INDEX statement} of the migrated contacts table's secondary indexes
    (not the primary key, not the unique (team, email) constraint's)."""
    cur.execute("SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) ORDER BY 1", (CONTACTS,))
    return dict(cur.fetchall())


def configurations(indexes: dict[str, str]) -> list[tuple[str, list[str]]]:
    """[(label, [CREATE INDEX statements on the scratch table])]; see the module docstring."""
    def on_scratch(name: str, sql: str, suffix: str = "") -> str:
        sql = (sql.replace(f" {name} ", f" {SCRATCH}_{name} ", 1).replace(f"public.{CONTACTS} ", f"{SCRATCH} ", 1)
               .replace(f" {CONTACTS} ", f" {SCRATCH} ", 1))
        where = sql.find(" WHERE ")  # storage parameters come before a partial index's predicate
        return sql + suffix if where < 0 else sql[:where] + suffix + sql[where:]

    btrees = [on_scratch(n, s) for n, s in indexes.items() if " USING btree " in s]
    trigrams = {n: s for n, s in indexes.items() if TRIGRAM in s}
    others = [n for n, s in indexes.items() if " USING btree " not in s and n not in trigrams]
    if others:
        raise SystemExit(f"Index(es) this script does not classify: {others}")
    configs = [("a. no secondary index", []), ("b. b-trees only", btrees)]
    # The trigram index is one partial GIN per team shard (#12): the import's team writes one of
    # them. Beside them, the same GIN unpartitioned (one index over every team, as before).
    partial = {n: s for n, s in trigrams.items() if " WHERE " in s}
    whole = {n: s for n, s in trigrams.items() if n not in partial}
    if partial:
        name, sql = next(iter(partial.items()))
        whole.setdefault("one_trigram_gin_for_every_team", on_scratch(name, sql[:sql.index(" WHERE ")]).replace(
            f"{SCRATCH}_{name}", f"{SCRATCH}_one_trigram_gin_for_every_team", 1))
        configs.append((f"c. b-trees + the {len(partial)} trigram shard GINs", btrees + [on_scratch(n, s) for n, s in partial.items()]))
    configs += [(f"c. b-trees + {n}", btrees + [s if s.startswith(f"CREATE INDEX {SCRATCH}_") else on_scratch(n, s)])
                for n, s in whole.items()]
    configs.append(("d. all, as deployed", [on_scratch(n, s) for n, s in indexes.items()]))
    for label, storage in (("gin_pending_list_limit=64MB", " WITH (gin_pending_list_limit = 65536)"),
                           ("gin_pending_list_limit=1GB", " WITH (gin_pending_list_limit = 1048576)"),
                           ("fastupdate=off", " WITH (fastupdate = off)")):
        configs.append((f"e. all, GIN {label}",
                        [on_scratch(n, s, storage if n in trigrams else "") for n, s in indexes.items()]))
    for name, sql in list(trigrams.items())[:1]:  # the shards share one expression
        text = sql[sql.index("USING gin (") + len("USING gin ("):sql.rindex(TRIGRAM)].strip()
        if text.startswith("upper(") and text.endswith(")"):
            text = text[len("upper("):-1]  # words need no case folding: to_tsvector lower-cases
        configs.append((f"f. b-trees + word-prefix tsvector GIN instead of {name}",
                        btrees + [f"CREATE INDEX {SCRATCH}_{name}_tsv ON {SCRATCH} USING gin "
                                  f"(to_tsvector('simple'::regconfig, {text}))"]))
    return configs


def contact_rows(cur, team_id: int, batch: int) -> list[bytes]:
    """The team's contacts as COPY text, one bytes block per ``batch`` input rows (the import's
    transactions), each block in address order as the import writes it."""
    cur.execute(f"SELECT min(import_row) FROM {CONTACTS} WHERE team_id = %s", (team_id,))
    first = cur.fetchone()[0]
    blocks: dict[int, list[tuple[str, bytes]]] = {}
    buf = io.BytesIO()
    with cur.copy(f"COPY (SELECT import_row, email, {COLUMNS} FROM {CONTACTS} WHERE team_id = {int(team_id)}) "
                  "TO STDOUT") as copy:
        for chunk in copy:
            buf.write(chunk)
    for line in buf.getvalue().splitlines(keepends=True):
        row, email, rest = line.split(b"\t", 2)
        blocks.setdefault((int(row) - first) // batch, []).append((email, rest))
    return [b"".join(rest for _, rest in sorted(block)) for _, block in sorted(blocks.items())]


def pending(cur, names: list[str]) -> dict[str, dict]:
    """{GIN index: {pending_pages, pending_tuples}} via pgstattuple, or {} without it."""
    out = {}
    for name in names:
        try:
            cur.execute("SELECT pending_pages, pending_tuples FROM pgstatginindex(%s::regclass)", (name,))
        except psycopg.Error:
            cur.connection.rollback()
            return {}
        out[name] = dict(zip(("pending_pages", "pending_tuples"), cur.fetchone()))
        cur.connection.commit()
    return out


def measure(conn, blocks: list[bytes], statements: list[str]) -> dict:
    """One run: a fresh scratch table with ``statements``' indexes, COPY of ``blocks`` (one
    transaction each), then VACUUM. Returns seconds and pending-list sizes."""
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        cur.execute(f"CREATE TABLE {SCRATCH} (LIKE {CONTACTS} INCLUDING DEFAULTS INCLUDING IDENTITY "
                    "INCLUDING CONSTRAINTS) WITH (autovacuum_enabled = off)")
        cur.execute(f"ALTER TABLE {SCRATCH} ADD PRIMARY KEY (id), ADD UNIQUE (team_id, email), "
                    "ADD FOREIGN KEY (team_id) REFERENCES outreach_team (id) DEFERRABLE INITIALLY DEFERRED")
        for sql in statements:
            cur.execute(sql)
        conn.commit()
        cur.execute("SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am a "
                    "ON a.oid = i.relam WHERE x.indrelid = %s::regclass AND a.amname = 'gin'", (SCRATCH,))
        gins = [name for (name,) in cur.fetchall()]
        conn.commit()
        conn.autocommit = True
        cur.execute("CHECKPOINT")
        conn.autocommit = False
        started = time.perf_counter()
        for block in blocks:
            with cur.copy(f"COPY {SCRATCH} ({COLUMNS}) FROM STDIN") as copy:
                copy.write(block)
            conn.commit()
        copy_seconds = time.perf_counter() - started
        left = pending(cur, gins)
        conn.autocommit = True
        started = time.perf_counter()
        cur.execute(f"VACUUM {SCRATCH}")
        vacuum_seconds = time.perf_counter() - started
        cur.execute(f"SELECT count(*), pg_indexes_size('{SCRATCH}'::regclass) FROM {SCRATCH}")
        rows, index_bytes = cur.fetchone()
        conn.autocommit = False
    return {"copy_seconds": copy_seconds, "vacuum_seconds": vacuum_seconds, "rows": rows,
            "index_mb": round(index_bytes / 2**20, 1), "pending_before_vacuum": left}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="Rows of each generated file.")
    parser.add_argument("--runs", type=int, default=2, help="Runs of each configuration.")
    parser.add_argument("--shapes", default="plain,export")
    parser.add_argument("--batch", type=int, default=5000, help="Input rows per transaction (the import's batch).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("DATABASE_URL must name a PostgreSQL database (the scratch database is made beside it).")
    url, name = scratch_url(url)
    admin = psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
    import django
    from django.core.management import call_command

    django.setup()
    from outreach.imports.services import contacts_import
    from outreach.models import Team
    from tests.imports.fixtures import generate_bench_file, generate_export_file

    load = os.getloadavg()
    print(f"cpus {os.cpu_count()}, load average at start {' '.join(f'{x:.2f}' for x in load)}; scratch database {name}",
          file=sys.stderr)
    call_command("migrate", verbosity=0)
    results: dict = {"rows": args.rows, "runs": args.runs, "batch": args.batch, "load_average_start": load[0]}
    conn = psycopg.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
            conn.commit()
    except psycopg.Error:
        conn.rollback()
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit'), "
                    "current_setting('full_page_writes'), current_setting('shared_buffers'), "
                    "current_setting('maintenance_work_mem'), current_setting('gin_pending_list_limit'), version()")
        settings = dict(zip(("fsync", "synchronous_commit", "full_page_writes", "shared_buffers",
                             "maintenance_work_mem", "gin_pending_list_limit", "version"), cur.fetchone()))
        results["settings"] = settings
        indexes = deployed_indexes(cur)
        conn.commit()
    print(f"PostgreSQL: {settings}", file=sys.stderr)
    configs = configurations(indexes)
    tmp = Path(tempfile.mkdtemp(prefix="outreach-idx-"))
    for shape in args.shapes.split(","):
        path = tmp / f"{shape}.csv"
        (generate_export_file if shape == "export" else generate_bench_file)(path, rows=args.rows, dup_rate=0.05)
        team = Team.objects.create(name=f"bench-indexes-{shape}")
        with open(path, "rb") as fh:
            job = contacts_import(team=team, file=fh, filename=path.name)
        path.unlink()
        with conn.cursor() as cur:
            blocks = contact_rows(cur, team.pk, args.batch)
            conn.commit()
        contacts = sum(block.count(b"\n") for block in blocks)
        print(f"\n{shape}: {args.rows} rows in the file, {contacts} contacts imported (job {job.status}), "
              f"{len(blocks)} transactions", flush=True)
        print(f"{'configuration':58} {'COPY s/100k':>18} {'rows/s':>15} {'+VACUUM s/100k':>18} {'rows/s':>15} "
              f"{'indexes':>8}  GIN pending before VACUUM")
        out = results[shape] = {"contacts": contacts}
        for label, statements in configs:
            runs = [measure(conn, blocks, statements) for _ in range(args.runs)]
            scale = 100_000 / contacts
            copy_s = [r["copy_seconds"] * scale for r in runs]
            total_s = [(r["copy_seconds"] + r["vacuum_seconds"]) * scale for r in runs]
            out[label] = {"runs": runs, "copy_seconds_per_100k": [round(s, 2) for s in copy_s],
                          "copy_vacuum_seconds_per_100k": [round(s, 2) for s in total_s]}

            def fmt(values, per_second=False):
                return " / ".join(f"{100_000 / s:,.0f}" if per_second else f"{s:.2f}" for s in values)

            pend = "; ".join(f"{p['pending_pages']} pages" for r in runs for p in r["pending_before_vacuum"].values())
            print(f"{label[:58]:58} {fmt(copy_s):>18} {fmt(copy_s, True):>15} {fmt(total_s):>18} "
                  f"{fmt(total_s, True):>15} {runs[-1]['index_mb']:>6}MB  {pend}", flush=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        conn.commit()
    conn.close()
    from django.db import connections

    connections.close_all()
    if not args.keep:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    results["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
