"""Forms of the sales UI: parsing and validation only (writes are the services' job)."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict

from outreach.forms import (
    ComposeForm,
    ContactForm,
    LeadForm,
    MultipleFileField,
    format_custom_fields,
    parse_custom_fields,
)
from tests.factories import make_mailbox, make_team_user, make_user


# --- Custom fields ---------------------------------------------------------------------------


def test_parse_custom_fields():
    assert parse_custom_fields("industry: SaaS\n\n  size :  50-200 \nurl: https://x.com/a:b") == {
        "industry": "SaaS", "size": "50-200", "url": "https://x.com/a:b"}
    assert parse_custom_fields("") == {}
    assert parse_custom_fields("empty:") == {"empty": ""}


@pytest.mark.parametrize("text, message", [
    ("good: 1\nno colon", "Line 2 is not “key: value”: no colon"),
    (": value", "Line 1 is not “key: value”: : value"),
    ("a: 1\na: 2", "Line 2 repeats the key “a”."),
])
def test_parse_custom_fields_rejects_malformed_lines(text, message):
    with pytest.raises(ValidationError) as info:
        parse_custom_fields(text)
    assert info.value.messages == [message]


def test_custom_fields_round_trip():
    data = {"industry": "SaaS", "size": "50-200"}
    assert parse_custom_fields(format_custom_fields(data)) == data


# --- Contact form ------------------------------------------------------------------------------


def test_contact_form_normalizes_email_and_parses_custom_fields():
    form = ContactForm({"email": "  Ann.Lee@Example.COM ", "custom_fields": "k: v", "linkedin_url": "linkedin.com/in/ann"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["email"] == "ann.lee@example.com"
    assert form.cleaned_data["custom_fields"] == {"k": "v"}
    assert form.cleaned_data["linkedin_url"] == "https://linkedin.com/in/ann"


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b.com\r\nBcc: x@y.com"])
def test_contact_form_rejects_bad_email(email):
    form = ContactForm({"email": email})
    assert not form.is_valid()
    assert "email" in form.errors


def test_contact_form_malformed_custom_field_is_inline():
    form = ContactForm({"email": "a@example.com", "custom_fields": "nocolon"})
    assert not form.is_valid()
    assert list(form.errors) == ["custom_fields"]


# --- Lead form ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_lead_form_owner_limited_to_team():
    team, member = make_team_user()
    outsider = make_user(make_team_user()[0])
    assert LeadForm({"status": "new", "owner": member.pk}, team=team).is_valid()
    form = LeadForm({"status": "new", "owner": outsider.pk}, team=team)
    assert not form.is_valid() and "owner" in form.errors
    assert not LeadForm({"status": "bogus"}, team=team).is_valid()


# --- Compose form ------------------------------------------------------------------------------


def test_multiple_file_field_cleans_lists():
    field = MultipleFileField(required=False)
    a, b = SimpleUploadedFile("a.txt", b"a"), SimpleUploadedFile("b.txt", b"bb")
    assert field.clean([a, b]) == [a, b]
    assert field.clean(a) == [a]
    assert field.clean(None) == []
    with pytest.raises(ValidationError):
        MultipleFileField(required=True).clean([])
    assert 'multiple' in field.widget.render("attachments", None)


@pytest.mark.django_db
def test_compose_form_parses_addresses_and_takes_several_files():
    team, _ = make_team_user()
    mailbox = make_mailbox(team)
    files = MultiValueDict({"attachments": [SimpleUploadedFile("a.txt", b"a"), SimpleUploadedFile("b.txt", b"b")]})
    form = ComposeForm({"mailbox": mailbox.pk, "subject": "Hi", "html_body": "<p>x</p>", "cc": "A@x.com; b@x.com, A@x.com",
                        "bcc": "", "reply_to": "R@x.com"}, files, team=team)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["cc"] == ["a@x.com", "b@x.com"]
    assert form.cleaned_data["bcc"] == []
    assert form.cleaned_data["reply_to"] == "r@x.com"
    assert [f.name for f in form.cleaned_data["attachments"]] == ["a.txt", "b.txt"]


@pytest.mark.django_db
@pytest.mark.parametrize("field, value", [
    ("subject", "Hi\r\nBcc: evil@x.com"),
    ("subject", "Hi\nthere"),
    ("cc", "a@x.com\r\nBcc: evil@x.com"),
    ("reply_to", "r@x.com\nBcc: evil@x.com"),
])
def test_compose_form_refuses_line_breaks_in_headers(field, value):
    team, _ = make_team_user()
    mailbox = make_mailbox(team)
    data = {"mailbox": mailbox.pk, "subject": "Hi", "html_body": "<p>x</p>", field: value}
    form = ComposeForm(data, team=team)
    assert not form.is_valid()
    assert field in form.errors


@pytest.mark.django_db
def test_compose_form_offers_only_the_teams_active_mailboxes():
    team, _ = make_team_user()
    active, inactive = make_mailbox(team), make_mailbox(team, is_active=False)
    foreign = make_mailbox(make_team_user()[0])
    choices = set(ComposeForm(team=team).fields["mailbox"].queryset)
    assert choices == {active}
    assert inactive not in choices and foreign not in choices
