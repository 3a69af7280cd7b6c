"""The header rows of common CRM and mailing-tool exports, written from each vendor's documented
(or exported-as-is) layout, with the field each column must map to with no user choice.

``EXPORTS[name] = (headers, {field: header})``; every header not named maps to a custom field.
"""
from __future__ import annotations

EXPORTS: dict[str, tuple[list[str], dict[str, str]]] = {
    # HubSpot: Contacts > Export (all properties trimmed to the common ones).
    "hubspot": (["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Mobile Phone Number", "Company Name",
                 "Job Title", "Contact owner", "Lifecycle Stage", "Lead Status", "Create Date", "Associated Company"],
                {"email": "Email", "first_name": "First Name", "last_name": "Last Name", "phone": "Phone Number",
                 "company": "Company Name", "title": "Job Title"}),
    # Salesforce: Leads list view / report export ("Company / Account" in reports).
    "salesforce_leads": (["First Name", "Last Name", "Title", "Company / Account", "Email", "Phone", "Mobile",
                          "Lead Source", "Lead Status", "Lead Owner", "Street", "City", "Country", "Create Date"],
                         {"email": "Email", "first_name": "First Name", "last_name": "Last Name", "title": "Title",
                          "company": "Company / Account", "phone": "Phone"}),
    # Salesforce: Contacts report ("Account Name", salutation in its own column).
    "salesforce_contacts": (["Salutation", "First Name", "Last Name", "Title", "Account Name", "Mailing City",
                             "Phone", "Mobile", "Email", "Contact Owner", "Contact ID", "Lead Source"],
                            {"email": "Email", "first_name": "First Name", "last_name": "Last Name", "title": "Title",
                             "company": "Account Name", "phone": "Phone"}),
    # Salesforce: Data Export / Data Loader (API names).
    "salesforce_api": (["Id", "FirstName", "LastName", "Title", "Company", "Email", "Phone", "MobilePhone", "LeadSource",
                        "Status", "OwnerId", "CreatedDate"],
                       {"email": "Email", "first_name": "FirstName", "last_name": "LastName", "title": "Title",
                        "company": "Company", "phone": "Phone"}),
    # Pipedrive: Contacts > People > Export ("Person - …" columns).
    "pipedrive": (["Person - ID", "Person - Name", "Person - First name", "Person - Last name", "Person - Organization",
                   "Person - Email - Work", "Person - Email - Home", "Person - Email - Other", "Person - Phone - Work",
                   "Person - Phone - Mobile", "Person - Owner", "Person - Label", "Person - Job title"],
                  {"email": "Person - Email - Work", "first_name": "Person - First name",
                   "last_name": "Person - Last name", "company": "Person - Organization",
                   "phone": "Person - Phone - Work", "title": "Person - Job title"}),
    # Apollo: People export.
    "apollo": (["First Name", "Last Name", "Title", "Company", "Company Name for Emails", "Email", "Email Status",
                "Email Confidence", "Seniority", "Departments", "First Phone", "Work Direct Phone", "Mobile Phone",
                "Corporate Phone", "Stage", "# Employees", "Industry", "Person Linkedin Url", "Website",
                "Company Linkedin Url", "City", "Country", "Apollo Contact Id", "Secondary Email", "Tertiary Email"],
               {"email": "Email", "first_name": "First Name", "last_name": "Last Name", "title": "Title",
                "company": "Company", "phone": "First Phone", "linkedin_url": "Person Linkedin Url"}),
    # Google Contacts: Export > Google CSV (2023 layout).
    "google": (["First Name", "Middle Name", "Last Name", "Phonetic First Name", "Nickname", "File As", "Labels",
                "E-mail 1 - Label", "E-mail 1 - Value", "E-mail 2 - Label", "E-mail 2 - Value", "Phone 1 - Label",
                "Phone 1 - Value", "Phone 2 - Label", "Phone 2 - Value", "Organization Name", "Organization Title",
                "Organization Department", "Birthday", "Notes"],
               {"email": "E-mail 1 - Value", "first_name": "First Name", "last_name": "Last Name",
                "phone": "Phone 1 - Value", "company": "Organization Name", "title": "Organization Title"}),
    # Google Contacts: the older layout ("Given Name", "Organization 1 - Name").
    "google_legacy": (["Name", "Given Name", "Additional Name", "Family Name", "Group Membership", "E-mail 1 - Type",
                       "E-mail 1 - Value", "Phone 1 - Type", "Phone 1 - Value", "Organization 1 - Type",
                       "Organization 1 - Name", "Organization 1 - Title"],
                      {"email": "E-mail 1 - Value", "first_name": "Given Name", "last_name": "Family Name",
                       "phone": "Phone 1 - Value", "company": "Organization 1 - Name",
                       "title": "Organization 1 - Title"}),
    # Outlook: People > Export contacts ("Title" is the salutation; "Job Title" the job).
    "outlook": (["First Name", "Middle Name", "Last Name", "Title", "Suffix", "Nickname", "E-mail Address",
                 "E-mail 2 Address", "E-mail 3 Address", "Home Phone", "Business Phone", "Mobile Phone", "Company",
                 "Job Title", "Department", "Web Page", "Notes"],
                {"email": "E-mail Address", "first_name": "First Name", "last_name": "Last Name",
                 "phone": "Business Phone", "company": "Company", "title": "Job Title"}),
    # LinkedIn: Settings > Get a copy of your data > Connections.csv (after its "Notes:" preamble).
    "linkedin": (["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"],
                 {"email": "Email Address", "first_name": "First Name", "last_name": "Last Name",
                  "linkedin_url": "URL", "company": "Company", "title": "Position"}),
    # lemlist: campaign leads export (camelCase).
    "lemlist": (["email", "firstName", "lastName", "companyName", "jobTitle", "phone", "linkedinUrl", "icebreaker",
                 "contactId", "leadId", "status"],
                {"email": "email", "first_name": "firstName", "last_name": "lastName", "company": "companyName",
                 "title": "jobTitle", "phone": "phone", "linkedin_url": "linkedinUrl",
                 "lemlist_contact_id": "contactId", "lead.lemlist_lead_id": "leadId"}),
    # Mailchimp: Audience > Export (subscribed members).
    "mailchimp": (["Email Address", "First Name", "Last Name", "Address", "Phone Number", "Birthday", "MEMBER_RATING",
                   "OPTIN_TIME", "CONFIRM_TIME", "LATITUDE", "LONGITUDE", "TIMEZONE", "CC", "LEID", "EUID", "NOTES",
                   "TAGS"],
                  {"email": "Email Address", "first_name": "First Name", "last_name": "Last Name",
                   "phone": "Phone Number"}),
    # Zoho CRM: Leads export.
    "zoho": (["Record Id", "Lead Owner", "Company", "First Name", "Last Name", "Title", "Email", "Phone", "Fax", "Mobile",
              "Website", "Lead Source", "Lead Status", "Industry", "Email Opt Out", "Salutation", "Secondary Email",
              "Twitter", "City", "Country", "Created Time"],
             {"email": "Email", "first_name": "First Name", "last_name": "Last Name", "company": "Company",
              "title": "Title", "phone": "Phone"}),
    # Close: Contacts export.
    "close": (["lead_id", "lead_display_name", "contact_id", "name", "title", "primary_email", "primary_phone",
               "emails", "phones", "urls", "date_created"],
              {"email": "primary_email", "title": "title", "phone": "primary_phone"}),
    # Copper: People export.
    "copper": (["Name", "Prefix", "First Name", "Middle Name", "Last Name", "Suffix", "Title", "Company", "Work Email",
                "Personal Email", "Other Email", "Work Phone", "Mobile Phone", "Home Phone", "LinkedIn", "Tags",
                "Owned By"],
               {"email": "Work Email", "first_name": "First Name", "last_name": "Last Name", "title": "Title",
                "company": "Company", "phone": "Work Phone", "linkedin_url": "LinkedIn"}),
    # Brevo (Sendinblue): Contacts > Export (attribute names in capitals).
    "brevo": (["CONTACT ID", "EMAIL", "FIRSTNAME", "LASTNAME", "SMS", "ADDED_TIME", "MODIFIED_TIME", "BLACKLISTED"],
              {"email": "EMAIL", "first_name": "FIRSTNAME", "last_name": "LASTNAME", "phone": "SMS"}),
    # Brevo, French account.
    "brevo_fr": (["EMAIL", "PRENOM", "NOM", "SMS", "DATE_AJOUT"],
                 {"email": "EMAIL", "first_name": "PRENOM", "last_name": "NOM", "phone": "SMS"}),
    # A plain Excel sheet.
    "excel": (["Name", "First name", "Last name", "E-mail", "Company", "Position", "Phone", "Comment"],
              {"email": "E-mail", "first_name": "First name", "last_name": "Last name", "company": "Company",
               "title": "Position", "phone": "Phone"}),
    "excel_fr": (["Civilité", "Prénom", "Nom", "Adresse e-mail", "Société", "Poste", "Téléphone", "Ville"],
                 {"email": "Adresse e-mail", "first_name": "Prénom", "last_name": "Nom", "company": "Société",
                  "title": "Poste", "phone": "Téléphone"}),
    "excel_de": (["Anrede", "Vorname", "Nachname", "E-Mail-Adresse", "Firma", "Position", "Telefon", "Handy", "Ort"],
                 {"email": "E-Mail-Adresse", "first_name": "Vorname", "last_name": "Nachname", "company": "Firma",
                  "title": "Position", "phone": "Telefon"}),
    "excel_es": (["Nombre", "Apellidos", "Correo electrónico", "Empresa", "Cargo", "Teléfono", "Móvil", "Ciudad"],
                 {"email": "Correo electrónico", "first_name": "Nombre", "last_name": "Apellidos", "company": "Empresa",
                  "title": "Cargo", "phone": "Teléfono"}),
}

SAMPLE = {"first_name": "Zoë", "last_name": "Müller-Lüdenscheidt", "company": "Société Générale", "title": "Head of Sales",
          "phone": "+49 30 1234567", "linkedin_url": "https://www.linkedin.com/in/zoe-{i}",
          "lemlist_contact_id": "ctc_{i}", "leadlex_contact_id": "cont_{i}", "lead.lemlist_lead_id": "lea_{i}",
          "lead.leadlex_deal_id": "deal_{i}"}


def export_rows(headers: list[str], expected: dict[str, str], n: int = 3) -> list[list[str]]:
    """``n`` data rows for an export: the email column holds a unique address, mapped columns a
    field-shaped value, other columns some text (an address in the secondary email columns)."""
    by_header = {header: field for field, header in expected.items()}
    rows = []
    for i in range(n):
        row = []
        for header in headers:
            field = by_header.get(header)
            if field == "email":
                row.append(f"Person.{i}@Example.com")
            elif field:
                row.append(SAMPLE[field].format(i=i))
            elif "mail" in header.lower() and "status" not in header.lower() and "opt" not in header.lower():
                row.append(f"other.{i}@example.org")
            else:
                row.append(f"{header} {i}")
        rows.append(row)
    return rows
