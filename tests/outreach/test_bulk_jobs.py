"""Bulk jobs: "all N matching" bulk actions above the threshold run as a BulkJob in the Celery
task (called here through the task's own function, as the import tests do), batch by batch by
primary key: every row once, a crashed run resumed without duplicates, cancel between batches,
other teams untouched, team-scoped pages."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach import tasks
from outreach.models import BulkJob, Campaign, Contact, Enrolment, Lead, TimelineEvent
from outreach.selectors import ListQuery
from outreach.services import bulk_jobs
from outreach.services.bulk_jobs import bulk_job_cancel, bulk_job_create, bulk_jobs_sweep
from tests.factories import make_contact, make_lead, make_mailbox, make_team_user

pytestmark = pytest.mark.django_db

LEAD_CREATED = TimelineEvent.Kind.LEAD_CREATED


class _Published(list):
    """Stands in for the broker: records the job ids ``bulk_job_publish`` sends."""

    def apply_async(self, args, **kwargs):
        self.append(args[0])
        return type("Result", (), {"id": f"task-{len(self)}"})()


@pytest.fixture
def published(monkeypatch):
    sent = _Published()
    monkeypatch.setattr(tasks.bulk_job_run_task, "apply_async", sent.apply_async)
    return sent


@pytest.fixture
def small(settings):
    """Threshold 10 rows, batches of 5."""
    settings.OUTREACH_BULK_JOB_THRESHOLD = 10
    settings.OUTREACH_BULK_JOB_BATCH = 5
    return settings


def _contacts(team, n: int, prefix: str = "c", **fields) -> list[Contact]:
    return Contact.objects.bulk_create([Contact(team=team, email=f"{prefix}{i:03d}@example.com", **fields) for i in range(n)])


class Killed(BaseException):
    """A process killed mid-batch: nothing below catches it, the batch's transaction rolls back."""


def _run(job: BulkJob) -> BulkJob:
    assert tasks.bulk_job_run_task.run(job.pk) in ("done", "cancelled", "failed", "running")
    return BulkJob.objects.get(pk=job.pk)


# --- The threshold switch ---------------------------------------------------------------------------


def test_all_matching_above_the_threshold_becomes_a_job_and_the_user_goes_to_its_page(
        user_client, team, team_user, small, published, django_capture_on_commit_callbacks):
    _contacts(team, 11, company="Acme")
    url = reverse("contact_list") + "?company=Acme"
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(url, {"action": "make_leads", "all": "1"})
    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("bulk_job_detail", args=[job.pk])
    assert (job.team, job.kind, job.status, job.actor) == (team, "make_leads", "queued", team_user[1])
    assert job.query == {"q": "", "filters": {"lead": "", "company": "Acme"}, "order": ""}
    assert published == [job.pk] and BulkJob.objects.get().task_id == "task-1"
    assert Lead.objects.count() == 0  # nothing was written in the request


def test_at_the_threshold_and_for_checked_ids_the_action_stays_in_the_request(user_client, team, small, published):
    contacts = _contacts(team, 10, company="Acme")
    url = reverse("contact_list") + "?company=Acme"
    response = user_client.post(url, {"action": "make_leads", "all": "1"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Made 10 leads."]
    more = _contacts(team, 15, prefix="d")
    ids = [str(c.pk) for c in more]  # more checked ids than the threshold: still the request
    user_client.post(reverse("contact_list"), {"action": "make_leads", "ids": ids})
    assert not BulkJob.objects.exists() and published == []
    assert Lead.objects.filter(team=team).count() == len(contacts) + len(more)


# --- The run: every row once, in batches --------------------------------------------------------------


def test_the_job_handles_every_matching_row_once_across_batches(team, team_user, small, published, monkeypatch):
    user = team_user[1]
    contacts = _contacts(team, 23, company="Acme")
    for contact in contacts[:2]:
        make_lead(contact)
    _contacts(team, 4, prefix="x", company="Other")  # not matching
    other, _ = make_team_user()
    _contacts(other, 6, prefix="o", company="Acme")  # matching, but another team's
    job = bulk_job_create(team=team, kind="make_leads", query=ListQuery(filters={"company": "Acme"}), actor=user)
    late = make_contact(team, "late@example.com", company="Acme")  # created after the job: not part of it
    batches = []
    real = bulk_jobs.contacts_make_leads
    monkeypatch.setattr(bulk_jobs, "contacts_make_leads", lambda **kw: batches.append(list(kw["selection"].ids)) or real(**kw))
    job = _run(job)
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    handled = [pk for b in batches for pk in b]
    assert handled == sorted(handled) and sorted(handled) == sorted(c.pk for c in contacts)
    assert (job.status, job.total, job.done, job.changed) == ("done", 23, 23, 21)
    assert job.message == "Made 21 leads; 2 already were leads."
    assert job.finished_at and not job.claimed_by and job.lease_until is None
    made = Lead.objects.filter(team=team, owner=user)
    assert sorted(made.values_list("contact_id", flat=True)) == sorted(c.pk for c in contacts[2:])
    events = TimelineEvent.objects.filter(kind=LEAD_CREATED, actor=user)
    assert sorted(events.values_list("contact_id", flat=True)) == sorted(c.pk for c in contacts[2:])
    assert not Lead.objects.filter(contact=late).exists()
    assert not Lead.objects.filter(team=other).exists() and not Lead.objects.filter(contact__company="Other").exists()


def test_thousands_separators_in_the_final_message(team, published):
    job = BulkJob(team=team, kind="make_leads", done=81_722, changed=81_710)
    assert bulk_jobs.KINDS["make_leads"].outcome(job, None) == "Made 81,710 leads; 12 already were leads."


def test_in_request_counts_have_thousands_separators(user_client, team, settings, published):
    settings.OUTREACH_BULK_JOB_THRESHOLD = 5_000  # 1,234 rows stay in the request
    _contacts(team, 1_234, company="Acme")
    url = reverse("contact_list") + "?company=Acme"
    confirm = user_client.post(url, {"action": "delete", "all": "1"}).content.decode()
    assert "all 1,234 contacts matching" in confirm and "Yes, delete 1,234 contacts" in confirm
    response = user_client.post(url, {"action": "make_leads", "all": "1"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Made 1,234 leads."]
    response = user_client.post(url, {"action": "delete", "all": "1", "confirmed": "yes"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Deleted 1,234 contacts."]
    assert not BulkJob.objects.exists() and not Contact.objects.filter(team=team).exists()


def test_a_run_killed_mid_way_is_resumed_by_the_sweep_without_duplicates(team, team_user, small, published, monkeypatch):
    user = team_user[1]
    contacts = _contacts(team, 22)
    job = bulk_job_create(team=team, kind="make_leads", query=ListQuery(), actor=user)
    real, calls = bulk_jobs.contacts_make_leads, []

    def dies_in_the_third_batch(**kw):
        calls.append(1)
        result = real(**kw)  # the third batch's leads are written…
        if len(calls) == 3:
            raise Killed()  # …and the process dies before its commit
        return result

    monkeypatch.setattr(bulk_jobs, "contacts_make_leads", dies_in_the_third_batch)
    with pytest.raises(Killed):
        tasks.bulk_job_run_task.run(job.pk)
    monkeypatch.setattr(bulk_jobs, "contacts_make_leads", real)
    job.refresh_from_db()
    assert (job.status, job.done, job.cursor) == ("running", 10, contacts[9].pk)  # two batches committed
    assert Lead.objects.count() == 10 and TimelineEvent.objects.filter(kind=LEAD_CREATED).count() == 10

    # A duplicate of the task while the dead run's lease lasts: the claim is held, nothing happens.
    assert _run(job).done == 10 and Lead.objects.count() == 10
    assert bulk_jobs_sweep() == 0  # the lease has not expired yet
    assert bulk_jobs_sweep(now=job.lease_until + timedelta(seconds=1)) == 1 and published == [job.pk]
    BulkJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    job = _run(job)
    assert (job.status, job.total, job.done, job.changed) == ("done", 22, 22, 22)
    assert job.message == "Made 22 leads."
    assert Lead.objects.count() == 22
    events = list(TimelineEvent.objects.filter(kind=LEAD_CREATED).values_list("contact_id", flat=True))
    assert sorted(events) == sorted(c.pk for c in contacts)  # one timeline row per contact, none twice


@pytest.mark.parametrize("kind", ["make_leads", "set_status", "delete"])
def test_a_batch_done_twice_writes_nothing_twice(team, team_user, small, published, kind):
    """Should a batch run again (its progress lost), the services skip what is already done."""
    user = team_user[1]
    contacts = _contacts(team, 12)
    if kind == "set_status":
        Lead.objects.bulk_create([Lead(team=team, contact=c) for c in contacts])
    job = bulk_job_create(team=team, kind=kind, query=ListQuery(), value="won" if kind == "set_status" else "", actor=user)
    job = _run(job)
    assert (job.status, job.done, job.changed) == ("done", 12, 12)
    events = TimelineEvent.objects.count()
    # Rewind: the job forgets its progress and runs every batch again.
    BulkJob.objects.filter(pk=job.pk).update(status="running", cursor=0, done=0, changed=0, total=None, lease_until=None)
    job = _run(job)
    assert job.status == "done" and job.changed == 0
    assert TimelineEvent.objects.count() == events
    if kind == "make_leads":
        assert Lead.objects.count() == 12 and job.message == "Made 0 leads; 12 already were leads."
    elif kind == "set_status":
        assert set(Lead.objects.values_list("status", flat=True)) == {"won"}
        assert job.message == "Set 0 leads to “Won”; 12 already had that status."
    else:
        assert not Contact.objects.filter(team=team).exists() and job.done == 0 and job.message == "Deleted 0 contacts."


# --- Cancel ---------------------------------------------------------------------------------------


def test_cancel_stops_the_run_between_batches(team, team_user, small, published, monkeypatch):
    user = team_user[1]
    _contacts(team, 25)
    job = bulk_job_create(team=team, kind="make_leads", query=ListQuery(), actor=user)
    real, calls = bulk_jobs.contacts_make_leads, []

    def cancelled_during_the_second_batch(**kw):
        calls.append(1)
        if len(calls) == 2:
            bulk_job_cancel(job=job)  # the user clicks "Cancel" while batch 2 is being written
        return real(**kw)

    monkeypatch.setattr(bulk_jobs, "contacts_make_leads", cancelled_during_the_second_batch)
    job = _run(job)
    assert len(calls) == 2  # the batch in progress finished; no third one started
    assert (job.status, job.done, job.changed, job.total) == ("cancelled", 10, 10, 25)
    assert job.message == "Cancelled after 10 of 25: made 10 leads."
    assert Lead.objects.count() == 10


def test_a_queued_job_cancelled_never_runs(team, small, published):
    _contacts(team, 12)
    job = bulk_job_cancel(job=bulk_job_create(team=team, kind="delete", query=ListQuery()))
    assert job.status == "cancelled" and job.message == "Cancelled before it started; nothing was changed."
    assert _run(job).status == "cancelled" and Contact.objects.count() == 12
    assert bulk_jobs_sweep(now=timezone.now() + timedelta(days=1)) == 0


# --- The other kinds through the list pages -----------------------------------------------------------


def test_delete_all_matching_as_a_job_leaves_other_rows_and_teams_alone(user_client, team, small, published):
    gone = _contacts(team, 14, prefix="gone", company="Gone")
    keep = _contacts(team, 3, prefix="keep", company="Keep")
    other, _ = make_team_user()
    theirs = _contacts(other, 4, prefix="gone", company="Gone")  # same addresses and company, other team
    url = reverse("contact_list") + "?company=Gone"
    confirm = user_client.post(url, {"action": "delete", "all": "1"})
    assert "all 14 contacts matching" in confirm.content.decode() and not BulkJob.objects.exists()
    response = user_client.post(url, {"action": "delete", "all": "1", "confirmed": "yes"})
    job = BulkJob.objects.get()
    assert response["Location"] == reverse("bulk_job_detail", args=[job.pk]) and Contact.objects.count() == 21
    job = _run(job)
    assert (job.status, job.changed, job.message) == ("done", 14, "Deleted 14 contacts.")
    assert sorted(Contact.objects.values_list("pk", flat=True)) == sorted(c.pk for c in keep + theirs)
    assert not Contact.objects.filter(pk__in=[c.pk for c in gone]).exists()


def test_set_status_all_matching_as_a_job(user_client, team, small, published):
    contacts = _contacts(team, 13)
    Lead.objects.bulk_create([Lead(team=team, contact=c, status="new") for c in contacts[:12]]
                             + [Lead(team=team, contact=contacts[12], status="won")])
    other, _ = make_team_user()
    Lead.objects.bulk_create([Lead(team=other, contact=c) for c in _contacts(other, 3, prefix="o")])
    response = user_client.post(reverse("lead_list") + "?status=new", {"action": "set_status", "all": "1", "value": "contacted"})
    job = BulkJob.objects.get()
    assert response["Location"] == reverse("bulk_job_detail", args=[job.pk]) and job.value == "contacted"
    job = _run(job)
    assert job.message == "Set 12 leads to “Contacted”."
    assert sorted(Lead.objects.filter(team=team).values_list("status", flat=True)) == ["contacted"] * 12 + ["won"]
    assert set(Lead.objects.filter(team=other).values_list("status", flat=True)) == {"new"}
    assert TimelineEvent.objects.filter(kind=TimelineEvent.Kind.LEAD_STATUS).count() == 12


def test_enrol_all_matching_as_a_job(user_client, team, small, published):
    mailbox = make_mailbox(team)
    campaign = Campaign.objects.create(team=team, name="Launch")
    campaign.mailboxes.add(mailbox)
    _contacts(team, 12, company="Acme")
    url = reverse("contact_list") + "?company=Acme"
    user_client.post(url, {"action": "enrol", "all": "1", "value": str(campaign.pk), "confirmed": "yes"})
    job = _run(BulkJob.objects.get())
    assert (job.kind, job.status, job.changed) == ("enrol", "done", 12)
    assert job.message == "Launch: Enrolled 12 contacts."
    assert Enrolment.objects.filter(campaign=campaign).count() == 12
    # A second job over the same contacts counts them as already enrolled.
    again = _run(bulk_job_create(team=team, kind="enrol", query=ListQuery(filters={"company": "Acme"}), value=str(campaign.pk)))
    assert again.message == "Launch: Enrolled 0 contacts; 12 already in the campaign."


def test_a_job_whose_campaign_was_stopped_fails_with_the_reason(team, small, published):
    campaign = Campaign.objects.create(team=team, name="Launch")
    _contacts(team, 12)
    job = bulk_job_create(team=team, kind="enrol", query=ListQuery(), value=str(campaign.pk))
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.STOPPED)
    job = _run(job)
    assert job.status == "failed" and "can no longer be enrolled" in job.message
    assert not Enrolment.objects.exists()


# --- Sweep --------------------------------------------------------------------------------------------


def test_the_sweep_publishes_lost_queued_jobs_and_expired_leases_only(team, small, published):
    now = timezone.now()
    fresh = BulkJob.objects.create(team=team, kind="delete")
    lost = BulkJob.objects.create(team=team, kind="delete")
    dead = BulkJob.objects.create(team=team, kind="delete", status="running", lease_until=now - timedelta(seconds=1))
    alive = BulkJob.objects.create(team=team, kind="delete", status="running", lease_until=now + timedelta(minutes=5))
    BulkJob.objects.create(team=team, kind="delete", status="done")
    BulkJob.objects.filter(pk=lost.pk).update(updated_at=now - timedelta(hours=1))
    assert bulk_jobs_sweep(now=now) == 2
    assert sorted(published) == sorted([lost.pk, dead.pk])
    assert fresh.pk not in published and alive.pk not in published
    assert bulk_jobs_sweep(now=now) == 1  # the lost one was touched: it waits a lease again


# --- Pages ----------------------------------------------------------------------------------------------


def test_job_pages_show_progress_and_are_team_scoped(client, user_client, team, small, published):
    _contacts(team, 12)
    job = bulk_job_create(team=team, kind="make_leads", query=ListQuery())
    page = user_client.get(reverse("bulk_job_detail", args=[job.pk])).content.decode()
    assert f'hx-get="{reverse("bulk_job_progress", args=[job.pk])}"' in page and 'hx-trigger="every 1s"' in page
    assert "Waiting for a worker" in page and reverse("bulk_job_cancel", args=[job.pk]) in page
    _run(job)
    fragment = user_client.get(reverse("bulk_job_progress", args=[job.pk])).content.decode()
    assert "hx-get" not in fragment  # finished: the polling stops
    assert "Made 12 leads." in fragment and re.search(r'<progress[^>]*max="12"[^>]*value="12"', fragment)

    other, other_user = make_team_user()
    theirs = bulk_job_create(team=other, kind="delete", query=ListQuery())
    for name in ("bulk_job_detail", "bulk_job_progress", "bulk_job_cancel"):
        assert user_client.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert user_client.post(reverse("bulk_job_cancel", args=[theirs.pk])).status_code == 404
    assert BulkJob.objects.get(pk=theirs.pk).status == "queued"
    client.logout()
    anonymous = client.get(reverse("bulk_job_detail", args=[job.pk]))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))


def test_cancel_asks_first_then_cancels(user_client, team, small, published):
    _contacts(team, 12)
    job = bulk_job_create(team=team, kind="delete", query=ListQuery())
    confirm = user_client.get(reverse("bulk_job_cancel", args=[job.pk])).content.decode()
    assert "Yes, cancel the job" in confirm and BulkJob.objects.get(pk=job.pk).status == "queued"
    response = user_client.post(reverse("bulk_job_cancel", args=[job.pk]), follow=True)
    assert BulkJob.objects.get(pk=job.pk).status == "cancelled"
    assert "nothing was changed" in response.content.decode()
    assert _run(job).status == "cancelled" and Contact.objects.count() == 12


def test_the_jobs_list_shows_the_teams_jobs_and_cancels_them(user_client, team, published):
    mine = BulkJob.objects.create(team=team, kind="make_leads", status="done", total=81_722, done=81_722,
                                  changed=81_710, message="Made 81,710 leads; 12 already were leads.")
    queued = BulkJob.objects.create(team=team, kind="delete")
    other, _ = make_team_user()
    theirs = BulkJob.objects.create(team=other, kind="delete", message="their-secret-job")
    page = user_client.get(reverse("bulk_job_list")).content.decode()
    assert "Made 81,710 leads; 12 already were leads." in page and "81,722 / 81,722" in page
    assert reverse("bulk_job_detail", args=[mine.pk]) in page and reverse("bulk_job_detail", args=[queued.pk]) in page
    assert "their-secret-job" not in page and reverse("bulk_job_detail", args=[theirs.pk]) not in page
    assert f'href="{reverse("bulk_job_list")}"' in user_client.get(reverse("contact_list")).content.decode()
    assert f'href="{reverse("bulk_job_list")}"' in user_client.get(reverse("lead_list")).content.decode()
    done = user_client.post(reverse("bulk_job_list"), {"action": "cancel", "ids": [queued.pk, theirs.pk], "confirmed": "yes"},
                            follow=True)
    assert [str(m) for m in done.context["messages"]] == ["Cancel requested for 1 job."]
    assert BulkJob.objects.get(pk=queued.pk).status == "cancelled" and BulkJob.objects.get(pk=theirs.pk).status == "queued"


def test_a_run_stopped_by_the_task_time_limit_is_resumed(team, small, published, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    _contacts(team, 12)
    job = bulk_job_create(team=team, kind="make_leads", query=ListQuery())
    real, calls = bulk_jobs.contacts_make_leads, []

    def time_is_up_in_the_second_batch(**kw):
        calls.append(1)
        if len(calls) == 2:
            raise SoftTimeLimitExceeded()
        return real(**kw)

    monkeypatch.setattr(bulk_jobs, "contacts_make_leads", time_is_up_in_the_second_batch)
    job = _run(job)
    assert (job.status, job.done, job.claimed_by) == ("running", 5, "") and job.lease_until <= timezone.now()
    assert bulk_jobs_sweep() == 1 and published == [job.pk]  # released: the next sweep publishes it
    job = _run(job)
    assert (job.status, job.done, job.changed) == ("done", 12, 12) and Lead.objects.count() == 12


# --- A campaign's enrolment list: "Remove from campaign" ----------------------------------------------


def _enrolment_world(team):
    """Campaigns Launch and Later of ``team``, each with 14 "gone…" and 3 "keep…" contacts enrolled."""
    mailbox = make_mailbox(team)
    gone, keep = _contacts(team, 14, prefix="gone"), _contacts(team, 3, prefix="keep")
    campaigns = {}
    for name in ("Launch", "Later"):
        campaign = campaigns[name] = Campaign.objects.create(team=team, name=name)
        campaign.mailboxes.add(mailbox)
        Enrolment.objects.bulk_create([Enrolment(team=team, campaign=campaign, contact=c, mailbox=mailbox) for c in gone + keep])
    return campaigns, gone


def _job_rows(job: BulkJob) -> set[int]:
    kind = bulk_jobs.KINDS[job.kind]
    return set(kind.rows(team=job.team, selection=bulk_jobs._selection(job)).filter(pk__lte=job.max_pk)
               .values_list("pk", flat=True))


def test_remove_all_matching_from_a_campaign_list_becomes_a_job_over_the_lists_rows(user_client, team, small, published):
    from outreach.campaigns.selectors import enrolment_list

    campaigns, gone = _enrolment_world(team)
    launch = campaigns["Launch"]
    other, _ = make_team_user()
    their_campaigns, _ = _enrolment_world(other)  # same addresses and campaign names, other team
    Enrolment.objects.filter(campaign=launch, contact=gone[0]).update(status="stopped", reason="replied")
    url = reverse("campaign_enrolments", args=[launch.pk]) + "?q=gone&status=active"
    listed = set(enrolment_list(campaign=launch, query=ListQuery(q="gone", filters={"status": "active", "reason": ""}))[0]
                 .values_list("pk", flat=True))
    page = user_client.get(url)
    assert {e.pk for e in page.context["object_list"]} == listed  # the page lists those rows
    assert listed == set(Enrolment.objects.filter(campaign=launch, contact__in=gone[1:]).values_list("pk", flat=True))
    confirm = user_client.post(url, {"action": "remove", "all": "1"}).content.decode()
    assert "all 13 enrolments matching" in confirm and not BulkJob.objects.exists()  # the confirmation is kept
    response = user_client.post(url, {"action": "remove", "all": "1", "confirmed": "yes"})
    job = BulkJob.objects.get()
    assert response["Location"] == reverse("bulk_job_detail", args=[job.pk])
    assert (job.kind, job.team, job.query["filters"]) == ("remove_enrolments", team,
                                                          {"status": "active", "reason": "", "campaign": str(launch.pk)})
    assert not Enrolment.objects.filter(reason="removed").exists()  # nothing removed in the request
    assert _job_rows(job) == listed
    detail = user_client.get(reverse("bulk_job_detail", args=[job.pk])).content.decode()
    assert f'href="{reverse("campaign_enrolments", args=[launch.pk])}?q=gone&amp;status=active"' in detail
    job = _run(job)
    assert (job.status, job.done, job.changed) == ("done", 13, 13)
    assert job.message == "Removed 13 enrolments from their campaign."
    assert set(Enrolment.objects.filter(reason="removed").values_list("pk", flat=True)) == listed
    assert Enrolment.objects.filter(status="active").count() == 17 + 17 + 17 * 2 - 14  # Later, keep…, the other team
    assert not Enrolment.objects.filter(campaign__in=their_campaigns.values()).exclude(status="active").exists()


def test_remove_at_the_threshold_and_for_checked_ids_stays_in_the_request(user_client, team, small, published):
    campaigns, gone = _enrolment_world(team)
    launch = campaigns["Launch"]
    url = reverse("campaign_enrolments", args=[launch.pk]) + "?q=gone&status=active"  # 10 rows listed
    Enrolment.objects.filter(campaign=launch, contact__in=gone[:4]).update(status="stopped")
    response = user_client.post(url, {"action": "remove", "all": "1", "confirmed": "yes"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Removed 10 enrolments from their campaign."]
    ids = [str(pk) for pk in Enrolment.objects.filter(campaign=campaigns["Later"]).values_list("pk", flat=True)]
    later = reverse("campaign_enrolments", args=[campaigns["Later"].pk])
    response = user_client.post(later, {"action": "remove", "ids": ids, "confirmed": "yes"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Removed 17 enrolments from their campaign."]
    assert not BulkJob.objects.exists() and published == []
    assert Enrolment.objects.filter(reason="removed").count() == 10 + 17


def test_a_remove_batch_done_twice_removes_nothing_twice(team, team_user, small, published):
    campaigns, _gone = _enrolment_world(team)
    launch = campaigns["Launch"]
    other, _ = make_team_user()
    their_campaigns, _ = _enrolment_world(other)
    job = bulk_job_create(team=team, kind="remove_enrolments", query=ListQuery(filters={"campaign": str(launch.pk)}),
                          actor=team_user[1])
    job = _run(job)
    assert (job.status, job.done, job.changed) == ("done", 17, 17)
    stopped = dict(Enrolment.objects.filter(reason="removed").values_list("pk", "finished_at"))
    events = TimelineEvent.objects.count()
    assert len(stopped) == 17 and set(Enrolment.objects.filter(pk__in=stopped).values_list("campaign", flat=True)) == {launch.pk}
    BulkJob.objects.filter(pk=job.pk).update(status="running", cursor=0, done=0, changed=0, total=None, lease_until=None)
    job = _run(job)
    assert (job.status, job.done, job.changed) == ("done", 17, 0)
    assert job.message == "Removed 0 enrolments from their campaign; 17 were no longer active."
    assert dict(Enrolment.objects.filter(reason="removed").values_list("pk", "finished_at")) == stopped
    assert TimelineEvent.objects.count() == events
    # Another team's campaign id selects nothing.
    theirs = _run(bulk_job_create(team=team, kind="remove_enrolments",
                                  query=ListQuery(filters={"campaign": str(their_campaigns["Launch"].pk)})))
    assert (theirs.status, theirs.done) == ("done", 0)
    assert not Enrolment.objects.filter(team=other).exclude(status="active").exists()
