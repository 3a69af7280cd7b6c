"""Parsing in a child process (big files): the same outcomes as parsing in the importing process,
resumes, counts, errors, and no process left behind."""
from __future__ import annotations

import io
import signal

import pytest

from outreach.imports import parsing, services as imports_service
from outreach.imports.reading import FileFormat
from outreach.imports.selectors import import_job_progress
from outreach.imports.services import contacts_import
from outreach.models import Contact, ImportJob

from .conftest import read_report
from .fixtures import csv_text, person
# Service tests run again below with every file parsed in a child process.
from .test_services import (  # noqa: F401
    existing,
    test_backslashes_tabs_and_newlines_survive_the_copy,
    test_batches_larger_files_and_resumes_after_the_last_committed_batch,
    test_duplicates_in_file_and_db_under_each_policy,
    test_rejected_rows_are_reported_with_row_number_and_reason,
    test_suppressed_addresses_are_imported_and_marked,
    test_unreadable_line_and_extra_columns_are_rejected,
    test_wide_rows_make_smaller_batches_and_the_counts_still_add_up,
)


@pytest.fixture(autouse=True)
def parse_in_child(monkeypatch):
    """Every import of this module parses in child processes; records each ChildParser."""
    started = []
    real_init = parsing.ChildParser.__init__

    def init(self, **kwargs):
        real_init(self, **kwargs)
        started.append(self)

    monkeypatch.setattr(imports_service, "PARSE_PROCESS_MIN_BYTES", 1)
    monkeypatch.setattr(parsing.ChildParser, "__init__", init)
    yield started
    for child in started:  # none is left running, whatever the test did
        assert child.proc.poll() is not None


def rows_with_problems(n=60):
    rows = [person(i) for i in range(n)]
    rows[5][0] = "not an address"
    rows[9][6] = "javascript:alert(1)"  # LinkedIn URL left out, row imported
    rows[12][0] = rows[3][0].upper()  # in-file duplicate
    return csv_text(rows).encode()


def test_child_and_in_process_parsing_write_the_same(team, other_team, parse_in_child, monkeypatch):
    monkeypatch.setattr(imports_service, "BATCH_ROWS", 7)
    data = rows_with_problems()
    child_job = contacts_import(team=team, file=io.BytesIO(data), filename="a.csv")
    assert [c.proc.args[-1] for c in parse_in_child] == ["outreach.imports.child"]
    monkeypatch.setattr(imports_service, "PARSE_PROCESS_MIN_BYTES", 0)  # never: threads of this process
    local_job = contacts_import(team=other_team, file=io.BytesIO(data), filename="a.csv")
    assert len(parse_in_child) == 1
    assert child_job.counts() == local_job.counts()
    assert (child_job.created_count, child_job.rejected_count, child_job.blanked_count) == (58, 1, 1)
    assert child_job.total_rows == 60

    def contacts(t):
        return sorted(Contact.objects.filter(team=t).values_list("email", "first_name", "company", "linkedin_url",
                                                                 "custom_fields", "import_row"))

    assert contacts(team) == contacts(other_team)
    assert read_report(child_job) == read_report(local_job)


def test_progress_follows_the_bytes_read_and_the_total_is_stored_at_the_end(team, monkeypatch):
    monkeypatch.setattr(imports_service, "BATCH_ROWS", 100)
    seen = []
    real_commit = imports_service._Run.commit

    def commit(self, *args):
        real_commit(self, *args)
        job = ImportJob.objects.get(pk=self.job.pk)
        seen.append((job.total_rows, job.rows_done, import_job_progress(job=job)["percent"]))

    monkeypatch.setattr(imports_service._Run, "commit", commit)
    data = csv_text([person(i, notes="x" * 300) for i in range(1000)]).encode()  # > the child's read-ahead
    job = contacts_import(team=team, file=io.BytesIO(data), filename="big.csv")
    assert job.total_rows == job.rows_done == 1000 and job.bytes_done == job.size_bytes
    assert [total for total, _, _ in seen] == [None] * 10  # not counted beforehand
    percents = [percent for _, _, percent in seen]
    assert percents == sorted(percents) and 0 < percents[0] < 100


def test_a_killed_parser_fails_the_import_and_keeps_the_committed_batches(team, parse_in_child, monkeypatch):
    monkeypatch.setattr(imports_service, "BATCH_ROWS", 10)
    real_commit = imports_service._Run.commit

    def commit(self, *args):
        real_commit(self, *args)
        for child in parse_in_child:
            if child.proc.args[-1] == "outreach.imports.child" and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGKILL)

    monkeypatch.setattr(imports_service._Run, "commit", commit)
    monkeypatch.setattr(imports_service, "QUEUED_BATCHES", 1)
    data = csv_text([person(i) for i in range(3000)]).encode()  # more than the pipes and queue hold
    job = contacts_import(team=team, file=io.BytesIO(data), filename="big.csv")
    assert job.status == ImportJob.Status.FAILED
    assert "parsing process stopped" in job.error_message
    assert 0 < job.rows_done < 3000 and job.rows_done % 10 == 0
    assert Contact.objects.filter(team=team).count() == job.created_count == job.rows_done


def test_a_bug_in_the_child_is_reported_not_hidden(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"Email,Name\r\na@example.com,Ann\r\n")
    fmt = FileFormat("utf-8", ",", ["Email", "Name"])
    spec = {"format": {**fmt.__dict__, "no_such_field": True},  # FileFormat(**...) raises TypeError in the child
            "parser": parsing.parser_spec(headers=fmt.headers, mapping=["email", ""], postgres=True),
            "skip": 0, "rows": 10, "chars": 1000, "settings": {"USE_I18N": True, "LANGUAGE_CODE": "en-us"}}
    child = parsing.ChildParser(open_source=lambda: open(path, "rb"), spec=spec)
    try:
        with pytest.raises(parsing.ChildParserError, match="TypeError"):
            list(child.messages())
    finally:
        child.close()
    assert child.proc.returncode is not None

