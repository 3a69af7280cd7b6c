"""One-click unsubscribe (RFC 8058), outgoing headers, replying from the timeline, the inbound
message page and the suppression list UI."""
from __future__ import annotations

import pytest
from django.core import signing
from django.db import IntegrityError
from django.test import Client
from django.urls import reverse

from outreach.inbound.display import sanitize_inbound_html
from outreach.inbound.models import InboundMessage
from outreach.inbound.services import suppression_add
from outreach.inbound.unsubscribe import SALT, outgoing_headers, unsubscribe_key_for_message, unsubscribe_token
from outreach.models import SentMessage, Suppression, TimelineEvent
from outreach.services.sending import sent_message_outgoing, suppressed_addresses
from tests.factories import (make_contact, make_mailbox, make_provider_account, make_provider_mailbox,
                             make_sent_message, make_team_user)

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(team_user):
    team, user = team_user
    mailbox = make_mailbox(team)
    contact = make_contact(team, "bob@example.org", first_name="Bob")
    message = make_sent_message(mailbox, contact, status=SentMessage.Status.SENT, subject="Intro")
    return team, user, mailbox, contact, message


def token_for(message):
    return unsubscribe_token(unsubscribe_key_for_message(sent_message=message))


# --- one-click unsubscribe --------------------------------------------------------------------

def test_one_click_post_without_cookies_or_csrf_suppresses_within_the_request(setup):
    team, _, _, contact, message = setup
    client = Client(enforce_csrf_checks=True)
    url = f"/u/{token_for(message)}/"
    response = client.post(url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and not response.has_header("Location")
    assert not response.cookies
    row = Suppression.objects.get(team=team, email="bob@example.org")
    assert (row.reason, row.sent_message) == ("unsubscribe", message)
    assert TimelineEvent.objects.filter(contact=contact, kind=TimelineEvent.Kind.UNSUBSCRIBED).count() == 1
    again = client.post(url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert again.status_code == 200
    assert Suppression.objects.filter(team=team).count() == 1
    assert TimelineEvent.objects.filter(contact=contact, kind=TimelineEvent.Kind.UNSUBSCRIBED).count() == 1


def test_get_shows_a_confirmation_button_and_never_unsubscribes(setup):
    team, _, _, _, message = setup
    response = Client().get(f"/u/{token_for(message)}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'method="post"' in body and "bob@example.org" in body and "<script" not in body
    assert not Suppression.objects.filter(team=team).exists()


@pytest.mark.parametrize("mangle", ["tampered", "forged", "unknown_key", "garbage"])
def test_forged_or_tampered_token_is_400_and_changes_nothing(setup, mangle):
    team, _, _, _, message = setup
    token = token_for(message)
    key, _, sig = token.partition(":")
    bad = {"tampered": f"{key[:-1]}{'A' if key[-1] != 'A' else 'B'}:{sig}",
           "forged": f"{key}:{'x' * len(sig)}",
           "unknown_key": signing.Signer(salt=SALT).sign("not-a-real-key"),
           "garbage": "nothing-here"}[mangle]
    client = Client(enforce_csrf_checks=True)
    assert client.post(f"/u/{bad}/").status_code == 400
    assert client.get(f"/u/{bad}/").status_code == 400
    assert not Suppression.objects.filter(team=team).exists()


def test_token_reveals_neither_address_nor_team(setup):
    team, _, _, _, message = setup
    token = token_for(message)
    assert "bob" not in token.lower() and "example" not in token.lower()
    assert str(team.pk) != token.partition(":")[0]


def test_every_smtp_message_carries_list_unsubscribe_and_post(setup, settings):
    settings.OUTREACH_PUBLIC_BASE_URL = "https://outreach.example.com"
    _, _, mailbox, _, message = setup
    headers = sent_message_outgoing(message).headers
    web, mailto = [part.strip(" <>") for part in headers["List-Unsubscribe"].split(",")]
    assert web.startswith("https://outreach.example.com/u/") and mailto.startswith(f"mailto:{mailbox.sender_email}?subject=unsubscribe")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize("provider", ["lemlist", "leadlex", "openmail", "unipile"])
def test_http_providers_say_they_cannot_carry_the_headers(team_user, provider):
    team, _ = team_user
    mailbox = make_provider_mailbox(make_provider_account(team, provider=provider))
    message = make_sent_message(mailbox, make_contact(team), status=SentMessage.Status.SENT)
    from providers.registry import get_provider_class

    assert get_provider_class(provider).capabilities.mail_headers is False
    assert outgoing_headers(sent_message=message) == {}


def test_real_smtp_send_carries_the_headers(mail_settings, settings):
    from outreach.services.sending import sent_message_send
    from tests.factories import make_smtp_mailbox, make_team

    settings.OUTREACH_PUBLIC_BASE_URL = "https://outreach.example.com"
    team = make_team()
    mailbox = make_smtp_mailbox(team, mail_settings, imap=False)
    contact = make_contact(team, "bob@example.org")
    message = make_sent_message(mailbox, contact, status=SentMessage.Status.QUEUED, in_reply_to="<theirs@example.org>",
                                references="<ours@example.com> <theirs@example.org>")
    sent_message_send(sent_message_id=message.pk)
    received = mail_settings.smtp.wait_for_messages(1)[0].message
    assert received["In-Reply-To"] == "<theirs@example.org>"
    assert received["References"] == "<ours@example.com> <theirs@example.org>"
    assert received["List-Unsubscribe"].startswith("<https://outreach.example.com/u/")
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# --- suppression list -------------------------------------------------------------------------

def test_mixed_case_suppression_from_admin_or_model_form_suppresses(team_user):
    team, _ = team_user
    row = Suppression(team=team, email="Bob@Example.ORG", reason="manual")
    row.full_clean()  # what the admin's ModelForm runs
    row.save()
    assert suppressed_addresses(team=team, addresses=["bob@example.org"]) == ["bob@example.org"]
    with pytest.raises(IntegrityError):
        Suppression.objects.create(team=team, email="Carol@Example.org")


def test_suppression_list_search_filter_add_and_remove(setup, user_client):
    team, _, _, contact, message = setup
    suppression_add(team=team, email="bounced@example.org", reason="bounce", detail="5.1.1 unknown", sent_message=message)
    suppression_add(team=team, email="left@example.org", reason="unsubscribe")
    page = user_client.get("/suppressions/?reason=bounce").content.decode()
    assert "bounced@example.org" in page and "left@example.org" not in page
    assert f"/messages/{message.pk}/" in page
    assert "left@example.org" in user_client.get("/suppressions/?q=left").content.decode()

    response = user_client.post("/suppressions/add/", {"email": "Bob@Example.ORG", "reason": "manual", "detail": ""})
    assert response.status_code == 302
    assert Suppression.objects.filter(team=team, email="bob@example.org").exists()
    assert TimelineEvent.objects.filter(contact=contact, kind=TimelineEvent.Kind.SUPPRESSED).exists()
    user_client.post("/suppressions/add/", {"email": "BOB@example.org", "reason": "manual"})
    assert Suppression.objects.filter(team=team, email="bob@example.org").count() == 1
    bad = user_client.post("/suppressions/add/", {"email": "not an address", "reason": "manual"})
    assert bad.status_code == 200 and "not a valid email address" in bad.content.decode()

    row = Suppression.objects.get(team=team, email="left@example.org")
    confirm = user_client.get(f"/suppressions/{row.pk}/delete/")
    assert confirm.status_code == 200 and Suppression.objects.filter(pk=row.pk).exists()
    user_client.post(f"/suppressions/{row.pk}/delete/")
    assert not Suppression.objects.filter(pk=row.pk).exists()


def test_other_teams_suppressions_are_404(setup, user_client):
    other, _ = make_team_user()
    row, _ = suppression_add(team=other, email="x@example.org", reason="manual")
    assert user_client.get(f"/suppressions/{row.pk}/delete/").status_code == 404
    assert user_client.post(f"/suppressions/{row.pk}/delete/").status_code == 404
    assert "x@example.org" not in user_client.get("/suppressions/").content.decode()


# --- inbound message page and replies -----------------------------------------------------------

def inbound(team, mailbox, contact, message, **fields):
    values = dict(team=team, mailbox=mailbox, uidvalidity=1, uid=InboundMessage.objects.count() + 1,
                  message_key=f"<r{InboundMessage.objects.count()}@example.org>", kind="reply", contact=contact,
                  sent_message=message, from_email="bob@example.org", subject="Re: Intro", text_body="Sure.\n\n> Hi Bob",
                  reply_text="Sure.", in_reply_to=message.message_id, references=message.message_id)
    values["message_id"] = values["message_key"]
    values.update(fields)
    return InboundMessage.objects.create(**values)


def test_inbound_page_sanitises_html_and_loads_no_remote_content(setup, user_client):
    team, _, mailbox, contact, message = setup
    row = inbound(team, mailbox, contact, message, html_body='<p onclick="x()">Hi<script>alert(1)</script>'
                  '<img src="https://tracker.example.net/p.gif"><a href="javascript:alert(1)">x</a></p>')
    page = user_client.get(f"/inbox/{row.pk}/").content.decode()
    assert "Hi" in page and "<script>alert" not in page and "tracker.example.net" not in page
    assert "onclick" not in page and "javascript:" not in page
    assert sanitize_inbound_html('<img src="https://a.example.net/x.png">') == ""
    other, _ = make_team_user()
    client = Client()
    client.force_login(_)
    assert client.get(f"/inbox/{row.pk}/").status_code == 404


def test_reply_from_an_inbound_mail_is_threaded(setup, user_client):
    team, _, mailbox, contact, message = setup
    row = inbound(team, mailbox, contact, message)
    form = user_client.get(f"/inbox/{row.pk}/reply/").content.decode()
    assert 'value="Re: Intro"' in form
    response = user_client.post(f"/inbox/{row.pk}/reply/", {"mailbox": mailbox.pk, "subject": "Re: Intro",
                                                             "body": "Great, Tuesday it is.", "include_quote": "on"})
    assert response.status_code == 302
    reply = SentMessage.objects.exclude(pk=message.pk).get(contact=contact)
    assert reply.in_reply_to == row.message_id
    assert reply.references == f"{message.message_id} {row.message_id}"
    assert reply.subject == "Re: Intro" and reply.to == ["bob@example.org"]
    assert reply.text_body.startswith("Great, Tuesday it is.") and "> Sure." in reply.text_body


def test_reply_through_providers_uses_only_their_thread_ids(team_user, user_client):
    team, _ = team_user
    contact = make_contact(team, "bob@example.org")
    expected = {"leadlex": "thr_leadlex", "openmail": "thr_openmail", "unipile": "uni_mail_id"}
    for provider, thread in expected.items():
        mailbox = make_provider_mailbox(make_provider_account(team, provider=provider))
        original = make_sent_message(mailbox, contact, status=SentMessage.Status.SENT, subject="Intro",
                                     provider_thread_id="thr_" + provider, provider_message_id="uni_mail_id")
        user_client.post(f"/messages/{original.pk}/reply/", {"mailbox": mailbox.pk, "subject": "Re: Intro", "body": "Follow-up"})
        reply = SentMessage.objects.filter(mailbox=mailbox).exclude(pk=original.pk).get()
        assert (reply.thread_id, reply.in_reply_to, reply.references) == (thread, "", ""), provider

    lemlist = make_provider_mailbox(make_provider_account(team, provider="lemlist"))
    original = make_sent_message(lemlist, contact, status=SentMessage.Status.SENT, subject="Intro")
    page = user_client.post(f"/messages/{original.pk}/reply/", {"mailbox": lemlist.pk, "subject": "Re: Intro", "body": "x"})
    assert page.status_code == 200 and "lemlist cannot reply in a thread" in page.content.decode()
    assert not SentMessage.objects.filter(mailbox=lemlist).exclude(pk=original.pk).exists()


def test_contact_timeline_shows_the_reply_with_a_reply_button(setup, user_client):
    team, _, mailbox, contact, message = setup
    row = inbound(team, mailbox, contact, message)
    TimelineEvent.objects.create(team=team, contact=contact, kind=TimelineEvent.Kind.REPLY_RECEIVED, inbound_message=row,
                                 summary="Reply", data={"from": "bob@example.org", "subject": "Re: Intro", "text": "Sure."})
    page = user_client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Sure." in page and f"/inbox/{row.pk}/reply/" in page and f"/messages/{message.pk}/reply/" in page


def test_every_inbound_url_requires_login(client):
    from django.urls import URLPattern

    from outreach.inbound import urls

    patterns = [p for p in urls.urlpatterns if isinstance(p, URLPattern)]
    assert len(patterns) == 6
    for pattern in patterns:
        url = reverse(pattern.name, kwargs={k: 1 for k in pattern.pattern.converters})
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/login/?next="), pattern.name


def test_other_teams_inbound_mail_and_messages_are_404(setup):
    team, _, mailbox, contact, message = setup
    row = inbound(team, mailbox, contact, message)
    _, stranger = make_team_user()
    client = Client()
    client.force_login(stranger)
    for url in (f"/inbox/{row.pk}/", f"/inbox/{row.pk}/reply/", f"/messages/{message.pk}/reply/"):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"body": "x"}).status_code == 404, url


def test_team_footer_adds_an_unsubscribe_link_to_the_body_for_every_provider(team_user, settings):
    settings.OUTREACH_PUBLIC_BASE_URL = "https://outreach.example.com"
    team, _ = team_user
    mailbox = make_provider_mailbox(make_provider_account(team, provider="leadlex"))
    message = make_sent_message(mailbox, make_contact(team), status=SentMessage.Status.QUEUED)
    plain = sent_message_outgoing(message)
    assert "Unsubscribe" not in plain.text and "Unsubscribe" not in plain.html
    team.unsubscribe_footer = True
    team.save()
    message.refresh_from_db()
    outgoing = sent_message_outgoing(message)
    assert "Unsubscribe from these emails: https://outreach.example.com/u/" in outgoing.text
    assert 'href="https://outreach.example.com/u/' in outgoing.html


def test_keys_attach_creates_each_missing_key_once_and_keeps_a_key_stored_first(setup):
    """A send batch's keys: one INSERT for the missing ones; a key another process stored first wins (its
    row is read back), and a second call creates nothing."""
    from outreach.inbound.models import UnsubscribeKey
    from outreach.inbound.unsubscribe import unsubscribe_keys_attach

    team, _, mailbox, contact, first = setup
    others = [make_sent_message(mailbox, make_contact(team, f"p{i}@example.org"), subject=f"Next {i}") for i in range(3)]
    loaded = list(SentMessage.objects.filter(pk__in=[first.pk, *(m.pk for m in others)]).select_related(
        "unsubscribe_key", "contact").order_by("pk"))
    # another process stores the second message's key after this batch read its rows
    stored_first = UnsubscribeKey.objects.create(team=team, sent_message=others[0], email="p0@example.org", key="k" * 24)
    assert unsubscribe_keys_attach(sent_messages=loaded) == 4
    keys = {m.pk: m.unsubscribe_key for m in loaded}
    assert keys[others[0].pk].pk == stored_first.pk and keys[others[0].pk].key == "k" * 24
    rows = {k.sent_message_id: k for k in UnsubscribeKey.objects.filter(team=team)}
    assert set(rows) == set(keys) and all(rows[pk].key == keys[pk].key for pk in keys)
    assert rows[others[2].pk].email == "p2@example.org" and rows[first.pk].email == first.to[0]
    assert rows[first.pk].created_at is not None and rows[first.pk].used_at is None
    assert len({k.key for k in rows.values()}) == 4
    again = list(SentMessage.objects.filter(pk__in=list(keys)).select_related("unsubscribe_key", "contact"))
    assert unsubscribe_keys_attach(sent_messages=again) == 0
    assert UnsubscribeKey.objects.filter(team=team).count() == 4


def test_the_token_and_its_url_are_what_djangos_signer_and_reverse_give(setup, settings):
    """The send path's shortcuts (the HMAC key derived once per SECRET_KEY; the unsubscribe path built around the
    token once per URL configuration and script prefix) give exactly ``Signer(salt=SALT).sign`` and
    ``reverse("unsubscribe")``, for many keys, another SECRET_KEY and a script prefix; a token Django would quote
    goes through ``reverse`` itself."""
    import secrets

    from django.urls import set_script_prefix

    from outreach.inbound.models import UnsubscribeKey
    from outreach.inbound.unsubscribe import _unsubscribe_path

    keys = [UnsubscribeKey(key=secrets.token_urlsafe(18)) for _ in range(200)] + [UnsubscribeKey(key="k" * 24)]
    for secret in (settings.SECRET_KEY, "another secret key, ü and all " * 3):
        settings.SECRET_KEY = secret
        for key in keys:
            token = unsubscribe_token(key)
            assert token == signing.Signer(salt=SALT).sign(key.key)
            assert signing.Signer(salt=SALT).unsign(token) == key.key
    try:
        for prefix in ("/", "/outreach/"):
            set_script_prefix(prefix)
            for token in [unsubscribe_token(key) for key in keys[:50]] + ["odd token é?#"]:
                assert _unsubscribe_path(token) == reverse("unsubscribe", args=[token]), (prefix, token)
    finally:
        set_script_prefix("/")
