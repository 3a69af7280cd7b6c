"""Small model factories for tests: plain functions with sensible defaults."""
from __future__ import annotations

import datetime
import itertools

from django.contrib.auth import get_user_model

from providers.registry import get_provider_class

from outreach.crypto import encrypt
from outreach.external_ids import external_id_fields
from outreach.models import Contact, Lead, Mailbox, Membership, ProviderAccount, SentMessage, Team, TimelineEvent

_seq = itertools.count(1)

PASSWORD = "pw-for-tests-123"
OWNER_PASSWORD = "pw-" + "x" * 12


def make_team(name: str | None = None) -> Team:
    """A new Team with a unique name."""
    return Team.objects.create(name=name or f"Team {next(_seq)}")


def make_user(team: Team | None = None, *, username: str | None = None, role: str = Membership.Role.MEMBER, **extra):
    """A user (password ``PASSWORD``), member of ``team`` when given."""
    user = get_user_model().objects.create_user(username=username or f"user{next(_seq)}", password=PASSWORD, **extra)
    if team is not None:
        Membership.objects.create(user=user, team=team, role=role)
    return user


def make_team_with_owner(name: str | None = None):
    """A new team and its owner made by the real service (``team_create_with_owner``: the user has an
    email address and the password ``OWNER_PASSWORD``). Returns (team, user)."""
    from outreach.services.teams import team_create_with_owner

    n = next(_seq)
    return team_create_with_owner(team_name=name or f"Team {n}", username=f"owner{n}", email=f"owner{n}@example.test",
                                  password=OWNER_PASSWORD)


def make_team_user(team_name: str | None = None, **user_kwargs):
    """A new team and its first user, an owner unless ``role`` says otherwise (as
    ``team_create_with_owner`` makes it). Returns (team, user)."""
    user_kwargs.setdefault("role", Membership.Role.OWNER)
    team = make_team(team_name)
    return team, make_user(team, **user_kwargs)


def set_external_ids(contact: Contact, object: str = "contact", **values: str) -> Contact:
    """Set ``contact``'s (or its lead's, ``object="lead"``) vendor ids by key, e.g.
    ``lemlist_contact_id="ctc_1"``; a blank value removes one. Returns the contact."""
    from outreach.services.external_ids import external_ids_set

    unknown = set(values) - {f.key for f in external_id_fields(object)}
    assert not unknown, f"no {object} vendor id named {sorted(unknown)}"
    external_ids_set(contact=contact, object=object, values=values)
    return contact


def _split_ids(fields: dict, object: str) -> dict:
    """Pop the declared vendor-id keys of ``object`` out of ``fields``."""
    return {f.key: fields.pop(f.key) for f in external_id_fields(object) if f.key in fields}


def make_contact(team: Team, email: str | None = None, *, lead: dict | None = None, **fields) -> Contact:
    """A contact of ``team`` (email lower-cased, unique by default); vendor ids by key
    (``lemlist_contact_id=…``) become its ExternalId rows; ``lead`` (a dict of Lead fields, may be
    empty) makes it a lead too (see :func:`make_lead`)."""
    email = (email or f"contact{next(_seq)}@example.com").lower()
    ids = _split_ids(fields, "contact")
    contact = set_external_ids(Contact.objects.create(team=team, email=email, **fields), "contact", **ids)
    if lead is not None:
        make_lead(contact, **lead)
    return contact


def make_lead(contact: Contact, **fields) -> Lead:
    """Make ``contact`` a lead; vendor ids by key (``lemlist_lead_id=…``) become its ExternalId rows."""
    ids = _split_ids(fields, "lead")
    lead = Lead.objects.create(team=contact.team, contact=contact, **fields)
    set_external_ids(contact, "lead", **ids)
    return lead


#: Mailbox fields that switch the sending rules off (no cap, no interval, every day, all day): tests that
#: send several messages quickly use them; the model's defaults are the cold-mailbox rules.
NO_SENDING_RULES = dict(daily_cap=0, min_interval_seconds=0, interval_jitter_seconds=0, send_days="",
                        send_window_start=datetime.time(0, 0), send_window_end=datetime.time(0, 0))


def provider_config(provider: str, *, base: dict | None = None, **settings) -> dict:
    """A stored ``Mailbox.provider_config`` for ``provider``: ``base`` (a stored config; default the
    declared defaults) updated with ``settings`` (by form field name, e.g. ``smtp_host``,
    ``lemlist_send_user_id``; secrets in plaintext, encrypted here). Raises KeyError for a name
    the provider does not declare."""
    config_class = get_provider_class(provider).config_class
    names = {config_class.form_name(name): name for name, _ in config_class.settings()}
    values = dict(base) if base is not None else config_class.defaults()
    secrets = config_class.secrets()
    for key, value in settings.items():
        name = names[key]
        values[name] = (encrypt(value) if value else "") if name in secrets else value
    return config_class.normalize(values)


def set_fields(obj, **fields):
    """Set ``fields`` on ``obj`` and save it; on a Mailbox they may be provider settings by form
    field name (``lemlist_send_user_id``…), merged into its provider_config."""
    if isinstance(obj, Mailbox):
        fields, settings = split_mailbox_fields(obj.provider, fields)
        obj.provider_config = provider_config(obj.provider, base=obj.provider_config, **settings)
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save()
    return obj


def split_mailbox_fields(provider: str, fields: dict) -> tuple[dict, dict]:
    """(Mailbox column values, provider settings by form field name) from one dict of both."""
    columns = {f.name for f in Mailbox._meta.get_fields()} | {"team_id", "provider_account_id"}
    return ({k: v for k, v in fields.items() if k in columns}, {k: v for k, v in fields.items() if k not in columns})


def make_mailbox(team: Team, *, smtp_password: str = "smtp-secret", imap_password: str = "", **fields) -> Mailbox:
    """An active SMTP mailbox of ``team`` with an encrypted SMTP password (IMAP optional). ``fields``
    mixes Mailbox columns and SMTP settings (``smtp_host``, ``imap_host``…)."""
    n = next(_seq)
    values = dict(provider="smtp", sender_name=f"Sender {n}", sender_email=f"sender{n}@acme.com",
                  smtp_host="smtp.acme.com", smtp_port=587, smtp_login=f"sender{n}@acme.com",
                  smtp_security="starttls", **NO_SENDING_RULES)
    values.update(fields)
    columns, settings = split_mailbox_fields("smtp", values)
    config = provider_config("smtp", smtp_password=smtp_password, imap_password=imap_password, **settings)
    return Mailbox.objects.create(team=team, provider_config=config, **columns)


def make_provider_account(team: Team, *, provider: str = "lemlist", api_key: str = "key-for-tests",
                          **fields) -> ProviderAccount:
    """A provider account of ``team`` with an encrypted API key (base URL: the document's server)."""
    account = ProviderAccount(team=team, provider=provider, name=fields.pop("name", f"{provider} {next(_seq)}"), **fields)
    account.api_key = api_key
    account.save()
    return account


PROVIDER_SENDER_IDS = {
    "lemlist": {"lemlist_send_user_id": "usr_test", "lemlist_send_user_email": "seller@acme.com",
                "lemlist_send_user_mailbox_id": "usm_test"},
    "leadlex": {},
    "openmail": {"openmail_inbox_id": "inb_test"},
    "unipile": {"unipile_account_id": "acc_test"},
}


def make_provider_mailbox(account: ProviderAccount, **fields) -> Mailbox:
    """An active mailbox bound to ``account`` with the sender ids its provider requires (``fields``
    mixes Mailbox columns and the provider's settings by form field name)."""
    n = next(_seq)
    values = dict(sender_name=f"Sender {n}", sender_email=f"sender{n}@acme.com", **PROVIDER_SENDER_IDS.get(account.provider, {}),
                  **NO_SENDING_RULES)
    values.update(fields)
    columns, settings = split_mailbox_fields(account.provider, values)
    return Mailbox.objects.create(team=account.team, provider=account.provider, provider_account=account,
                                  provider_config=provider_config(account.provider, **settings), **columns)


def make_sent_message(mailbox: Mailbox, contact: Contact, *, status: str = SentMessage.Status.QUEUED,
                      subject: str = "Hello", **fields) -> SentMessage:
    """A SentMessage row (no task is enqueued) with a matching timeline event."""
    n = next(_seq)
    message = SentMessage.objects.create(
        team=mailbox.team, mailbox=mailbox, contact=contact, to=[contact.email], subject=subject,
        html_body=fields.pop("html_body", "<p>Hi</p>"), text_body=fields.pop("text_body", "Hi\n"),
        message_id=f"<test-{n}@acme.com>", provider=mailbox.provider, status=status, **fields)
    TimelineEvent.objects.create(team=mailbox.team, contact=contact, sent_message=message,
                                 kind=TimelineEvent.Kind.MESSAGE_QUEUED, summary=f"Queued “{subject}”.")
    return message


def make_smtp_mailbox(team: Team, servers, *, security: str = "starttls", password: str | None = None,
                      imap: bool = True, smtp_port: int | None = None) -> Mailbox:
    """A Mailbox pointing at the real test SMTP server (``servers``: the ``mail_settings`` fixture;
    STARTTLS or implicit SSL) and, with ``imap``, dovecot's Sent folder. Sending rules off."""
    smtp = servers.smtp_ssl if security == "ssl" else servers.smtp
    settings = dict(smtp_host="localhost", smtp_port=smtp_port or smtp.port, smtp_login=smtp.username,
                    smtp_password=smtp.password if password is None else password, smtp_security=security)
    if imap:
        settings.update(imap_host="localhost", imap_port=servers.imap.ssl_port if security == "ssl" else servers.imap.port,
                        imap_login=servers.imap.username, imap_security=security, imap_password=servers.imap.password,
                        imap_sent_folder="Sent")
    return Mailbox.objects.create(team=team, provider="smtp", sender_name="Ann Lée", sender_email="ann@example.test",
                                  provider_config=provider_config("smtp", **settings), **NO_SENDING_RULES)
