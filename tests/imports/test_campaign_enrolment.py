"""Enrolment in a campaign from an import (issue 13): the mapping-step option, the service (through
campaign_enrol and its skip rules, counted on the job), the command, and re-imports that never
enrol a contact twice."""
from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from outreach.campaigns.models import Campaign, Enrolment
from outreach.campaigns.services import VariantData, campaign_create, campaign_step_save, campaign_stop
from outreach.imports.services import (CAMPAIGN_CLOSED, contacts_import, import_job_create, import_job_run,
                                       import_job_start)
from outreach.models import Contact, ImportJob, Suppression, TimelineEvent
from outreach.services.contacts import contact_create
from tests.factories import make_mailbox

from .conftest import assert_conserved
from .fixtures import csv_text

H = ["Email", "First Name", "Company"]
ROWS = [
    ["ann@example.com", "Ann", "Acme"],
    ["bob@example.com", "Bob", ""],         # no company: the step needs {{ company }}
    ["cat@example.com", "Cat", "Initech"],  # suppressed
    ["ANN@example.com", "Ann", "Acme"],     # in-file duplicate: one contact, one enrolment
    ["not an address", "X", "Y"],           # rejected
]


def data(rows=ROWS) -> bytes:
    return csv_text(rows, header=H).encode()


def build(team, name="Q1 outbound", **options) -> Campaign:
    campaign = campaign_create(team=team, data={"name": name, "mailboxes": [make_mailbox(team)], **options})
    campaign_step_save(campaign=campaign, data={"delay_amount": 0, "delay_unit": "days"},
                       variants=[VariantData("A", "Hello {{ first_name }}", "<p>News for {{ company }}</p>")])
    return campaign


@pytest.fixture
def campaign(team):
    return build(team)


@pytest.fixture
def suppressed(team):
    return Suppression.objects.create(team=team, email="cat@example.com", reason=Suppression.Reason.MANUAL)


def run(team, raw=None, **options) -> ImportJob:
    job = contacts_import(team=team, file=io.BytesIO(raw or data()), filename="list.csv", **options)
    assert_conserved(job)
    return job


def enrolment_of(campaign, email):
    return Enrolment.objects.get(campaign=campaign, contact__email=email)


def test_created_contacts_are_enrolled_with_the_campaigns_skip_rules(team, owner, campaign, suppressed):
    job = run(team, campaign=campaign, user=owner)
    assert (job.created_count, job.unchanged_count, job.rejected_count) == (3, 1, 1)
    assert job.enrolment_counts() == {"campaign_id": campaign.pk, "campaign": "Q1 outbound", "enrolled": 1,
                                      "already": 0, "skipped": {"missing_field": 1, "suppressed": 1},
                                      "skipped_total": 2}
    ann = enrolment_of(campaign, "ann@example.com")
    assert ann.status == Enrolment.Status.ACTIVE and ann.next_step == 1 and ann.mailbox is not None
    bob = enrolment_of(campaign, "bob@example.com")
    assert (bob.status, bob.reason, bob.detail) == (Enrolment.Status.SKIPPED, Enrolment.Reason.MISSING_FIELD, "Empty: company")
    assert enrolment_of(campaign, "cat@example.com").reason == Enrolment.Reason.SUPPRESSED
    assert Enrolment.objects.filter(campaign=campaign).count() == 3
    event = TimelineEvent.objects.get(contact=ann.contact, kind=TimelineEvent.Kind.CAMPAIGN_ENROLLED)
    assert event.actor == owner and "Q1 outbound" in event.summary


def test_reimporting_never_duplicates_an_enrolment(team, campaign):
    first = run(team, campaign=campaign)
    assert first.enrolled_count == 2  # ann and cat (no suppression here); bob misses his company
    again = run(team, campaign=campaign, policy="update", enrol_updated=True)
    assert (again.created_count, again.updated_count) == (0, 0)  # nothing changed: nobody to enrol
    assert (again.enrolled_count, again.enrol_already_count, again.enrol_skipped) == (0, 0, {})
    changed = [["ann@example.com", "Annie", "Acme"], ["bob@example.com", "Bob", "Bobco"], ["dan@example.com", "Dan", "D"]]
    third = run(team, data(changed), campaign=campaign, policy="update", enrol_updated=True)
    assert (third.created_count, third.updated_count) == (1, 2)
    # ann is already active; bob, skipped before for his missing company, is re-checked and enrolled now
    assert (third.enrolled_count, third.enrol_already_count) == (2, 1)
    assert Enrolment.objects.filter(campaign=campaign).count() == 4
    assert Enrolment.objects.filter(campaign=campaign, contact__email="ann@example.com").count() == 1
    assert enrolment_of(campaign, "bob@example.com").status == Enrolment.Status.ACTIVE


def test_updated_contacts_are_enrolled_only_when_asked(team, campaign):
    contact_create(team=team, data={"email": "ann@example.com", "first_name": "A", "company": "Acme"})
    job = run(team, data([["ann@example.com", "Ann", "Acme"]]), campaign=campaign, policy="update")
    assert job.updated_count == 1 and job.enrolled_count == 0
    assert not Enrolment.objects.filter(campaign=campaign).exists()
    job = run(team, data([["ann@example.com", "Annie", "Acme"]]), campaign=campaign, policy="update", enrol_updated=True)
    assert job.updated_count == 1 and job.enrolled_count == 1
    assert enrolment_of(campaign, "ann@example.com").status == Enrolment.Status.ACTIVE


def test_without_a_campaign_nothing_is_enrolled(team, campaign):
    job = run(team)
    assert job.enrolment_counts() is None and not Enrolment.objects.exists()


@pytest.mark.parametrize("which", ["other_team", "stopped"])
def test_a_campaign_that_cannot_take_contacts_is_refused_before_anything_is_written(team, other_team, campaign, which):
    target = build(other_team, name="Theirs") if which == "other_team" else campaign_stop(campaign=campaign)
    with pytest.raises(ValidationError, match="draft, active or paused campaign of your team"):
        contacts_import(team=team, file=io.BytesIO(data()), filename="list.csv", campaign=target)
    assert not Contact.objects.exists() and not ImportJob.objects.exists() and not Enrolment.objects.exists()


def test_a_campaign_stopped_before_the_run_skips_everyone_and_imports_anyway(team, campaign, django_capture_on_commit_callbacks,
                                                                               monkeypatch):
    from outreach.imports import tasks

    monkeypatch.setattr(tasks.import_contacts_run, "delay", lambda job_id: type("R", (), {"id": "x"})())
    job = import_job_create(team=team, file=io.BytesIO(data()), filename="list.csv")
    import_job_start(job=job, mapping=job.mapping, policy="skip", campaign=campaign)
    campaign_stop(campaign=campaign)
    job = import_job_run(import_job_id=job.pk)
    assert_conserved(job)
    assert job.created_count == 3 and job.enrolled_count == 0
    assert job.enrol_skipped == {CAMPAIGN_CLOSED: 3}
    assert not Enrolment.objects.exists()


def test_enrolment_commits_with_its_batch(team, campaign, monkeypatch):
    """A batch whose enrolment fails is rolled back whole: no contact without its enrolment."""
    from outreach.imports import services

    def boom(**kwargs):
        raise RuntimeError("enrolment failed")

    monkeypatch.setattr(services, "campaign_enrol", boom)
    job = contacts_import(team=team, file=io.BytesIO(data()), filename="list.csv", campaign=campaign)
    assert job.status == ImportJob.Status.FAILED and "enrolment failed" in job.error_message
    assert (job.created_count, job.rows_done) == (0, 0)
    assert not Contact.objects.exists()


# --- the mapping step -----------------------------------------------------------------------------


@pytest.fixture
def client_owner(client, owner):
    client.force_login(owner)
    return client


def test_mapping_step_offers_the_teams_open_campaigns_and_shows_the_counts(client_owner, team, other_team, campaign,
                                                                           suppressed, django_capture_on_commit_callbacks,
                                                                           monkeypatch):
    from outreach.imports import tasks

    build(other_team, name="Theirs")
    campaign_stop(campaign=build(team, name="Old one"))
    build(team, name="Draft two")
    sent = []
    monkeypatch.setattr(tasks.import_contacts_run, "delay", lambda job_id: sent.append(job_id) or type("R", (), {"id": "x"})())
    job = import_job_create(team=team, file=io.BytesIO(data()), filename="list.csv")
    html = client_owner.get(reverse("import_detail", args=[job.pk])).content.decode()
    assert 'name="campaign"' in html and 'name="enrol_updated"' in html
    assert f'<option value="{campaign.pk}">Q1 outbound (draft)</option>' in html and "Draft two (draft)" in html
    assert "Theirs" not in html and "Old one" not in html

    mapping = {f"col_{i}": target for i, target in enumerate(job.mapping)}
    theirs = Campaign.objects.get(name="Theirs")
    response = client_owner.post(reverse("import_detail", args=[job.pk]),
                                 {**mapping, "policy": "skip", "start": "1", "campaign": theirs.pk})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED

    with django_capture_on_commit_callbacks(execute=True):
        response = client_owner.post(reverse("import_detail", args=[job.pk]),
                                     {**mapping, "policy": "skip", "start": "1", "campaign": campaign.pk,
                                      "enrol_updated": "on"})
    assert response.status_code == 302 and sent == [job.pk]
    job.refresh_from_db()
    assert (job.campaign, job.enrol_updated) == (campaign, True)
    tasks.import_contacts_run.run(job.pk)
    fragment = client_owner.get(reverse("import_progress", args=[job.pk])).content.decode()
    assert "Q1 outbound" in fragment and reverse("campaign_detail", args=[campaign.pk]) in fragment
    assert '<td class="num" data-count="enrolled">1</td>' in fragment
    assert '<td class="num" data-skipped="missing_field">1</td>' in fragment
    assert "Skipped: on the suppression list" in fragment and "Skipped: missing a merge field" in fragment


def test_mapping_step_without_campaigns_says_how_to_get_one(client_owner, team):
    job = import_job_create(team=team, file=io.BytesIO(data()), filename="list.csv")
    html = client_owner.get(reverse("import_detail", args=[job.pk])).content.decode()
    assert 'name="campaign"' not in html and "Create a campaign" in html


# --- the command ---------------------------------------------------------------------------------


def test_command_enrols_by_campaign_name_or_id(team, campaign, tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_bytes(data())
    call_command("import_contacts", str(path), "--team", "acme", "--campaign", "q1 OUTBOUND")
    out = json.loads(capsys.readouterr().out)
    assert out["enrolment"] == {"campaign_id": campaign.pk, "campaign": "Q1 outbound", "enrolled": 2, "already": 0,
                                "skipped": {"missing_field": 1}, "skipped_total": 1}
    path.write_bytes(data([["ann@example.com", "Annie", "Acme"], ["eve@example.com", "Eve", "E"]]))
    call_command("import_contacts", str(path), "--team", "acme", "--campaign", str(campaign.pk), "--policy", "update",
                 "--enrol-updated")
    out = json.loads(capsys.readouterr().out)
    assert (out["created"], out["updated"]) == (1, 1)
    assert {k: out["enrolment"][k] for k in ("enrolled", "already")} == {"enrolled": 1, "already": 1}
    assert Enrolment.objects.filter(campaign=campaign).count() == 4


@pytest.mark.parametrize("args,message", [
    (["--campaign", "nope"], "has no campaign 'nope'"),
    (["--enrol-updated"], "--enrol-updated needs --campaign"),
    (["--campaign", "Finished"], "draft, active or paused campaign"),
])
def test_command_campaign_errors(team, campaign, tmp_path, args, message):
    campaign_stop(campaign=build(team, name="Finished"))
    path = tmp_path / "in.csv"
    path.write_bytes(data())
    with pytest.raises(CommandError, match=message):
        call_command("import_contacts", str(path), "--team", "acme", *args)
    assert not Contact.objects.exists() and not Enrolment.objects.exists()
