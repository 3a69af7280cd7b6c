"""Column mapping: which CSV column feeds which Contact/Lead field.

A mapping is a list with one target per column: a key of :data:`TARGETS`, :data:`CUSTOM`
(the column becomes a custom field named after its header) or :data:`IGNORE` ("").
"""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError

IGNORE = ""
CUSTOM = "__custom__"

# target -> label. Contact fields, then Lead fields (used only when importing as leads).
TARGETS: dict[str, str] = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "company": "Company",
    "title": "Job title",
    "phone": "Phone",
    "linkedin_url": "LinkedIn URL",
    "lemlist_contact_id": "lemlist contactId",
    "leadlex_contact_id": "leadlex contact_id",
    "lead.lemlist_lead_id": "lemlist leadId (lead)",
    "lead.leadlex_deal_id": "leadlex deal_id (lead)",
}
CONTACT_TARGETS = tuple(t for t in TARGETS if not t.startswith("lead."))
LEAD_TARGETS = tuple(t for t in TARGETS if t.startswith("lead."))

CHOICES = [(IGNORE, "— ignore —"), *TARGETS.items(), (CUSTOM, "Custom field")]

# Exact header spellings that tell the vendors apart (lemlist is camelCase, leadlex snake_case).
_EXACT = {
    "contactId": "lemlist_contact_id",
    "leadId": "lead.lemlist_lead_id",
    "contact_id": "leadlex_contact_id",
    "deal_id": "lead.leadlex_deal_id",
    "dealId": "lead.leadlex_deal_id",
}

# Headers reduced to lower-case letters and digits.
_NORMALIZED = {
    "email": "email", "emailaddress": "email", "mail": "email", "workemail": "email", "businessemail": "email",
    "contactemail": "email", "primaryemail": "email", "emailaddress1": "email", "professionalemail": "email",
    "firstname": "first_name", "first": "first_name", "givenname": "first_name", "fname": "first_name",
    "prenom": "first_name", "forename": "first_name",
    "lastname": "last_name", "last": "last_name", "surname": "last_name", "familyname": "last_name",
    "lname": "last_name", "nom": "last_name",
    "company": "company", "companyname": "company", "organization": "company", "organisation": "company",
    "account": "company", "accountname": "company", "employer": "company", "organizationname": "company",
    "title": "title", "jobtitle": "title", "position": "title", "role": "title", "jobrole": "title",
    "phone": "phone", "phonenumber": "phone", "mobile": "phone", "mobilephone": "phone", "telephone": "phone",
    "tel": "phone", "workphone": "phone", "directphone": "phone", "phone1": "phone", "mobilenumber": "phone",
    "linkedin": "linkedin_url", "linkedinurl": "linkedin_url", "linkedinprofile": "linkedin_url",
    "linkedinprofileurl": "linkedin_url", "personlinkedinurl": "linkedin_url", "linkedinlink": "linkedin_url",
    "lemlistcontactid": "lemlist_contact_id", "lemlistleadid": "lead.lemlist_lead_id",
    "leadlexcontactid": "leadlex_contact_id", "leadlexdealid": "lead.leadlex_deal_id",
    "contactid": "lemlist_contact_id", "leadid": "lead.lemlist_lead_id", "dealid": "lead.leadlex_deal_id",
}


def _normalize(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def guess_target(header: str) -> str:
    """The target for one header name, or IGNORE when it is not recognised."""
    header = header.strip()
    if header in _EXACT:
        return _EXACT[header]
    key = _normalize(header)
    if key in _NORMALIZED:
        return _NORMALIZED[key]
    # Suffixed duplicates ("Email_2") and prefixed exports ("Contact Email") are not guessed:
    # the first plain match wins and the user can change it in the mapping step.
    return IGNORE


def guess_mapping(headers: list[str], *, unmapped_to_custom: bool = True) -> list[str]:
    """One target per header: recognised fields (each at most once, first column wins); the
    rest CUSTOM when ``unmapped_to_custom`` else IGNORE."""
    used: set[str] = set()
    mapping = []
    for header in headers:
        target = guess_target(header)
        if target and target not in used:
            used.add(target)
            mapping.append(target)
        else:
            mapping.append(CUSTOM if unmapped_to_custom else IGNORE)
    return mapping


def validate_mapping(headers: list[str], mapping: list[str]) -> list[str]:
    """Check a mapping against the headers; returns it. Raises ValidationError when a target is
    unknown, a field is mapped twice, or no column is mapped to Email."""
    if len(mapping) != len(headers):
        raise ValidationError("The mapping does not match the file's columns.")
    seen: dict[str, str] = {}
    for header, target in zip(headers, mapping):
        if target not in TARGETS and target not in (IGNORE, CUSTOM):
            raise ValidationError(f"Unknown field {target!r} for column {header!r}.")
        if target in TARGETS:
            if target in seen:
                raise ValidationError(f"{TARGETS[target]} is mapped twice (columns {seen[target]!r} and {header!r}).")
            seen[target] = header
    if "email" not in seen:
        raise ValidationError(
            "No column is mapped to Email. Every contact needs an email address: pick the column that holds it "
            f"(columns: {', '.join(headers[:20])}{'…' if len(headers) > 20 else ''}).")
    return mapping


def mapping_from_json(headers: list[str], spec: dict[str, str]) -> list[str]:
    """Build a mapping from ``{header: target}`` (headers not named keep their guessed target).

    Targets may be field names, ``custom`` or ``ignore``. Raises ValidationError for an unknown header.
    """
    mapping = guess_mapping(headers)
    index = {h.lower(): i for i, h in enumerate(headers)}
    for header, target in spec.items():
        if header.lower() not in index:
            raise ValidationError(f"The file has no column {header!r}.")
        target = {"custom": CUSTOM, "ignore": IGNORE, "": IGNORE}.get(target, target)
        mapping[index[header.lower()]] = target
    return mapping
