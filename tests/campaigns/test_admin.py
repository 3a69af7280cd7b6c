"""Campaign admin: enrolment from the contact admin goes through campaign_enrol; enrolments are
read-only; state actions use the services."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from outreach.campaigns.models import Enrolment
from outreach.campaigns.services import VariantData, campaign_create, campaign_step_save
from tests.factories import make_contact, make_mailbox, make_team_user

pytestmark = pytest.mark.django_db


def test_enrol_from_contact_admin_and_start_from_campaign_admin(client):
    team, _ = make_team_user()
    mailbox = make_mailbox(team)
    campaign = campaign_create(team=team, data={"name": "Q1", "mailboxes": [mailbox]})
    campaign_step_save(campaign=campaign, data={}, variants=[VariantData("A", "Hi {{ first_name }}", "<p>x</p>")])
    bob = make_contact(team, "bob@example.com", first_name="Bob")
    anon = make_contact(team, "anon@example.com")
    root = get_user_model().objects.create_superuser("root", "root@acme.com", "pw-for-tests-123")
    client.force_login(root)
    url = reverse("admin:outreach_contact_changelist")
    page = client.post(url, {"action": "enrol_contacts_action", "_selected_action": [bob.pk, anon.pk]})
    assert page.status_code == 200 and "Enrol 2 selected contacts in" in page.content.decode()
    response = client.post(url, {"action": "enrol_contacts_action", "_selected_action": [bob.pk, anon.pk],
                                 "campaign": campaign.pk}, follow=True)
    assert "Q1: Enrolled 1 contact; 1 skipped: missing a merge field." in response.content.decode()
    assert Enrolment.objects.get(contact=bob).status == "active"
    assert client.get(reverse("admin:outreach_enrolment_add")).status_code == 403
    client.post(reverse("admin:outreach_campaign_changelist"), {"action": "started_campaigns", "_selected_action": [campaign.pk]})
    campaign.refresh_from_db()
    assert campaign.status == "active"
