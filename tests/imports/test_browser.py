"""The import in a real headless Chromium: upload a CSV, check and change the column mapping, watch
the htmx progress bar finish (the Celery task runs in a real worker when one can be started —
PostgreSQL + Redis, as in CI — else in a background thread), download the error report.
Screenshots go to tests/artifacts/imports-*.png."""
from __future__ import annotations

import os
import re
import threading

import pytest

from outreach.models import Contact, ImportJob
from tests.browser import launch_chromium, screenshot

from .conftest import assert_conserved
from .fixtures import csv_text, person

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = 12_000


@pytest.fixture
def media_root(settings):
    """The worker is a separate process started with the project's MEDIA_ROOT: keep that one."""
    return settings.MEDIA_ROOT


@pytest.fixture
def run_tasks(request, monkeypatch):
    """'worker' when a real Celery worker runs the task; otherwise the task's delay() starts the
    same task body in a thread of this process (the live server shares the test database)."""
    try:
        request.getfixturevalue("celery_worker_process")
        return "worker"
    except pytest.skip.Exception:
        pass
    from django.db import connection

    from outreach.imports import tasks

    def delay(job_id):
        def run():
            try:
                tasks.import_contacts_run.run(job_id)
            finally:
                connection.close()

        threading.Thread(target=run, daemon=True).start()
        return type("Result", (), {"id": f"thread-{job_id}"})()

    monkeypatch.setattr(tasks.import_contacts_run, "delay", delay)
    return "thread"


@pytest.fixture
def page(browser_page):
    return browser_page


def test_upload_map_watch_progress_and_download_error_report(page, live_server, run_tasks, tmp_path):
    from playwright.sync_api import expect

    from outreach.services.teams import team_create_with_owner

    team, user = team_create_with_owner(team_name="Browser imports", username="imp", email="imp@example.com",
                                        password="pw-Import-123!")
    rows = [person(i) for i in range(ROWS)]
    rows[10][0] = "not-an-email"
    rows[20][0] = "=HYPERLINK(\"http://evil.example\")"
    rows[30][0] = rows[31][0].upper()  # in-file duplicate
    path = tmp_path / "Export from Excel.csv"
    path.write_bytes(csv_text(rows, ";").encode("cp1252"))

    page.goto("/login/")
    page.fill("input[name=username]", "imp")
    page.fill("input[name=password]", "pw-Import-123!")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/contacts/$"))

    page.click("nav >> text=Imports")
    expect(page).to_have_url(re.compile(r"/imports/$"))
    page.click("text=Import a CSV")
    page.set_input_files("input[name=file]", str(path))
    page.fill("input[name=name]", "Excel export")
    screenshot(page, "imports-01-upload")
    page.click("button:has-text('Upload and map columns')")

    expect(page.locator("#import-mapping")).to_be_visible()
    expect(page.locator("table.mapping")).to_contain_text("First1")  # preview of the first rows
    assert page.locator("select[name=col_0]").input_value() == "email"
    assert page.locator("select[name=col_7]").input_value() == "__custom__"  # City
    page.select_option("select[name=col_9]", "")  # ignore "Notes"
    page.check("input[name=policy][value=update]")
    screenshot(page, "imports-02-mapping")
    page.click("button:has-text('Start import')")

    box = page.locator("#import-progress-box")
    expect(box).to_be_visible()
    screenshot(page, "imports-03-progress")
    expect(page.locator("#import-progress-box[data-status=done]")).to_be_visible(timeout=90_000)
    expect(page.locator("#import-progress-text")).to_contain_text(f"{ROWS} / {ROWS} rows (100%)")
    assert page.locator("#import-progress").get_attribute("value") == str(ROWS)
    expect(page.locator("[data-count=rejected]")).to_have_text("2")
    expect(page.locator("[data-count=created]")).to_have_text(str(ROWS - 3))
    screenshot(page, "imports-04-done")

    with page.expect_download() as download_info:
        page.click("#import-errors-link")
    download = download_info.value
    assert download.suggested_filename == "Export from Excel-errors.csv"
    report = open(download.path(), encoding="utf-8-sig").read()
    assert "spreadsheet row,line,outcome,problem,Email" in report
    assert "is not a valid email address" in report and "not-an-email" in report
    assert "'=HYPERLINK" in report  # formula cell escaped

    job = ImportJob.objects.get(team=team)
    assert_conserved(job)
    assert job.encoding == "cp1252" and job.delimiter == ";"
    assert Contact.objects.filter(team=team).count() == ROWS - 3
    assert "Notes" not in Contact.objects.filter(team=team).first().custom_fields
    print(f"import ran in: {run_tasks}")
