"""The import service: duplicates and policies, rejected rows, tenant isolation, suppressions,
leads, timeline, error report, progress/cancel, task dispatch, batch atomicity."""
from __future__ import annotations

import io
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from outreach.imports.report import escape_cell
from outreach.models import Contact, ImportJob, Lead, Suppression, TimelineEvent
from outreach.imports import services as imports_service
from outreach.services.contacts import contact_create
from outreach.imports.services import contacts_import, import_job_cancel, import_job_create, import_job_run, import_job_start
from outreach.imports.selectors import contact_imported_event, import_job_progress
from outreach.selectors import contact_timeline, external_id_values

from .conftest import read_report

from .conftest import assert_conserved
from .fixtures import csv_text

H = ["Email", "First Name", "Last Name", "Company", "Phone", "Notes"]


def rows_csv(rows) -> bytes:
    return csv_text(rows, header=H).encode()


@pytest.fixture
def existing(team):
    return contact_create(team=team, data={"email": "Known@Example.com", "first_name": "Kim", "last_name": "",
                                           "company": "OldCo", "custom_fields": {"Notes": "old note"}})


FILE = [
    ["known@example.com", "Kimberly", "Known", "NewCo", "", "new note"],   # DB duplicate
    ["new@example.com", "Nina", "", "", "", ""],                           # created
    ["NEW@example.com", "Nina", "Newton", "", "555", ""],                  # in-file duplicate, other case
]


@pytest.mark.parametrize("policy,expected_counts,kim,nina", [
    ("skip", dict(created=1, updated=0, unchanged=2), ("Kim", "", "OldCo", "old note"), ("Nina", "", "")),
    ("update", dict(created=1, updated=2, unchanged=0), ("Kimberly", "Known", "NewCo", "new note"), ("Nina", "Newton", "555")),
    ("fill", dict(created=1, updated=2, unchanged=0), ("Kim", "Known", "OldCo", "old note"), ("Nina", "Newton", "555")),
])
def test_duplicates_in_file_and_db_under_each_policy(run_import, existing, policy, expected_counts, kim, nina):
    job = run_import(rows_csv(FILE), policy=policy)
    assert {k: job.counts()[k] for k in expected_counts} == expected_counts
    assert job.rejected_count == 0
    k = Contact.objects.get(pk=existing.pk)
    assert (k.first_name, k.last_name, k.company, k.custom_fields["Notes"]) == kim
    n = Contact.objects.get(team=job.team, email="new@example.com")
    assert (n.first_name, n.last_name, n.phone) == nina
    assert Contact.objects.filter(team=job.team).count() == 2


def test_same_file_twice_second_run_changes_nothing(run_import):
    first = run_import(rows_csv(FILE), policy="update")
    second = run_import(rows_csv(FILE), policy="update")
    assert first.created_count == 2
    assert second.counts() | {"rows": 3} == {**second.counts(), "created": 0, "updated": 0, "unchanged": 3}


def test_blank_cells_never_erase_existing_values(run_import, existing):
    job = run_import(rows_csv([["known@example.com", "", "", "", "", ""]]), policy="update")
    assert job.unchanged_count == 1
    assert Contact.objects.get(pk=existing.pk).company == "OldCo"


def test_rejected_rows_are_reported_with_row_number_and_reason(run_import):
    rows = [
        ["ok@example.com", "A", "", "", "", ""],
        ["not-an-email", "B", "", "", "", ""],
        ["", "C", "", "", "", ""],
        ["two@@example.com", "D", "", "", "", ""],
        ["x@localhost", "E", "", "", "", ""],
        ["fine@example.org", "=HYPERLINK(\"http://evil\")", "+1", "-2", "@SUM(A1)", "\tTab"],
        ["evil@example.com", "F" * 151, "", "", "", ""],  # first name longer than the field
    ]
    job = run_import(rows_csv(rows))
    assert (job.created_count, job.rejected_count) == (2, 5)
    report = read_report(job)
    assert report[0] == ["spreadsheet row", "line", "outcome", "problem", *H]
    by_row = {int(r[0]): r for r in report[1:]}
    assert set(by_row) == {3, 4, 5, 6, 8}  # as Excel numbers them: the header is row 1
    assert by_row[3][1] == "3"  # physical line (header is line 1)
    assert {r[2] for r in report[1:]} == {"rejected"}
    assert by_row[3][3] == "not-an-email is not a valid email address: An email address must have an @-sign."
    assert by_row[4][3] == "The email address is missing."
    assert "First name is longer than 150" in by_row[8][3]
    assert Contact.objects.get(team=job.team, email="fine@example.org").first_name == '=HYPERLINK("http://evil")'


def test_error_report_escapes_formula_cells(run_import):
    rows = [["=cmd|' /C calc'!A0", "=1+1", "+1", "-1", "@SUM(1)", "\t=x"]]
    job = run_import(rows_csv(rows))
    assert job.rejected_count == 1
    row = read_report(job)[1]
    assert row[4:] == ["'=cmd|' /C calc'!A0", "'=1+1", "'+1", "'-1", "'@SUM(1)", "'=x"]  # cells are stripped: the tab goes, the = is escaped
    assert "is not a valid email address" in row[3]
    for cell in row:
        assert not cell or cell[0] not in "=+-@\t\r"


@pytest.mark.parametrize("value,expected", [("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@a", "'@a"),
                                            ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=1", "a=1"), ("", "")])
def test_escape_cell(value, expected):
    assert escape_cell(value) == expected


def test_unreadable_line_and_extra_columns_are_rejected(run_import):
    text = 'Email,Name\r\na@example.com,A\r\nb@example.com,B,unexpected\r\nc@example.com,C,\r\nd@example.com,"' + "x" * (1024 * 1024 + 1) + '"\r\n'
    job = run_import(text.encode())
    assert (job.created_count, job.rejected_count) == (2, 2)


def test_no_email_column_is_a_clear_error_before_anything_is_written(team, media_root):
    data = csv_text([["Ann", "Acme"]], header=["Name", "Company"]).encode()
    with pytest.raises(ValidationError) as err:
        contacts_import(team=team, file=io.BytesIO(data), filename="no-email.csv")
    assert "No column is mapped to Email" in " ".join(err.value.messages)
    assert not Contact.objects.exists() and not ImportJob.objects.exists()
    assert not list(media_root.rglob("*.csv"))


def test_a_column_with_another_name_can_be_mapped_to_email(run_import):
    data = csv_text([["ann@example.com", "Ann"]], header=["Correo", "Nombre"]).encode()
    job = run_import(data, mapping={"Correo": "email", "Nombre": "first_name"})
    assert Contact.objects.get(team=job.team).first_name == "Ann"


def test_tenant_isolation_same_emails_in_two_teams(run_import, team, other_team):
    theirs = contact_create(team=other_team, data={"email": "known@example.com", "first_name": "Theirs", "company": "Globex"})
    job = run_import(rows_csv(FILE), team=team, policy="update")
    assert job.created_count == 2 and job.updated_count == 1  # "known@" is new for this team
    theirs.refresh_from_db()
    assert (theirs.first_name, theirs.company) == ("Theirs", "Globex")
    assert Contact.objects.filter(team=other_team).count() == 1
    assert not TimelineEvent.objects.filter(team=other_team).exclude(kind=TimelineEvent.Kind.CONTACT_CREATED).exists()
    assert Contact.objects.filter(team=team, email="known@example.com").get().first_name == "Kimberly"


def test_suppressed_addresses_are_imported_and_marked(run_import, team):
    Suppression.objects.create(team=team, email="new@example.com", reason=Suppression.Reason.UNSUBSCRIBE)
    job = run_import(rows_csv(FILE), policy="update")
    assert job.suppressed_count == 2  # both rows of new@example.com
    contact = Contact.objects.get(team=team, email="new@example.com")
    events = list(contact.timeline_events.order_by("id"))
    assert events[0].data["suppressed"] is True and "suppression list" in events[0].summary
    assert not Contact.objects.get(team=team, email="known@example.com").timeline_events.filter(data__suppressed=True).exists()


def test_timeline_shows_where_each_contact_came_from(run_import, team):
    job = run_import(rows_csv(FILE), policy="update", name="HubSpot export")
    contact = Contact.objects.get(team=team, email="new@example.com")
    assert contact.source == "HubSpot export"
    entries = contact_timeline(contact=contact).entries  # newest first, as the contact page shows it
    kinds = [(e.event.kind, e.event.summary, e.event.data["row"]) for e in reversed(entries)]
    assert kinds[0] == (TimelineEvent.Kind.CONTACT_IMPORTED, "Imported from HubSpot export (row 3).", 3)
    assert kinds[1][0] == TimelineEvent.Kind.CONTACT_UPDATED and kinds[1][2] == 4  # spreadsheet rows
    assert entries[-1].event.data["import_id"] == job.pk and entries[-1].event.pk is None  # derived, not stored
    # Created contacts carry the import reference; only updates are stored events.
    assert TimelineEvent.objects.filter(team=team, data__import_id=job.pk).count() == 1
    assert Contact.objects.filter(team=team, import_job=job).count() == 2


def test_as_leads_with_owner_status_and_vendor_ids(run_import, team, member):
    data = csv_text([["a@example.com", "L1", "D1"], ["b@example.com", "", ""], ["A@example.com", "", ""]],
                    header=["email", "leadId", "deal_id"]).encode()
    job = run_import(data, as_leads=True, lead_status="contacted", lead_owner=member, name="Apollo")
    assert job.leads_created_count == 2
    lead = Lead.objects.get(contact__email="a@example.com")
    assert (lead.status, lead.owner, lead.source) == ("contacted", member, "Apollo")
    assert external_id_values(contact=lead.contact, object="lead") == {"lemlist_lead_id": "L1", "leadlex_deal_id": "D1"}
    assert lead.contact.timeline_events.filter(kind=TimelineEvent.Kind.LEAD_CREATED).count() == 1
    again = run_import(data, as_leads=True)
    assert again.leads_created_count == 0 and Lead.objects.count() == 2


def test_lead_owner_from_another_team_is_refused(team, other_team):
    other_owner = other_team.memberships.get().user
    with pytest.raises(ValidationError, match="member of your team"):
        contacts_import(team=team, file=io.BytesIO(rows_csv(FILE)), as_leads=True, lead_owner=other_owner)
    assert not Contact.objects.exists()


def test_batches_larger_files_and_resumes_after_the_last_committed_batch(run_import, team, monkeypatch):
    monkeypatch.setattr(imports_service, "BATCH_ROWS", 7)
    rows = [[f"p{i}@example.com", f"P{i}", "", "", "", ""] for i in range(40)] + [["P3@EXAMPLE.COM", "", "", "", "", ""]]
    job = run_import(rows_csv(rows))
    assert (job.created_count, job.unchanged_count) == (40, 1)
    # A re-delivered task resumes: pretend the first 14 rows were committed by an earlier run.
    job2 = import_job_create(team=team, file=io.BytesIO(rows_csv(rows)), filename="again.csv")
    ImportJob.objects.filter(pk=job2.pk).update(status="running", rows_done=14, unchanged_count=14)
    job2 = import_job_run(import_job_id=job2.pk)
    assert_conserved(job2)
    assert TimelineEvent.objects.filter(data__import_id=job2.pk).count() == 0  # all unchanged


def test_a_failing_batch_is_rolled_back_and_earlier_batches_stay(team, monkeypatch):
    monkeypatch.setattr(imports_service, "BATCH_ROWS", 5)
    from outreach.imports import writing

    real_write = writing.BatchWriter.write
    calls = {"n": 0}

    def flaky_write(self, rows, now):
        calls["n"] += 1
        result = real_write(self, rows, now)
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return result

    monkeypatch.setattr(writing.BatchWriter, "write", flaky_write)
    rows = [[f"p{i}@example.com", "", "", "", "", ""] for i in range(12)]
    job = contacts_import(team=team, file=io.BytesIO(rows_csv(rows)))
    assert job.status == ImportJob.Status.FAILED and "database went away" in job.error_message
    assert job.rows_done == 5 and job.created_count == 5
    assert Contact.objects.filter(team=team).count() == 5  # nothing of the failed batch
    assert Contact.objects.filter(team=team, import_job=job, import_row__lte=6).count() == 5
    assert not TimelineEvent.objects.filter(team=team).exists()


def test_start_dispatches_the_task_after_commit_and_the_task_runs_it(team, owner, django_capture_on_commit_callbacks, monkeypatch):
    from outreach.imports import tasks

    sent = []
    monkeypatch.setattr(tasks.import_contacts_run, "delay", lambda job_id: sent.append(job_id) or type("R", (), {"id": "t-1"})())
    job = import_job_create(team=team, file=io.BytesIO(rows_csv(FILE)), filename="x.csv", user=owner)
    assert job.status == ImportJob.Status.UPLOADED and job.mapping[:3] == ["email", "first_name", "last_name"]
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_start(job=job, mapping=job.mapping, policy="skip")
    assert sent == [job.pk] and job.status == ImportJob.Status.QUEUED
    assert tasks.import_contacts_run.run(job.pk) == "done"
    job.refresh_from_db()
    assert_conserved(job)
    assert job.task_id == "t-1"
    with pytest.raises(ValidationError, match="already been started"):
        import_job_start(job=job, mapping=job.mapping, policy="skip")


def test_progress_and_cancel(team, monkeypatch):
    monkeypatch.setattr(imports_service, "BATCH_ROWS", 10)
    rows = [[f"p{i}@example.com", "", "", "", "", ""] for i in range(100)]
    job = import_job_create(team=team, file=io.BytesIO(rows_csv(rows)), filename="x.csv")
    import_job_start(job=job, mapping=job.mapping, policy="skip")
    from outreach.imports import writing

    real_write = writing.BatchWriter.write
    seen = []

    def write_then_cancel(self, rows_, now):
        result = real_write(self, rows_, now)
        current = ImportJob.objects.get(pk=job.pk)
        seen.append(import_job_progress(job=current))
        if len(seen) == 3:
            import_job_cancel(job=current)  # what the cancel button does while the job runs
        return result

    monkeypatch.setattr(writing.BatchWriter, "write", write_then_cancel)
    job = import_job_run(import_job_id=job.pk)
    assert job.status == ImportJob.Status.CANCELLED
    assert job.rows_done == 30 and job.created_count == 30 and Contact.objects.count() == 30
    assert seen[0]["status"] == "running" and seen[1]["rows_done"] == 10
    progress = import_job_progress(job=job)
    assert progress["finished"] and progress["total_rows"] == 100 and progress["percent"] == 30


def test_cancel_before_start_writes_nothing(team):
    job = import_job_create(team=team, file=io.BytesIO(rows_csv(FILE)), filename="x.csv")
    import_job_start(job=job, mapping=job.mapping, policy="skip")
    job = import_job_cancel(job=job)
    assert job.status == ImportJob.Status.CANCELLED
    assert import_job_run(import_job_id=job.pk).status == ImportJob.Status.CANCELLED
    assert not Contact.objects.exists()


def _in_another_connection(work) -> None:
    """Run ``work()`` in a thread of its own (its own database connection, its own commit)."""
    errors = []

    def run():
        try:
            work()
        except BaseException as err:  # noqa: BLE001 - re-raised below
            errors.append(err)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and not errors, errors


@pytest.mark.django_db(transaction=True)
def test_a_cancel_from_another_connection_keeps_the_batch_that_sees_it_and_starts_no_other(team, monkeypatch):
    """The cancel is read back by the batch's progress UPDATE: the batch running when the user
    cancels is kept and counted, the next one is never written."""
    from outreach.imports import tasks, writing

    monkeypatch.setattr(imports_service, "BATCH_ROWS", 10)
    # Real commits run the on-commit enqueue: keep the job from the suite's live Celery worker.
    monkeypatch.setattr(tasks.import_contacts_run, "delay", lambda job_id: type("R", (), {"id": "t-1"})())
    rows = [[f"p{i}@example.com", "", "", "", "", ""] for i in range(50)]
    job = import_job_create(team=team, file=io.BytesIO(rows_csv(rows)), filename="x.csv")
    import_job_start(job=job, mapping=job.mapping, policy="skip")

    real_write, writes = writing.BatchWriter.write, []

    def write(self, rows_, now):
        writes.append(len(rows_))
        if len(writes) == 2:  # the cancel button, pressed while the second batch is written
            _in_another_connection(lambda: import_job_cancel(job=ImportJob.objects.get(pk=job.pk)))
        return real_write(self, rows_, now)

    monkeypatch.setattr(writing.BatchWriter, "write", write)
    job = import_job_run(import_job_id=job.pk)
    assert job.status == ImportJob.Status.CANCELLED and job.cancel_requested
    assert writes == [10, 10]
    assert job.rows_done == job.created_count == 20 == Contact.objects.filter(team=team).count()


def test_a_redelivered_run_of_a_job_cancelled_while_running_writes_nothing(team):
    job = import_job_create(team=team, file=io.BytesIO(rows_csv(FILE)), filename="x.csv")
    import_job_start(job=job, mapping=job.mapping, policy="skip")
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)  # its worker died mid-run
    assert import_job_cancel(job=job).cancel_requested
    assert import_job_run(import_job_id=job.pk).status == ImportJob.Status.CANCELLED
    assert not Contact.objects.filter(team=team).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path's unique-violation retry")
def test_an_address_another_transaction_inserts_meanwhile_redoes_the_batch(team, monkeypatch):
    """New contacts are COPY'd straight in (no savepoint): when another transaction commits one of
    the batch's new addresses after the batch's lookup, the COPY fails, the batch's transaction is
    rolled back and the batch is planned again, finding that contact as an existing one."""
    from outreach.imports import writing

    real, raced = writing.BatchWriter._write_pg, []

    def write_pg(self, plan, now, suppressed):
        if not raced:
            raced.append(1)
            _in_another_connection(lambda: contact_create(team=team, data={"email": "p3@example.com",
                                                                           "first_name": "Other"}))
        return real(self, plan, now, suppressed)

    monkeypatch.setattr(writing.BatchWriter, "_write_pg", write_pg)
    rows = [[f"p{i}@example.com", f"P{i}", "", "", "", ""] for i in range(10)]
    job = contacts_import(team=team, file=io.BytesIO(rows_csv(rows)), policy="update")
    assert_conserved(job)
    assert (job.created_count, job.updated_count) == (9, 1)
    assert Contact.objects.filter(team=team).count() == 10
    assert Contact.objects.get(team=team, email="p3@example.com").first_name == "P3"


@pytest.mark.django_db(transaction=True)
def test_real_commits_per_batch(monkeypatch):
    """Without the test transaction around it: each batch commits (PostgreSQL's staging tables
    are emptied by the commits), and counts and rows still add up."""
    from outreach.services.teams import team_create_with_owner

    team, _ = team_create_with_owner(team_name="Commit", username="c", email="c@example.com", password="pw-C-12345!")
    monkeypatch.setattr(imports_service, "BATCH_ROWS", 50)
    rows = [[f"p{i % 180}@example.com", f"P{i}", "", "", "", ""] for i in range(200)]
    job = contacts_import(team=team, file=io.BytesIO(rows_csv(rows)), policy="update")
    assert_conserved(job)
    assert (job.created_count, job.updated_count) == (180, 20)
    assert Contact.objects.filter(team=team).count() == 180
    assert TimelineEvent.objects.filter(team=team, data__import_id=job.pk).count() == 20  # the updates
    assert Contact.objects.filter(team=team, import_job=job).count() == 180  # "imported" is derived


def test_backslashes_tabs_and_newlines_survive_the_copy(run_import, team):
    rows = [["slash@example.com", "A\\B", "tab\there", "C:\\new\\table", "", "multi\nline\\N"]]
    job = run_import(rows_csv(rows), name="Import \\ with\ttab")
    contact = Contact.objects.get(team=team)
    assert (contact.first_name, contact.last_name, contact.company) == ("A\\B", "tab\there", "C:\\new\\table")
    assert contact.custom_fields == {"Notes": "multi\nline\\N"}
    assert contact.source == "Import \\ with\ttab"
    assert contact_imported_event(contact=contact).summary == "Imported from Import \\ with\ttab (row 2)."
    assert job.created_count == 1


@pytest.mark.parametrize("custom", [{"City": "Zürich", "Notes": 'say "hi"\\ now\n\ttab\x01'}, {"€": ""}, {"a": "b", "c": "d"}])
def test_custom_fields_json_is_what_json_dumps_writes(custom):
    import json

    from outreach.imports.rows import json_object as _json_object

    assert _json_object(custom) == json.dumps(custom, ensure_ascii=False)
    assert json.loads(_json_object(custom)) == custom


def test_wide_rows_make_smaller_batches_and_the_counts_still_add_up(run_import, team, monkeypatch):
    monkeypatch.setattr(imports_service, "BATCH_TEXT_CHARS", 600)  # a few rows' COPY text
    commits = []
    real_commit = imports_service._Run.commit
    monkeypatch.setattr(imports_service._Run, "commit",
                        lambda self, rows, *rest: commits.append(len(rows)) or real_commit(self, rows, *rest))
    rows = [[f"p{i}@example.com", "Wide" * 20, "", "", "", "x" * 50] for i in range(30)]
    job = run_import(rows_csv(rows))
    assert job.created_count == 30 and len(commits) > 5 and max(commits) < 10
