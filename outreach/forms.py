"""Forms for the sales UI. They parse and check input only; every write goes through a service."""
from __future__ import annotations

import json
import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from providers.config import BOOL, CHOICE, INT, SECRET, MailboxConfig, Setting, missing_text
from providers.registry import PROVIDERS, get_provider_class, http_providers, provider_choices

from .external_ids import external_id_fields
from .models import Contact, ExternalId, Lead, Mailbox, ProviderAccount, Team
from .selectors import active_mailboxes, external_id_values, provider_accounts, team_users
from .services.provider_accounts import provider_account_label
from .services.sending_rules import RULE_FIELDS, parse_send_days
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


class ExternalIdFieldsMixin:
    """Adds one optional text field per vendor id the providers declare for ``external_id_object``
    ("contact" or "lead"), named by its key (``lemlist_contact_id``), when the form is built: a
    provider that declares a new id appears in the form without an edit here. The templates loop
    over ``external_id_fields``."""

    external_id_object = "contact"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.external_id_keys = []
        for declared in external_id_fields(self.external_id_object):
            self.fields[declared.key] = forms.CharField(
                label=declared.label, max_length=ExternalId._meta.get_field("value").max_length, required=False)
            self.external_id_keys.append(declared.key)

    @property
    def external_id_fields(self) -> list:
        return [self[key] for key in self.external_id_keys]


class ContactForm(ExternalIdFieldsMixin, forms.Form):
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
    # + one field per vendor id the providers declare for contacts (ExternalIdFieldsMixin).

    @classmethod
    def initial_for(cls, contact: Contact) -> dict:
        """Initial values of the edit form for ``contact`` (its vendor ids included)."""
        initial = {name: getattr(contact, name) for name in cls.base_fields if name != "custom_fields"}
        initial["custom_fields"] = format_custom_fields(contact.custom_fields)
        initial.update(external_id_values(contact=contact, object="contact"))
        return initial

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean_custom_fields(self) -> dict[str, str]:
        return parse_custom_fields(self.cleaned_data["custom_fields"])


# --- Leads ---------------------------------------------------------------------------------


class LeadForm(ExternalIdFieldsMixin, forms.Form):
    """A lead's status, owner (a member of the team) and vendor ids."""

    status = forms.ChoiceField(choices=Lead.Status.choices, initial=Lead.Status.NEW)
    owner = forms.ModelChoiceField(queryset=None, required=False, empty_label="Unassigned")
    # + one field per vendor id the providers declare for leads (ExternalIdFieldsMixin).
    external_id_object = "lead"

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = team_users(team=team)
        self.fields["owner"].label_from_instance = lambda u: u.get_full_name() or u.get_username()

    @classmethod
    def initial_for(cls, lead: Lead) -> dict:
        return {"status": lead.status, "owner": lead.owner_id,
                **external_id_values(contact=lead.contact, object="lead")}


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


# --- Mailboxes ---------------------------------------------------------------------------------
#
# A mailbox's provider settings are not written out here: each provider declares them
# (``Provider.config_class``, providers/config.py) and the fields below are built from that
# declaration, so a new provider needs no edit to this file or the templates.

KEEP_PASSWORD = "Leave blank to keep the current password."
#: Form field names of every provider's secret settings (views hide them from error reports).
SECRET_FIELD_NAMES = tuple(dict.fromkeys(cls.config_class.form_name(name) for cls in PROVIDERS.values()
                                         for name in cls.config_class.secrets()))


def config_form_field(config_class: type[MailboxConfig], name: str, spec: Setting, *, provider_label: str,
                      required: bool = True, stored_secret: bool = False) -> forms.Field:
    """The form field of setting ``name`` (``spec``) of ``config_class``: its label, help text,
    type, bounds and choices. ``required`` False makes every field optional (a form holding several
    providers' settings: the service checks the chosen one's). Secrets are write-only password
    inputs, never required in the form (a stored one may be kept: ``stored_secret``)."""
    options = dict(label=spec.label, help_text=spec.help, required=required and spec.required and spec.kind != SECRET,
                   error_messages={"required": missing_text(spec, provider_label=provider_label)})
    default = config_class.defaults()[name]
    if spec.kind == INT:
        return forms.IntegerField(min_value=spec.min_value, max_value=spec.max_value, initial=default, **options)
    if spec.kind == CHOICE:
        return forms.ChoiceField(choices=spec.choices, initial=default, **options)
    if spec.kind == BOOL:
        return forms.BooleanField(initial=default, **{**options, "required": False})
    if spec.kind == SECRET:
        if stored_secret:
            options["help_text"] = KEEP_PASSWORD
        return forms.CharField(max_length=spec.max_length, strip=False, **options,
                               widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    return HeaderField(max_length=spec.max_length, initial=default or None, **options)


def config_form_fields(config_class: type[MailboxConfig], *, provider_label: str, required: bool = True,
                       mailbox: Mailbox | None = None) -> dict[str, forms.Field]:
    """{form field name: field} for every editable setting of ``config_class`` (see
    :func:`config_form_field`); ``mailbox`` tells which secrets are stored."""
    return {config_class.form_name(name): config_form_field(
                config_class, name, spec, provider_label=provider_label, required=required,
                stored_secret=mailbox is not None and mailbox.has_secret(name))
            for name, spec in config_class.settings() if spec.editable}


def config_initial(mailbox: Mailbox) -> dict[str, Any]:
    """Initial form values of ``mailbox``'s settings, by form field name (secrets never included)."""
    config_class = mailbox.config_class
    return {config_class.form_name(name): mailbox.setting(name) for name, spec in config_class.settings()
            if spec.editable and spec.kind != SECRET}


def config_fieldsets(form: forms.Form, config_class: type[MailboxConfig], *, legend: str) -> list[dict]:
    """[{legend, fields}] of the bound config fields of ``form``, one per declared group (``legend``
    for settings without one), in declaration order."""
    groups: dict[str, list] = {}
    for name, spec in config_class.settings():
        form_name = config_class.form_name(name)
        if form_name in form.fields:
            groups.setdefault(spec.group or legend, []).append(form[form_name])
    return [{"legend": title, "fields": fields} for title, fields in groups.items()]


class MailboxForm(forms.Form):
    """Connect (SMTP/IMAP) or edit a mailbox: its sender, its provider's settings (built from the
    provider's declared config), and its sending rules.

    Passwords are write-only: never rendered back; on edit a blank one keeps the stored one. The
    form parses input only; the rules (IMAP all-or-nothing, host checks, a changed server needs its
    password again, required sender ids) are the mailbox services'.
    """

    sender_name = HeaderField(max_length=200)
    sender_email = forms.CharField(max_length=254)
    # Connect only, when the team has a lemlist account: also register the mailbox there (lemlist "Connect Email Account").
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
        self.provider = mailbox.provider if mailbox is not None else "smtp"
        provider_cls = PROVIDERS.get(self.provider)  # an unknown (legacy) provider shows no settings
        self.config_class = provider_cls.config_class if provider_cls is not None else MailboxConfig
        self.provider_label = provider_cls.label if provider_cls is not None else self.provider
        if mailbox is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(mailbox)
        super().__init__(*args, **kwargs)
        lemlist_accounts = ProviderAccount.objects.for_team(team).filter(provider="lemlist") if team is not None else None
        if mailbox is None and lemlist_accounts is not None and lemlist_accounts.exists():
            self.fields["register_at_lemlist"].queryset = lemlist_accounts
        else:
            del self.fields["register_at_lemlist"], self.fields["lemlist_user_id"]
        self.fields.update(config_form_fields(self.config_class, provider_label=self.provider_label, mailbox=mailbox))

    @property
    def can_test(self) -> bool:
        """Whether the mailbox has mail servers to log in to ("Test connection")."""
        return bool(self.config_class.servers)

    is_smtp = can_test

    @staticmethod
    def initial_for(mailbox: Mailbox) -> dict:
        """Initial values from ``mailbox`` — passwords are never included."""
        initial = {"sender_name": mailbox.sender_name, "sender_email": mailbox.sender_email, **config_initial(mailbox)}
        initial.update({name: getattr(mailbox, name) for name in RULE_FIELDS})
        initial["send_days"] = sorted(parse_send_days(mailbox.send_days))
        return initial

    @property
    def rule_fields(self) -> list:
        """The bound sending-rule fields, in order (the template's "Sending rules" fieldset)."""
        return [self[name] for name in RULE_FIELDS]

    @property
    def config_fieldsets(self) -> list[dict]:
        """[{legend, fields}] of the provider's settings (the template renders them generically)."""
        return config_fieldsets(self, self.config_class, legend=f"{self.provider_label} settings")

    @property
    def stored_only_settings(self) -> list[tuple[str, Any]]:
        """[(label, value)] of the settings a service set (not editable), when set."""
        if self.mailbox is None:
            return []
        return [(spec.label, self.mailbox.setting(name)) for name, spec in self.config_class.settings()
                if not spec.editable and spec.kind != SECRET and self.mailbox.setting(name)]

    def clean_sender_email(self) -> str:
        return normalize_email(self.cleaned_data["sender_email"])


# --- Provider-bound mailboxes -----------------------------------------------------------------


class ProviderMailboxForm(forms.Form):
    """A mailbox that sends through one of the team's provider accounts: the account, the sender,
    and the settings each HTTP provider declares (its ``config_class``). Every provider's settings
    are fields; only the chosen account's are checked (by the service) and saved."""

    provider_account = forms.ModelChoiceField(queryset=ProviderAccount.objects.none(), empty_label="Choose an account…")
    sender_name = HeaderField(max_length=200)
    sender_email = forms.CharField(max_length=254)

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        accounts = provider_accounts(team=team)
        field = self.fields["provider_account"]
        field.queryset = accounts
        field.label_from_instance = provider_account_label
        # Lets app.js show only the chosen account's settings (all are shown without JavaScript).
        field.widget.attrs["data-account-providers"] = json.dumps({str(a.pk): a.provider for a in accounts})
        for name in http_providers():
            self.fields.update(config_form_fields(PROVIDERS[name].config_class, provider_label=PROVIDERS[name].label, required=False))

    def provider_groups(self) -> list[dict]:
        """[{provider, label, fieldsets}] for each HTTP provider, in registry order (leadlex: none)."""
        return [{"provider": name, "label": PROVIDERS[name].label,
                 "fieldsets": config_fieldsets(self, PROVIDERS[name].config_class, legend=f"{PROVIDERS[name].label} sender ids")}
                for name in http_providers()]

    def clean_sender_email(self) -> str:
        return normalize_email(self.cleaned_data["sender_email"])


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
        defaults = {name: PROVIDERS[name].default_base_url for name in http_providers()}
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
