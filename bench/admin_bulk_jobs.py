"""Benchmark Django admin's "select all N" actions at 1,000,000 contacts: what the request costs
now that they become bulk jobs (``outreach/admin_bulk.py``), and the delete job's run.

    DATABASE_URL=postgres://USER@HOST:PORT/NAME PYTHONPATH=. .venv/bin/python bench/admin_bulk_jobs.py [--runs 2]

Needs the database ``<NAME>_1000000`` seeded by ``bench/pages.py --scales 1000000 --seed-only``
(two teams of 1,000,000 contacts, 300,000 leads, 10,000,000 timeline events each); every run works
on a fresh copy (``CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY``), dropped at the end. In a child
process (``DEBUG`` off, Django's test client, the seeded superuser, so "select all" spans both
teams and queues one job per team) each run takes a word found in ~8 % of the company names and
measures, on the changelist searched for it:

- **delete contacts**: the first POST (``delete_selected``, ``select_across=1``: the bulk-delete
  confirmation page, which counts the selection), the confirmed POST (the jobs queued), then the
  first team's job run through ``bulk_job_run`` (the Celery task's body) in-process;
- **delete leads** (changelist filtered ``status__exact=new``): the confirmation page and the
  confirmed POST;
- **enrol in a campaign** (the delete-leads word, the first team's campaign): the campaign choice
  page (it counts the selection) and the POST that queues the job.

Before this change these ran inside the request over the whole selection (Django's delete
confirmation collects every related row of every selected contact). Prints a table and JSON on
the last line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seeded import bench_info, django_on, measure_on_seeded_copy  # noqa: E402

SCALE = 1_000_000
WORDS = ["Acme", "Blue", "North", "Quantum", "Delta", "Apex", "Vertex", "Nimbus"]


def measure(url: str, runs: int) -> dict:
    """Every admin action ``runs`` times; returns the figures."""
    django_on(url)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from outreach.models import BulkJob, Campaign, Contact, Lead, Team
    from outreach.services.bulk_jobs import bulk_job_run
    from tests.factories import make_mailbox

    info = bench_info()
    team = Team.objects.get(pk=info["teams"][0]["team_id"])
    campaign = Campaign.objects.create(team=team, name="Bench")
    campaign.mailboxes.add(make_mailbox(team))
    client = Client()
    client.force_login(get_user_model().objects.get(pk=info["user_id"]))

    def post(path: str, params: dict, data: dict) -> tuple[float, object]:
        t = time.perf_counter()
        response = client.post(f"{path}?{urlencode(params)}", data)
        return time.perf_counter() - t, response

    contacts, leads = reverse("admin:outreach_contact_changelist"), reverse("admin:outreach_lead_changelist")
    out, words = [], iter(WORDS)
    for run in range(runs):
        word = next(words)
        row = {"run": run + 1, "word": word}
        matched = Contact.objects.filter(company__icontains=word)
        row["contacts"] = matched.count()
        some = [str(pk) for pk in matched.values_list("pk", flat=True)[:3]]
        base = {"action": "delete_selected", "select_across": "1", "_selected_action": some}
        confirm_s, page = post(contacts, {"q": word}, {**base, "index": "0"})
        assert page.status_code == 200 and b'id="bulk-delete-what"' in page.content, page.status_code
        before = BulkJob.objects.count()
        queue_s, response = post(contacts, {"q": word}, {**base, "post": "yes"})
        assert response.status_code == 302
        jobs = list(BulkJob.objects.order_by("pk")[before:])
        assert len(jobs) == 2, jobs
        t = time.perf_counter()
        job = bulk_job_run(bulk_job_id=jobs[0].pk)
        run_s = time.perf_counter() - t
        assert job.status == "done", job.message
        row["delete contacts"] = {"confirm_ms": round(confirm_s * 1000), "queue_ms": round(queue_s * 1000),
                                  "job_rows": job.done, "job_run_s": round(run_s, 2), "message": job.message}

        word = next(words)
        lead_ids = [str(pk) for pk in Lead.objects.filter(status="new", contact__company__icontains=word)
                    .values_list("pk", flat=True)[:3]]
        row["leads"] = Lead.objects.filter(status="new", contact__company__icontains=word).count()
        base = {"action": "delete_selected", "select_across": "1", "_selected_action": lead_ids}
        params = {"q": word, "status__exact": "new"}
        confirm_s, page = post(leads, params, {**base, "index": "0"})
        assert page.status_code == 200 and b'id="bulk-delete-what"' in page.content
        queue_s, response = post(leads, params, {**base, "post": "yes"})
        assert response.status_code == 302
        row["delete leads"] = {"confirm_ms": round(confirm_s * 1000), "queue_ms": round(queue_s * 1000)}

        enrol = {"action": "enrol_contacts_action", "select_across": "1", "_selected_action": some}
        enrol["_selected_action"] = [str(pk) for pk in Contact.objects.filter(team=team, company__icontains=word)
                                     .values_list("pk", flat=True)[:3]]
        choose_s, page = post(contacts, {"q": word}, {**enrol, "index": "0"})
        assert page.status_code == 200 and b"Enrol" in page.content
        before = BulkJob.objects.count()
        queue_s, response = post(contacts, {"q": word}, {**enrol, "campaign": str(campaign.pk)})
        assert response.status_code == 302 and BulkJob.objects.count() == before + 1
        row["enrol"] = {"choose_ms": round(choose_s * 1000), "queue_ms": round(queue_s * 1000)}
        out.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return {"rows": out, "batch": settings.OUTREACH_BULK_JOB_BATCH, "threshold": settings.OUTREACH_BULK_JOB_THRESHOLD}


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
    result, _ = measure_on_seeded_copy(__file__, scale=args.scale, suffix="admin", runs=args.runs)
    result["load"] = [load, open("/proc/loadavg").read().split()[:3]]
    print(f"\n{args.scale:,} contacts per team (two teams); superuser; batches of {result['batch']}, "
          f"threshold {result['threshold']}; load {result['load']}")
    for row in result["rows"]:
        d, l, e = row["delete contacts"], row["delete leads"], row["enrol"]
        print(f"run {row['run']} “{row['word']}” {row['contacts']:,} contacts (company, both teams): delete confirm {d['confirm_ms']} ms, "
              f"queue {d['queue_ms']} ms, first team's job {d['job_rows']:,} rows in {d['job_run_s']} s | "
              f"{row['leads']:,} new leads: delete confirm {l['confirm_ms']} ms, queue {l['queue_ms']} ms | "
              f"enrol choose {e['choose_ms']} ms, queue {e['queue_ms']} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
