"""The mailbox connect form's "Also register at lemlist" choice, against the strict lemlist fake."""
from __future__ import annotations

import pytest
from django.urls import reverse

from outreach.models import Mailbox
from outreach.services.teams import team_create_with_owner
from tests.factories import make_provider_account
from tests.fakes.lemlist import FakeLemlist


@pytest.fixture
def lemlist():
    fake = FakeLemlist().start()
    yield fake
    fake.stop()


@pytest.fixture
def owner_client(client, db, settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    team, user = team_create_with_owner(team_name="Acme", username="ann", email="ann@example.com", password="pw-Long-enough-1")
    client.force_login(user)
    return client, team


def _post(client, account):
    return client.post(reverse("mailbox_connect"), {
        "sender_name": "John Doe", "sender_email": "john@company.com",
        "smtp_host": "127.0.0.1", "smtp_port": 587, "smtp_login": "john", "smtp_password": "pw", "smtp_security": "starttls",
        "imap_host": "127.0.0.1", "imap_port": 993, "imap_login": "john", "imap_password": "pw", "imap_security": "ssl",
        "imap_sent_folder": "Sent", "register_at_lemlist": account.pk, "lemlist_user_id": "",
    })


def test_lemlist_invalid_host_becomes_a_form_error_and_nothing_is_saved(owner_client, lemlist):
    client, team = owner_client
    account = make_provider_account(team, provider="lemlist", base_url=lemlist.url + "/api", api_key=lemlist.api_key)
    response = _post(client, account)
    assert response.status_code == 200
    assert "refused the mail server host" in response.content.decode()
    assert not Mailbox.objects.filter(team=team).exists()


def test_registered_mailbox_keeps_the_lemlist_id(owner_client, lemlist, monkeypatch):
    monkeypatch.setattr("tests.fakes.lemlist._invalid_host", lambda host: False)
    client, team = owner_client
    account = make_provider_account(team, provider="lemlist", base_url=lemlist.url + "/api", api_key=lemlist.api_key)
    response = _post(client, account)
    assert response.status_code == 302
    assert Mailbox.objects.get(team=team).setting("lemlist_email_account_id").startswith("umx_")


def test_choice_is_hidden_without_a_lemlist_account(owner_client):
    client, _ = owner_client
    assert "Also register at lemlist" not in client.get(reverse("mailbox_connect")).content.decode()
