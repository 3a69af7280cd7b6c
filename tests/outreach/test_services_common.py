"""model_update (outreach.services.common): only changed fields are written, after full_clean."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from outreach.models import Lead
from outreach.services.common import model_update
from tests.factories import make_contact, make_lead, make_team, make_user

pytestmark = pytest.mark.django_db


def test_writes_only_the_changed_fields_and_updated_at():
    contact = make_contact(make_team(), first_name="Ann", company="Acme")
    before = contact.updated_at
    with CaptureQueriesContext(connection) as queries:
        _, updated = model_update(contact, fields=["first_name", "company"], data={"first_name": "Anna", "company": "Acme"})
    assert updated and contact.updated_at > before
    update = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(update) == 1 and '"first_name"' in update[0] and '"company"' not in update[0]
    contact.refresh_from_db()
    assert (contact.first_name, contact.company) == ("Anna", "Acme")


def test_no_change_writes_nothing_and_other_keys_are_ignored():
    contact = make_contact(make_team(), first_name="Ann")
    with CaptureQueriesContext(connection) as queries:
        _, updated = model_update(contact, fields=["first_name"], data={"first_name": "Ann", "last_name": "Lee"})
    assert not updated and not queries.captured_queries and contact.last_name == ""


def test_a_foreign_key_takes_an_object_or_an_id():
    team = make_team()
    lead = make_lead(make_contact(team))
    owner = make_user(team)
    assert model_update(lead, fields=["owner"], data={"owner": owner})[1]
    assert Lead.objects.get(pk=lead.pk).owner_id == owner.pk
    assert not model_update(lead, fields=["owner"], data={"owner": owner.pk})[1]


def test_an_invalid_value_is_refused_and_nothing_saved():
    lead = make_lead(make_contact(make_team()))
    with pytest.raises(ValidationError) as err:
        model_update(lead, fields=["status"], data={"status": "maybe"})
    assert "status" in err.value.message_dict
    assert Lead.objects.get(pk=lead.pk).status == Lead.Status.NEW


def test_an_unknown_field_is_a_programming_error():
    contact = make_contact(make_team())
    with pytest.raises(ValueError, match="no concrete field 'nickname'"):
        model_update(contact, fields=["nickname"], data={"nickname": "x"})


# --- model_create: a create accepts exactly what an edit accepts -------------------------------

def test_contact_create_refuses_what_an_edit_refuses_and_writes_nothing():
    from outreach.models import Contact, TimelineEvent
    from outreach.services.contacts import contact_create

    team = make_team()
    for data, field in (({"first_name": "x" * 151}, "first_name"),
                        ({"linkedin_url": "not a url"}, "linkedin_url")):
        with pytest.raises(ValidationError) as err:
            contact_create(team=team, data={"email": "ann@example.com", **data})
        assert field in err.value.message_dict
    assert not Contact.objects.exists() and not TimelineEvent.objects.exists()
    # The same values pass once they are valid, and a create with the bare address still works.
    contact = contact_create(team=team, data={"email": "ann@example.com", "first_name": "x" * 150})
    assert contact.pk and TimelineEvent.objects.filter(contact=contact).count() == 1


def test_lead_create_refuses_an_unknown_status_and_writes_nothing():
    from outreach.models import TimelineEvent
    from outreach.services.contacts import lead_create

    team = make_team()
    contact = make_contact(team)
    events = TimelineEvent.objects.count()
    with pytest.raises(ValidationError) as err:
        lead_create(team=team, contact=contact, data={"status": "bogus"})
    assert "status" in err.value.message_dict
    assert not Lead.objects.exists() and TimelineEvent.objects.count() == events


def test_model_create_checks_fields_but_leaves_uniqueness_to_the_database():
    from django.db import IntegrityError, transaction

    from outreach.models import Contact
    from outreach.services.common import model_create

    team = make_team()
    model_create(Contact, team=team, email="ann@example.com")
    with pytest.raises(ValidationError):
        model_create(Contact, team=team, email="ann@example.com", phone="1" * 51)
    with CaptureQueriesContext(connection) as queries, pytest.raises(IntegrityError), transaction.atomic():
        model_create(Contact, team=team, email="ann@example.com")
    # No SELECT before the INSERT: neither the team relation nor the unique email is looked up.
    assert [q["sql"].split()[0] for q in queries.captured_queries if not q["sql"].startswith("SAVEPOINT")][:1] == ["INSERT"]
