"""Forms for the sales UI. They parse and check input only; every write goes through a service."""
from __future__ import annotations

import uuid

import json

from django import forms
from django.core.exceptions import ValidationError

from providers.registry import HTTP_PROVIDERS, MAILBOX_SENDER_ID_FIELDS, PROVIDERS, get_provider_class, provider_choices

from .models import Contact, Lead, Mailbox, ProviderAccount, Team
from .selectors import active_mailboxes, provider_accounts, team_users
from .services.mailboxes import mailbox_check_hosts, mailbox_credential_problems, mailbox_sender_id_problems, sender_id_missing_text
from .services.provider_accounts import provider_account_label
from .services.sending_rules import RULE_FIELDS, parse_send_days, validate_sending_rules
from .validation import normalize_email, parse_address_list, parse_header_lines, validate_header_value


# --- Contacts ------------------------------------------------------------------------------


def parse_custom_fields(text: str) -> dict[str, str]:
    """Parse ``key: value`` lines (blank lines ignored) into a dict.

    Raises ValidationError naming each malformed line (no colon, empty key, repeated key).
    """
    result: dict[str, str] = {}
    errors = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key:
            errors.append(f"Line {number} is not “key: value”: {line.strip()[:80]}")
        elif key in result:
            errors.append(f"Line {number} repeats the key “{key}”.")
        else:
            result[key] = value.strip()
    if errors:
        raise ValidationError(errors)
    return result


def format_custom_fields(data: dict) -> str:
    """The inverse of :func:`parse_custom_fields` for a form's initial value."""
    return "\n".join(f"{k}: {v}" for k, v in (data or {}).items())


class ContactForm(forms.Form):
    """A contact's fields; ``custom_fields`` is a textarea of ``key: value`` lines."""

    email = forms.CharField(max_length=254)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    company = forms.CharField(max_length=200, required=False)
    title = forms.CharField(label="Job title", max_length=200, required=False)
    phone = forms.CharField(max_length=50, required=False)
    linkedin_url = forms.URLField(label="LinkedIn URL", max_length=500, required=False, assume_scheme="https")
    custom_fields = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4, "placeholder": "industry: SaaS\nsize: 50-200"}),
        help_text="One “key: value” per line.")
    lemlist_contact_id = forms.CharField(label="lemlist contactId", max_length=100, required=False)
    leadlex_contact_id = forms.CharField(label="leadlex contact_id", max_length=100, required=False)

    @classmethod
    def initial_for(cls, contact: Contact) -> dict:
        """Initial values of the edit form for ``contact``."""
        initial = {name: getattr(contact, name) for name in cls.base_fields if name != "custom_fields"}
        initial["custom_fields"] = format_custom_fields(contact.custom_fields)
        return initial

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean_custom_fields(self) -> dict[str, str]:
        return parse_custom_fields(self.cleaned_data["custom_fields"])


# --- Leads ---------------------------------------------------------------------------------


class LeadForm(forms.Form):
    """A lead's status, owner (a member of the team) and vendor ids."""

    status = forms.ChoiceField(choices=Lead.Status.choices, initial=Lead.Status.NEW)
    owner = forms.ModelChoiceField(queryset=None, required=False, empty_label="Unassigned")
    lemlist_lead_id = forms.CharField(label="lemlist leadId", max_length=100, required=False)
    leadlex_deal_id = forms.CharField(label="leadlex deal_id", max_length=100, required=False)

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = team_users(team=team)
        self.fields["owner"].label_from_instance = lambda u: u.get_full_name() or u.get_username()

    @classmethod
    def initial_for(cls, lead: Lead) -> dict:
        return {"status": lead.status, "owner": lead.owner_id, "lemlist_lead_id": lead.lemlist_lead_id,
                "leadlex_deal_id": lead.leadlex_deal_id}


# --- Compose -------------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    """A file input that lets the user pick several files."""

    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A FileField whose cleaned value is a list of uploaded files (possibly empty)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single_clean = super().clean
        if isinstance(data, (list, tuple)):
            files = [single_clean(d, initial) for d in data if d]
        else:
            files = [single_clean(data, initial)] if data else []
        if self.required and not files:
            raise ValidationError(self.error_messages["required"], code="required")
        return [f for f in files if f]


class HeaderField(forms.CharField):
    """A single-line value that ends up in a mail header: CR/LF/NUL refused."""

    default_validators = [validate_header_value]


class AddressListField(forms.CharField):
    """Comma-separated addresses; cleans to a list of normalized addresses."""

    default_validators = [validate_header_value]

    def clean(self, value):
        value = super().clean(value)
        return parse_address_list(value)


class ComposeForm(forms.Form):
    """One email to a contact: mailbox (team's active ones), subject, HTML body, cc/bcc, reply-to, files."""

    mailbox = forms.ModelChoiceField(queryset=None, empty_label=None)
    subject = HeaderField(max_length=998)
    html_body = forms.CharField(label="Message (HTML)", widget=forms.Textarea(attrs={"rows": 12}))
    cc = AddressListField(label="Cc", required=False, help_text="Comma-separated addresses.")
    bcc = AddressListField(label="Bcc", required=False, help_text="Comma-separated addresses.")
    reply_to = HeaderField(label="Reply-To", max_length=254, required=False)
    attachments = MultipleFileField(required=False)
    headers = forms.CharField(
        label="Custom headers", required=False, widget=forms.Textarea(attrs={"rows": 2, "placeholder": "X-Campaign: spring"}),
        help_text="Optional; one X-Name: value per line. Sent where the mailbox's provider carries custom headers "
                  "(SMTP, Unipile).")
    scheduled_at = forms.DateTimeField(
        label="Send later", required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Optional; leave empty to send now. In the server's time zone; the mailbox's send window still applies.")
    # One key per rendered form: submitting the same form twice (double click, browser resend)
    # queues one message, not two. It becomes the SentMessage's idempotency key.
    submission_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, required=False)

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mailbox"].queryset = active_mailboxes(team=team)
        self.fields["mailbox"].label_from_instance = (
            lambda m: str(m) if m.provider == "smtp" else f"{m} — {m.provider}")
        # Read the choices once (rendering a select otherwise queries them twice; list() would
        # also COUNT them first).
        self.fields["mailbox"].widget.choices = [choice for choice in self.fields["mailbox"].choices]

    @property
    def has_mailbox(self) -> bool:
        """Whether the team has an active mailbox to send from (no extra query)."""
        return bool(self.fields["mailbox"].widget.choices)

    def clean_reply_to(self) -> str:
        value = self.cleaned_data["reply_to"]
        return normalize_email(value) if value else ""

    def clean_headers(self) -> dict[str, str]:
        """The lines as {name: value}; the names and values are checked by the send service."""
        return parse_header_lines(self.cleaned_data["headers"])


# --- Mailboxes -----------------------------------------------------------------------------

SMTP_GROUP = ("smtp_host", "smtp_port", "smtp_login", "smtp_password", "smtp_security")
IMAP_GROUP = ("imap_host", "imap_port", "imap_login", "imap_password", "imap_security", "imap_sent_folder")
KEEP_PASSWORD = "Leave blank to keep the current password."


class MailboxForm(forms.Form):
    """Connect or edit an SMTP/IMAP mailbox (the fields of lemlist's connect-account document).

    Passwords are write-only: never rendered back; on edit a blank one keeps the stored one.
    SMTP is required; IMAP is all-or-nothing. Hosts are checked against the SSRF rules.
    For a provider-bound mailbox (not SMTP) only the sender fields are shown.
    """

    sender_name = HeaderField(max_length=200)
    sender_email = forms.CharField(max_length=254)
    smtp_host = forms.CharField(label="SMTP host", max_length=253)
    smtp_port = forms.IntegerField(label="SMTP port", initial=587, min_value=1, max_value=65535)
    smtp_login = forms.CharField(label="SMTP login", max_length=254)
    smtp_password = forms.CharField(label="SMTP password", max_length=500, required=False, strip=False,
                                    widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    smtp_security = forms.ChoiceField(label="SMTP security", choices=Mailbox.Security.choices, initial=Mailbox.Security.STARTTLS)
    imap_host = forms.CharField(label="IMAP host", max_length=253, required=False)
    imap_port = forms.IntegerField(label="IMAP port", initial=993, min_value=1, max_value=65535, required=False)
    imap_login = forms.CharField(label="IMAP login", max_length=254, required=False)
    imap_password = forms.CharField(label="IMAP password", max_length=500, required=False, strip=False,
                                    widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    imap_security = forms.ChoiceField(label="IMAP security", choices=Mailbox.Security.choices, initial=Mailbox.Security.SSL)
    imap_sent_folder = forms.CharField(label="IMAP Sent folder", max_length=200, initial="Sent", required=False)
    # Connect only, when the team has a lemlist account: also register the mailbox there (seed 004).
    register_at_lemlist = forms.ModelChoiceField(
        label="Also register at lemlist", queryset=ProviderAccount.objects.none(), required=False, empty_label="No",
        help_text="Connect this SMTP/IMAP mailbox to a lemlist account too (SMTP and IMAP are both needed).")
    lemlist_user_id = forms.CharField(label="lemlist userId", max_length=100, required=False,
                                      help_text="Optional: the lemlist team member to assign it to.")

    # Sending rules (outreach.services.sending_rules); the initial values are the cold-mailbox defaults.
    daily_cap = forms.IntegerField(label="Daily cap", min_value=0, initial=50, required=False,
                                   help_text="Messages per day in the mailbox's time zone; 0 = no cap.")
    min_interval_seconds = forms.IntegerField(label="Minimum interval (s)", min_value=0, initial=90, required=False,
                                              help_text="Seconds between two sends; 0 = none.")
    interval_jitter_seconds = forms.IntegerField(label="Random extra (s)", min_value=0, initial=60, required=False,
                                                 help_text="Up to this many random seconds added to each interval.")
    send_days = forms.TypedMultipleChoiceField(
        label="Send on", choices=[(i, d) for i, d in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))],
        coerce=int, initial=[0, 1, 2, 3, 4], required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None checked = every day.")
    send_window_start = forms.TimeField(label="Window opens", initial="08:00", required=False,
                                        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    send_window_end = forms.TimeField(label="Window closes", initial="18:00", required=False,
                                      widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                                      help_text="The same time as the opening = all day.")
    time_zone = forms.CharField(label="Time zone", max_length=64, initial="UTC", required=False,
                                help_text="IANA name, e.g. Europe/Paris; the window and the day are counted there.")

    def __init__(self, *args, mailbox: Mailbox | None = None, team: Team | None = None, **kwargs):
        self.mailbox = mailbox
        if mailbox is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(mailbox)
        super().__init__(*args, **kwargs)
        lemlist_accounts = ProviderAccount.objects.for_team(team).filter(provider="lemlist") if team is not None else None
        if mailbox is None and lemlist_accounts is not None and lemlist_accounts.exists():
            self.fields["register_at_lemlist"].queryset = lemlist_accounts
        else:
            del self.fields["register_at_lemlist"], self.fields["lemlist_user_id"]
        if mailbox is not None and mailbox.provider != "smtp":
            for name in (*SMTP_GROUP, *IMAP_GROUP):
                del self.fields[name]
            provider_cls = PROVIDERS.get(mailbox.provider)  # an unknown (legacy) provider shows no ids
            for name in getattr(provider_cls, "required_mailbox_fields", ()):
                self.fields[name] = sender_id_field(name, required_by=mailbox.provider)
        elif mailbox is not None:
            for name in ("smtp_password", "imap_password"):
                stored = bool(getattr(mailbox, f"{name}_encrypted"))
                if stored:
                    self.fields[name].help_text = KEEP_PASSWORD

    @property
    def is_smtp(self) -> bool:
        return "smtp_host" in self.fields

    @staticmethod
    def initial_for(mailbox: Mailbox) -> dict:
        """Initial values from ``mailbox`` — passwords are never included."""
        names = ("sender_name", "sender_email", *SMTP_GROUP, *IMAP_GROUP, *MAILBOX_SENDER_ID_FIELDS, *RULE_FIELDS)
        initial = {n: getattr(mailbox, n) for n in names if not n.endswith("_password")}
        initial["send_days"] = sorted(parse_send_days(mailbox.send_days))
        return initial

    @property
    def rule_fields(self) -> list:
        """The bound sending-rule fields, in order (the template's "Sending rules" fieldset)."""
        return [self[name] for name in RULE_FIELDS]

    @property
    def sender_id_fields(self) -> list:
        """The bound sender-id fields of a provider-bound mailbox (empty for SMTP)."""
        return [self[name] for name in MAILBOX_SENDER_ID_FIELDS if name in self.fields]

    def clean_sender_email(self) -> str:
        return normalize_email(self.cleaned_data["sender_email"])

    def _has_stored(self, name: str) -> bool:
        return self.mailbox is not None and bool(getattr(self.mailbox, f"{name}_encrypted"))

    def clean(self):
        data = super().clean()
        rules = {k: getattr(self.mailbox or Mailbox(), k) for k in RULE_FIELDS}
        rules.update({k: data[k] for k in RULE_FIELDS if data.get(k) not in (None, "") and k not in self.errors})
        rules["send_days"] = ",".join(str(d) for d in data.get("send_days") or [])
        for name, message in validate_sending_rules(**rules).items():
            if name not in self.errors:
                self.add_error(name, message)
        if not self.is_smtp:
            if self.mailbox is not None:
                present = {k: v for k, v in data.items() if k not in self.errors}
                for name, message in mailbox_sender_id_problems(provider=self.mailbox.provider, data=present).items():
                    if name in self.fields and name not in self.errors:
                        self.add_error(name, message)
            return data
        for name in ("smtp_host", "smtp_login", "imap_host", "imap_login", "imap_sent_folder"):
            if data.get(name):
                try:
                    validate_header_value(data[name])
                except ValidationError as err:
                    self.add_error(name, err)
        if not data.get("smtp_password") and not self._has_stored("smtp_password"):
            self.add_error("smtp_password", "Enter the SMTP password.")
        # IMAP: optional as a group, but complete when any of it is given.
        if any(data.get(n) for n in ("imap_host", "imap_login", "imap_password")):
            for name, label in (("imap_host", "host"), ("imap_port", "port"), ("imap_login", "login")):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, f"Enter the IMAP {label} too, or leave every IMAP field empty.")
            if not data.get("imap_password") and not self._has_stored("imap_password"):
                self.add_error("imap_password", "Enter the IMAP password too, or leave every IMAP field empty.")
        else:
            data["imap_host"], data["imap_login"], data["imap_password"] = "", "", ""
            data["imap_port"] = None
        if not data.get("imap_sent_folder"):
            data["imap_sent_folder"] = "Sent"
        checkable = {k: v for k, v in data.items() if k not in self.errors}
        problems = {**mailbox_check_hosts(checkable), **mailbox_credential_problems(existing=self.mailbox, data=checkable)}
        for name, message in problems.items():
            if name in self.fields and name not in self.errors:
                self.add_error(name, message)
        return data


# --- Provider-bound mailboxes -----------------------------------------------------------------

#: Where to find each sender id (the examples are the documents' own).
SENDER_ID_HELP = {
    "lemlist_send_user_id": "The lemlist user who sends, e.g. usr_FU6yAd3UdBFel0UDy.",
    "lemlist_send_user_email": "That user's sending address at lemlist.",
    "lemlist_send_user_mailbox_id": "The lemlist mailbox it sends from, e.g. usm_pmZsNNO1gl5nwCQ07.",
    "openmail_inbox_id": "The inbox id of /v1/inboxes/{id}/send.",
    "unipile_account_id": "The connected email account's id at Unipile.",
}


def sender_id_field(name: str, *, required_by: str = "") -> forms.CharField:
    """A form field for the Mailbox sender id ``name`` (label and length from the model); required,
    with the provider's message, when ``required_by`` names the mailbox's provider."""
    model_field = Mailbox._meta.get_field(name)
    error_messages = {"required": sender_id_missing_text(provider=required_by, name=name)} if required_by else None
    return forms.CharField(label=model_field.verbose_name, max_length=model_field.max_length, required=bool(required_by),
                           help_text=SENDER_ID_HELP.get(name, ""), error_messages=error_messages)


class ProviderMailboxForm(forms.Form):
    """A mailbox that sends through one of the team's provider accounts: the account, the sender,
    and the sender ids the account's provider requires (its ``required_mailbox_fields``). Every
    provider's ids are fields; only the chosen account's are checked and saved."""

    provider_account = forms.ModelChoiceField(queryset=ProviderAccount.objects.none(), empty_label="Choose an account…")
    sender_name = HeaderField(max_length=200)
    sender_email = forms.CharField(max_length=254)

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        accounts = provider_accounts(team=team)
        field = self.fields["provider_account"]
        field.queryset = accounts
        field.label_from_instance = provider_account_label
        # Lets app.js show only the chosen account's ids (all are shown without JavaScript).
        field.widget.attrs["data-account-providers"] = json.dumps({str(a.pk): a.provider for a in accounts})
        for name in MAILBOX_SENDER_ID_FIELDS:
            self.fields[name] = sender_id_field(name)

    def sender_id_groups(self) -> list[dict]:
        """[{provider, label, fields}] for each HTTP provider, in registry order (leadlex: no fields)."""
        return [{"provider": name, "label": PROVIDERS[name].label,
                 "fields": [self[f] for f in PROVIDERS[name].required_mailbox_fields]} for name in HTTP_PROVIDERS]

    def clean_sender_email(self) -> str:
        return normalize_email(self.cleaned_data["sender_email"])

    def clean(self):
        data = super().clean()
        account = data.get("provider_account")
        if account is not None:
            present = {k: v for k, v in data.items() if k not in self.errors}
            for name, message in mailbox_sender_id_problems(provider=account.provider, data=present).items():
                if name in self.fields and name not in self.errors:
                    self.add_error(name, message)
        return data


# --- Provider accounts ----------------------------------------------------------------------

KEEP_KEY = "Leave blank to keep the current key."


class ProviderAccountForm(forms.Form):
    """Add or edit a provider account. The API key is write-only: never rendered back; on edit a
    blank key keeps the stored one. A blank base URL means the provider document's server. The
    provider is chosen on create only (its mailboxes depend on it)."""

    provider = forms.ChoiceField(choices=())
    name = forms.CharField(max_length=200)
    api_key = forms.CharField(label="API key", max_length=2000, required=True,
                              widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    base_url = forms.URLField(label="Base URL", max_length=500, required=False, assume_scheme="https")

    def __init__(self, *args, account: ProviderAccount | None = None, **kwargs):
        self.account = account
        if account is not None and "initial" not in kwargs:
            kwargs["initial"] = {"name": account.name, "base_url": account.base_url}
        super().__init__(*args, **kwargs)
        defaults = {name: PROVIDERS[name].default_base_url for name in HTTP_PROVIDERS}
        base_url = self.fields["base_url"]
        if account is None:
            provider = self.fields["provider"]
            provider.choices = [("", "Choose a provider…"), *provider_choices(include_smtp=False)]
            provider.widget.attrs["data-base-urls"] = json.dumps(defaults)
            chosen = self.data.get("provider") or self.initial.get("provider") or ""
            base_url.widget.attrs["placeholder"] = defaults.get(chosen, "")
            base_url.help_text = ("Leave blank for the provider's own server: "
                                  + "; ".join(f"{PROVIDERS[n].label} {u}" for n, u in defaults.items()) + ".")
        else:
            del self.fields["provider"]
            label, default = get_provider_class(account.provider).label, defaults.get(account.provider, "")
            base_url.widget.attrs["placeholder"] = default
            base_url.help_text = f"Leave blank for {label}'s own server, {default}."
            key = self.fields["api_key"]
            key.required = False
            key.help_text = KEEP_KEY if account.api_key_encrypted else "No key is stored yet: enter it."
