"""The mapping step (header row, samples, email-looking columns, the remembered mapping), field
validation like the forms', storage-only file access, expiry and retention, and overlapping
imports into one team."""
from __future__ import annotations

import csv
import io
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from outreach.imports import services
from outreach.imports.selectors import import_job_columns
from outreach.imports.services import (contacts_import, import_job_create, import_job_run, import_job_set_header_row,
                                       import_job_start, import_jobs_expire)
from outreach.models import Contact, ImportJob
from outreach.services.contacts import contact_create

from .conftest import assert_conserved, read_report
from .fixtures import csv_text

ROWS = [["a@example.com", "Ann", "x1@example.org", "Paris"], ["b@example.com", "Bob", "x2@example.org", "Lyon"]]
HEADERS = ["E-mail", "Given", "Other", "City"]


@pytest.fixture
def client_owner(client, owner):
    client.force_login(owner)
    return client


def _create(team, text: str, filename="c.csv"):
    return import_job_create(team=team, file=io.BytesIO(text.encode()), filename=filename)


def test_the_mapping_step_shows_samples_and_flags_email_columns_not_mapped(client_owner, team):
    job = _create(team, csv_text(ROWS, header=HEADERS))
    columns = import_job_columns(job=job)
    assert [c["samples"] for c in columns][:2] == [["a@example.com", "b@example.com"], ["Ann", "Bob"]]
    assert [c["email_unmapped"] for c in columns] == [False, False, True, False]
    html = client_owner.get(reverse("import_detail", args=[job.pk])).content.decode()
    assert "e.g. Ann, Bob" in html
    assert html.count("Looks like email addresses, but is not mapped to Email.") == 1
    assert "Row 1 was taken as the header" in html


def test_the_user_can_change_the_header_row(client_owner, team):
    text = "Title line\r\nReport,Acme Inc\r\nEmail,Name\r\na@example.com,Ann\r\n"
    job = _create(team, text)
    assert job.header_row == 2 and job.headers == ["Report", "Acme Inc"]  # a wrong guess...
    response = client_owner.post(reverse("import_detail", args=[job.pk]), {"header_row": "3"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.header_row, job.headers, job.mapping[0]) == (3, ["Email", "Name"], "email")
    html = client_owner.get(reverse("import_detail", args=[job.pk])).content.decode()
    assert "Row 3 was taken as the header; the 2 rows above it are skipped." in html
    with pytest.raises(Exception, match="no row 9"):
        import_job_set_header_row(job=job, header_row=9)
    import_job_start(job=job, mapping=job.mapping, policy="skip")
    job = import_job_run(import_job_id=job.pk)
    assert_conserved(job)
    assert job.created_count == 1 and Contact.objects.get(team=team).first_name == ""


def test_the_last_mapping_for_the_same_headers_is_remembered(client_owner, team, other_team):
    text = csv_text(ROWS, header=HEADERS)
    first = contacts_import(team=team, file=io.BytesIO(text.encode()), filename="c.csv",
                            mapping={"Given": "first_name", "Other": "ignore", "City": "company"})
    chosen = first.mapping
    assert chosen == ["email", "first_name", "", "company"]
    again = _create(team, csv_text(ROWS[:1], header=HEADERS))
    assert again.mapping == chosen
    html = client_owner.get(reverse("import_detail", args=[again.pk])).content.decode()
    assert "Columns are mapped as in your import" in html
    assert _create(other_team, text).mapping != chosen  # another team's choice is not used
    assert _create(team, csv_text(ROWS, header=HEADERS + ["Extra"])).mapping[1] != "first_name"  # other headers


def test_bad_cells_are_left_out_or_the_row_rejected_and_either_way_listed(run_import, team):
    header = ["Email", "First Name", "LinkedIn URL"]
    rows = [["js@example.com", "Js", "javascript:alert(document.domain)"],
            ["ftp@example.com", "Ftp", "ftp://files.example.com/x"],
            ["bare@example.com", "Bare", "www.linkedin.com/in/bare"],
            ["long@example.com", "Long", "https://www.linkedin.com/in/" + "x" * 480],
            ["ok@example.com", "Ok", "https://www.linkedin.com/in/ok"]]
    job = run_import(csv_text(rows, header=header).encode())
    assert (job.created_count, job.rejected_count, job.blanked_count) == (4, 1, 2)
    stored = dict(Contact.objects.filter(team=team).values_list("email", "linkedin_url"))
    assert stored["js@example.com"] == "" and stored["ftp@example.com"] == ""
    assert stored["bare@example.com"] == "https://www.linkedin.com/in/bare"  # as the form stores it
    assert not Contact.objects.filter(team=team, email="long@example.com").exists()  # too long: rejected
    report = read_report(job)
    assert [(r[0], r[2]) for r in report[1:]] == [("2", "imported without the cell"), ("3", "imported without the cell"),
                                                  ("5", "rejected")]
    assert report[1][3].startswith("LinkedIn URL left out:") and report[1][6] == "javascript:alert(document.domain)"


def test_a_non_http_link_is_never_rendered_as_a_link(client, owner, team):
    client.force_login(owner)
    # The services refuse such a URL now; rows written before that (or straight to the table)
    # may still hold one, and the page must not turn it into a link.
    with pytest.raises(ValidationError):
        contact_create(team=team, data={"email": "x@example.com", "linkedin_url": "javascript:alert(1)"})
    contact = Contact.objects.create(team=team, email="x@example.com", linkedin_url="javascript:alert(1)")
    html = client.get(reverse("contact_detail", args=[contact.pk])).content.decode()
    assert 'href="javascript' not in html and "javascript:alert(1)" in html
    contact.linkedin_url = "https://www.linkedin.com/in/x"
    contact.save()
    html = client.get(reverse("contact_detail", args=[contact.pk])).content.decode()
    assert 'href="https://www.linkedin.com/in/x"' in html


def test_no_process_wide_setting_is_changed(run_import):
    limit = csv.field_size_limit()
    run_import(csv_text(ROWS, header=HEADERS).encode())
    assert csv.field_size_limit() == limit == 128 * 1024


def test_files_are_read_through_the_storage_api_only(run_import, monkeypatch):
    from django.db.models.fields.files import FieldFile

    def no_path(self):
        raise AssertionError("FieldFile.path used: the import must work on any storage")

    monkeypatch.setattr(FieldFile, "path", property(no_path))
    job = run_import(csv_text(ROWS + [["bad", "X", "", ""]], header=HEADERS).encode())
    assert job.rejected_count == 1 and len(read_report(job)) == 2


def test_abandoned_uploads_expire_and_old_files_are_removed(team, media_root):
    waiting = _create(team, csv_text(ROWS, header=HEADERS))
    done = contacts_import(team=team, file=io.BytesIO(csv_text(ROWS + [["bad", "", "", ""]], header=HEADERS).encode()),
                           filename="d.csv")
    fresh = _create(team, csv_text(ROWS, header=HEADERS))
    assert len(list(media_root.rglob("*.csv"))) == 4  # three uploads and one error report
    now = timezone.now()
    ImportJob.objects.filter(pk=waiting.pk).update(created_at=now - timedelta(hours=25))
    assert import_jobs_expire(now=now) == {"expired": 1, "files_removed": 1}
    waiting.refresh_from_db()
    assert waiting.status == "cancelled" and "Expired" in waiting.error_message and not waiting.file
    ImportJob.objects.filter(pk=done.pk).update(finished_at=now - timedelta(days=31))
    assert import_jobs_expire(now=now) == {"expired": 0, "files_removed": 2}
    done.refresh_from_db()
    assert not done.file and not done.error_report and done.created_count == 2
    assert [p.name for p in media_root.rglob("*.csv")] == [fresh.file.name.rsplit("/", 1)[1]]
    assert import_jobs_expire(now=now) == {"expired": 0, "files_removed": 0}


def test_the_expiry_runs_periodically():
    from outreach.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["imports-expire"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks and entry["schedule"] <= 24 * 3600


@pytest.mark.django_db(transaction=True)
def test_overlapping_imports_into_one_team_do_not_deadlock(team, monkeypatch):
    monkeypatch.setattr(services, "BATCH_ROWS", 50)
    emails = [f"p{i}@example.com" for i in range(400)]
    files = [csv_text([[e, "A"] for e in emails], header=["Email", "Name"]),
             csv_text([[e, "B"] for e in reversed(emails)], header=["Email", "Name"])]
    results, errors = {}, []
    start = threading.Barrier(2)

    def run(n):
        try:
            start.wait()
            results[n] = contacts_import(team=team, file=io.BytesIO(files[n].encode()), filename=f"{n}.csv",
                                         policy="update")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for job in results.values():
        assert_conserved(job)
        assert "deadlock" not in job.error_message.lower()
    assert Contact.objects.filter(team=team).count() == 400
    assert sum(j.created_count for j in results.values()) == 400


def test_the_imports_list_is_the_shared_list_page(client_owner, team, other_team):
    _create(team, csv_text(ROWS, header=HEADERS), filename="hubspot.csv")
    contacts_import(team=team, file=io.BytesIO(csv_text(ROWS, header=HEADERS).encode()), filename="apollo.csv")
    _create(other_team, csv_text(ROWS, header=HEADERS), filename="secret-other.csv")
    html = client_owner.get(reverse("import_list")).content.decode()
    assert 'id="bulk-form"' in html and 'name="q"' in html and "hubspot.csv" in html and "apollo.csv" in html
    assert "secret-other" not in html
    html = client_owner.get(reverse("import_list"), {"q": "apollo"}).content.decode()
    assert "apollo.csv" in html and "hubspot.csv" not in html
    html = client_owner.get(reverse("import_list"), {"status": "uploaded", "o": "-name"}).content.decode()
    assert "hubspot.csv" in html and "apollo.csv" not in html


def test_the_contact_page_and_timeline_command_show_where_an_imported_contact_came_from(client_owner, team, owner):
    from django.core.management import call_command
    import json

    job = contacts_import(team=team, file=io.BytesIO(csv_text(ROWS, header=HEADERS).encode()), filename="c.csv",
                          name="Fair leads", user=owner)
    contact = Contact.objects.get(team=team, email="b@example.com")
    html = client_owner.get(reverse("contact_detail", args=[contact.pk])).content.decode()
    assert "Imported from Fair leads (row 3)." in html and "by alice" in html
    out = io.StringIO()
    call_command("timeline", "b@example.com", "--team", team.name, stdout=out)
    events = json.loads(out.getvalue())["events"]
    assert [(e["kind"], e["summary"], e["data"]["import_id"]) for e in events] == [
        ("contact_imported", "Imported from Fair leads (row 3).", job.pk)]


@pytest.mark.parametrize("url", [
    "https://www.linkedin.com/in/søren-0", "http://example.com", "https://a.b.co/x?y=1#z", "https://-bad.example.com/x",
    "https://bad-.example.com", "https://example.c0m/", "https://example.com/a b", "https://ex_ample.com/",
    "https://" + "a" * 64 + ".com/", "https://xn--bcher-kva.example/", "https://example.com/\x01", "https://例え.jp/",
])
def test_the_url_fast_path_agrees_with_the_form_field(url):
    from django import forms
    from django.core.exceptions import ValidationError

    from outreach.validation import normalize_http_url

    def verdict(check):
        try:
            return check(url)
        except ValidationError:
            return "invalid"

    assert verdict(normalize_http_url) == verdict(forms.URLField(assume_scheme="https", max_length=500).clean)
