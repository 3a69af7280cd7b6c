"""campaign_create / campaign_enroll / campaign_start / campaign_pause / campaign_stop / campaign_status:
JSON out, clear errors, the same services as the UI."""
from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from outreach.campaigns.models import Campaign, Enrolment
from tests.factories import make_contact, make_mailbox, make_team_user

pytestmark = pytest.mark.django_db


def run(*args) -> dict:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def steps_file(tmp_path):
    path = tmp_path / "steps.json"
    path.write_text(json.dumps([
        {"subject": "Hi {{ first_name }}", "html": "<p>Hello {{ first_name|default:'there' }}</p>"},
        {"delay": 3, "unit": "days", "business_days": True, "subject": "Follow-up", "html": "<p>Again</p>",
         "variants": [{"label": "B", "subject": "Other follow-up", "html": "<p>B</p>", "weight": 50}]},
    ]))
    return path


def test_create_enroll_start_pause_status_stop(steps_file):
    team, _ = make_team_user("Acme")
    mailbox = make_mailbox(team)
    make_contact(team, "bob@example.com", first_name="Bob", company="Initech")
    make_contact(team, "ann@example.com", first_name="Ann", company="Globex")
    created = run("campaign_create", "--team", "acme", "--name", "Q1", "--mailbox", str(mailbox.pk),
                  "--steps", str(steps_file), "--window", "08:30-18:00", "--time-zone", "Europe/Paris")
    assert created["status"] == "draft" and created["steps"] == 2 and created["mailboxes"] == [mailbox.sender_email]
    campaign = Campaign.objects.get()
    assert str(campaign.window_start) == "08:30:00" and campaign.steps.get(position=2).variants.count() == 2
    enrolled = run("campaign_enroll", "--team", "Acme", "--campaign", "q1", "--search", "initech")
    assert enrolled["enrolled"] == 1 and enrolled["skipped_total"] == 0
    enrolled = run("campaign_enroll", "--team", "Acme", "--campaign", str(campaign.pk), "--email", "ANN@example.com",
                   "--email", "nobody@example.com")
    assert enrolled["enrolled"] == 1 and enrolled["unknown_emails"] == ["nobody@example.com"]
    assert run("campaign_start", "--team", "Acme", "--campaign", "Q1")["status"] == "active"
    assert run("campaign_pause", "--team", "Acme", "--campaign", "Q1")["status"] == "paused"
    status = run("campaign_status", "--team", "Acme", "--campaign", "Q1")
    assert status["enrolments"]["active"] == 2 and [row["step"] for row in status["funnel"]] == [1, 2]
    assert run("campaign_stop", "--team", "Acme", "--campaign", "Q1")["status"] == "stopped"
    assert set(Enrolment.objects.values_list("reason", flat=True)) == {"campaign_stopped"}


def test_errors_are_clear_and_write_nothing(tmp_path, steps_file):
    team, _ = make_team_user("Acme")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"subject": "Hi {{ frist_name }}", "html": "<p>x</p>"}]))
    with pytest.raises(CommandError, match=r"Step 1: variant_A_subject: Line 1: unknown merge field “frist_name”"):
        call_command("campaign_create", "--team", "Acme", "--name", "Q1", "--steps", str(bad))
    assert not Campaign.objects.exists()  # the campaign is not left half-built
    with pytest.raises(CommandError, match="Unknown mailbox id"):
        call_command("campaign_create", "--team", "Acme", "--name", "Q1", "--steps", str(steps_file), "--mailbox", "999")
    with pytest.raises(CommandError, match="has no campaign 'nope'"):
        call_command("campaign_status", "--team", "Acme", "--campaign", "nope")
    with pytest.raises(CommandError, match="Add at least one step|Choose at least one active mailbox"):
        run("campaign_create", "--team", "Acme", "--name", "Q2", "--steps", str(steps_file))
        call_command("campaign_start", "--team", "Acme", "--campaign", "Q2")
    with pytest.raises(CommandError, match="either --email"):
        call_command("campaign_enroll", "--team", "Acme", "--campaign", "Q2")
