"""Benchmark the list pages' "all N matching" bulk actions at 1,000,000 contacts: in the request
(as before) and as a background job (now).

    DATABASE_URL=postgres://USER@HOST:PORT/NAME PYTHONPATH=. .venv/bin/python bench/bulk_jobs.py [--runs 2]

Needs the 1,000,000-contact database ``<NAME>_1000000`` seeded by ``bench/pages.py --scales 1000000
--seed-only`` (two teams of 1,000,000 contacts, 300,000 leads and 10,000,000 timeline events each).
It is never written: every run works on a fresh copy (``CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY``), dropped
at the end. In a child process (``DEBUG`` off; Django's test client, no network; the signed-in
user of the first team) each run measures, per action (make leads and delete on the contacts
list, set status on the leads list), two selections of about the same size — every row whose
search text contains one word of the seeded company names (~8 % of the contacts), the request
path first in odd runs and the job first in even ones:

- **in the request**: the list's POST with the threshold out of reach, i.e. what a user waited
  for before (the set-based services over the whole selection inside the request);
- **as a job**: the list's POST with the default threshold (1,000): the request's own time (the
  capped count, the BulkJob row, the task published to a filesystem broker in a temporary
  folder), then the job's run through ``bulk_job_run`` (the Celery task's body) in-process, batches
  of ``OUTREACH_BULK_JOB_BATCH``, and the p50 of the progress fragment the page polls.

The request path is the ceiling the job is compared with: the same services doing the same work
with no job around them. Prints a table and JSON on the last line.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seeded import bench_info, django_on, measure_on_seeded_copy  # noqa: E402

SCALE = 1_000_000
# Two words per action and run (search terms): the sync selection, then the job's.
WORDS = ["Acme", "Blue", "North", "Quantum", "Delta", "Apex", "Vertex", "Nimbus", "Orbit", "Pine", "Summit", "Atlas",
         "Nova", "Crest", "Harbor", "Iron", "Lumen", "Maple"]
ACTIONS = [  # (name, list URL name, POST fields)
    ("make leads", "contact_list", {"action": "make_leads"}),
    ("set lead status", "lead_list", {"action": "set_status", "value": "interested"}),
    ("delete contacts", "contact_list", {"action": "delete", "confirmed": "yes"}),
]


def measure(url: str, runs: int) -> dict:
    """Run every action ``runs`` times in the request and as a job; returns the figures."""
    django_on(url)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from outreach import selectors
    from outreach.models import BulkJob, Team
    from outreach.services.bulk_jobs import bulk_job_run

    info = bench_info()
    team = Team.objects.get(pk=info["teams"][0]["team_id"])
    client = Client()
    client.force_login(get_user_model().objects.get(pk=info["user_id"]))
    threshold = settings.OUTREACH_BULK_JOB_THRESHOLD
    words = iter(WORDS)
    out = []
    for run in range(runs):
        for name, list_name, fields in ACTIONS:
            row = {"run": run + 1, "action": name, "first": "request" if run % 2 == 0 else "job"}
            # Alternate which path goes first: the second one works on tables holding the first one's
            # dead rows (deleted contacts' cascades, updated leads) until autovacuum runs.
            for path in (("request", "job") if run % 2 == 0 else ("job", "request")):
                word = next(words)
                select = selectors.lead_list if list_name == "lead_list" else selectors.contact_list
                matches = select(team=team, query=selectors.ListQuery(q=word))[0].count()
                settings.OUTREACH_BULK_JOB_THRESHOLD = 10**12 if path == "request" else threshold
                target = f"{reverse(list_name)}?q={word}"
                t = time.perf_counter()
                response = client.post(target, {**fields, "all": "1"})
                request_s = time.perf_counter() - t
                assert response.status_code == 302, (name, path, response.status_code)
                row[path] = {"word": word, "matches": matches, "request_s": round(request_s, 3)}
                if path == "job":
                    job = BulkJob.objects.filter(team=team).order_by("-pk").first()
                    assert response["Location"] == reverse("bulk_job_detail", args=[job.pk]), response["Location"]
                    t = time.perf_counter()
                    job = bulk_job_run(bulk_job_id=job.pk)
                    run_s = time.perf_counter() - t
                    assert job.status == "done", (job.status, job.message)
                    polls = []
                    for _ in range(20):
                        t = time.perf_counter()
                        assert client.get(reverse("bulk_job_progress", args=[job.pk])).status_code == 200
                        polls.append((time.perf_counter() - t) * 1000)
                    row["job"].update({"run_s": round(run_s, 2), "rows_per_s": round(job.done / run_s),
                                       "done": job.done, "changed": job.changed, "message": job.message,
                                       "poll_p50_ms": round(statistics.median(polls), 1)})
            row["job_vs_request"] = round(row["job"]["run_s"] / row["request"]["request_s"] * 100
                                          * row["request"]["matches"] / max(row["job"]["matches"], 1))
            out.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return {"rows": out, "batch": settings.OUTREACH_BULK_JOB_BATCH, "threshold": threshold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--scale", type=int, default=SCALE, help="the seeded scale to copy (its searches must match more rows than OUTREACH_BULK_JOB_THRESHOLD; 10000 does not)")
    parser.add_argument("--measure-url", help=argparse.SUPPRESS)  # internal: in a child process
    args = parser.parse_args()
    if args.measure_url:
        print(json.dumps(measure(args.measure_url, args.runs)))
        return
    load = open("/proc/loadavg").read().split()[:3]
    result, copy_s = measure_on_seeded_copy(__file__, scale=args.scale, suffix="bulk", runs=args.runs)
    print(f"copied the seeded {args.scale:,} database in {copy_s:.0f} s; load {load}", flush=True)
    result["load_end"] = open("/proc/loadavg").read().split()[:3]
    print(f"\n{args.scale:,} contacts per team (two teams); Django test client; batches of {result['batch']}, "
          f"threshold {result['threshold']}")
    print(f"{'run':>3} {'first':>7} {'action':16} {'in the request: matches, s':>28} {'as a job: matches, request ms':>31} "
          f"{'job run s (rows/s)':>20} {'job / request':>14} {'poll p50 ms':>12}")
    for row in result["rows"]:
        r, j = row["request"], row["job"]
        print(f"{row['run']:>3} {row['first']:>7} {row['action']:16} {r['matches']:>18,} {r['request_s']:>9.2f} {j['matches']:>19,} "
              f"{j['request_s'] * 1000:>11.0f} {j['run_s']:>11.2f} ({j['rows_per_s']:>6,}) {row['job_vs_request']:>12} % "
              f"{j['poll_p50_ms']:>12}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
