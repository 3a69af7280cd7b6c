"""``manage.py campaign_enroll --search/--all`` runs as a BulkJob: batch by batch with a progress
line per batch, crash-safe (a run killed mid-way is resumed by the sweep from its last committed
batch), idempotent when run again, and ``--background`` queues it for the workers."""
from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from outreach.campaigns.models import Campaign, Enrolment
from outreach.models import BulkJob, Contact
from outreach.services import bulk_jobs
from outreach.services.bulk_jobs import bulk_jobs_sweep
from tests.factories import make_mailbox, make_team_user
from tests.outreach.test_bulk_jobs import Killed, _run, published  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    team, _ = make_team_user("Acme")
    campaign = Campaign.objects.create(team=team, name="Q1")
    campaign.mailboxes.add(make_mailbox(team))
    contacts = Contact.objects.bulk_create([Contact(team=team, email=f"c{i:02d}@initech.com") for i in range(12)])
    Contact.objects.bulk_create([Contact(team=team, email=f"x{i}@other.com") for i in range(3)])
    other, _ = make_team_user("Other")
    Contact.objects.bulk_create([Contact(team=other, email=f"c{i:02d}@initech.com") for i in range(4)])
    return team, campaign, contacts


def enrol(*args) -> tuple[dict, list[str]]:
    out, err = StringIO(), StringIO()
    call_command("campaign_enroll", "--team", "Acme", "--campaign", "Q1", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue().splitlines()


def test_search_enrols_batch_by_batch_with_a_progress_line_per_batch_and_a_rerun_enrols_nothing_twice(acme, published):
    team, campaign, contacts = acme
    result, progress = enrol("--search", "initech", "--batch-size", "5")
    job = BulkJob.objects.get()
    assert (job.kind, job.status, job.team, job.total, job.done) == ("enrol", "done", team, 12, 12)
    assert result == {"enrolled": 12, "already": 0, "skipped": {}, "skipped_total": 0, "bulk_job": job.pk,
                      "status": "done", "message": "Q1: Enrolled 12 contacts."}
    assert progress == [f"bulk job {job.pk}: 5 of 12 contacts (41 %), 5 enrolled",
                        f"bulk job {job.pk}: 10 of 12 contacts (83 %), 10 enrolled",
                        f"bulk job {job.pk}: 12 of 12 contacts (100 %), 12 enrolled"]
    assert published == []  # run here, not by a worker
    assert set(Enrolment.objects.values_list("contact_id", flat=True)) == {c.pk for c in contacts}
    again, _ = enrol("--search", "initech", "--batch-size", "5")
    assert (again["enrolled"], again["already"]) == (0, 12) and Enrolment.objects.count() == 12
    everyone, _ = enrol("--all")
    assert (everyone["enrolled"], everyone["already"]) == (3, 12) and Enrolment.objects.count() == 15
    assert Enrolment.objects.filter(contact__team=team).count() == 15  # the other team's look-alikes untouched


def test_a_run_killed_mid_way_keeps_its_batches_and_is_resumed_by_the_sweep_or_a_rerun(acme, published, monkeypatch):
    team, campaign, contacts = acme
    real, calls = bulk_jobs.campaign_enrol, []

    def dies_on_the_second_batch(**kwargs):
        calls.append(kwargs["contact_ids"])
        result = real(**kwargs)  # the second batch's enrolments are written…
        if len(calls) == 2:
            raise Killed()  # …and the process dies before its commit
        return result

    monkeypatch.setattr(bulk_jobs, "campaign_enrol", dies_on_the_second_batch)
    with pytest.raises(Killed):
        enrol("--search", "initech", "--batch-size", "5")
    job = BulkJob.objects.get()
    assert (job.status, job.done, job.cursor) == ("running", 5, calls[0][-1]) and Enrolment.objects.count() == 5
    monkeypatch.setattr(bulk_jobs, "campaign_enrol", real)
    assert bulk_jobs_sweep() == 0  # its lease has not expired yet
    assert bulk_jobs_sweep(now=job.lease_until + timedelta(seconds=1)) == 1 and published == [job.pk]
    BulkJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    job = _run(job)  # what the worker does with the sweep's message
    assert (job.status, job.done, job.changed, job.message) == ("done", 12, 12, "Q1: Enrolled 12 contacts.")
    assert Enrolment.objects.count() == 12 and len(set(Enrolment.objects.values_list("contact_id", flat=True))) == 12
    rerun, _ = enrol("--search", "initech")
    assert (rerun["enrolled"], rerun["already"]) == (0, 12)


def test_ctrl_c_cancels_after_the_committed_batches(acme, published, monkeypatch):
    real, calls = bulk_jobs.campaign_enrol, []

    def interrupted(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt()
        return real(**kwargs)

    monkeypatch.setattr(bulk_jobs, "campaign_enrol", interrupted)
    with pytest.raises(CommandError, match="Interrupted after 5 of 12: q1: Enrolled 5 contacts"):
        enrol("--search", "initech", "--batch-size", "5")
    job = BulkJob.objects.get()
    assert (job.status, job.done, job.claimed_by) == ("cancelled", 5, "") and Enrolment.objects.count() == 5


def test_background_queues_the_job_for_the_workers(acme, published, django_capture_on_commit_callbacks):
    result, progress = enrol("--company", "", "--search", "initech", "--background")
    job = BulkJob.objects.get()
    assert result == {"bulk_job": job.pk, "status": "queued", "progress": f"/bulk-jobs/{job.pk}/"}
    assert published == [job.pk] and progress == [] and not Enrolment.objects.exists()
    assert _run(job).changed == 12


def test_a_campaign_that_cannot_take_enrolments_is_refused_before_any_job(acme):
    _team, campaign, _ = acme
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.STOPPED)
    with pytest.raises(CommandError):
        enrol("--all")
    assert not BulkJob.objects.exists() and not Enrolment.objects.exists()
