"""The import pages' reads (outreach.imports.selectors): preview, columns, progress, the remembered mapping."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from outreach.imports.selectors import (import_job_columns, import_job_preview, import_job_progress,
                                        import_mapping_remembered)
from outreach.imports.services import import_job_create, import_job_start
from outreach.models import ImportJob

pytestmark = pytest.mark.django_db


def _job(team, text: str) -> ImportJob:
    return import_job_create(team=team, file=io.BytesIO(text.encode()), filename="people.csv")


def test_preview_pads_and_cuts_rows_to_the_header_and_stops_at_the_limit(team):
    job = _job(team, "Email,Name\r\na@example.com\r\nb@example.com,Bob,extra\r\nc@example.com,Cy\r\nd@example.com,Di\r\n")
    assert import_job_preview(job=job, limit=3) == [["a@example.com", ""], ["b@example.com", "Bob"], ["c@example.com", "Cy"]]
    assert len(import_job_preview(job=job)) == 4


def test_columns_carry_the_mapping_and_distinct_samples(team):
    job = _job(team, "Email,Name\r\na@example.com,Ann\r\nb@example.com,Ann\r\n")
    columns = import_job_columns(job=job, samples=2)
    assert [(c["header"], c["target"], c["samples"]) for c in columns] == [
        ("Email", "email", ["a@example.com", "b@example.com"]), ("Name", job.mapping[1], ["Ann"])]
    assert columns[0]["looks_like_email"] and not columns[0]["email_unmapped"]


def test_progress_of_a_running_and_a_finished_job(team):
    job = _job(team, "Email\r\na@example.com\r\n")
    assert import_job_progress(job=job) == {"rows_done": 0, "total_rows": job.total_rows, "percent": 0, "rate": 0.0,
                                            "elapsed": 0.0, "status": "uploaded", "finished": False, "enrolment": None}
    now = timezone.now()
    job.status, job.total_rows, job.rows_done = ImportJob.Status.RUNNING, 200, 50
    job.started_at, job.finished_at = now - timedelta(seconds=10), None
    progress = import_job_progress(job=job)
    assert progress["percent"] == 25 and progress["rate"] == pytest.approx(5, rel=0.2) and not progress["finished"]
    job.status, job.finished_at, job.rows_done = ImportJob.Status.DONE, now, 190  # done reads 100 %
    progress = import_job_progress(job=job)
    assert (progress["percent"], progress["elapsed"], progress["finished"]) == (100, 10.0, True)


def test_the_remembered_mapping_is_the_teams_last_started_import_of_these_headers(team, other_team):
    first = _job(team, "Email,Given\r\na@example.com,Ann\r\n")
    assert import_mapping_remembered(team=team, headers=first.headers) is None  # not started yet
    mapping = ["email", "last_name"]
    import_job_start(job=first, mapping=mapping, policy="skip")
    assert import_mapping_remembered(team=team, headers=first.headers).pk == first.pk
    assert import_mapping_remembered(team=team, headers=first.headers, exclude_id=first.pk) is None
    assert import_mapping_remembered(team=other_team, headers=first.headers) is None
    assert import_mapping_remembered(team=team, headers=["Email"]) is None
