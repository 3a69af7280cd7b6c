"""Small model factories for tests: plain functions with sensible defaults."""
from __future__ import annotations

import datetime
import itertools

from django.contrib.auth import get_user_model

from outreach.external_ids import external_id_fields
from outreach.models import Contact, Lead, Mailbox, Membership, ProviderAccount, SentMessage, Team, TimelineEvent

_seq = itertools.count(1)

PASSWORD = "pw-for-tests-123"


def make_team(name: str | None = None) -> Team:
    """A new Team with a unique name."""
    return Team.objects.create(name=name or f"Team {next(_seq)}")


def make_user(team: Team | None = None, *, username: str | None = None, role: str = Membership.Role.MEMBER, **extra):
    """A user (password ``PASSWORD``), member of ``team`` when given."""
    user = get_user_model().objects.create_user(username=username or f"user{next(_seq)}", password=PASSWORD, **extra)
    if team is not None:
        Membership.objects.create(user=user, team=team, role=role)
    return user


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


def make_contact(team: Team, email: str | None = None, **fields) -> Contact:
    """A contact of ``team`` (email lower-cased, unique by default); vendor ids by key
    (``lemlist_contact_id=…``) become its ExternalId rows."""
    email = (email or f"contact{next(_seq)}@example.com").lower()
    ids = _split_ids(fields, "contact")
    return set_external_ids(Contact.objects.create(team=team, email=email, **fields), "contact", **ids)


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


def make_mailbox(team: Team, *, smtp_password: str = "smtp-secret", imap_password: str = "", **fields) -> Mailbox:
    """An active SMTP mailbox of ``team`` with an encrypted SMTP password (IMAP optional)."""
    n = next(_seq)
    values = dict(provider="smtp", sender_name=f"Sender {n}", sender_email=f"sender{n}@acme.com",
                  smtp_host="smtp.acme.com", smtp_port=587, smtp_login=f"sender{n}@acme.com",
                  smtp_security=Mailbox.Security.STARTTLS, **NO_SENDING_RULES)
    values.update(fields)
    mailbox = Mailbox(team=team, **values)
    mailbox.smtp_password = smtp_password
    if imap_password:
        mailbox.imap_password = imap_password
    mailbox.save()
    return mailbox


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
    """An active mailbox bound to ``account`` with the sender ids its provider requires."""
    n = next(_seq)
    values = dict(sender_name=f"Sender {n}", sender_email=f"sender{n}@acme.com", **PROVIDER_SENDER_IDS[account.provider],
                  **NO_SENDING_RULES)
    values.update(fields)
    return Mailbox.objects.create(team=account.team, provider=account.provider, provider_account=account, **values)


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
