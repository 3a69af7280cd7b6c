"""Imports write vendor ids (ExternalId rows) under the duplicate policies, in bulk."""
from __future__ import annotations

import pytest

from outreach.models import Contact, ExternalId
from outreach.selectors import external_id_values
from tests.factories import make_contact, make_lead

from .fixtures import csv_text

pytestmark = pytest.mark.django_db

HEADER = ["Email", "contactId", "contact_id"]


def _ids(team, email):
    return external_id_values(contact=Contact.objects.get(team=team, email=email), object="contact")


@pytest.mark.parametrize("policy,expected", [
    ("skip", {"lemlist_contact_id": "ctc_old"}),
    ("fill", {"lemlist_contact_id": "ctc_old", "leadlex_contact_id": "cont_new"}),
    ("update", {"lemlist_contact_id": "ctc_new", "leadlex_contact_id": "cont_new"}),
])
def test_policies_apply_to_vendor_ids_like_to_other_fields(run_import, team, policy, expected):
    make_contact(team, email="known@example.com", lemlist_contact_id="ctc_old")
    data = csv_text([["known@example.com", "ctc_new", "cont_new"], ["new@example.com", "", "cont_2"]], header=HEADER)
    job = run_import(data.encode(), policy=policy)
    assert job.created_count == 1
    assert _ids(team, "known@example.com") == expected
    assert _ids(team, "new@example.com") == {"leadlex_contact_id": "cont_2"}
    if policy != "skip":
        event = Contact.objects.get(email="known@example.com").timeline_events.get(kind="contact_updated")
        assert set(event.data["fields"]) == set(expected) - ({"lemlist_contact_id"} if policy == "fill" else set())


def test_blank_id_cells_never_erase_ids(run_import, team):
    make_contact(team, email="known@example.com", lemlist_contact_id="ctc_old")
    job = run_import(csv_text([["known@example.com", "", ""]], header=HEADER).encode(), policy="update")
    assert job.unchanged_count == 1 and _ids(team, "known@example.com") == {"lemlist_contact_id": "ctc_old"}


def test_a_new_leads_ids_are_written_an_existing_leads_are_kept(run_import, team):
    old = make_lead(make_contact(team, email="lead@example.com"), lemlist_lead_id="lea_old")
    data = csv_text([["lead@example.com", "lea_new"], ["fresh@example.com", "lea_2"]], header=["Email", "leadId"])
    job = run_import(data.encode(), as_leads=True)
    assert job.leads_created_count == 1
    assert external_id_values(contact=old.contact, object="lead") == {"lemlist_lead_id": "lea_old"}
    fresh = Contact.objects.get(email="fresh@example.com")
    assert external_id_values(contact=fresh, object="lead") == {"lemlist_lead_id": "lea_2"}
    assert ExternalId.objects.filter(team=team).count() == 2


def test_an_id_longer_than_the_column_rejects_the_row(run_import, team):
    job = run_import(csv_text([["a@example.com", "x" * 256, ""]], header=HEADER).encode())
    assert job.rejected_count == 1 and not ExternalId.objects.exists()
