"""Helpers for tests that send through the real test mail servers (see tests/conftest.py)."""
from __future__ import annotations

from outreach.models import Contact, Mailbox, Team
from outreach.services.teams import team_create_with_owner
from tests.factories import NO_SENDING_RULES, provider_config

_counter = iter(range(1, 10**6))


def make_team(name: str | None = None):
    """Return (team, user) with a fresh unique name."""
    n = next(_counter)
    return team_create_with_owner(team_name=name or f"Team {n}", username=f"user{n}", email=f"user{n}@example.test",
                                  password="pw-" + "x" * 12)


def smtp_mailbox(team: Team, servers, *, security: str = "starttls", password: str | None = None,
                 imap: bool = True, smtp_port: int | None = None) -> Mailbox:
    """A Mailbox pointing at the test SMTP server (STARTTLS or implicit SSL) and dovecot's Sent folder."""
    smtp = servers.smtp_ssl if security == "ssl" else servers.smtp
    settings = dict(smtp_host="localhost", smtp_port=smtp_port or smtp.port, smtp_login=smtp.username,
                    smtp_password=smtp.password if password is None else password, smtp_security=security)
    if imap:
        settings.update(imap_host="localhost", imap_port=servers.imap.ssl_port if security == "ssl" else servers.imap.port,
                        imap_login=servers.imap.username, imap_security=security, imap_password=servers.imap.password,
                        imap_sent_folder="Sent")
    return Mailbox.objects.create(team=team, provider="smtp", sender_name="Ann Lée", sender_email="ann@example.test",
                                  provider_config=provider_config("smtp", **settings), **NO_SENDING_RULES)


def make_contact(team: Team, email: str = "bob@example.org", **fields) -> Contact:
    """A contact in ``team`` (vendor ids by key, e.g. ``lemlist_contact_id=…``)."""
    from tests.factories import make_contact as factory

    return factory(team, email, first_name=fields.pop("first_name", "Bob"), last_name=fields.pop("last_name", "Stone"),
                   **fields)
