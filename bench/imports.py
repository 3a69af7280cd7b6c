"""Benchmark the CSV import against a bare COPY into the same table (and optionally
django-import-export) on the same file.

    DEBUG=true DATABASE_URL=postgres://... PYTHONPATH=. .venv/bin/python bench/imports.py \
        [--rows 100000] [--dup-rate 0.05] [--shape plain|export] [--repeat 3] [--with-iex]

Generates a ``--rows``-row CSV where ``--dup-rate`` of the rows repeat an earlier address in
another letter case — ``plain``: 10 columns; ``export``: a HubSpot-shaped export (24 columns,
every cell quoted, ~70 % non-ASCII names) — then, each in a fresh child process (so its peak RSS
is its own) and into a fresh team on the configured database:

1. the ceilings: a bare ``COPY`` of the file (PostgreSQL parses the CSV) into a temporary table
   and one ``INSERT … SELECT lower(email) … ON CONFLICT DO NOTHING`` into the contacts table —
   no validation, no timeline, no counts; "ceiling" writes the address only (blank names, as in
   earlier figures), "ceiling, all fields" every field the import stores (names, company, title,
   phone, URL, time zone, the other columns as custom-field JSON), so the indexes do the same work;
   "ceiling, all fields, no 2nd indexes" the same INSERT into a copy of the contacts table that
   has only its primary key, the unique (team, email) the upsert needs and the team foreign key
   (no trigram GIN, none of the sort/prefix b-trees): the difference is what those indexes cost;
2. ``manage.py import_contacts`` (our service, policy skip), ``--repeat`` times, with the
   parsing in a thread of the importing process (``--parse thread``, the default), in a child
   process (``--parse child``: ``OUTREACH_IMPORT_PARSE_PROCESS_BYTES=1``) or both;
3. with ``--with-iex``: django-import-export 4 ``ModelResource`` on ``Contact`` — default
   settings on the first ``--iex-default-rows`` rows (extrapolated), then ``use_bulk=True``.

Each timed step starts right after a ``CHECKPOINT`` (when the database role may run one: the JSON says
whether it did), so a checkpoint triggered by an earlier step's WAL does not write during it.
Prints rows/s, the ratio to the ceiling and peak RSS, and the results as JSON on the last line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COPY_SCRIPT = r'''
import json, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
import django
django.setup()
from django.db import connection, transaction
from outreach.models import Contact, Team

path, team_name, email_header, fields = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
team = Team.objects.get(name=team_name)
table = Contact._meta.db_table
if fields == "noindex":  # the same table without its secondary indexes: what the indexes cost
    fields, table = "all", "bench_contact_noindex"
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}; "
                    f"CREATE TABLE {table} (LIKE {Contact._meta.db_table} INCLUDING DEFAULTS INCLUDING IDENTITY "
                    f"INCLUDING CONSTRAINTS); ALTER TABLE {table} ADD PRIMARY KEY (id), ADD UNIQUE (team_id, email), "
                    f"ADD FOREIGN KEY (team_id) REFERENCES {Team._meta.db_table} (id) DEFERRABLE INITIALLY DEFERRED")
with open(path, encoding="utf-8", newline="") as fh:
    header = fh.readline().strip().replace('"', "").split(",")
columns = "first_name, last_name, company, title, phone, linkedin_url, time_zone"
values = "'', '', '', '', '', '', ''"
custom = "'{}'"
if fields == "all":  # every field the import stores, from the columns it maps (as plain text, unchecked)
    from outreach.imports.mapping import CUSTOM, guess_mapping
    mapping = guess_mapping(header)
    values = ", ".join(f"c{mapping.index(t)}" if t in mapping else "''" for t in columns.split(", "))
    pairs = [f"'{h}', NULLIF(c{i}, '')" for i, (h, t) in enumerate(zip(header, mapping)) if t == CUSTOM]
    custom = f"jsonb_strip_nulls(jsonb_build_object({', '.join(pairs)}))" if pairs else "'{}'"
started = time.perf_counter()
with transaction.atomic(), connection.cursor() as wrapper:
    cur = wrapper.cursor
    cur.execute("CREATE TEMP TABLE bench_raw (" + ", ".join(f"c{i} text" for i in range(len(header))) + ") ON COMMIT DROP")
    with open(path, "rb") as fh, cur.copy("COPY bench_raw FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
        while chunk := fh.read(1 << 20):
            copy.write(chunk)
    email = f"c{header.index(email_header)}"
    cur.execute(f"INSERT INTO {table} (team_id, created_at, updated_at, email, {columns}, "
                f"source, custom_fields) "
                f"SELECT %s, now(), now(), lower({email}), {values}, 'copy', {custom} FROM bench_raw "
                "ON CONFLICT DO NOTHING", (team.pk,))
    inserted = cur.rowcount
seconds = time.perf_counter() - started
if table != Contact._meta.db_table:
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE {table}")
print(json.dumps({"seconds": seconds, "contacts": inserted}))
'''

IEX_SCRIPT = r'''
import json, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
import django
django.setup()
import tablib
from import_export import fields, resources
from outreach.models import Contact, Team

path, team_name, use_bulk = sys.argv[1], sys.argv[2], sys.argv[3] == "bulk"
team = Team.objects.get(name=team_name)
HEADERS = {"Email": "email", "First Name": "first_name", "Last Name": "last_name", "Company": "company",
           "Job Title": "title", "Phone": "phone", "LinkedIn URL": "linkedin_url"}


class ContactResource(resources.ModelResource):
    class Meta:
        model = Contact
        import_id_fields = ("email",)
        fields = ("email", "first_name", "last_name", "company", "title", "phone", "linkedin_url", "custom_fields")
        use_bulk = use_bulk
        batch_size = 1000
        skip_diff = use_bulk
        skip_unchanged = True

    def get_queryset(self):
        return Contact.objects.filter(team=team)

    def before_import_row(self, row, **kwargs):
        row["email"] = (row.get("email") or "").strip().lower()
        row["custom_fields"] = json.dumps({"City": row.get("City", ""), "Industry": row.get("Industry", ""),
                                           "Notes": row.get("Notes", "")})

    def before_save_instance(self, instance, row, **kwargs):
        instance.team = team
        if not instance.source:
            instance.source = "import-export"


started = time.perf_counter()
with open(path, encoding="utf-8", newline="") as fh:
    data = tablib.Dataset().load(fh.read(), format="csv")
data.headers = [HEADERS.get(h, h) for h in data.headers]
result = ContactResource().import_data(data, dry_run=False, raise_errors=False, use_transactions=True)
seconds = time.perf_counter() - started
totals = dict(result.totals)
first_error = ""
if result.has_errors():
    errors = result.base_errors or [e for _, row_errors in result.row_errors() for e in row_errors]
    first_error = repr(errors[0].error)[:300] if errors else ""
print(json.dumps({"seconds": seconds, "totals": totals, "has_errors": result.has_errors(), "first_error": first_error,
                  "contacts": Contact.objects.filter(team=team).count()}))
'''


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[str, float, int]:
    """Run ``cmd``; returns (stdout, wall seconds, the child's own peak RSS in MB via wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({proc.returncode}):\n{stderr[-3000:]}")
    return stdout, wall, usage.ru_maxrss // 1024  # Linux: ru_maxrss is in KB


def checkpoint() -> bool:
    """``CHECKPOINT`` before a timed step, so that no checkpoint the step did not cause runs
    during it (with the default max_wal_size a 100,000-row import writes enough WAL to trigger one
    every few steps, and its writes then compete with the step's) and every step starts with the
    same full-page-write state. Needs a superuser or pg_checkpoint; returns False (and the step
    runs anyway) without them."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
        return True
    except DatabaseError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dup-rate", type=float, default=0.05)
    parser.add_argument("--shape", choices=("plain", "export"), default="plain",
                        help="plain: 10 columns; export: 24 quoted columns, ~70 %% non-ASCII names.")
    parser.add_argument("--repeat", type=int, default=1, help="Runs of our import (each into a fresh team).")
    parser.add_argument("--parse", choices=("child", "thread", "both"), default="thread",
                        help="Where the import parses: a thread (the default), a child process, or both.")
    parser.add_argument("--with-iex", action="store_true", help="Also run django-import-export.")
    parser.add_argument("--skip-iex-default", action="store_true", help="Run only import-export's bulk mode.")
    parser.add_argument("--iex-default-rows", type=int, default=10_000,
                        help="Rows of the file for import-export's default mode (0: all); its time is extrapolated.")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
    import django

    django.setup()
    from django.db import connection

    from outreach.models import Team
    from tests.imports.fixtures import generate_bench_file, generate_export_file

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    db = connection.vendor
    if db != "postgresql":
        raise SystemExit(f"The configured database is {db}; this benchmark needs PostgreSQL (DATABASE_URL).")
    tmp = Path(tempfile.mkdtemp(prefix="outreach-bench-"))
    path = tmp / "contacts.csv"
    started = time.perf_counter()
    generate = generate_export_file if args.shape == "export" else generate_bench_file
    shape = generate(path, rows=args.rows, dup_rate=args.dup_rate)
    print(f"generated {path} ({path.stat().st_size / 1e6:.1f} MB, {shape['rows']} rows, {shape['duplicates']} duplicates, "
          f"shape {args.shape}) in {time.perf_counter() - started:.1f}s; cpus: {os.cpu_count()}, load average at start: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)
    stamp = time.strftime("%Y%m%d%H%M%S")
    results = {"rows": args.rows, "duplicates": shape["duplicates"], "shape": args.shape, "database": db,
               "load_average": os.getloadavg()[0]}

    for fields, label in (("email", "bare COPY + INSERT (ceiling)"), ("all", "ceiling, all fields"),
                          ("noindex", "ceiling, all fields, no 2nd indexes")):
        team = Team.objects.create(name=f"bench-copy-{fields}-{stamp}")
        results["checkpoint before each step"] = checkpoint()
        out, wall, rss = run_child([sys.executable, "-c", COPY_SCRIPT, str(path), team.name, "Email", fields], env)
        data = json.loads(out.strip().splitlines()[-1])
        results[label] = {"seconds": round(data["seconds"], 2), "rows_per_second": round(args.rows / data["seconds"]),
                          "peak_rss_mb": rss, "contacts": data["contacts"]}
    ceiling = results["bare COPY + INSERT (ceiling)"]["rows_per_second"]
    ceiling_all = results["ceiling, all fields"]["rows_per_second"]
    modes = ("child", "thread") if args.parse == "both" else (args.parse,)
    for n in range(args.repeat):
        for mode in modes:
            team = Team.objects.create(name=f"bench-outreach-{stamp}-{n}-{mode}")
            mode_env = dict(env, OUTREACH_IMPORT_PARSE_PROCESS_BYTES="1" if mode == "child" else "0")
            checkpoint()
            out, wall, rss = run_child([sys.executable, "manage.py", "import_contacts", str(path), "--team", team.name],
                                       mode_env)
            counts = json.loads(out)
            results[f"outreach import ({mode}, run {n + 1})"] = {
                "seconds": counts["seconds"], "wall_seconds": round(wall, 2),
                "rows_per_second": round(args.rows / counts["seconds"]), "peak_rss_mb": rss,
                "created": counts["created"], "unchanged": counts["unchanged"], "rejected": counts["rejected"]}

    runs = []
    if args.with_iex:
        if not args.skip_iex_default:
            runs.append(("import-export (default)", "default"))
        runs.append(("import-export (use_bulk)", "bulk"))
    for label, mode in runs:
        team = Team.objects.create(name=f"bench-iex-{mode}-{stamp}")
        source, rows = path, args.rows
        if mode == "default" and 0 < args.iex_default_rows < args.rows:
            source, rows = tmp / "head.csv", args.iex_default_rows
            with open(path, encoding="utf-8") as full, open(source, "w", encoding="utf-8") as head:
                for _ in range(rows + 1):  # the header and the first rows (the file has no multi-line cells)
                    head.write(full.readline())
            label = f"import-export (default, first {rows} rows)"
        checkpoint()
        out, wall, rss_iex = run_child([sys.executable, "-c", IEX_SCRIPT, str(source), team.name, mode], env)
        data = json.loads(out.strip().splitlines()[-1])
        results[label] = {"rows": rows, "seconds": round(data["seconds"], 2), "wall_seconds": round(wall, 2),
                          "seconds_for_all_rows": round(data["seconds"] * args.rows / rows, 1),
                          "rows_per_second": round(rows / data["seconds"]),
                          "peak_rss_mb": rss_iex, "totals": data["totals"], "contacts": data["contacts"],
                          "errors": data["has_errors"], "first_error": data["first_error"]}

    print(f"\n{'':42} {'seconds':>8} {f'for {args.rows}':>12} {'rows/s':>8} {'of COPY':>8} {'of all':>8} {'peak RSS':>9}")
    for label, r in results.items():
        if not isinstance(r, dict):
            continue
        print(f"{label:42} {r['seconds']:>8} {r.get('seconds_for_all_rows', r['seconds']):>12} "
              f"{r['rows_per_second']:>8} {r['rows_per_second'] / ceiling:>8.0%} {r['rows_per_second'] / ceiling_all:>8.0%} "
              f"{r['peak_rss_mb']:>7}MB")
        if r.get("errors"):
            print(f"{'':42} failed: {r['contacts']} contacts kept; first error: {r['first_error'][:160]}")
    no_index = results["ceiling, all fields, no 2nd indexes"]["seconds"]
    print("(outreach: validated contacts + their timeline, one transaction per 5,000 rows; ceilings: contacts only, "
          "no validation, one transaction — 'of COPY' against the address-only one, 'of all' against the all-fields "
          "one; 'no 2nd indexes': the same INSERT into a copy of the contacts table with only its primary key, "
          "the unique (team, email) and the team foreign key; import-export: contacts only)")
    print(f"The contacts table's secondary indexes (the trigram GIN and the sort/prefix b-trees) cost "
          f"{results['ceiling, all fields']['seconds'] - no_index:.2f} s of the all-fields ceiling's "
          f"{results['ceiling, all fields']['seconds']:.2f} s for {args.rows} rows.")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
