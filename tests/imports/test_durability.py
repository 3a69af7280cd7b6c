"""Asynchronous batch commits (``synchronous_commit = off``) and what keeps them safe: the batch
and the job's progress share one transaction, and nothing outside the database (the stored error
report, the end of the job) depends on a batch before a synchronous commit has flushed it.

These run with real commits (transactional_db) on a session whose own setting is ``on`` (the test
server runs with ``synchronous_commit = off`` for speed), so the import's own choices show."""
from __future__ import annotations

import io

import pytest
from django.db import connection

from outreach.imports import services as imports_service
from outreach.imports.report import ErrorReport
from outreach.imports.services import contacts_import
from outreach.imports.writing import BatchWriter
from outreach.models import Contact, ImportJob

from .conftest import assert_conserved, read_report
from .fixtures import csv_text
from .test_campaign_enrolment import build

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's synchronous_commit")


def _setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit')")
        return cursor.fetchone()[0]


@pytest.fixture
def durable_session(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = on")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET synchronous_commit")


@pytest.fixture
def trace(monkeypatch):
    """Records ("batch", setting inside the batch), ("durable", setting), ("save", pending lines?)
    in the order they happen."""
    events: list[tuple[str, object]] = []
    real_write, real_durable, real_save = BatchWriter.write, imports_service._Run.make_durable, ErrorReport.save

    def write(self, rows, now):
        result = real_write(self, rows, now)
        events.append(("batch", _setting()))  # as the batch's transaction will commit
        return result

    def make_durable(self):
        events.append(("durable", _setting()))
        return real_durable(self)

    def save(self):
        events.append(("save", self.pending))
        return real_save(self)

    monkeypatch.setattr(BatchWriter, "write", write)
    monkeypatch.setattr(imports_service._Run, "make_durable", make_durable)
    monkeypatch.setattr(ErrorReport, "save", save)
    return events


def test_batches_commit_asynchronously_and_the_report_is_stored_only_after_a_synchronous_commit(
        durable_session, team, trace, monkeypatch):
    monkeypatch.setattr(imports_service, "BATCH_ROWS", 4)
    monkeypatch.setattr(imports_service, "REPORT_SAVE_SECONDS", 0)  # store the report after every batch
    rows = [[f"p{i}@example.com", f"P{i}"] if i % 3 else [f"not an address {i}", ""] for i in range(20)]
    job = contacts_import(team=team, file=io.BytesIO(csv_text(rows, header=["Email", "First Name"]).encode()))
    assert_conserved(job)
    assert (job.created_count, job.rejected_count) == (13, 7)
    batches = [setting for kind, setting in trace if kind == "batch"]
    assert len(batches) == 5 and set(batches) == {"off"}
    # Every store of new report lines comes right after a synchronous commit (the session's "on").
    saves = [i for i, (kind, pending) in enumerate(trace) if kind == "save" and pending]
    assert len(saves) >= 2
    for i in saves:
        assert trace[i - 1] == ("durable", "on"), trace
    assert _setting() == "on"  # SET LOCAL: the batches' setting ends with them
    assert len(read_report(job)) == 1 + 7
    assert Contact.objects.filter(team=team).count() == job.rows_done - job.rejected_count


def test_durable_commit_writes_the_job_so_it_flushes_the_batches_before_it(durable_session, team, monkeypatch):
    """A commit flushes the WAL only when its transaction wrote something: make_durable writes the
    job's row (its updated_at moves) with the session's synchronous setting."""
    job = contacts_import(team=team, file=io.BytesIO(csv_text([["a@example.com"]], header=["Email"]).encode()))
    before = ImportJob.objects.get(pk=job.pk).updated_at
    run = imports_service._Run(ImportJob.objects.select_related("team").get(pk=job.pk))
    assert run.asynchronous
    run.make_durable()
    assert ImportJob.objects.get(pk=job.pk).updated_at > before


def test_batches_that_enrol_into_a_campaign_commit_synchronously(durable_session, team, trace, monkeypatch):
    monkeypatch.setattr(imports_service, "BATCH_ROWS", 2)
    campaign = build(team)
    rows = [[f"p{i}@example.com", f"P{i}", "Acme"] for i in range(5)]
    job = contacts_import(team=team, file=io.BytesIO(csv_text(rows, header=["Email", "First Name", "Company"]).encode()),
                          campaign=campaign)
    assert_conserved(job)
    assert job.enrolled_count == 5
    batches = [setting for kind, setting in trace if kind == "batch"]
    assert len(batches) == 3 and set(batches) == {"on"}
    assert ("durable", "on") not in trace  # nothing to flush: every batch was synchronous
