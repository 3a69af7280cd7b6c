"""Every update service writes through ``model_update`` (outreach.services.common): the changed
columns only (one UPDATE naming them, plus updated_at), nothing when nothing changed, and the
model's own validation (full_clean) on top of the service's rules, keeping each service's words."""
from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from outreach.campaigns.models import Campaign, CampaignStep
from outreach.campaigns.services import VariantData, campaign_create, campaign_step_save, campaign_update
from outreach.message_templates.services import message_template_create, message_template_update
from outreach.models import Contact, Mailbox, MessageTemplate, ProviderAccount
from outreach.services.mailboxes import mailbox_update
from outreach.services.provider_accounts import provider_account_update
from tests.factories import make_mailbox, make_provider_account, make_team

pytestmark = pytest.mark.django_db

#: Send days as the mailbox services store them (a blank "every day" is stored as the seven days).
EVERY_DAY = "0,1,2,3,4,5,6"


def updates(queries, table: str) -> list[str]:
    """The UPDATE statements on ``table`` among the captured queries."""
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f'UPDATE "{table}"')]


def columns(sql: str) -> set[str]:
    """The quoted column names of an UPDATE's SET clause."""
    assignments = sql.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    return {part.split("=", 1)[0].strip().strip('"') for part in assignments.split(", ")}


# --- mailboxes ------------------------------------------------------------------------------------


def test_mailbox_update_writes_only_the_changed_columns(settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    mailbox = make_mailbox(make_team(), sender_name="Ann", smtp_host="127.0.0.1", send_days=EVERY_DAY)
    before = Mailbox.objects.get(pk=mailbox.pk)
    with CaptureQueriesContext(connection) as queries:
        mailbox_update(mailbox=mailbox, data={"sender_name": "Ann Lee", "daily_cap": 20})
    [sql] = updates(queries, "outreach_mailbox")
    assert columns(sql) == {"sender_name", "daily_cap", "updated_at"}
    after = Mailbox.objects.get(pk=mailbox.pk)
    assert (after.sender_name, after.daily_cap, after.provider_config) == ("Ann Lee", 20, before.provider_config)


def test_mailbox_update_without_a_change_writes_nothing(settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    mailbox = make_mailbox(make_team(), sender_name="Ann", smtp_host="127.0.0.1", send_days=EVERY_DAY)
    stamp = Mailbox.objects.get(pk=mailbox.pk).updated_at
    with CaptureQueriesContext(connection) as queries:
        mailbox_update(mailbox=mailbox, data={"sender_name": " Ann ", "smtp_password": ""})
    assert updates(queries, "outreach_mailbox") == []
    assert Mailbox.objects.get(pk=mailbox.pk).updated_at == stamp


def test_mailbox_update_refusal_leaves_the_instance_and_row_alone(settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    mailbox = make_mailbox(make_team(), sender_name="Ann", smtp_host="127.0.0.1", send_days=EVERY_DAY)
    with pytest.raises(ValidationError) as info:
        mailbox_update(mailbox=mailbox, data={"sender_name": "Bob", "sender_email": "not an address"})
    assert set(info.value.message_dict) == {"sender_email"}
    assert mailbox.sender_name == "Ann" and Mailbox.objects.get(pk=mailbox.pk).sender_name == "Ann"


def test_a_mailbox_without_a_sender_name_stays_editable(settings):
    """add_mailbox allows a blank sender name (the From header is then the bare address); the
    model's full_clean must not refuse a later edit of such a mailbox."""
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    mailbox = make_mailbox(make_team(), sender_name="", smtp_host="127.0.0.1", send_days=EVERY_DAY)
    mailbox_update(mailbox=mailbox, data={"daily_cap": 7})
    assert Mailbox.objects.get(pk=mailbox.pk).daily_cap == 7


# --- provider accounts ----------------------------------------------------------------------------


def test_provider_account_update_writes_the_name_only_and_keeps_the_key():
    account = make_provider_account(make_team(), api_key="sk-old")
    with CaptureQueriesContext(connection) as queries:
        provider_account_update(account=account, name="Renamed", api_key="", base_url="")
    [sql] = updates(queries, "outreach_provideraccount")
    assert columns(sql) == {"name", "updated_at"}
    stored = ProviderAccount.objects.get(pk=account.pk)
    assert (stored.name, stored.api_key) == ("Renamed", "sk-old")
    provider_account_update(account=stored, api_key="sk-new")
    assert ProviderAccount.objects.get(pk=account.pk).api_key == "sk-new"


def test_provider_account_update_checks_the_model_too():
    """A name over the column's 200 characters is a form error (full_clean), not a database error."""
    account = make_provider_account(make_team(), name="Main")
    with pytest.raises(ValidationError) as info:
        provider_account_update(account=account, name="x" * 201)
    assert "200 characters" in info.value.message_dict["name"][0]
    assert ProviderAccount.objects.get(pk=account.pk).name == "Main"


# --- message templates ----------------------------------------------------------------------------


def test_template_update_writes_the_changed_fields_and_keeps_the_duplicate_words():
    team = make_team()
    message_template_create(team=team, data={"name": "Taken", "subject": "Hi", "html_body": "<p>x</p>"})
    template = message_template_create(team=team, data={"name": "Mine", "subject": "Hi", "html_body": "<p>x</p>"})
    with CaptureQueriesContext(connection) as queries:
        message_template_update(template=template, data={"name": "Mine", "subject": "Hello", "html_body": "<p>x</p>"})
    [sql] = updates(queries, "outreach_messagetemplate")
    assert columns(sql) == {"subject", "updated_at"}
    with pytest.raises(ValidationError) as info:
        message_template_update(template=template, data={"name": "Taken", "subject": "Hello", "html_body": "<p>x</p>"})
    assert info.value.message_dict == {"name": ["Your team already has a template named “Taken”."]}
    assert MessageTemplate.objects.get(pk=template.pk).name == "Mine"


# --- campaigns --------------------------------------------------------------------------------------


def test_campaign_update_writes_the_changed_fields_and_keeps_the_duplicate_words():
    team = make_team()
    campaign_create(team=team, data={"name": "Taken"})
    campaign = campaign_create(team=team, data={"name": "Q1"})
    with CaptureQueriesContext(connection) as queries:
        campaign_update(campaign=campaign, data={"name": "Q1", "window_start": datetime.time(10, 0)})
    [sql] = updates(queries, "outreach_campaign")
    assert columns(sql) == {"window_start", "updated_at"}
    with CaptureQueriesContext(connection) as queries:
        campaign_update(campaign=campaign, data={"name": "Q1"})
    assert updates(queries, "outreach_campaign") == []
    with pytest.raises(ValidationError) as info:
        campaign_update(campaign=campaign, data={"name": "Taken"})
    assert info.value.message_dict == {"name": ["Your team already has a campaign named “Taken”."]}
    assert Campaign.objects.get(pk=campaign.pk).name == "Q1"


def test_campaign_step_update_writes_the_changed_fields_only():
    campaign = campaign_create(team=make_team(), data={"name": "Q1"})
    variants = [VariantData(label="A", subject="Hi", html_body="<p>Hi</p>")]
    step = campaign_step_save(campaign=campaign, data={"delay_amount": 0}, variants=variants)
    with CaptureQueriesContext(connection) as queries:
        campaign_step_save(campaign=campaign, step=step, data={"delay_amount": 2, "delay_unit": "days"}, variants=variants)
    [sql] = updates(queries, "outreach_campaignstep")
    assert columns(sql) == {"delay_amount"}
    assert CampaignStep.objects.get(pk=step.pk).delay_amount == 2


# --- internationalised addresses (RFC 6531) --------------------------------------------------------


def test_rows_with_an_internationalised_address_stay_editable(settings):
    """The services accept an SMTPUTF8 local part (normalize_email); the model's full_clean, run by
    model_update on every edit, must accept it too (Django's own EmailValidator would refuse it)."""
    from outreach.services.contacts import contact_update
    from tests.factories import make_contact

    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    team = make_team()
    mailbox = make_mailbox(team, sender_email="jösé@acme.com", smtp_host="127.0.0.1", send_days=EVERY_DAY)
    mailbox_update(mailbox=mailbox, data={"daily_cap": 9})
    assert Mailbox.objects.get(pk=mailbox.pk).daily_cap == 9
    contact = make_contact(team, "zoë@example.com")
    contact_update(contact=contact, data={"company": "Acme"})
    contact.refresh_from_db()
    assert (contact.email, contact.company) == ("zoë@example.com", "Acme")
    with pytest.raises(ValidationError) as info:
        contact_update(contact=contact, data={"email": "zoë@@example.com"})
    assert "is not a valid email address" in " ".join(info.value.messages)
    assert Contact.objects.get(pk=contact.pk).email == "zoë@example.com"


def test_the_admin_address_field_accepts_what_the_services_accept():
    """Admin ModelForms take the model's form field: the same rules as normalize_email."""
    field = Mailbox._meta.get_field("sender_email").formfield()
    assert field.clean("jösé@acme.com") == "jösé@acme.com"
    assert field.max_length == 254
    with pytest.raises(ValidationError):
        field.clean("not an address")
    with pytest.raises(ValidationError):
        field.clean("a@example.com\r\nBcc: x@example.com")
