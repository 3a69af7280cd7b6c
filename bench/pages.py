"""Benchmark the list pages, searches and the contact page at 10,000 and at 1,000,000 contacts.

    DEBUG=true DATABASE_URL=postgres://USER@HOST:PORT/NAME PYTHONPATH=. .venv/bin/python bench/pages.py \
        [--scales 10000,1000000] [--events-per-contact 10] [--runs 20] [--reseed]

For each scale N it uses its own database ``<NAME>_<N>`` on the same server (created, migrated and
seeded when missing or with ``--reseed``): two teams of the same size (the second one only there
so every query must isolate its team), each with N contacts, 0.3·N leads, N·events-per-contact
timeline events, 0.1·N sent messages, and one contact holding 1,000 timeline events. Rows go in
with COPY (``psycopg`` ``cursor.copy``; the timeline events with one server-side ``INSERT …
SELECT … generate_series``) while the secondary indexes are dropped; the indexes are rebuilt
afterwards and the tables ANALYZEd, and the seeding time is printed.

Then, in a child process with production settings (DEBUG off, so templates are cached and no
query log is kept) through Django's test client (no network; a signed-in superuser, so the
admin pages list every team's rows; the UI pages are scoped to the first team), each page is
requested twice to warm up and ``--runs`` times measured: p50/p95 of the server time (request in,
rendered response out, including template rendering; the test environment's template
instrumentation is not installed, as in production), the p50 of the time spent in SQL (as the
database driver saw it), and the query count. Pages: contacts list page 1, a deep page (keyset
token at the middle of the list), search by name, by company, by email prefix and by a word in
~8 % of the companies, sort by each sortable column, filter by company, the company autocomplete,
the contact page with 1,000 events, the messages list, the leads list, and the admin contact and
timeline lists.

Prints one table with the scales side by side, the targets (p95 ≤ 50 ms, ≤ 8 queries) beside
them, and JSON on the last line.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_P95_MS = 50.0
TARGET_QUERIES = 8
HEAVY_EVENTS = 1_000

FIRST = ["Anna", "Ben", "Chloé", "David", "Émile", "Fatima", "Georg", "Hana", "Ivan", "Jürgen", "Kenji", "Laura",
         "María", "Nils", "Olga", "Pedro", "Quentin", "Rosa", "Søren", "Tomás", "Uma", "Vera", "Wei", "Xavier",
         "Yusuf", "Zoë", "Ahmed", "Björn", "Carmen", "Dmitri", "Elena", "François", "Giulia", "Håkon", "Inés"]
LAST = ["Smith", "Müller", "García", "Rossi", "Dubois", "Kowalski", "Nguyen", "Johansson", "Papadopoulos", "Silva",
        "Yamamoto", "O'Brien", "Novák", "Horvát", "Andersen", "Schmidt", "Martínez", "Bianchi", "Lefèvre", "Kim",
        "Ivanova", "Cohen", "Fischer", "López", "Weber", "Moreau", "Jensen", "Costa", "Wagner", "Petrov"]
WORDS = ["Acme", "Blue", "North", "Quantum", "Delta", "Apex", "Vertex", "Nimbus", "Orbit", "Pine", "Summit", "Atlas",
         "Nova", "Crest", "Harbor", "Iron", "Lumen", "Maple", "Onyx", "Prism", "Ridge", "Sol", "Terra", "Vale"]
SUFFIX = ["GmbH", "Inc", "Ltd", "SA", "Labs", "Group", "Systems", "AG", "SAS", "BV"]
TITLES = ["CEO", "CTO", "Head of Sales", "VP Marketing", "Account Executive", "Founder", "Engineer", "Buyer", ""]
STATUSES = ["new", "contacted", "replied", "interested", "not_interested", "won", "lost"]
KINDS = ["contact_updated", "lead_status", "contact_imported", "message_sent"]


def company_name(i: int) -> str:
    return f"{WORDS[i % 24]} {WORDS[(i // 24) % 24]} {SUFFIX[(i // 576) % 10]} {i // 5760}"


def db_url_for(base: str, scale: int) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}_{scale}"))


# --- Seeding (psycopg directly, COPY) ------------------------------------------------------------


def _copy(cur, sql: str, rows) -> int:
    """COPY text-format ``rows`` (tuples of str) through ``sql``, in blocks; returns the row count."""
    n = 0
    with cur.copy(sql) as copy:
        buf = io.StringIO()
        for row in rows:
            buf.write("\t".join(row))
            buf.write("\n")
            n += 1
            if n % 20_000 == 0:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())
    return n


def seed(url: str, scale: int, events_per_contact: int) -> dict:
    """Create (or recreate) the scale's database, migrate it and COPY the data in. Returns timings."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    import subprocess

    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True,
                   env={**os.environ, "DATABASE_URL": url}, cwd=ROOT)
    timings = {"migrate_s": round(time.perf_counter() - started, 1)}
    rnd = random.Random(scale)
    now = datetime.now(dt_timezone.utc)
    year = 365 * 24 * 3600
    tables = ["outreach_contact", "outreach_lead", "outreach_timelineevent", "outreach_sentmessage"]

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
                    "AND indexname NOT IN (SELECT conname FROM pg_constraint)", [tables])
        secondary = cur.fetchall()
        for index_name, _ in secondary:
            cur.execute(f'DROP INDEX "{index_name}"')
        cur.execute("SET session_replication_role = replica")  # no FK triggers while loading
        cur.execute("INSERT INTO auth_user (password, last_login, is_superuser, username, first_name, last_name, email, "
                    "is_staff, is_active, date_joined) VALUES ('!', NULL, true, 'bench', '', '', 'bench@example.com', "
                    "true, true, now()) RETURNING id")
        user_id = cur.fetchone()[0]
        owners = []
        for i in range(5):
            cur.execute("INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, "
                        "is_staff, is_active, date_joined) VALUES ('!', false, %s, '', '', '', false, true, now()) "
                        "RETURNING id", [f"owner{i}"])
            owners.append(cur.fetchone()[0])
        t0 = time.perf_counter()
        info = {"user_id": user_id, "teams": []}
        next_contact = 1
        next_message = 1
        for t in range(2):
            cur.execute("INSERT INTO outreach_team (name, created_at, unsubscribe_footer) VALUES (%s, now(), false) "
                        "RETURNING id", [f"Bench {t}"])
            team_id = cur.fetchone()[0]
            cur.execute("INSERT INTO outreach_membership (user_id, team_id, role) VALUES (%s, %s, 'owner')"
                        if t == 0 else "SELECT %s, %s", [user_id, team_id])
            config = {"smtp_host": "smtp.acme.com", "smtp_port": 587, "smtp_login": "bench", "smtp_password": "",
                      "smtp_security": "starttls", "imap_host": "", "imap_port": None, "imap_login": "", "imap_password": "",
                      "imap_security": "ssl", "imap_sent_folder": "Sent", "lemlist_email_account_id": ""}
            cur.execute("INSERT INTO outreach_mailbox (team_id, created_at, updated_at, provider, sender_name, sender_email, "
                        "is_active, provider_config, daily_cap, min_interval_seconds, interval_jitter_seconds, send_days, "
                        "send_window_start, send_window_end, time_zone) VALUES (%s, now(), now(), "
                        "'smtp', 'Bench', 'bench@acme.com', true, %s::jsonb, 0, 0, 0, '0,1,2,3,4,5,6', '00:00', "
                        "'00:00', 'UTC') RETURNING id", [team_id, json.dumps(config)])
            mailbox_id = cur.fetchone()[0]
            first_id = next_contact
            companies = max(scale // 20, 10)

            def contacts():
                for i in range(scale):
                    cid = first_id + i
                    f, l = FIRST[rnd.randrange(len(FIRST))], LAST[rnd.randrange(len(LAST))]
                    created = (now - timedelta(seconds=rnd.randrange(year))).isoformat()
                    email = f"{f}.{l}.{cid}@example{cid % 97}.com".lower().replace("'", "")
                    yield (str(cid), str(team_id), created, created, email, f, l, company_name(rnd.randrange(companies)),
                           TITLES[i % len(TITLES)], "", "", "{}", "bench")

            _copy(cur, "COPY outreach_contact (id, team_id, created_at, updated_at, email, first_name, last_name, "
                       "company, title, phone, linkedin_url, custom_fields, source) FROM STDIN", contacts())
            next_contact += scale

            def leads():
                for i in range(0, scale, 10):
                    for j in (0, 3, 7):  # 30 % of the contacts
                        if i + j < scale:
                            created = (now - timedelta(seconds=rnd.randrange(year))).isoformat()
                            owner = str(owners[rnd.randrange(5)]) if rnd.random() < 0.8 else "\\N"
                            yield (str(team_id), created, created, str(first_id + i + j),
                                   STATUSES[rnd.randrange(7)], owner, "bench")

            _copy(cur, "COPY outreach_lead (team_id, created_at, updated_at, contact_id, status, owner_id, source) "
                       "FROM STDIN", leads())
            heavy = first_id  # the contact with HEAVY_EVENTS events
            n_messages = max(scale // 10, 100)
            first_message = next_message

            def messages():
                for i in range(n_messages):
                    cid = heavy if i < 100 else first_id + rnd.randrange(scale)
                    created = now - timedelta(seconds=rnd.randrange(year))
                    status = "sent" if i % 20 else "failed"
                    sent = (created + timedelta(seconds=5)).isoformat() if status == "sent" else "\\N"
                    yield (str(first_message + i), str(team_id), created.isoformat(), created.isoformat(),
                           str(mailbox_id), str(cid), str(user_id), '["x@example.com"]', "[]", "[]", "",
                           f"Quick question {i % 500}", "<p>Hi</p>", "Hi", f"<bench-{team_id}-{i}@acme.com>",
                           f"{team_id:08x}-0000-4000-8000-{i:012x}", "", status, "1", "smtp", "", "", "", "{}",
                           "", "", created.isoformat(), "\\N", sent, "\\N", "", "", "", "", "", "{}", "[]")

            _copy(cur, "COPY outreach_sentmessage (id, team_id, created_at, updated_at, mailbox_id, contact_id, "
                       "created_by_id, \"to\", cc, bcc, reply_to, subject, html_body, text_body, message_id, "
                       "idempotency_key, thread_id, status, attempts, provider, provider_message_id, "
                       "provider_thread_id, provider_status, provider_response, error_code, error_message, queued_at, "
                       "sending_started_at, sent_at, failed_at, bounce_reason, in_reply_to, \"references\", claimed_by, "
                       "hold_reason, recipient_results, headers) FROM STDIN", messages())
            next_message += n_messages

            # The events are generated by the server (generate_series): the bulk of the rows, and
            # ~10x faster than building and COPYing 10,000,000 lines from Python. Same layout as
            # before: event i belongs to contact first_id + i % scale (so a contact's events are
            # spread over the table), the first HEAVY_EVENTS to the heavy contact, whose first 200
            # are a "queued" and a "sent" event for each of its 100 messages.
            cur.execute("SELECT setseed(%s)", [((scale * 7 + t) % 1000) / 1000])
            cur.execute(
                "INSERT INTO outreach_timelineevent (team_id, created_at, updated_at, contact_id, sent_message_id, "
                "actor_id, kind, summary, data) "
                "SELECT %(team)s, ts, ts, CASE WHEN i < %(heavy_n)s THEN %(heavy)s ELSE %(first)s + i %% %(scale)s END, "
                "CASE WHEN i < 200 THEN %(first_message)s + i %% 100 END, NULL, "
                "CASE WHEN i < 100 THEN 'message_queued' WHEN i < 200 THEN 'message_sent' "
                "ELSE (ARRAY['contact_updated', 'lead_status', 'contact_imported'])[i %% 3 + 1] END, "
                "'Something happened.', '{}'::jsonb "
                "FROM (SELECT i, %(now)s - random() * interval '365 days' AS ts "
                "      FROM generate_series(0, %(total)s - 1) AS i) AS s",
                {"team": team_id, "heavy_n": HEAVY_EVENTS, "heavy": heavy, "first": first_id, "scale": scale,
                 "first_message": first_message, "now": now, "total": scale * events_per_contact})
            info["teams"].append({"team_id": team_id, "heavy_contact": heavy})
        cur.execute("SET session_replication_role = origin")
        for table, column in (("outreach_contact", "id"), ("outreach_sentmessage", "id")):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), (SELECT max({column}) FROM {table}))")
        timings["copy_s"] = round(time.perf_counter() - t0, 1)
        t1 = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in secondary:
            cur.execute(definition)
        timings["index_s"] = round(time.perf_counter() - t1, 1)
        t2 = time.perf_counter()
        cur.execute("VACUUM ANALYZE")
        timings["analyze_s"] = round(time.perf_counter() - t2, 1)
        cur.execute("CREATE TABLE bench_info (info jsonb)")
        cur.execute("INSERT INTO bench_info VALUES (%s)", [json.dumps(info)])
    timings["total_s"] = round(time.perf_counter() - started, 1)
    return timings


def seeded_info(url: str, scale: int, events_per_contact: int) -> dict | None:
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT info FROM bench_info").fetchone()[0]
    except psycopg.Error:
        return None


# --- Measuring (Django test client) ---------------------------------------------------------------


def measure(url: str, runs: int) -> dict[str, dict]:
    """Request each page through Django's test client; returns {page: {p50_ms, p95_ms, queries}}."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    # No setup_test_environment(): it instruments every template render to send a signal, and the
    # test client then keeps a copy of each template's context (~8 ms of a 50-row list page and
    # more on admin pages, which render a template per widget) — work no production request does.
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # a database seeded by an older checkout gets the newer migrations
    from django.contrib.auth import get_user_model

    from outreach.models import Contact, Team
    from outreach.pagination import cursor_for, sort_fields
    from outreach import selectors

    with connection.cursor() as cur:
        cur.execute("SELECT info FROM bench_info")
        info = cur.fetchone()[0]
        if isinstance(info, str):
            info = json.loads(info)
    team = Team.objects.get(pk=info["teams"][0]["team_id"])
    heavy = info["teams"][0]["heavy_contact"]
    user = get_user_model().objects.get(pk=info["user_id"])
    client = Client()
    client.force_login(user)
    qs, _ = selectors.contact_list(team=team, query=selectors.ListQuery())
    count = Contact.objects.filter(team=team).count()
    middle = qs[count // 2]  # one OFFSET query, outside the measurement
    deep = cursor_for(middle, sort_fields(qs))
    sample = Contact.objects.filter(team=team).order_by("pk")[count // 3]
    contacts = reverse("contact_list")
    pages = {
        "contacts: page 1": contacts,
        "contacts: deep page (middle)": f"{contacts}?after={deep}",
        "contacts: last page": f"{contacts}?last=1",
        "search: name": f"{contacts}?q={sample.last_name}",
        "search: company": f"{contacts}?q={sample.company.replace(' ', '+')}",
        "search: email prefix": f"{contacts}?q={sample.email[:8]}",
        "search: common word": f"{contacts}?q={WORDS[0]}",
        "sort: email": f"{contacts}?o=email",
        "sort: name": f"{contacts}?o=name",
        "sort: company": f"{contacts}?o=company",
        "sort: title": f"{contacts}?o=title",
        "sort: created (oldest)": f"{contacts}?o=created",
        "filter: company": f"{contacts}?company={sample.company.replace(' ', '+')}",
        "company autocomplete": f"{reverse('contact_company_suggestions')}?company={sample.company[:4]}",
        "contact page (1,000 events)": reverse("contact_detail", args=[heavy]),
        "messages list": reverse("message_list"),
        "messages: sort sent": f"{reverse('message_list')}?o=sent",
        "leads list": reverse("lead_list"),
        "leads: status filter": f"{reverse('lead_list')}?status=won",
        "leads: sort email": f"{reverse('lead_list')}?o=email",
        "admin: contacts": "/admin/outreach/contact/",
        "admin: timeline": "/admin/outreach/timelineevent/",
    }
    results = {}
    for name, path in pages.items():
        for _ in range(2):
            response = client.get(path)
            assert response.status_code == 200, (name, response.status_code)
        times, sql_times, queries = [], [], 0
        for _ in range(runs):
            with CaptureQueriesContext(connection) as captured:
                t = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - t) * 1000)
            queries = len(captured)
            sql_times.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
        times.sort()
        results[name] = {"p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(times[max(0, int(round(0.95 * len(times))) - 1)], 1), "queries": queries,
                         "sql_p50_ms": round(statistics.median(sql_times), 1)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="10000,1000000")
    parser.add_argument("--events-per-contact", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--seed-only", action="store_true", help="seed the missing scales, measure nothing")
    parser.add_argument("--measure-url", help=argparse.SUPPRESS)  # internal: one scale, in a child process
    args = parser.parse_args()
    if args.measure_url:
        print(json.dumps(measure(args.measure_url, args.runs)))
        return
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/pages.py needs DATABASE_URL=postgres://… (a server where it may create databases)")
    scales = [int(s) for s in args.scales.split(",")]
    seeding, results = {}, {}
    for scale in scales:
        url = db_url_for(base, scale)
        if args.reseed or seeded_info(url, scale, args.events_per_contact) is None:
            print(f"seeding {scale:,} contacts × 2 teams ({scale * args.events_per_contact:,} events each)…", flush=True)
            seeding[scale] = seed(url, scale, args.events_per_contact)
            print(f"  {seeding[scale]}", flush=True)
    if args.seed_only:
        print(json.dumps({"seeding": seeding}))
        return
    import subprocess

    # Production settings (DEBUG off: cached templates, no query log) over plain HTTP to the test client.
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": os.urandom(24).hex(), "ALLOWED_HOSTS": "testserver",
           "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false"}
    for scale in scales:  # each scale in its own process: one database per Django set-up
        done = subprocess.run([sys.executable, __file__, "--measure-url", db_url_for(base, scale), "--runs", str(args.runs)],
                              check=True, capture_output=True, text=True, cwd=ROOT, env=env)
        results[scale] = json.loads(done.stdout.strip().splitlines()[-1])
    names = list(results[scales[0]])
    head = f"{'page':32}" + "".join(f"{f'{s:,} contacts: p50 / p95 (SQL p50) ms, q':>46}" for s in scales)
    print(f"\nDjango test client, {args.runs} runs each; targets: p95 ≤ {TARGET_P95_MS:.0f} ms, ≤ {TARGET_QUERIES} queries")
    print(head)
    for name in names:
        line = f"{name:32}"
        for scale in scales:
            r = results[scale][name]
            flag = "" if r["p95_ms"] <= TARGET_P95_MS and r["queries"] <= TARGET_QUERIES else " !"
            line += f"{r['p50_ms']:>18.1f} / {r['p95_ms']:6.1f} ({r['sql_p50_ms']:6.1f}), {r['queries']:2d}{flag:>3}"
        print(line)
    print(json.dumps({"seeding": seeding, "results": results, "targets": {"p95_ms": TARGET_P95_MS,
                                                                          "queries": TARGET_QUERIES}}))


if __name__ == "__main__":
    main()
