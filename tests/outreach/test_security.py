"""Security findings of issue 10: stored-password extraction, recipient injection through display names."""
from __future__ import annotations

import email
from email.policy import default as default_policy
from email.utils import getaddresses

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from outreach.models import Mailbox
from outreach.services.mailboxes import mailbox_test_connection, mailbox_update
from providers import smtp as smtp_module
from providers.addresses import address_header, format_address, safe_display_name
from providers.base import Address, OutgoingMessage
from providers.errors import ConfigurationError
from providers.smtp import ServerSettings, build_mime, open_smtp
from tests.factories import make_mailbox
from tests.servers import CapturingSMTPServer

pytestmark = pytest.mark.django_db


# --- Stored password extraction ------------------------------------------------------------------


@pytest.fixture
def capture(settings):
    """An SMTP server "the attacker controls" on 127.0.0.1, allowed by the host rules."""
    with CapturingSMTPServer() as server:
        settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
        settings.OUTREACH_SMTP_PORTS = [587, server.port]
        settings.OUTREACH_MAIL_TIMEOUT = 10
        yield server


def _edit_data(mailbox: Mailbox, **overrides) -> dict:
    data = {"sender_name": mailbox.sender_name, "sender_email": mailbox.sender_email, "smtp_host": mailbox.setting("smtp_host"),
            "smtp_port": mailbox.setting("smtp_port"), "smtp_login": mailbox.setting("smtp_login"), "smtp_password": "",
            "smtp_security": mailbox.setting("smtp_security"), "imap_host": "", "imap_port": "", "imap_login": "",
            "imap_password": "", "imap_security": "ssl", "imap_sent_folder": "Sent"}
    data.update(overrides)
    return data


def test_test_connection_to_a_changed_host_with_blank_password_sends_no_auth(user_client, team, capture):
    mailbox = make_mailbox(team, smtp_password="stored-secret", smtp_host="127.0.0.1", smtp_port=587,
                           smtp_security="none")
    evil = _edit_data(mailbox, smtp_port=capture.port)
    response = user_client.post(reverse("mailbox_test"), {**evil, "mailbox_id": mailbox.pk})
    page = response.content.decode()
    assert "Enter the SMTP password again" in page
    assert capture.auths == [] and capture.ehlos == 0
    # The same through the service, whatever the caller.
    ok, lines = mailbox_test_connection(data=evil, existing=mailbox)
    assert not ok and "password again" in lines[0]
    assert capture.auths == []
    # Control: with the password typed again the server does see it (so the capture works).
    ok, _ = mailbox_test_connection(data={**evil, "smtp_password": "typed-again"}, existing=mailbox)
    assert ok and capture.auths == [(mailbox.setting("smtp_login"), "typed-again")]


@pytest.mark.parametrize("change", [{"smtp_host": "localhost"}, {"smtp_port": 2525}, {"smtp_login": "other@acme.com"},
                                    {"smtp_security": "ssl"}])
def test_saving_a_changed_server_requires_the_password_again(user_client, team, settings, change):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    mailbox = make_mailbox(team, smtp_password="stored-secret", smtp_host="127.0.0.1", smtp_security="starttls")
    response = user_client.post(reverse("mailbox_edit", args=[mailbox.pk]), _edit_data(mailbox, **change))
    assert response.status_code == 200
    assert "smtp_password" in response.context["form"].errors
    fresh = Mailbox.objects.get(pk=mailbox.pk)
    assert (fresh.setting("smtp_host"), fresh.setting("smtp_port"), fresh.setting("smtp_login")) == (mailbox.setting("smtp_host"), mailbox.setting("smtp_port"), mailbox.setting("smtp_login"))
    with pytest.raises(ValidationError) as err:
        mailbox_update(mailbox=fresh, data=_edit_data(mailbox, **change))
    assert "smtp_password" in err.value.message_dict
    # Unchanged server: a blank password keeps the stored one.
    mailbox_update(mailbox=fresh, data=_edit_data(mailbox, sender_name="Renamed"))
    fresh.refresh_from_db()
    assert (fresh.sender_name, fresh.provider_settings["smtp_password"]) == ("Renamed", "stored-secret")


def test_imap_change_requires_the_imap_password_again(team, settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    mailbox = make_mailbox(team, imap_password="imap-secret", imap_host="127.0.0.1", imap_port=993,
                           imap_login="ann", imap_security="ssl")
    data = _edit_data(mailbox, smtp_password="smtp-new", imap_host="localhost", imap_port=993, imap_login="ann",
                      imap_security="ssl")
    with pytest.raises(ValidationError) as err:
        mailbox_update(mailbox=mailbox, data=data)
    assert set(err.value.message_dict) == {"imap_password"}
    ok, lines = mailbox_test_connection(data=data, existing=mailbox)
    assert not ok and "IMAP password again" in lines[0]


def test_no_auth_over_plaintext_to_a_public_host(capture, settings, monkeypatch):
    server = ServerSettings("127.0.0.1", capture.port, "ann@acme.com", "pw", "none")
    monkeypatch.setattr(smtp_module, "is_private_address", lambda ip: False)  # pretend 127.0.0.1 is public
    with pytest.raises(ConfigurationError) as err:
        open_smtp(server)
    assert err.value.field == "smtp_security" and "unencrypted" in err.value.message
    assert capture.auths == [] and capture.ehlos == 0
    settings.OUTREACH_ALLOW_PLAINTEXT_AUTH = True
    open_smtp(server).quit()
    assert capture.auths == [("ann@acme.com", "pw")]


def test_saving_plaintext_login_to_a_public_host_is_refused_on_the_field(settings, monkeypatch):
    from outreach.services.mailboxes import mailbox_check_hosts

    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    data = {"smtp_host": "127.0.0.1", "smtp_port": 587, "smtp_login": "ann", "smtp_security": "none"}
    assert mailbox_check_hosts(data) == {}  # a private host: allowed
    monkeypatch.setattr(smtp_module, "is_private_address", lambda ip: False)
    assert "unencrypted" in mailbox_check_hosts(data)["smtp_security"]
    assert mailbox_check_hosts({**data, "smtp_security": "starttls"}) == {}
    settings.OUTREACH_ALLOW_PLAINTEXT_AUTH = True
    assert mailbox_check_hosts(data) == {}


# --- Recipient injection through display names ----------------------------------------------------

HOSTILE_NAMES = [
    "Bob Martin (CTO) <boss@evil.example>,",
    '"' + "Martin-" * 12 + '"',
    "boss@evil.example, other@evil.example",
    "Lee, Ann",
    "Ann <boss@evil.example>; Bcc: spy@evil.example",
    '\\" <boss@evil.example>, "',
    "=?UTF-8?Q?hello=0ABcc:_x@evil.example?=",
    "Zoë «Boss» <boss@evil.example>,",
    "a" * 200,
    "x " * 60 + "<boss@evil.example>,",
    "(comment <boss@evil.example>)",
    "group: boss@evil.example;",
]


def _received_addresses(raw: bytes, header: str) -> tuple[list[str], list[str]]:
    modern = [a.addr_spec.lower() for a in email.message_from_bytes(raw, policy=default_policy)[header].addresses]
    classic = [a.lower() for _, a in getaddresses(email.message_from_bytes(raw).get_all(header, []))]
    return modern, classic


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_display_name_yields_exactly_one_recipient(name):
    to = (Address("bob@example.com", name), Address("ann@example.org", "Long " + name + " " + name))
    message = OutgoingMessage(sender=Address("me@example.net", name), to=to, cc=(Address("cc@example.org", name),),
                              reply_to=Address("reply@example.net", name), subject="Hi", text="Hello",
                              message_id="<1@example.net>")
    raw = build_mime(message).as_bytes()
    assert _received_addresses(raw, "To") == (["bob@example.com", "ann@example.org"],) * 2
    assert _received_addresses(raw, "Cc") == (["cc@example.org"],) * 2
    assert _received_addresses(raw, "From") == (["me@example.net"],) * 2
    assert _received_addresses(raw, "Reply-To") == (["reply@example.net"],) * 2
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert parsed.get_all("Bcc") is None and parsed.get_body().get_content().strip() == "Hello"
    # Provider payloads: one formatted address each, and a structured display name with no specials.
    single = format_address(to[0])
    assert [a.lower() for _, a in getaddresses([single])] == ["bob@example.com"]
    assert not set(safe_display_name(to[0])) & set('<>,;:@"()[]\\')


def test_ordinary_names_are_kept():
    assert address_header("To", [Address("ann@example.com", "Ann Lée")]) == "Ann Lée <ann@example.com>"
    assert address_header("To", [Address("ann@example.com", "Lee, Ann")]) == '"Lee, Ann" <ann@example.com>'
    assert safe_display_name(Address("ann@example.com", "Ann Lee")) == "Ann Lee"


def test_a_crlf_in_an_address_is_refused():
    with pytest.raises(ValueError):
        address_header("To", [Address("bob@example.com\r\nBcc: spy@evil.example", "")])


def test_provider_payloads_carry_neutralised_names(settings):
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
    from providers.leadlex import LeadlexProvider
    from providers.unipile import UnipileConfig, UnipileProvider

    hostile = Address("bob@example.com", HOSTILE_NAMES[0] + " " + HOSTILE_NAMES[1])
    message = OutgoingMessage(sender=Address("me@example.net", "Me"), to=(hostile,), subject="Hi", text="x",
                              message_id="<2@example.net>", idempotency_key="k")
    leadlex = LeadlexProvider(api_key="wbk_test", base_url="http://127.0.0.1:9").build_request(message)
    for value in leadlex.json["to"]:
        assert [a.lower() for _, a in getaddresses([value])] == ["bob@example.com"]
    unipile = UnipileProvider(api_key="k", config=UnipileConfig(account_id="acc"), base_url="http://127.0.0.1:9").build_request(message)
    to_field = dict(unipile.files)["to"][1].decode()
    assert "evil.example" not in to_field.replace("boss evil example", "") and "<" not in to_field
