"""Provider accounts (service and add_provider_account command) and the
lemlist API reference "Connect Email Account" (https://developer.lemlist.com;
``POST https://api.lemlist.com/api/user/email-accounts``) through ``mailbox_register_at_lemlist`` against
the strict lemlist fake."""
from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from outreach.models import Mailbox, ProviderAccount, SentMessage
from outreach.services.provider_accounts import mailbox_register_at_lemlist, provider_account_create
from outreach.services.sending import sent_message_create
from providers.schemas import lemlist as schema
from tests.fakes.base import Reply
from tests.fakes.lemlist import FakeLemlist
from tests.factories import NO_SENDING_RULES, make_contact, make_mailbox, make_provider_account, set_fields

from .contract import drive


@pytest.fixture
def lemlist():
    fake = FakeLemlist().start()
    yield fake
    fake.stop()
    assert fake.schema_violations == []


def smtp_mailbox(team, **fields) -> Mailbox:
    """John Doe's SMTP and IMAP mailbox at company.com (what lemlist "Connect Email Account" is sent)."""
    values = dict(sender_name="John Doe", sender_email="john@company.com", smtp_host="smtp.company.com",
                  smtp_login="john@company.com", imap_host="imap.company.com", imap_port=993,
                  imap_login="john@company.com", imap_security="ssl")
    values.update(fields)
    return make_mailbox(team, smtp_password="password123", imap_password="password123", **values)


# --- accounts ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_add_provider_account_reads_the_key_from_env_and_never_prints_it(team, monkeypatch):
    monkeypatch.setenv("OUTREACH_API_KEY", "sk-secret-123")
    out = io.StringIO()
    call_command("add_provider_account", "--team", team.name, "--provider", "leadlex", "--name", "Main", stdout=out)
    data = json.loads(out.getvalue())
    assert data["provider"] == "leadlex" and data["api_key_set"] is True and "sk-secret-123" not in out.getvalue()
    account = ProviderAccount.objects.get(pk=data["id"])
    assert account.api_key == "sk-secret-123" and "sk-secret-123" not in account.api_key_encrypted


@pytest.mark.django_db
def test_add_provider_account_key_from_stdin(team, monkeypatch):
    monkeypatch.delenv("OUTREACH_API_KEY", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("key-from-stdin\n"))
    out = io.StringIO()
    call_command("add_provider_account", "--team", team.name, "--provider", "unipile", "--name", "U",
                 "--base-url", "http://127.0.0.1:3114", "--key-stdin", stdout=out)
    account = ProviderAccount.objects.get(pk=json.loads(out.getvalue())["id"])
    assert account.api_key == "key-from-stdin" and account.base_url == "http://127.0.0.1:3114"


@pytest.mark.django_db
def test_add_provider_account_without_key_fails_clearly(team, monkeypatch):
    monkeypatch.delenv("OUTREACH_API_KEY", raising=False)
    with pytest.raises(CommandError, match="OUTREACH_API_KEY"):
        call_command("add_provider_account", "--team", team.name, "--provider", "lemlist", "--name", "L")
    assert not ProviderAccount.objects.exists()


@pytest.mark.django_db
def test_private_base_url_is_refused_unless_allowed(team, settings):
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = False
    with pytest.raises(ValidationError) as info:
        provider_account_create(team=team, provider="openmail", name="O", api_key="k", base_url="https://127.0.0.1:8443")
    assert "loopback" in info.value.message_dict["base_url"][0]
    with pytest.raises(ValidationError) as info:
        provider_account_create(team=team, provider="smtp", name="", api_key="")
    assert set(info.value.message_dict) == {"provider", "name", "api_key"}


@pytest.mark.django_db
def test_scripted_send_through_a_provider_bound_mailbox(team, lemlist, monkeypatch):
    """add_provider_account + add_mailbox --provider lemlist, then one send through the pipeline."""
    user = lemlist.add_send_user()
    contact_id, lead_id = lemlist.add_lead()
    monkeypatch.setenv("OUTREACH_API_KEY", lemlist.api_key)
    out = io.StringIO()
    call_command("add_provider_account", "--team", team.name, "--provider", "lemlist", "--name", "L",
                 "--base-url", lemlist.url + "/api", stdout=out)
    account_id = json.loads(out.getvalue())["id"]
    out = io.StringIO()
    call_command("add_mailbox", "--team", team.name, "--provider", "lemlist", "--provider-account", str(account_id),
                 "--sender-email", user[1], "--lemlist-send-user-id", user[0], "--lemlist-send-user-email", user[1],
                 "--lemlist-send-user-mailbox-id", user[2], stdout=out)
    mailbox = Mailbox.objects.get(pk=json.loads(out.getvalue())["id"])
    assert mailbox.daily_cap == 50  # the cold-mailbox defaults; lifted here to send at once
    Mailbox.objects.filter(pk=mailbox.pk).update(**NO_SENDING_RULES)
    contact = make_contact(team, lemlist_contact_id=contact_id, lead={"lemlist_lead_id": lead_id})
    message = sent_message_create(team=team, actor=None, mailbox=mailbox, contact=contact, subject="Hi", html="<p>Hi</p>")
    drive(message.pk)
    message.refresh_from_db()
    assert message.status == SentMessage.Status.SENT and len(lemlist.messages) == 1


# --- lemlist "Connect Email Account" ----------------------------------------------------------------


@pytest.mark.django_db
def test_register_at_lemlist_stores_the_returned_id(team, lemlist):
    account = make_provider_account(team, provider="lemlist", base_url=lemlist.url + "/api", api_key=lemlist.api_key)
    mailbox = smtp_mailbox(team)
    mailbox_register_at_lemlist(mailbox=mailbox, account=account)
    mailbox.refresh_from_db()
    assert mailbox.setting("lemlist_email_account_id").startswith("umx_")
    sent = lemlist.requests[0]
    assert sent.path == "/api/user/email-accounts" and sent.json() == {
        "sender_name": "John Doe", "sender_email": "john@company.com", "smtp_host": "smtp.company.com", "smtp_port": 587,
        "smtp_login": "john@company.com", "smtp_password": "password123", "smtp_secure": False,
        "imap_host": "imap.company.com", "imap_port": 993, "imap_login": "john@company.com",
        "imap_password": "password123", "imap_secure": True,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("arrange,field,text", [
    (lambda fake, mb: fake.fail_next(reply=Reply(400, "Missing required fields", "text/plain")), "__all__", "required fields"),
    (lambda fake, mb: set_fields(mb, smtp_host="smtp.gmail.com"), "smtp_host", "refused the mail server host"),
    (lambda fake, mb: fake.accounts.setdefault("john@company.com", {}), "sender_email", "already connected at lemlist"),
    (lambda fake, mb: setattr(fake, "team_ok", False), "provider_account", "Bad team"),
], ids=["missing-fields", "invalid-host", "already-exists", "bad-team"])
def test_register_at_lemlist_maps_the_documented_400s_to_form_fields(team, lemlist, arrange, field, text):
    account = make_provider_account(team, provider="lemlist", base_url=lemlist.url + "/api", api_key=lemlist.api_key)
    mailbox = smtp_mailbox(team)
    arrange(lemlist, mailbox)
    mailbox.refresh_from_db()
    with pytest.raises(ValidationError) as info:
        mailbox_register_at_lemlist(mailbox=mailbox, account=account)
    assert text in " ".join(info.value.message_dict[field])
    assert Mailbox.objects.get(pk=mailbox.pk).setting("lemlist_email_account_id") == ""


@pytest.mark.django_db
def test_register_at_lemlist_user_not_in_team_and_wrong_key(team, lemlist):
    account = make_provider_account(team, provider="lemlist", base_url=lemlist.url + "/api", api_key=lemlist.api_key)
    mailbox = smtp_mailbox(team)
    with pytest.raises(ValidationError) as info:
        mailbox_register_at_lemlist(mailbox=mailbox, account=account, user_id="usr_stranger")
    assert info.value.message_dict["lemlist_user_id"] == [f"lemlist: {schema.CONNECT_ACCOUNT_403_TEXT}"]
    account.api_key = "wrong"
    account.save()
    with pytest.raises(ValidationError) as info:
        mailbox_register_at_lemlist(mailbox=mailbox, account=account)
    assert "refused the API key" in info.value.message_dict["provider_account"][0]


@pytest.mark.django_db
def test_register_needs_imap(team, lemlist):
    account = make_provider_account(team, provider="lemlist", base_url=lemlist.url + "/api", api_key=lemlist.api_key)
    mailbox = smtp_mailbox(team, imap_host="", imap_port=None, imap_login="")
    with pytest.raises(ValidationError) as info:
        mailbox_register_at_lemlist(mailbox=mailbox, account=account)
    assert {"imap_host", "imap_port", "imap_login"} <= set(info.value.message_dict)
    assert lemlist.requests == []
