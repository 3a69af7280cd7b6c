"""Bulk jobs with real Celery workers, Redis and PostgreSQL: the list's POST publishes the task after
its commit and the suite's worker runs it; a prefork worker whose pool processes are SIGKILLed mid-job
finishes it through beat's sweep (lost task message, expired leases) with every row handled once."""
from __future__ import annotations

import os
import signal
import time

import pytest
from django.urls import reverse

from outreach.models import BulkJob, Contact, Lead, TimelineEvent
from outreach.selectors import ListQuery
from outreach.services import bulk_jobs
from outreach.services.bulk_jobs import bulk_job_create
from tests.factories import make_team_user
from tests.processes import child_pids, kill_group, prefork_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _contacts(team, n: int, prefix: str, **fields) -> list[Contact]:
    return Contact.objects.bulk_create([Contact(team=team, email=f"{prefix}{i:05d}@example.com", **fields) for i in range(n)])


def test_the_list_post_publishes_the_job_and_the_worker_runs_it(celery_worker_process, client, settings):
    settings.OUTREACH_BULK_JOB_THRESHOLD = 10
    team, user = make_team_user()
    _contacts(team, 40, "w", company="Acme")
    client.force_login(user)
    response = client.post(reverse("contact_list") + "?company=Acme", {"action": "make_leads", "all": "1"})
    job = BulkJob.objects.get(team=team)
    assert response["Location"] == reverse("bulk_job_detail", args=[job.pk])
    job = celery_worker_process.wait_for(lambda: BulkJob.objects.filter(pk=job.pk, status="done").first(), timeout=60,
                                         message="the bulk job did not finish")
    assert job.task_id and job.message == "Made 40 leads."
    assert Lead.objects.filter(team=team, owner=user).count() == 40
    page = client.get(reverse("bulk_job_progress", args=[job.pk])).content.decode()
    assert "Made 40 leads." in page and "hx-get" not in page


def test_a_job_survives_lost_task_messages_and_killed_workers(celery_worker_env, tmp_path, monkeypatch):
    rows, batch = 3000, 40
    team, user = make_team_user()
    contacts = _contacts(team, rows, "k", company="Acme")
    Lead.objects.bulk_create([Lead(team=team, contact=c) for c in contacts[:7]])
    other, _ = make_team_user()
    _contacts(other, 50, "k", company="Acme")
    # The task message is lost: nothing is published; beat's sweep has to find the queued job.
    monkeypatch.setattr(bulk_jobs, "bulk_job_publish", lambda job_id: None)
    job = bulk_job_create(team=team, kind="make_leads", query=ListQuery(filters={"company": "Acme"}), actor=user)
    worker, beat = prefork_worker(celery_worker_env, tmp_path, name="bulk-crash", redis_db=110,
                                  OUTREACH_BULK_JOB_BATCH=str(batch), OUTREACH_BULK_JOB_LEASE_SECONDS="2",
                                  OUTREACH_BULK_JOB_SWEEP_SECONDS="0.5")
    kills = 0
    try:
        worker.start(timeout=60)
        beat.start()
        for target in (rows // 5, rows // 2):  # kill the pool process running the job twice, mid-way
            worker.wait_for(lambda: BulkJob.objects.get(pk=job.pk).done >= target or None, timeout=90,
                            message=f"the job did not reach {target} rows")
            job.refresh_from_db()
            if job.status != "running":
                break
            for pid in child_pids(worker.process.pid):
                os.kill(pid, signal.SIGKILL)
            kills += 1
            time.sleep(0.2)
        job = worker.wait_for(lambda: BulkJob.objects.filter(pk=job.pk, status="done").first(), timeout=120,
                              message="the bulk job did not finish after the kills")
    finally:
        beat.stop()
        kill_group(worker)
    assert kills == 2, "the job finished before it could be killed twice: make it longer"
    assert (job.total, job.done, job.changed) == (rows, rows, rows - 7)
    assert job.message == f"Made {rows - 7:,} leads; 7 already were leads."
    assert Lead.objects.filter(team=team).count() == rows
    made = list(TimelineEvent.objects.filter(team=team, kind=TimelineEvent.Kind.LEAD_CREATED).values_list("contact_id", flat=True))
    assert len(made) == len(set(made)) == rows - 7  # one timeline row per new lead, none twice
    assert not Lead.objects.filter(team=other).exists()
