"""Provider accounts pages, the provider-bound mailbox form and edit page, the add_mailbox command's
sender-id checks, and a provider mailbox in the compose form."""
from __future__ import annotations

import io
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter

from outreach.models import Mailbox, ProviderAccount, SentMessage
from providers import registry
from providers.errors import ConfigurationError
from tests.factories import (
    PROVIDER_SENDER_IDS,
    provider_config,
    make_contact,
    make_provider_account,
    make_provider_mailbox,
    make_team_user,
)

pytestmark = pytest.mark.django_db

SECRET = "sk-live-9f8e7d6c5b4a-do-not-show"


@pytest.fixture
def all_logs(caplog):
    """Every log record of every logger, to check that no secret is ever logged."""
    caplog.set_level(logging.DEBUG)
    return caplog


# --- Provider account pages ----------------------------------------------------------------------


def test_create_account_never_renders_the_key_and_stores_it_encrypted(user_client, team, all_logs):
    page = user_client.get(reverse("provider_account_create")).content.decode()
    assert 'type="password" name="api_key"' in page and 'autocomplete="new-password"' in page
    assert "https://api.lemlist.com/api" in page  # the document's server is the default, as help text
    # An invalid form is shown again without the key.
    response = user_client.post(reverse("provider_account_create"),
                                {"provider": "lemlist", "name": "", "api_key": SECRET, "base_url": ""})
    assert response.status_code == 200 and "name" in response.context["form"].errors
    assert SECRET not in response.content.decode()
    assert not ProviderAccount.objects.exists()
    # A valid one is saved with the key encrypted.
    response = user_client.post(reverse("provider_account_create"),
                                {"provider": "lemlist", "name": "lemlist main", "api_key": SECRET, "base_url": ""}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("provider_account_list")
    html = response.content.decode()
    assert "lemlist main" in html and "Provider account lemlist main added" in html
    assert SECRET not in html
    account = ProviderAccount.objects.get()
    assert (account.team, account.provider, account.base_url) == (team, "lemlist", "")
    assert account.api_key == SECRET and SECRET not in account.api_key_encrypted
    assert SECRET not in all_logs.text
    # An error report for this request would mask the key.
    post = SafeExceptionReporterFilter().get_post_parameters(user_client.post(
        reverse("provider_account_create"), {"provider": "lemlist", "name": "", "api_key": SECRET}).wsgi_request)
    assert post["api_key"] != SECRET and post["name"] == ""


def test_edit_account_blank_key_keeps_it_and_a_new_one_replaces_it(user_client, team, all_logs):
    account = make_provider_account(team, provider="openmail", api_key=SECRET, name="OM")
    url = reverse("provider_account_edit", args=[account.pk])
    page = user_client.get(url).content.decode()
    assert SECRET not in page
    assert "Leave blank to keep the current key." in page
    assert 'placeholder="https://api.openmail.sh"' in page and 'name="provider"' not in page
    response = user_client.post(url, {"name": "OpenMail EU", "api_key": "", "base_url": ""})
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.name, account.api_key) == ("OpenMail EU", SECRET)
    response = user_client.post(url, {"name": "OpenMail EU", "api_key": "new-key-123", "base_url": ""}, follow=True)
    account.refresh_from_db()
    assert account.api_key == "new-key-123" and "new-key-123" not in account.api_key_encrypted
    assert SECRET not in response.content.decode() and "new-key-123" not in response.content.decode()
    assert SECRET not in user_client.get(url).content.decode()
    assert SECRET not in all_logs.text and "new-key-123" not in all_logs.text


def test_private_base_url_is_an_inline_error_and_the_key_is_not_echoed(user_client, settings):
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = False
    response = user_client.post(reverse("provider_account_create"),
                                {"provider": "unipile", "name": "U", "api_key": SECRET, "base_url": "https://127.0.0.1:13111"})
    assert response.status_code == 200
    assert "loopback" in response.context["form"].errors["base_url"][0]
    assert SECRET not in response.content.decode()
    assert not ProviderAccount.objects.exists()


def test_account_list_search_filter_and_mailbox_count(user_client, team):
    lemlist = make_provider_account(team, provider="lemlist", name="Sales lemlist")
    make_provider_mailbox(lemlist)
    make_provider_mailbox(lemlist)
    make_provider_account(team, provider="unipile", name="Unipile EU", base_url="https://api8.unipile.com:13851")
    make_provider_account(make_team_user()[0], provider="lemlist", name="Their lemlist")
    response = user_client.get(reverse("provider_account_list"))
    rows = {a.name: a.mailbox_count for a in response.context["object_list"]}
    assert rows == {"Sales lemlist": 2, "Unipile EU": 0}
    assert "https://api8.unipile.com:13851" in response.content.decode()
    assert [a.name for a in user_client.get(reverse("provider_account_list"), {"provider": "unipile"}).context["object_list"]] == ["Unipile EU"]
    assert [a.name for a in user_client.get(reverse("provider_account_list"), {"q": "sales"}).context["object_list"]] == ["Sales lemlist"]
    ordered = user_client.get(reverse("provider_account_list"), {"o": "-mailboxes"}).context["object_list"]
    assert [a.name for a in ordered] == ["Sales lemlist", "Unipile EU"]


def test_mailboxes_page_links_provider_pages(user_client):
    page = user_client.get(reverse("mailbox_list")).content.decode()
    assert reverse("provider_account_list") in page and reverse("mailbox_connect_provider") in page


def test_delete_is_refused_while_mailboxes_use_the_account(user_client, team):
    account = make_provider_account(team, name="L")
    mailbox = make_provider_mailbox(account, sender_email="ann@acme.com")
    url = reverse("provider_account_delete", args=[account.pk])
    page = user_client.get(url).content.decode()
    assert "cannot be deleted while mailboxes send through it" in page and "ann@acme.com" in page
    response = user_client.post(url, follow=True)
    assert ProviderAccount.objects.filter(pk=account.pk).exists()
    assert "L cannot be deleted: 1 mailbox sends through it (ann@acme.com)" in response.content.decode()
    mailbox.delete()
    assert "This removes the account and its stored API key" in user_client.get(url).content.decode()
    response = user_client.post(url, follow=True)
    assert not ProviderAccount.objects.filter(pk=account.pk).exists()
    assert "Provider account L deleted." in response.content.decode()


def test_another_teams_account_and_provider_mailbox_are_404(user_client):
    other_team, _ = make_team_user()
    theirs = make_provider_account(other_team)
    their_mailbox = make_provider_mailbox(theirs)
    for name in ("provider_account_edit", "provider_account_delete"):
        assert user_client.get(reverse(name, args=[theirs.pk])).status_code == 404
        assert user_client.post(reverse(name, args=[theirs.pk]), {"name": "x"}).status_code == 404
    assert user_client.get(reverse("mailbox_edit", args=[their_mailbox.pk])).status_code == 404
    # Their account is not a choice, and posting its id is refused on the field.
    page = user_client.get(reverse("mailbox_connect_provider"), {"account": theirs.pk})
    assert theirs.name not in page.content.decode()
    response = user_client.post(reverse("mailbox_connect_provider"), {
        "provider_account": theirs.pk, "sender_name": "Me", "sender_email": "me@acme.com", **PROVIDER_SENDER_IDS["lemlist"]})
    assert "provider_account" in response.context["form"].errors
    assert Mailbox.objects.count() == 1
    theirs.refresh_from_db()
    assert theirs.name != "x"


# --- Provider mailbox form -------------------------------------------------------------------------


def _provider_mailbox_post(client, account, **data):
    values = {"provider_account": account.pk, "sender_name": "Ann Lee", "sender_email": "Ann@Acme.com",
              **PROVIDER_SENDER_IDS[account.provider]}
    values.update(data)
    return client.post(reverse("mailbox_connect_provider"), values)


def test_provider_mailbox_form_without_accounts_explains(user_client):
    page = user_client.get(reverse("mailbox_connect_provider")).content.decode()
    assert "No provider account yet" in page and reverse("provider_account_create") in page


@pytest.mark.parametrize("provider", ["lemlist", "openmail", "unipile", "leadlex"])
def test_provider_mailbox_form_saves_the_chosen_providers_ids(user_client, team, provider):
    account = make_provider_account(team, provider=provider)
    page = user_client.get(reverse("mailbox_connect_provider"), {"account": account.pk}).content.decode()
    assert f'<option value="{account.pk}" selected>' in page
    # Ids of other providers are ignored, not saved.
    response = _provider_mailbox_post(user_client, account, openmail_inbox_id="stray" if provider != "openmail" else "inb_test")
    assert response.status_code == 302 and response.url == reverse("mailbox_list")
    mailbox = Mailbox.objects.get()
    assert (mailbox.team, mailbox.provider, mailbox.provider_account) == (team, provider, account)
    assert (mailbox.sender_name, mailbox.sender_email, mailbox.setting("smtp_host")) == ("Ann Lee", "ann@acme.com", "")
    config_class = registry.get_provider_class(provider).config_class
    stored = {config_class.form_name(name): value for name, value in mailbox.provider_config.items()}
    assert {k: v for k, v in stored.items() if v not in ("", False)} == PROVIDER_SENDER_IDS[provider]


@pytest.mark.parametrize("provider,field,label", [
    ("lemlist", "lemlist_send_user_id", "lemlist sendUserId"),
    ("lemlist", "lemlist_send_user_email", "lemlist sendUserEmail"),
    ("lemlist", "lemlist_send_user_mailbox_id", "lemlist sendUserMailboxId"),
    ("openmail", "openmail_inbox_id", "OpenMail inbox id"),
    ("unipile", "unipile_account_id", "Unipile account_id"),
])
def test_provider_mailbox_form_refuses_a_missing_required_id_inline(user_client, team, provider, field, label):
    account = make_provider_account(team, provider=provider)
    response = _provider_mailbox_post(user_client, account, **{field: "  "})
    assert response.status_code == 200
    provider_label = registry.get_provider_class(provider).label
    message = f"Enter the {label}: {provider_label} cannot send from this mailbox without it."
    assert response.context["form"].errors == {field: [message]}
    assert message in response.content.decode()
    assert not Mailbox.objects.exists()


def test_provider_mailbox_form_checks_the_lemlist_sender_email(user_client, team):
    account = make_provider_account(team, provider="lemlist")
    response = _provider_mailbox_post(user_client, account, lemlist_send_user_email="not an address")
    assert "not a valid email address" in response.context["form"].errors["lemlist_send_user_email"][0]
    assert not Mailbox.objects.exists()


def test_provider_mailbox_edit_page_edits_and_requires_the_sender_ids(user_client, team):
    account = make_provider_account(team, provider="unipile", name="Uni")
    mailbox = make_provider_mailbox(account, sender_email="ann@acme.com")
    url = reverse("mailbox_edit", args=[mailbox.pk])
    page = user_client.get(url).content.decode()
    assert 'name="unipile_account_id"' in page and 'value="acc_test"' in page and "Uni" in page
    assert 'name="lemlist_send_user_id"' not in page and 'name="smtp_host"' not in page
    assert 'name="unipile_track_opens"' in page and "Unipile tracking" in page  # a mailbox setting users edit
    response = user_client.post(url, {"sender_name": "Ann", "sender_email": "ann@acme.com", "unipile_account_id": ""})
    assert response.context["form"].errors == {
        "unipile_account_id": ["Enter the Unipile account_id: Unipile cannot send from this mailbox without it."]}
    response = user_client.post(url, {"sender_name": "Ann", "sender_email": "ann@acme.com", "unipile_account_id": "acc_2"})
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.setting("account_id"), mailbox.provider_account) == ("acc_2", account)


# --- The declaration agrees with what sending needs -------------------------------------------------


@pytest.mark.parametrize("provider", registry.http_providers())
def test_required_settings_are_what_from_mailbox_requires(team, settings, provider):
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
    account = make_provider_account(team, provider=provider, base_url="http://127.0.0.1:9")
    cls = registry.get_provider_class(provider)
    cls.from_mailbox(Mailbox(team=team, provider=provider, provider_account=account,
                             provider_config=provider_config(provider, **PROVIDER_SENDER_IDS[provider])))
    required = {cls.config_class.form_name(name) for name, spec in cls.config_class.settings() if spec.required}
    assert required == set(PROVIDER_SENDER_IDS[provider])
    for name in required:
        ids = {**PROVIDER_SENDER_IDS[provider], name: ""}
        with pytest.raises(ConfigurationError) as info:
            cls.from_mailbox(Mailbox(team=team, provider=provider, provider_account=account,
                                     provider_config=provider_config(provider, **ids)))
        assert info.value.field == name


# --- add_mailbox command ---------------------------------------------------------------------------


def _add_mailbox(team, account, *flags):
    out = io.StringIO()
    call_command("add_mailbox", "--team", team.name, "--provider", account.provider, "--provider-account",
                 str(account.pk), "--sender-email", "ann@acme.com", *flags, stdout=out)
    return out.getvalue()


def test_add_mailbox_refuses_a_lemlist_mailbox_without_its_sender_ids(team):
    account = make_provider_account(team, provider="lemlist")
    with pytest.raises(CommandError) as info:
        _add_mailbox(team, account)
    assert str(info.value) == ("A lemlist mailbox needs --lemlist-send-user-id, --lemlist-send-user-email, "
                               "--lemlist-send-user-mailbox-id (the sender ids its API requires).")
    with pytest.raises(CommandError, match=r"needs --lemlist-send-user-mailbox-id \("):
        _add_mailbox(team, account, "--lemlist-send-user-id", "usr_1", "--lemlist-send-user-email", "ann@acme.com")
    with pytest.raises(CommandError, match="needs --openmail-inbox-id"):
        _add_mailbox(team, make_provider_account(team, provider="openmail"))
    with pytest.raises(CommandError, match="--openmail-inbox-id does not apply to lemlist mailboxes"):
        _add_mailbox(team, account, "--lemlist-send-user-id", "usr_1", "--lemlist-send-user-email", "ann@acme.com",
                     "--lemlist-send-user-mailbox-id", "usm_1", "--openmail-inbox-id", "inb_1")
    assert not Mailbox.objects.exists()


def test_add_mailbox_creates_a_leadlex_mailbox_with_only_the_account(team):
    account = make_provider_account(team, provider="leadlex")
    _add_mailbox(team, account, "--sender-name", "Ann")
    mailbox = Mailbox.objects.get()
    assert (mailbox.provider, mailbox.provider_account, mailbox.sender_name) == ("leadlex", account, "Ann")


# --- Compose through a provider mailbox ------------------------------------------------------------


def test_provider_mailbox_is_a_compose_choice_and_attachments_are_refused_for_lemlist(user_client, team):
    account = make_provider_account(team, provider="lemlist", name="L")
    assert _provider_mailbox_post(user_client, account).status_code == 302
    mailbox = Mailbox.objects.get()
    contact = make_contact(team, "bob@example.com")
    url = reverse("contact_compose", args=[contact.pk])
    page = user_client.get(url).content.decode()
    assert f'<option value="{mailbox.pk}"' in page and "Ann Lee &lt;ann@acme.com&gt; — lemlist" in page
    response = user_client.post(url, {"mailbox": mailbox.pk, "subject": "Hi", "html_body": "<p>Hi</p>",
                                      "attachments": [SimpleUploadedFile("deck.pdf", b"%PDF-1.4")]})
    assert response.status_code == 200
    assert response.context["form"].errors["attachments"] == ["lemlist mailboxes cannot send attachments."]
    assert "lemlist mailboxes cannot send attachments." in response.content.decode()
    assert not SentMessage.objects.exists()
