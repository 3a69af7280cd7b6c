"""Bulk jobs in a real headless Chromium: "all N matching" → the job's page, whose htmx progress
bar follows the real Celery worker to the final message; a queued job cancelled through its
confirmation page; no CSP violation on the way. Screenshots go to tests/artifacts/bulk-job-*.png."""
from __future__ import annotations

import os
import re

import pytest

from outreach.models import BulkJob, Contact, Lead, Membership
from outreach.selectors import ListQuery
from outreach.services import bulk_jobs
from tests.browser import screenshot
from tests.factories import PASSWORD, make_team_user

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_all_matching_runs_as_a_job_whose_page_follows_it_and_can_cancel(browser_page, live_server, celery_worker_process,
                                                                         settings, monkeypatch):
    from playwright.sync_api import expect

    settings.OUTREACH_BULK_JOB_THRESHOLD = 10
    page = browser_page
    team, user = make_team_user(role=Membership.Role.OWNER)
    Contact.objects.bulk_create([Contact(team=team, email=f"b{i:03d}@example.com", company="Acme") for i in range(40)]
                                + [Contact(team=team, email=f"z{i}@example.com", company="Zed") for i in range(3)])
    violations = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda err: violations.append(str(err)))
    page.goto("/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/contacts/$"))

    page.goto("/contacts/?company=Acme")
    page.check("[data-select-matching]")
    page.select_option("select[name=action]", "make_leads")
    page.click(".bulkbar button[type=submit]")
    job = BulkJob.objects.get(team=team)
    expect(page).to_have_url(re.compile(rf"/bulk-jobs/{job.pk}/$"))
    expect(page.locator("#bulk-job-message")).to_have_text("Made 40 leads.", timeout=60_000)  # polled, no reload
    expect(page.locator("#bulk-job-progress-text")).to_contain_text("40 / 40 rows (100%)")
    expect(page.locator("#bulk-job-cancel")).to_have_count(0)
    screenshot(page, "bulk-job-done")
    assert Lead.objects.filter(team=team).count() == 40

    # A job no worker has picked up yet (its task message lost): cancelled after the confirmation.
    monkeypatch.setattr(bulk_jobs, "bulk_job_publish", lambda job_id: None)
    queued = bulk_jobs.bulk_job_create(team=team, kind="delete", query=ListQuery(filters={"company": "Acme"}), actor=user)
    page.goto(f"/bulk-jobs/{queued.pk}/")
    expect(page.locator("#bulk-job-status")).to_have_text("Queued")
    page.click("#bulk-job-cancel")
    expect(page.locator("h1")).to_contain_text("Cancel")
    page.click("button:has-text('Yes, cancel the job')")
    expect(page).to_have_url(re.compile(rf"/bulk-jobs/{queued.pk}/$"))
    expect(page.locator("#bulk-job-status")).to_have_text("Cancelled")
    expect(page.locator("#bulk-job-message")).to_contain_text("nothing was changed")
    page.goto("/bulk-jobs/")
    expect(page.locator("table.list tbody tr")).to_have_count(2)
    screenshot(page, "bulk-job-list")
    assert Contact.objects.filter(team=team).count() == 43
    assert violations == [], violations
