"""Fixtures for the provider contract suite: settings for talking to the fakes on 127.0.0.1,
model builders, and the parametrisation of each provider's case lists.

The fakes are started per test (a ThreadingHTTPServer takes milliseconds) with a fresh API key,
so rate-limiter state and recorded requests never leak between tests.
"""
from __future__ import annotations

import pytest

from outreach.models import Contact, Lead, Mailbox, ProviderAccount, SentMessage, Team, TimelineEvent
from tests import factories
from tests.factories import NO_SENDING_RULES, provider_config, split_mailbox_fields


@pytest.fixture(autouse=True)
def provider_settings(settings):
    """Fakes live on 127.0.0.1 over http; retries fast; short but realistic timeouts."""
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
    settings.OUTREACH_HTTP_CONNECT_TIMEOUT = 2.0
    settings.OUTREACH_HTTP_READ_TIMEOUT = 5.0
    settings.OUTREACH_RETRY_BASE_SECONDS = 0.01
    settings.OUTREACH_RETRY_MAX_SECONDS = 0.05
    settings.OUTREACH_SEND_MAX_ATTEMPTS = 5
    return settings


def pytest_generate_tests(metafunc):
    """Parametrise ``error_case``, ``missing_id_case`` and ``unsupported_case`` from the test class' lists."""
    for fixture, attribute in (("error_case", "error_cases"), ("missing_id_case", "missing_id_cases"),
                               ("unsupported_case", "unsupported_cases")):
        if fixture in metafunc.fixturenames:
            cases = getattr(metafunc.cls, attribute, [])
            metafunc.parametrize(fixture, cases, ids=[c.id for c in cases])


@pytest.fixture
def team(db):
    return Team.objects.create(name="Acme Sales")


def make_contact(team: Team, *, email="jane@example.com", first_name="Jane", last_name="Doe", lead: dict | None = None,
                 **vendor_ids) -> Contact:
    """A contact with ``vendor_ids`` by key (and a Lead with ``lead`` fields and ids when given)."""
    contact = factories.make_contact(team, email, first_name=first_name, last_name=last_name, **vendor_ids)
    if lead is not None:
        factories.make_lead(contact, **lead)
    return contact


def make_account(team: Team, *, provider: str, base_url: str, api_key: str) -> ProviderAccount:
    account = ProviderAccount(team=team, provider=provider, name=f"{provider} test", base_url=base_url)
    account.api_key = api_key
    account.save()
    return account


def make_mailbox(team: Team, account: ProviderAccount, **fields) -> Mailbox:
    """A mailbox of ``account``; ``fields`` mixes Mailbox columns and the provider's settings by form field name."""
    fields.setdefault("sender_name", "John Seller")
    fields.setdefault("sender_email", "john@example.com")
    columns, settings = split_mailbox_fields(account.provider, {**NO_SENDING_RULES, **fields})
    return Mailbox.objects.create(team=team, provider=account.provider, provider_account=account,
                                  provider_config=provider_config(account.provider, **settings), **columns)


def timeline_kinds(message: SentMessage) -> list[str]:
    """The message's timeline kinds, oldest first."""
    return list(TimelineEvent.objects.filter(sent_message=message).order_by("created_at", "id").values_list("kind", flat=True))
