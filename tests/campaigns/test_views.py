"""Campaign pages: build a campaign with steps and an A/B variant, enrol from the contacts list,
start/pause/stop, the funnel and chart data, enrolment list, and team scoping of every URL."""
from __future__ import annotations

import json
import re
from datetime import time

import pytest
from django.urls import reverse

from outreach.campaigns.models import Campaign, CampaignStep, Enrolment
from outreach.campaigns.services import VariantData, campaign_create, campaign_step_save, campaigns_advance
from outreach.models import SentMessage
from tests.factories import make_contact, make_mailbox, make_team_user

pytestmark = pytest.mark.django_db


def test_build_a_campaign_in_the_ui(user_client, team_user):
    team, user = team_user
    mailbox = make_mailbox(team)
    assert "No campaigns yet" in user_client.get(reverse("campaign_list")).content.decode()
    response = user_client.post(reverse("campaign_create"), {
        "name": "Q1", "mailboxes": [mailbox.pk], "time_zone": "Mars/Olympus", "send_days": ["0", "1"],
        "window_start": "09:00", "window_end": "17:00"})
    assert "Unknown time zone “Mars/Olympus”" in response.content.decode()
    response = user_client.post(reverse("campaign_create"), {
        "name": "Q1", "mailboxes": [mailbox.pk], "time_zone": "Europe/Paris", "send_days": ["0", "1", "2"],
        "window_start": "09:00", "window_end": "17:00", "skip_active_elsewhere": "on"})
    campaign = Campaign.objects.get()
    assert response.url == reverse("campaign_step_create", args=[campaign.pk])
    assert campaign.send_days == "0,1,2" and list(campaign.mailboxes.all()) == [mailbox]
    response = user_client.post(reverse("campaign_step_create", args=[campaign.pk]), {
        "delay_amount": 0, "delay_unit": "days", "a_subject": "Hi {{ frist_name }}", "a_html_body": "<p>x</p>"})
    assert "Line 1: unknown merge field “frist_name”" in response.content.decode()
    user_client.post(reverse("campaign_step_create", args=[campaign.pk]), {
        "delay_amount": 0, "delay_unit": "days", "a_subject": "Hi {{ first_name }}", "a_html_body": "<p>One</p>"})
    user_client.post(reverse("campaign_step_create", args=[campaign.pk]), {
        "delay_amount": 3, "delay_unit": "days", "business_days_only": "on", "a_subject": "Follow-up A",
        "a_html_body": "<p>A</p>", "b_subject": "Follow-up B", "b_html_body": "<p>B</p>", "a_weight": 70})
    step2 = CampaignStep.objects.get(campaign=campaign, position=2)
    assert dict(step2.variants.values_list("label", "weight")) == {"A": 70, "B": 30}
    assert step2.business_days_only and step2.delay_amount == 3
    page = user_client.get(reverse("campaign_step_edit", args=[campaign.pk, step2.pk])).content.decode()
    assert "Follow-up B" in page and 'value="70"' in page
    page = user_client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert "Step 2" in page and "3 business days after step 1" in page and 'id="campaign-series"' in page
    assert "vendor/chartjs/chart.umd.min.js" in page


def test_enrol_from_contacts_list_start_and_watch_the_funnel(user_client, team_user):
    team, user = team_user
    mailbox = make_mailbox(team)
    campaign = campaign_create(team=team, data={"name": "Q1", "mailboxes": [mailbox], "window_start": time(0),
                                                "window_end": time(0), "send_days": ""})
    campaign_step_save(campaign=campaign, data={}, variants=[VariantData("A", "Hi {{ first_name }}", "<p>Hello</p>")])
    bob = make_contact(team, "bob@example.com", first_name="Bob")
    nameless = make_contact(team, "anon@example.com")
    page = user_client.get(reverse("contact_list")).content.decode()
    assert "Enrol in campaign…" in page
    confirm = user_client.post(reverse("contact_list"), {"action": "enrol", "ids": [bob.pk, nameless.pk]}).content.decode()
    assert f'<option value="{campaign.pk}">Q1</option>' in confirm and "Yes, enrol 2 contacts" in confirm
    assert not Enrolment.objects.exists()  # nothing happens before the campaign is chosen
    response = user_client.post(reverse("contact_list"), {"action": "enrol", "value": str(campaign.pk), "confirmed": "yes",
                                                          "ids": [bob.pk, nameless.pk]}, follow=True)
    assert "Q1: Enrolled 1 contact; 1 skipped: missing a merge field." in response.content.decode()
    response = user_client.post(reverse("campaign_state", args=[campaign.pk]), {"action": "start"})
    campaign.refresh_from_db()
    assert response.status_code == 302 and campaign.status == "active"
    campaigns_advance()
    fragment = user_client.get(reverse("campaign_funnel", args=[campaign.pk])).content.decode()
    assert re.search(r'data-metric="scheduled">1<', fragment) and 'hx-trigger="every 5s"' in fragment
    SentMessage.objects.update(status="sent")
    fragment = user_client.get(reverse("campaign_funnel", args=[campaign.pk])).content.decode()
    assert re.search(r'data-metric="sent">1<', fragment)
    page = user_client.get(reverse("campaign_enrolments", args=[campaign.pk]) + "?status=skipped").content.decode()
    assert "anon@example.com" in page and "Missing a merge field" in page and "bob@example.com" not in page
    user_client.post(reverse("campaign_state", args=[campaign.pk]), {"action": "pause"})
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert "Stop “Q1”?" in user_client.get(reverse("campaign_state", args=[campaign.pk])).content.decode()
    user_client.post(reverse("campaign_state", args=[campaign.pk]), {"action": "stop"})
    campaign.refresh_from_db()
    assert campaign.status == "stopped"
    assert Enrolment.objects.get(contact=bob).reason == "campaign_stopped"


def test_enrol_all_matching_the_filter(user_client, team_user):
    team, _ = team_user
    campaign = campaign_create(team=team, data={"name": "Q1", "mailboxes": [make_mailbox(team)]})
    for i in range(3):
        make_contact(team, f"a{i}@initech.example.com", company="Initech", first_name="A")
    make_contact(team, "other@globex.example.com", company="Globex")
    url = reverse("contact_list") + "?company=Initech"
    user_client.post(url, {"action": "enrol", "value": str(campaign.pk), "confirmed": "yes", "all": "1"})
    assert sorted(Enrolment.objects.values_list("contact__email", flat=True)) == [
        "a0@initech.example.com", "a1@initech.example.com", "a2@initech.example.com"]


def test_chart_series_counts_sends_per_day(user_client, team_user):
    team, _ = team_user
    mailbox = make_mailbox(team)
    campaign = campaign_create(team=team, data={"name": "C", "mailboxes": [mailbox], "window_start": time(0),
                                                "window_end": time(0), "send_days": ""})
    campaign_step_save(campaign=campaign, data={}, variants=[VariantData("A", "Hi", "<p>x</p>")])
    contact = make_contact(team)
    from outreach.campaigns.services import campaign_enrol, campaign_start
    from django.utils import timezone

    campaign_enrol(campaign=campaign, contact_ids=[contact.pk])
    campaign_start(campaign=campaign)
    campaigns_advance()
    SentMessage.objects.update(status="sent", sent_at=timezone.now())
    page = user_client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    series = json.loads(re.search(r'<script id="campaign-series" type="application/json">(.*?)</script>', page).group(1))
    assert series["sent"][-1] == 1 and sum(series["sent"]) == 1 and len(series["labels"]) == 30


def test_every_campaign_url_is_404_for_another_team(client):
    _, me = make_team_user()
    other_team, other = make_team_user()
    campaign = campaign_create(team=other_team, data={"name": "Theirs"})
    step = campaign_step_save(campaign=campaign, data={}, variants=[VariantData("A", "S", "<p>x</p>")])
    urls = [reverse(name, args=[campaign.pk]) for name in
            ("campaign_detail", "campaign_funnel", "campaign_edit", "campaign_state", "campaign_delete",
             "campaign_step_create", "campaign_enrolments")]
    urls += [reverse(name, args=[campaign.pk, step.pk]) for name in ("campaign_step_edit", "campaign_step_delete")]
    client.force_login(other)
    assert client.get(urls[0]).status_code == 200
    client.force_login(me)
    for url in urls:
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"action": "stop", "name": "Mine", "a_subject": "x", "a_html_body": "y"}).status_code == 404, url
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.name == "Theirs" and campaign.steps.count() == 1
