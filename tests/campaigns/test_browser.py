"""Campaigns in a real headless Chromium: build a campaign with a step, enrol every contact matching
a filtered contacts list ("all N matching"), start it, and watch the funnel move as the scheduler
queues step 1. Screenshots go to tests/artifacts/."""
import os
import re

import pytest

from outreach.campaigns.models import Campaign, Enrolment
from outreach.campaigns.services import campaigns_advance
from tests.browser import screenshot
from tests.factories import OWNER_PASSWORD, make_contact, make_mailbox, make_team_with_owner

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_build_enrol_from_filtered_list_start_and_see_the_funnel_move(browser_page, live_server):
    from playwright.sync_api import expect

    page = browser_page
    team, user = make_team_with_owner("Campaign browser team")
    # Nothing listens on localhost:2525: a worker that picks the messages up finds the server down
    # and keeps them in the outbox for a retry, so they stay "scheduled" while the page is watched.
    mailbox = make_mailbox(team, sender_name="Ann Lee", sender_email="ann@example.com", smtp_host="localhost",
                           smtp_port=2525)
    for i in range(3):
        make_contact(team, email=f"buyer{i}@initech.example.com", first_name=f"Buyer{i}", company="Initech")
    make_contact(team, email="someone@globex.example.com", first_name="Other", company="Globex")

    page.goto("/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", OWNER_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/contacts/$"))

    page.goto("/campaigns/new/")
    page.fill("[name=name]", "Initech outreach")
    page.check(f"input[name=mailboxes][value='{mailbox.pk}']")
    page.fill("[name=time_zone]", "UTC")
    for day in range(7):
        page.check(f"input[name=send_days][value='{day}']")
    page.fill("[name=window_start]", "00:00")
    page.fill("[name=window_end]", "00:00")
    page.click("button:has-text('Create and add steps')")
    expect(page.locator("h1")).to_contain_text("Add step 1")
    page.fill("[name=a_subject]", "Hi {{ frist_name }}")
    page.fill("[name=a_html_body]", "<p>Hello {{ first_name }} at {{ company }}</p>")
    page.click("button:has-text('Save step')")
    expect(page.locator(".has-error")).to_contain_text("unknown merge field “frist_name”")
    page.fill("[name=a_subject]", "{Hi|Hello} {{ first_name }}")
    page.click("button:has-text('Save step')")
    expect(page.locator("h1")).to_contain_text("Initech outreach")
    screenshot(page, "campaign-01-draft")

    page.goto("/contacts/?company=Initech")
    page.check("input[data-select-matching]")
    page.select_option("select[name=action]", "enrol")
    page.click("button:has-text('Apply')")
    campaign = Campaign.objects.get(team=team)
    page.select_option("select[name=value]", str(campaign.pk))
    page.click("button:has-text('Yes, enrol')")
    expect(page.locator(".messages")).to_contain_text("Enrolled 3 contacts")
    assert sorted(Enrolment.objects.filter(campaign=campaign).values_list("contact__company", flat=True)) == ["Initech"] * 3

    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.locator("[data-count=active]")).to_have_text("3")
    page.click("button:has-text('Start')")
    expect(page.locator("h1 .badge")).to_have_text("Active")
    expect(page.locator("tr[data-step='1'] [data-metric=scheduled]")).to_have_text("0")
    assert campaigns_advance().created == 3
    # The page polls its funnel (htmx, every 5 s): the three queued step-1 messages appear without a reload.
    expect(page.locator("tr[data-step='1'] [data-metric=scheduled]")).to_have_text("3", timeout=15000)
    screenshot(page, "campaign-02-active-funnel")
