"""Adding a provider: the made-up Postbox (tests/providers/postbox_provider.py, under 100 lines),
its registry line (added here with monkeypatch) and its strict fake (tests/fakes/postbox.py) are
all it takes — no migration and no edit to outreach's forms, templates, admin, commands or
services. It passes the shared contract suite, and the UI offers its settings."""
from __future__ import annotations

import ast
import io
import json
import pathlib

import pytest
from django.core.management import call_command
from django.urls import reverse

from outreach.forms import ProviderMailboxForm
from outreach.models import Mailbox, SentMessage
from outreach.services.provider_accounts import provider_account_create
from outreach.services.sending import sent_message_create
from providers import errors as perr
from providers import registry
from tests.factories import NO_SENDING_RULES, make_contact, set_fields
from tests.fakes.base import Reply
from tests.fakes.postbox import FakePostbox

from .contract import ErrorCase, MissingIdCase, ProviderContract, UnsupportedCase, drive
from . import postbox_provider
from .postbox_provider import PostboxProvider

CHANNEL = "chn_7Qd2"


@pytest.fixture(autouse=True)
def postbox_registered(monkeypatch):
    """The registry line: ``PostboxProvider.name: PostboxProvider`` in providers.registry.PROVIDERS."""
    monkeypatch.setitem(registry.PROVIDERS, PostboxProvider.name, PostboxProvider)


class TestPostbox(ProviderContract):
    provider = "postbox"
    fake_class = FakePostbox
    idempotent = True
    success_status = 202
    error_cases = [
        ErrorCase("unknown-channel", lambda f, e: set_fields(e.mailbox, postbox_channel_id="chn_gone"),
                  perr.InvalidRequest, "channel_not_found", 404, field="postbox_channel_id"),
        ErrorCase("invalid-body", lambda f, e: f.fail_next(reply=Reply(400, {"code": "invalid_body", "message": "no"})),
                  perr.InvalidRequest, "invalid_body", 400),
        ErrorCase("rate-limited", lambda f, e: f.fail_next(reply=f.rate_limited_reply(3, 10)), perr.RateLimited, "rate_limited", 429),
    ]
    missing_id_cases = [MissingIdCase("channel-id", lambda e: set_fields(e.mailbox, postbox_channel_id=""), "Postbox channel id")]
    unsupported_cases = [UnsupportedCase("cc", {"cc": ["x@example.com"]}, "cc", "Postbox mailboxes cannot send Cc.")]

    def seed(self, fake):
        fake.add_channel(CHANNEL)

    def mailbox_fields(self, fake):
        return {"postbox_channel_id": CHANNEL, "postbox_priority": "bulk"}

    def assert_request(self, recorded, message, env):
        assert recorded.method == "POST" and recorded.path == f"/v1/channels/{CHANNEL}/messages"
        assert recorded.header("Authorization") == f"Bearer {env.account.api_key}"
        assert recorded.header("Idempotency-Key") == str(message.idempotency_key)
        assert recorded.json() == {"from": "John Seller <john@example.com>", "to": "jane@example.com",
                                   "subject": "Follow up", "html": message.html_body, "text": message.text_body,
                                   "priority": "bulk"}

    def assert_result(self, message, fake):
        assert message.provider_message_id == fake.messages[0]["id"] and message.provider_status == "queued"


@pytest.fixture
def owner(db, client):
    from outreach.services.teams import team_create_with_owner

    team, user = team_create_with_owner(team_name="Acme", username="ann", email="ann@example.com", password="pw-Long-enough-1")
    client.force_login(user)
    return client, team, user


def test_the_ui_offers_its_settings_and_sends_through_it(owner, settings):
    client, team, user = owner
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
    with FakePostbox() as fake:
        fake.add_channel(CHANNEL)
        account = provider_account_create(team=team, provider="postbox", name="PB", api_key=fake.api_key, base_url=fake.url)
        form = ProviderMailboxForm(team=team)
        assert {"postbox_channel_id", "postbox_priority"} <= set(form.fields)
        page = client.get(reverse("mailbox_connect_provider")).content.decode()
        assert 'name="postbox_channel_id"' in page and "Postbox channel id" in page and 'data-provider="postbox"' in page
        assert "postbox" in client.get(reverse("provider_account_create")).content.decode()
        response = client.post(reverse("mailbox_connect_provider"), {
            "provider_account": account.pk, "sender_name": "Ann", "sender_email": "ann@acme.com",
            "postbox_channel_id": "", "postbox_priority": "bulk"})
        assert response.context["form"].errors == {
            "postbox_channel_id": ["Enter the Postbox channel id: Postbox cannot send from this mailbox without it."]}
        response = client.post(reverse("mailbox_connect_provider"), {
            "provider_account": account.pk, "sender_name": "Ann", "sender_email": "ann@acme.com",
            "postbox_channel_id": CHANNEL, "postbox_priority": "bulk"})
        assert response.status_code == 302
        mailbox = Mailbox.objects.get(team=team)
        assert mailbox.provider_config == {"channel_id": CHANNEL, "priority": "bulk"}
        edit = client.get(reverse("mailbox_edit", args=[mailbox.pk])).content.decode()
        assert f'value="{CHANNEL}"' in edit and 'name="postbox_priority"' in edit
        Mailbox.objects.filter(pk=mailbox.pk).update(**NO_SENDING_RULES)  # send at once
        contact = make_contact(team, "bob@example.org")
        message = sent_message_create(team=team, actor=user, mailbox=Mailbox.objects.get(pk=mailbox.pk), contact=contact,
                                      subject="Hi", html="<p>Hi</p>")
        drive(message.pk)
        message.refresh_from_db()
    assert message.status == SentMessage.Status.SENT and fake.messages[0]["priority"] == "bulk"
    assert fake.schema_violations == []


def test_add_mailbox_offers_its_settings(db, settings):
    from outreach.services.teams import team_create_with_owner

    team, _ = team_create_with_owner(team_name="Acme", username="ann", email="ann@example.com", password="pw-Long-enough-1")
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
    account = provider_account_create(team=team, provider="postbox", name="PB", api_key="k", base_url="http://127.0.0.1:9")
    out = io.StringIO()
    call_command("add_mailbox", "--team", "Acme", "--provider", "postbox", "--provider-account", str(account.pk),
                 "--sender-email", "ann@acme.com", "--postbox-channel-id", CHANNEL, stdout=out)
    result = json.loads(out.getvalue())
    assert (result["provider"], result["postbox_channel_id"], result["postbox_priority"]) == ("postbox", CHANNEL, "normal")


def test_the_module_is_small_and_knows_nothing_of_outreach():
    """One module of under 100 lines that builds on providers' base only (no outreach, no tests)."""
    source = pathlib.Path(postbox_provider.__file__).read_text()
    tree = ast.parse(source)
    imported = {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert len(source.splitlines()) < 100
    assert "providers" in imported and not imported & {"outreach", "tests", "django"}
