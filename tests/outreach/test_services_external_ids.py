"""Vendor ids of contacts and leads: the providers' declarations drive the services and the send
(a made-up provider's id needs no edit anywhere), one table, lead ids go with the lead."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from outreach import external_ids
from outreach.forms import ContactForm
from outreach.models import ExternalId
from outreach.selectors import external_id_rows, external_id_values
from outreach.services.contacts import contact_update, lead_update, leads_delete
from outreach.services.external_ids import external_id_set, external_ids_set
from outreach.services.sending import vendor_ids
from providers import registry
from providers.base import ExternalIdKind
from providers.lemlist import LemlistProvider
from tests.factories import make_contact, make_lead, make_team

pytestmark = pytest.mark.django_db


def test_the_declarations_name_the_ids_as_the_documents_do():
    assert [(f.key, f.label, f.object) for f in external_ids.external_id_fields()] == [
        ("lemlist_contact_id", "lemlist contactId", "contact"), ("lemlist_lead_id", "lemlist leadId", "lead"),
        ("leadlex_contact_id", "leadlex contact_id", "contact"), ("leadlex_deal_id", "leadlex deal_id", "lead")]
    with pytest.raises(ValueError, match="'contact' or 'lead'"):
        ExternalIdKind("deal", "deal_id")


@pytest.fixture
def acme_provider(monkeypatch):
    """A made-up provider declaring one contact id, added to the registry only."""

    class AcmeProvider(LemlistProvider):
        name, label = "acme", "Acme"
        external_id_kinds = (ExternalIdKind("contact", "personId"),)

    monkeypatch.setitem(registry.PROVIDERS, "acme", AcmeProvider)
    return AcmeProvider


def test_a_new_providers_id_reaches_form_services_page_and_send_without_other_edits(acme_provider):
    form = ContactForm({"email": "a@example.com", "acme_person_id": " p-1 "})
    assert form.is_valid() and form.fields["acme_person_id"].label == "Acme personId"
    assert "acme_person_id" in [f.name for f in form.external_id_fields]
    contact = make_contact(make_team())
    contact_update(contact=contact, data={"acme_person_id": "p-1"})
    assert ExternalId.objects.get(contact=contact).kind == "personId"
    assert vendor_ids(contact=contact, is_lead=False)["acme_person_id"] == "p-1"
    assert {"label": "Acme personId", "value": "p-1", "object": "contact"} in external_id_rows(contact=contact)


def test_set_changes_only_what_differs_and_a_blank_deletes():
    contact = make_contact(make_team(), lemlist_contact_id="ctc_1", leadlex_contact_id="ll_1")
    changed = external_ids_set(contact=contact, object="contact",
                               values={"lemlist_contact_id": "ctc_1", "leadlex_contact_id": "", "other": "x"})
    assert changed == ["leadlex_contact_id"]
    assert external_id_values(contact=contact, object="contact") == {"lemlist_contact_id": "ctc_1"}
    with pytest.raises(ValidationError) as err:
        external_ids_set(contact=contact, object="contact", values={"lemlist_contact_id": "a\r\nb"})
    assert "lemlist_contact_id" in err.value.message_dict


def test_a_single_id_must_be_declared():
    contact = make_contact(make_team())
    with pytest.raises(ValidationError, match="declares no contact id named 'leadId'"):
        external_id_set(contact=contact, object="contact", provider="lemlist", kind="leadId", value="x")
    row = external_id_set(contact=contact, object="contact", provider="lemlist", kind="contactId", value="c",
                          extra_data={"source": "webhook"})
    assert (row.team_id, row.value, row.extra_data) == (contact.team_id, "c", {"source": "webhook"})
    assert external_id_set(contact=contact, object="contact", provider="lemlist", kind="contactId", value="") is None
    assert not ExternalId.objects.exists()


def test_the_send_carries_a_leads_ids_only_while_it_is_a_lead():
    contact = make_contact(make_team(), lemlist_contact_id="ctc_1")
    lead = make_lead(contact, lemlist_lead_id="lea_1")
    assert vendor_ids(contact=contact, is_lead=True) == {
        "lemlist_contact_id": "ctc_1", "lemlist_lead_id": "lea_1", "leadlex_contact_id": "", "leadlex_deal_id": ""}
    lead_update(lead=lead, data={"leadlex_deal_id": "deal_1"})
    assert external_id_values(contact=contact, object="lead") == {"lemlist_lead_id": "lea_1", "leadlex_deal_id": "deal_1"}
    assert leads_delete(team=contact.team, ids=[lead.pk]) == 1
    assert list(ExternalId.objects.values_list("kind", flat=True)) == ["contactId"]
    assert vendor_ids(contact=contact, is_lead=False)["lemlist_lead_id"] == ""


def test_ids_go_with_the_contact_and_another_teams_delete_touches_nothing():
    contact = make_contact(make_team(), lemlist_contact_id="ctc_1")
    lead = make_lead(contact, lemlist_lead_id="lea_1")
    assert leads_delete(team=make_team(), ids=[lead.pk]) == 0 and ExternalId.objects.count() == 2
    contact.delete()
    assert not ExternalId.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_the_four_columns_into_rows_and_back():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    mine = next(key for key in executor.loader.disk_migrations if key[1].endswith("_external_ids"))
    before = [dep for dep in executor.loader.get_migration(*mine).dependencies if dep[0] == "outreach"]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    team = old.get_model("outreach", "Team").objects.create(name="Old")
    contact = old.get_model("outreach", "Contact").objects.create(
        team=team, email="old@example.com", lemlist_contact_id="ctc_1", leadlex_contact_id="")
    old.get_model("outreach", "Lead").objects.create(team=team, contact=contact, lemlist_lead_id="lea_1",
                                                     leadlex_deal_id="deal_1")
    old.get_model("outreach", "Contact").objects.create(team=team, email="none@example.com")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert sorted(ExternalId.objects.values_list("contact_id", "object", "provider", "kind", "value", "team_id")) == [
        (contact.pk, "contact", "lemlist", "contactId", "ctc_1", team.pk),
        (contact.pk, "lead", "leadlex", "deal_id", "deal_1", team.pk),
        (contact.pk, "lead", "lemlist", "leadId", "lea_1", team.pk)]
    executor = MigrationExecutor(connection)
    executor.migrate(before)  # and back: the columns hold the ids again
    old = executor.loader.project_state(before).apps
    back = old.get_model("outreach", "Lead").objects.select_related("contact").get()
    assert (back.contact.lemlist_contact_id, back.contact.leadlex_contact_id, back.lemlist_lead_id,
            back.leadlex_deal_id) == ("ctc_1", "", "lea_1", "deal_1")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_get_or_create_finds_the_teams_contact_by_address_or_creates_it_once():
    from outreach.models import Contact
    from outreach.services.contacts import contact_get_or_create

    team = make_team()
    existing = make_contact(team, email="ann@example.com")
    assert contact_get_or_create(team=team, email=" Ann@Example.COM ") == (existing, False)
    other = make_team()
    made, created = contact_get_or_create(team=other, email="ann@example.com", source="send_email command")
    assert created and made.team == other and made.source == "send_email command"
    assert made.timeline_events.get().kind == "contact_created"
    assert Contact.objects.filter(email="ann@example.com").count() == 2
    with pytest.raises(ValidationError):
        contact_get_or_create(team=team, email="not-an-address")
