"""The mailbox services are the only gate: the provider's declared settings, IMAP all-or-nothing,
host checks, passwords bound to their server, and the connect-then-register-at-lemlist
orchestration — the same rules for the UI, the admin, add_mailbox and the tasks."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from outreach.forms import MailboxForm
from outreach.models import Mailbox
from outreach.services.mailboxes import (
    mailbox_config_clean,
    mailbox_connect,
    mailbox_connect_provider,
    mailbox_update,
)
from providers.unipile import UnipileProvider
from tests.factories import make_mailbox, make_provider_account, make_team, make_team_user, provider_config
from tests.fakes.lemlist import FakeLemlist


def _data(**overrides):
    data = {"sender_name": "Ann", "sender_email": "ann@acme.com", "smtp_host": "127.0.0.1", "smtp_port": "587",
            "smtp_login": "ann", "smtp_password": "pw", "smtp_security": "starttls", "imap_port": "993",
            "imap_security": "ssl", "imap_sent_folder": ""}
    data.update(overrides)
    return data


@pytest.fixture
def private_hosts(settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    return settings


def test_smtp_only_is_valid_clears_imap_and_encrypts_the_password(private_hosts):
    clean = mailbox_config_clean(provider="smtp", data=_data())
    assert clean.problems == {}
    assert clean.stored["imap_host"] == "" and clean.stored["imap_port"] is None
    assert clean.stored["imap_sent_folder"] == "Sent" and clean.stored["smtp_port"] == 587
    assert clean.stored["smtp_password"] and clean.stored["smtp_password"] != "pw"
    assert clean.values["smtp_password"] == "pw"  # plaintext only in memory (connection tests)


def test_imap_is_all_or_nothing(private_hosts):
    problems = mailbox_config_clean(provider="smtp", data=_data(imap_login="ann")).problems
    assert {"imap_host", "imap_password"} <= set(problems)
    assert "leave every IMAP field empty" in problems["imap_host"]
    assert mailbox_config_clean(provider="smtp", data=_data(imap_host="127.0.0.1", imap_login="ann",
                                                            imap_password="pw")).problems == {}


def test_private_hosts_odd_ports_and_gmail_are_refused_on_their_fields(settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = False
    problems = mailbox_config_clean(provider="smtp", data=_data(imap_host="10.0.0.5", imap_login="a", imap_password="b")).problems
    assert "loopback" in problems["smtp_host"] and "private" in problems["imap_host"]
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    assert "not a usual SMTP port" in mailbox_config_clean(provider="smtp", data=_data(smtp_port="8025")).problems["smtp_port"]
    assert "OAuth" in mailbox_config_clean(provider="smtp", data=_data(smtp_host="smtp.gmail.com")).problems["smtp_host"]


def test_a_login_needs_a_password_and_a_relay_without_login_needs_none(private_hosts):
    assert mailbox_config_clean(provider="smtp", data=_data(smtp_password="")).problems == {
        "smtp_password": "Enter the SMTP password."}
    assert mailbox_config_clean(provider="smtp", data=_data(smtp_login="", smtp_password="")).problems == {}


def test_types_and_line_breaks_are_refused_by_the_declaration(private_hosts):
    problems = mailbox_config_clean(provider="smtp", data=_data(smtp_port="many", smtp_login="a\nb",
                                                                smtp_security="tls9")).problems
    assert problems["smtp_port"] == "Enter a whole number for the SMTP port."
    assert problems["smtp_login"] == "The SMTP login must be a single line."
    assert problems["smtp_security"].startswith("Choose one of ssl, starttls, none")


@pytest.mark.django_db
def test_a_blank_password_keeps_the_stored_token_and_nothing_is_saved_on_a_problem(private_hosts):
    team = make_team()
    mailbox = make_mailbox(team, smtp_host="127.0.0.1", smtp_login="ann", smtp_password="stored")
    token = mailbox.provider_config["smtp_password"]
    mailbox_update(mailbox=mailbox, data={"sender_name": "Renamed", "smtp_password": ""})
    mailbox.refresh_from_db()
    assert mailbox.sender_name == "Renamed" and mailbox.provider_config["smtp_password"] == token
    with pytest.raises(ValidationError) as err:
        mailbox_update(mailbox=mailbox, data={"sender_name": "Again", "smtp_port": "0"})
    assert set(err.value.message_dict) == {"smtp_port"}
    assert Mailbox.objects.get(pk=mailbox.pk).sender_name == "Renamed"


@pytest.mark.django_db
def test_provider_mailbox_keeps_only_its_providers_settings_and_tracking_reaches_the_request(settings):
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
    team = make_team()
    account = make_provider_account(team, provider="unipile", base_url="http://127.0.0.1:9")
    mailbox = mailbox_connect_provider(team=team, account=account, data={
        "sender_name": "Ann", "sender_email": "Ann@Acme.com", "unipile_account_id": " acc_1 ",
        "unipile_track_opens": True, "unipile_tracking_label": "spring", "openmail_inbox_id": "stray"})
    assert mailbox.sender_email == "ann@acme.com"
    assert mailbox.provider_config == {"account_id": "acc_1", "track_opens": True, "track_links": False,
                                       "tracking_label": "spring", "tracking_domain": ""}
    provider = UnipileProvider.from_mailbox(mailbox)
    assert provider.config.tracking == {"opens": True, "links": False, "label": "spring"}
    with pytest.raises(ValidationError) as err:
        mailbox_update(mailbox=mailbox, data={"unipile_account_id": ""})
    assert err.value.message_dict == {
        "unipile_account_id": ["Enter the Unipile account_id: Unipile cannot send from this mailbox without it."]}


@pytest.mark.django_db
def test_model_clean_refuses_undeclared_settings_and_wrong_types():
    mailbox = Mailbox(provider="lemlist", provider_config={"send_user_id": 5, "bogus": "x"})
    with pytest.raises(ValidationError) as err:
        mailbox.clean()
    text = " ".join(err.value.message_dict["provider_config"])
    assert "bogus" in text and "lemlist sendUserId must be text" in text
    Mailbox(provider="smtp", provider_config=provider_config("smtp", smtp_host="h", smtp_password="pw")).clean()


@pytest.fixture
def lemlist(settings):
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    with FakeLemlist() as fake:
        yield fake


def _connect_data():
    return _data(imap_host="127.0.0.1", imap_login="ann", imap_password="pw")


@pytest.mark.django_db
def test_connect_and_register_at_lemlist_stores_the_returned_id(lemlist, monkeypatch):
    monkeypatch.setattr("tests.fakes.lemlist._invalid_host", lambda host: False)  # the fake refuses 127.0.0.1
    team = make_team()
    account = make_provider_account(team, provider="lemlist", api_key=lemlist.api_key, base_url=lemlist.url + "/api")
    mailbox = mailbox_connect(team=team, data=_connect_data(), register_at_lemlist=account)
    assert Mailbox.objects.get(pk=mailbox.pk).setting("lemlist_email_account_id").startswith("umx_")
    assert lemlist.requests[0].json()["smtp_password"] == "pw"


@pytest.mark.django_db
def test_connect_deletes_the_new_mailbox_when_lemlist_refuses_it(lemlist):
    team = make_team()
    account = make_provider_account(team, provider="lemlist", api_key=lemlist.api_key, base_url=lemlist.url + "/api")
    lemlist.team_ok = False
    with pytest.raises(ValidationError) as err:
        mailbox_connect(team=team, data=_connect_data(), register_at_lemlist=account)
    assert "Bad team" in " ".join(err.value.message_dict["register_at_lemlist"])
    assert not Mailbox.objects.exists()
    # A problem of the mailbox itself is found before lemlist is called at all.
    before = len(lemlist.requests)
    with pytest.raises(ValidationError):
        mailbox_connect(team=team, data={**_connect_data(), "imap_password": ""}, register_at_lemlist=account)
    assert len(lemlist.requests) == before and not Mailbox.objects.exists()


# --- The form parses only ---------------------------------------------------------------------


def test_mailbox_form_refuses_line_breaks(private_hosts):
    form = MailboxForm(_data(sender_name="Ann\r\nBcc: x@y.com", smtp_login="a\nb"))
    assert not form.is_valid()
    assert {"sender_name", "smtp_login"} <= set(form.errors)


@pytest.mark.django_db
def test_mailbox_form_edit_never_renders_passwords_and_keeps_them_optional(private_hosts):
    team, _ = make_team_user()
    mailbox = make_mailbox(team, smtp_password="stored-smtp-secret", imap_password="stored-imap-secret",
                           imap_host="127.0.0.1", imap_port=993, imap_login="ann", smtp_host="127.0.0.1", smtp_login="ann")
    html = MailboxForm(mailbox=mailbox).as_div()
    assert "stored-smtp-secret" not in html and "stored-imap-secret" not in html
    assert 'value="127.0.0.1"' in html
    form = MailboxForm(_data(smtp_password="", imap_host="127.0.0.1", imap_login="ann", imap_password=""), mailbox=mailbox)
    assert form.is_valid(), form.errors
    bound_html = MailboxForm(_data(smtp_password="typed-secret"), mailbox=mailbox).as_div()
    assert "typed-secret" not in bound_html
