"""Fixtures for the import tests: teams, users, a temporary MEDIA_ROOT and an import helper that
asserts count conservation on every run."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from outreach.models import ImportJob
from outreach.imports.services import contacts_import
from outreach.services.teams import team_add_member, team_create_with_owner


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def team_and_owner(db):
    return team_create_with_owner(team_name="Acme", username="alice", email="alice@acme.test", password="pw-Acme-123!")


@pytest.fixture
def team(team_and_owner):
    return team_and_owner[0]


@pytest.fixture
def owner(team_and_owner):
    return team_and_owner[1]


@pytest.fixture
def other_team(db):
    team, _ = team_create_with_owner(team_name="Globex", username="gary", email="gary@globex.test", password="pw-Globex-123!")
    return team


@pytest.fixture
def member(team):
    return team_add_member(team=team, username="bob", email="bob@acme.test", password="pw-Bob-123!")


def assert_conserved(job: ImportJob) -> None:
    """created + updated + unchanged + rejected == data rows, for a finished job."""
    assert job.status == ImportJob.Status.DONE, job.error_message
    assert job.total_rows is not None
    assert job.created_count + job.updated_count + job.unchanged_count + job.rejected_count == job.total_rows, job.counts()
    assert job.rows_done == job.total_rows


@pytest.fixture
def run_import(team):
    """``run_import(data_or_path, team=..., **options) -> ImportJob``: runs contacts_import in-process
    and asserts count conservation."""

    def run(data, *, team=team, filename="contacts.csv", **options) -> ImportJob:
        raw = Path(data).read_bytes() if isinstance(data, Path) else data
        job = contacts_import(team=team, file=io.BytesIO(raw), filename=filename, **options)
        assert_conserved(job)
        return job

    return run


def read_report(job: ImportJob) -> list[list[str]]:
    """The job's error report (through the storage API) as CSV rows, header first."""
    with job.error_report.storage.open(job.error_report.name, "rb") as fh:
        return list(csv.reader(io.StringIO(fh.read().decode("utf-8-sig"), newline="")))
