"""Header recognition and the fast email check."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from outreach.imports.emails import EmailChecker
from outreach.imports.mapping import CUSTOM, IGNORE, guess_mapping, guess_target, validate_mapping
from outreach.validation import normalize_email


@pytest.mark.parametrize("header,target", [
    ("Email", "email"), ("E-mail", "email"), ("Email Address", "email"), ("email", "email"), ("EMAIL_ADDRESS", "email"),
    ("firstName", "first_name"), ("First Name", "first_name"), ("last_name", "last_name"), ("Surname", "last_name"),
    ("Company", "company"), ("companyName", "company"), ("Company Name", "company"), ("Organization", "company"),
    ("Job Title", "title"), ("jobTitle", "title"), ("Title", "title"),
    ("LinkedIn URL", "linkedin_url"), ("linkedinUrl", "linkedin_url"), ("Person Linkedin Url", "linkedin_url"),
    ("Phone", "phone"), ("Phone Number", "phone"), ("Mobile Phone", "phone"),
    ("contactId", "lemlist_contact_id"), ("leadId", "lead.lemlist_lead_id"),
    ("contact_id", "leadlex_contact_id"), ("deal_id", "lead.leadlex_deal_id"),
    ("lemlist contact id", "lemlist_contact_id"), ("Leadlex Deal ID", "lead.leadlex_deal_id"),
    ("Favourite colour", IGNORE),
])
def test_common_export_headers_are_recognised(header, target):
    assert guess_target(header) == target


def test_guess_mapping_first_column_wins_rest_custom():
    assert guess_mapping(["Email", "Work Email", "City"]) == ["email", CUSTOM, CUSTOM]
    assert guess_mapping(["Email", "City"], unmapped_to_custom=False) == ["email", IGNORE]


def test_validate_mapping_errors():
    with pytest.raises(ValidationError, match="No column is mapped to Email"):
        validate_mapping(["a"], [CUSTOM])
    with pytest.raises(ValidationError, match="mapped twice"):
        validate_mapping(["a", "b"], ["email", "email"])
    with pytest.raises(ValidationError, match="Unknown field"):
        validate_mapping(["a"], ["password"])


SAMPLES = ["John.Doe@Example.COM", "a+tag@sub.example.co.uk", "o'brien@example.ie", "x@localhost", "a@b",
           "a..b@example.com", ".a@example.com", "a@-example.com", "a@example..com", "a@example.com.",
           "a@123.com", "a@example.123", "user@[127.0.0.1]", "\"quoted\"@example.com", "müller@exämple.de",
           "a" * 65 + "@example.com", "a@" + "b" * 64 + ".com", "a@example.invalid", "a@example.local",
           "a@example.test", "a b@example.com", "a@example.com\n", " padded@example.com ", "a@exa_mple.com",
           "{weird}@example.com", "a@xn--mller-kva.de", "A@EXAMPLE.ONION", "root@example.arpa"]


@pytest.mark.parametrize("value", SAMPLES)
def test_fast_email_check_agrees_with_email_validator(value):
    checker = EmailChecker()
    try:
        expected = normalize_email(value)
    except ValidationError:
        expected = None
    try:
        got = checker(value)
    except ValidationError:
        got = None
    assert got == expected
