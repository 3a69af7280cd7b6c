"""Column mapping: which CSV column feeds which Contact/Lead field or vendor id.

A mapping is a list with one target per column: a key of :data:`TARGETS`, :data:`CUSTOM`
(the column becomes a custom field named after its header) or :data:`IGNORE` ("").
The vendor-id targets come from the providers' declarations (:mod:`outreach.external_ids`):
a contact's id is its key (``lemlist_contact_id``), a lead's is ``lead.<key>``.
"""
from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError

from ..external_ids import external_id_fields

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
    "time_zone": "Time zone",
    **{f.key: f.label for f in external_id_fields("contact")},
    **{f"lead.{f.key}": f"{f.label} (lead)" for f in external_id_fields("lead")},
}
CONTACT_TARGETS = tuple(t for t in TARGETS if not t.startswith("lead."))
LEAD_TARGETS = tuple(t for t in TARGETS if t.startswith("lead."))

CHOICES = [(IGNORE, "— ignore —"), *TARGETS.items(), (CUSTOM, "Custom field")]


def _id_target(field) -> str:
    return field.key if field.object == "contact" else f"lead.{field.key}"


# Exact header spellings that tell the vendors apart (lemlist is camelCase, leadlex snake_case):
# each declared id's own name and its aliases (the first provider declaring a spelling keeps it).
_EXACT: dict[str, str] = {}
for _field in external_id_fields():
    for _spelling in (_field.kind, *_field.aliases):
        _EXACT.setdefault(_spelling, _id_target(_field))

# The synonyms table: (target, specificity, spellings). Spellings are compared after
# :func:`normalize_header` (lower case, accents and everything but letters and digits removed).
# When several columns name the same field, the most specific wins ("Job Title" 3 over
# "Title" 1; "Email" 3 over "Work Email" 2); on a tie the first column wins. Columns that lose,
# and secondary addresses and phones ("Secondary Email", "E-mail 2 - Value", "Home Phone"),
# become custom fields. Covers the exports of HubSpot, Salesforce (leads, contacts, reports),
# Pipedrive, Apollo, Google Contacts, Outlook, LinkedIn, lemlist, Mailchimp, Zoho CRM, Close,
# Copper, Brevo and plain spreadsheets, in English, French, German and Spanish.
SYNONYMS: list[tuple[str, int, str]] = [
    ("email", 3, "email, emailaddress, mail, emailadresse, emailaddresse, adresseemail, adressemail, "
                 "adresseelectronique, courriel, adressecourriel, correo, correoelectronico, "
                 "direcciondecorreoelectronico, direcciondecorreo, email1, emailaddress1, email1value, "
                 "primaryemail, contactemail, contactprimaryemail, primarycontactemail, personemail, "
                 "personemailwork, emailwork, professionalemail, businessemail, emailprofessionnel"),
    ("email", 2, "workemail, emailbusiness, businessemailaddress, workemailaddress, email1address"),
    ("first_name", 3, "firstname, first, givenname, fname, forename, prenom, vorname, nombre, nombredepila, "
                      "personfirstname, contactfirstname, leadfirstname"),
    ("last_name", 3, "lastname, last, surname, familyname, lname, nom, nomdefamille, nachname, familienname, "
                     "apellido, apellidos, personlastname, contactlastname, leadlastname"),
    ("company", 3, "company, companyname, companyaccount, accountname, organization, organisation, "
                   "organizationname, organization1name, organisationname, personorganization, "
                   "organizationnamename, employer, currentcompany, societe, entreprise, nomdelentreprise, "
                   "firma, firmenname, unternehmen, empresa, compania, nombredelaempresa, leadcompany"),
    ("company", 2, "account, associatedcompany, organizationname1, companyname1, organizacion"),
    ("title", 3, "jobtitle, jobrole, jobposition, organizationtitle, organization1title, persontitle, "
                 "personjobtitle, posttitle, intituledeposte, intituleduposte, titreduposte, poste, fonction, "
                 "berufsbezeichnung, jobtitel, positionjobtitel, cargo, puesto, titulodelpuesto"),
    ("title", 2, "position, role, occupation, designation, stellung"),
    ("title", 1, "title, titre, titel, titulo"),
    ("phone", 3, "phone, phonenumber, telephone, tel, workphone, businessphone, directphone, firstphone, "
                 "workdirectphone, primaryphone, phone1, phone1value, personphonework, personphone, "
                 "telefon, telefonnummer, telefono, numerodetelephone, numerodetelefono, contactprimaryphone, "
                 "primarycontactphone"),
    ("phone", 2, "mobile, mobilephone, mobilenumber, mobilephonenumber, cellphone, cell, portable, "
                 "telephoneportable, handy, mobiltelefon, movil, telefonomovil, celular, sms, corporatephone"),
    ("linkedin_url", 3, "linkedin, linkedinurl, linkedinprofile, linkedinprofileurl, personlinkedinurl, "
                        "linkedinlink, profilelinkedin, linkedinprofil"),
    ("time_zone", 3, "timezone, tz, timezonename, contacttimezone, persontimezone, zeitzone, fuseauhoraire, "
                     "zonahoraria"),
    # Each declared vendor id as "<provider> <kind>" ("lemlist contact id", "Leadlex Deal ID").
    *((_id_target(f), 3, re.sub(r"[^a-z0-9]", "", f"{f.provider}{f.kind}".lower())) for f in external_id_fields()),
]

# Headers that mean something else in one export (its signature header -> overrides, applied
# before everything else). LinkedIn's Connections.csv calls the profile link just "URL"; Close's
# "contact_id"/"lead_id" are Close's own ids, not leadlex's or lemlist's.
_CONTEXT: dict[str, dict[str, tuple[str, int]]] = {
    "connectedon": {"url": ("linkedin_url", 3)},
    "leaddisplayname": {"contactid": (IGNORE, 0), "leadid": (IGNORE, 0)},
}


def _build_table() -> dict[str, tuple[str, int]]:
    table: dict[str, tuple[str, int]] = {}
    for target, score, spellings in SYNONYMS:
        for spelling in spellings.split(","):
            key = spelling.strip()
            assert key == normalize_header(key) and key not in table, key
            table[key] = (target, score)
    return table


def normalize_header(header: str) -> str:
    """``header`` reduced to lower-case ASCII letters and digits ("Prénom" -> "prenom",
    "Person - Email - Work" -> "personemailwork")."""
    text = unicodedata.normalize("NFKD", header.lower())
    return re.sub(r"[^a-z0-9]", "", "".join(ch for ch in text if not unicodedata.combining(ch)).replace("ß", "ss"))


_TABLE = _build_table()


def _guess(header: str, context: dict[str, tuple[str, int]] | None = None) -> tuple[str, int]:
    key = normalize_header(header)
    if context and key in context:
        return context[key]
    header = header.strip()
    if header in _EXACT:
        return _EXACT[header], 4
    return _TABLE.get(key, (IGNORE, 0))


def guess_target(header: str) -> str:
    """The target for one header name, or IGNORE when it is not recognised."""
    return _guess(header)[0]


def guess_mapping(headers: list[str], *, unmapped_to_custom: bool = True) -> list[str]:
    """One target per header: each recognised field at most once — the most specific column
    wins, the first on a tie (see :data:`SYNONYMS`); the rest CUSTOM when
    ``unmapped_to_custom`` else IGNORE."""
    context: dict[str, tuple[str, int]] = {}
    keys = {normalize_header(h) for h in headers}
    for signature, overrides in _CONTEXT.items():
        if signature in keys:
            context.update(overrides)
    guesses = [_guess(header, context) for header in headers]
    best: dict[str, int] = {}  # target -> column index
    for index, (target, score) in enumerate(guesses):
        if target and (target not in best or score > guesses[best[target]][1]):
            best[target] = index
    winners = {index: target for target, index in best.items()}
    fallback = CUSTOM if unmapped_to_custom else IGNORE
    return [winners.get(index, fallback) for index in range(len(headers))]


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
