"""The import pages, the management command and the admin upload."""
from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from outreach.imports.admin import ImportJobAdmin
from outreach.models import Contact, ImportJob

from .conftest import assert_conserved
from .fixtures import csv_text, person

GOOD = csv_text([person(1), person(2), person(2, email="bad"), person(3, email="=evil")]).encode()


@pytest.fixture
def client_owner(client, owner):
    client.force_login(owner)
    return client


def upload(client, data=GOOD, name="hubspot.csv"):
    return client.post(reverse("import_create"), {"file": SimpleUploadedFile(name, data, "text/csv"), "name": ""})


def test_upload_map_start_progress_and_error_report(client_owner, team, django_capture_on_commit_callbacks, monkeypatch):
    from outreach.imports import tasks

    sent = []
    monkeypatch.setattr(tasks.import_contacts_run, "delay", lambda job_id: sent.append(job_id) or type("R", (), {"id": "x"})())
    response = upload(client_owner)
    job = ImportJob.objects.get(team=team)
    assert response.status_code == 302 and response["Location"] == reverse("import_detail", args=[job.pk])

    page = client_owner.get(reverse("import_detail", args=[job.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "First1" in html and "Start import" in html  # preview + mapping form
    assert '<option value="email" selected>' in html

    mapping = {f"col_{i}": target for i, target in enumerate(job.mapping)}
    mapping["col_9"] = ""  # ignore "Notes"
    with django_capture_on_commit_callbacks(execute=True):
        response = client_owner.post(reverse("import_detail", args=[job.pk]),
                                     {**mapping, "policy": "update", "start": "1", "lead_status": "new"})
    assert response.status_code == 302 and sent == [job.pk]
    fragment = client_owner.get(reverse("import_progress", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in fragment and "Queued" in fragment

    tasks.import_contacts_run.run(job.pk)
    job.refresh_from_db()
    assert_conserved(job)
    assert (job.created_count, job.rejected_count) == (2, 2)
    assert "Notes" not in Contact.objects.filter(team=team).first().custom_fields
    fragment = client_owner.get(reverse("import_progress", args=[job.pk])).content.decode()
    assert "hx-trigger" not in fragment and "4 / 4 rows" in fragment and "error report" in fragment

    report = client_owner.get(reverse("import_errors", args=[job.pk]))
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
    body = b"".join(report.streaming_content).decode("utf-8-sig")
    assert "'=evil" in body and "is not a valid email address" in body
    assert client_owner.get(reverse("import_list")).status_code == 200


def test_mapping_without_email_shows_an_error(client_owner, team):
    upload(client_owner)
    job = ImportJob.objects.get(team=team)
    mapping = {f"col_{i}": "" for i in range(len(job.headers))}
    response = client_owner.post(reverse("import_detail", args=[job.pk]), {**mapping, "policy": "skip", "start": "1"})
    assert response.status_code == 200 and "No column is mapped to Email" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED


def test_binary_upload_shows_a_clear_error(client_owner, team):
    response = upload(client_owner, data=b"PK\x03\x04" + bytes(range(256)) * 10, name="contacts.csv")
    assert response.status_code == 200
    assert "Excel workbook" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_other_teams_imports_are_not_found(client, team, other_team, owner):
    client.force_login(owner)
    upload(client)
    job = ImportJob.objects.get()
    other_owner = other_team.memberships.get().user
    client.force_login(other_owner)
    for name in ("import_detail", "import_progress", "import_errors"):
        assert client.get(reverse(name, args=[job.pk])).status_code == 404
    assert job.name not in client.get(reverse("import_list")).content.decode()


def test_command_prints_counts_as_json(team, owner, tmp_path, capsys, monkeypatch):
    from django.core.files.storage import default_storage
    from django.db.models.fields.files import FieldFile

    def no_path(self):
        raise AssertionError("FieldFile.path used: the command must work on any storage")

    monkeypatch.setattr(FieldFile, "path", property(no_path))
    path = tmp_path / "in.csv"
    path.write_bytes(GOOD)
    call_command("import_contacts", str(path), "--team", "acme", "--policy", "fill", "--as-leads",
                 "--lead-owner", "alice", "--lead-status", "contacted", "--mapping", '{"Notes": "ignore"}')
    out = json.loads(capsys.readouterr().out)
    assert {k: out[k] for k in ("rows", "created", "updated", "unchanged", "rejected", "leads_created")} == {
        "rows": 4, "created": 2, "updated": 0, "unchanged": 0, "rejected": 2, "leads_created": 2}
    job = ImportJob.objects.get(pk=out["import_id"])
    assert out["error_report"] == job.error_report.name and out["error_report"].startswith("imports/errors/")
    assert str(tmp_path) not in json.dumps(out) and default_storage.exists(out["error_report"])
    assert_conserved(job)


@pytest.mark.parametrize("args,message", [
    (["--team", "nope"], "No team named"),
    (["--team", "acme", "--mapping", "{"], "not valid JSON"),
    (["--team", "acme", "--mapping", '{"Email": "ignore"}'], "No column is mapped to Email"),
    (["--team", "acme", "--lead-owner", "ghost", "--as-leads"], "No user named"),
])
def test_command_errors(team, tmp_path, args, message):
    path = tmp_path / "in.csv"
    path.write_bytes(GOOD)
    with pytest.raises(CommandError, match=message):
        call_command("import_contacts", str(path), *args)
    assert not Contact.objects.exists()


def test_command_refuses_binary_file(team, tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 10)
    with pytest.raises(CommandError, match="JPEG"):
        call_command("import_contacts", str(path), "--team", "acme")


@pytest.fixture
def import_admin(db, settings):
    """ImportJobAdmin on the admin site (registered here if outreach/admin.py has not yet)."""
    import sys

    registered = ImportJob in admin.site._registry
    if not registered:
        admin.site.register(ImportJob, ImportJobAdmin)
        sys.modules.pop("tests.imports.urls_with_admin", None)
        settings.ROOT_URLCONF = "tests.imports.urls_with_admin"
    yield
    if not registered:
        admin.site.unregister(ImportJob)


def test_admin_upload_runs_the_same_service(client, team, import_admin, django_capture_on_commit_callbacks, monkeypatch):
    from django.contrib.auth import get_user_model

    from outreach.imports import tasks

    sent = []
    monkeypatch.setattr(tasks.import_contacts_run, "delay", lambda job_id: sent.append(job_id) or type("R", (), {"id": "x"})())
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-Root-123!")
    client.force_login(root)
    url = reverse("admin:outreach_importjob_add")
    assert client.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"upload": SimpleUploadedFile("a.csv", GOOD, "text/csv"), "team": team.pk,
                                     "name": "From admin", "policy": "skip", "lead_status": "new"})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.get()
    assert sent == [job.pk] and job.name == "From admin" and job.status == ImportJob.Status.QUEUED
    tasks.import_contacts_run.run(job.pk)
    job.refresh_from_db()
    assert_conserved(job)
    assert client.get(reverse("admin:outreach_importjob_change", args=[job.pk])).status_code == 200
    # No email column: a form error, nothing kept.
    response = client.post(url, {"upload": SimpleUploadedFile("b.csv", b"Name\nAnn\n", "text/csv"), "team": team.pk,
                                 "policy": "skip", "lead_status": "new"})
    assert response.status_code == 200 and "No column is mapped to Email" in response.content.decode()
    assert ImportJob.objects.count() == 1
