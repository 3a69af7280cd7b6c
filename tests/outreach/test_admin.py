"""Django admin: team-scoped for non-superuser staff, credentials write-only, timeline read-only."""
import pytest
from django.contrib.auth.models import Permission

from outreach.models import Contact, Mailbox
from tests.factories import make_contact, make_lead, make_team_with_owner, provider_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    team, user = make_team_with_owner()
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="outreach"))
    client.force_login(user)
    return client, team


def test_staff_sees_only_their_team(staff_client):
    client, team = staff_client
    other, _ = make_team_with_owner()
    mine = make_contact(team, email="mine@example.org")
    theirs = make_contact(other, email="theirs@example.org")
    page = client.get("/admin/outreach/contact/").content.decode()
    assert "mine@example.org" in page and "theirs@example.org" not in page
    assert client.get(f"/admin/outreach/contact/{theirs.pk}/change/").status_code == 302  # "doesn't exist" redirect
    assert client.get(f"/admin/outreach/contact/{mine.pk}/change/").status_code == 200


def test_mailbox_passwords_are_write_only(staff_client, settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True  # the admin applies the UI's host rules
    client, team = staff_client
    mailbox = Mailbox.objects.create(team=team, sender_email="a@example.com", provider_config=provider_config(
        "smtp", smtp_host="127.0.0.1", smtp_port=587, smtp_password="very-secret-smtp-pw"))
    page = client.get(f"/admin/outreach/mailbox/{mailbox.pk}/change/").content.decode()
    assert "very-secret-smtp-pw" not in page
    assert 'name="smtp_host"' in page and "SMTP (sending)" in page and 'name="lemlist_send_user_id"' not in page
    add_page = client.get("/admin/outreach/mailbox/add/").content.decode()  # every provider's declared settings
    assert "lemlist settings" in add_page and 'name="unipile_track_opens"' in add_page and 'name="imap_host"' in add_page
    assert mailbox.provider_config["smtp_password"] not in page
    form = {"team": team.pk, "provider": "smtp", "sender_name": "A", "sender_email": "a@example.com",
            "is_active": "on", "smtp_host": "127.0.0.1", "smtp_port": "587", "smtp_login": "",
            "smtp_password": "", "smtp_security": "starttls", "imap_security": "ssl", "imap_sent_folder": "Sent",
            "imap_password": "", "daily_cap": "50", "min_interval_seconds": "90", "interval_jitter_seconds": "60",
            "send_days": "0,1,2,3,4", "send_window_start": "08:00", "send_window_end": "18:00", "time_zone": "UTC"}
    response = client.post(f"/admin/outreach/mailbox/{mailbox.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    mailbox.refresh_from_db()
    assert mailbox.provider_settings["smtp_password"] == "very-secret-smtp-pw"  # blank keeps the stored password
    form["smtp_password"] = "new-pw"
    client.post(f"/admin/outreach/mailbox/{mailbox.pk}/change/", form)
    mailbox.refresh_from_db()
    assert mailbox.provider_settings["smtp_password"] == "new-pw"


def test_staff_cannot_pick_another_teams_contact_in_forms(staff_client):
    client, team = staff_client
    other, _ = make_team_with_owner()
    make_contact(other, email="theirs@example.org")
    page = client.get("/admin/outreach/lead/add/").content.decode()
    assert "theirs@example.org" not in page
    assert Contact.objects.count() == 1


def test_timeline_is_read_only(staff_client):
    client, _ = staff_client
    assert client.get("/admin/outreach/timelineevent/add/").status_code == 403


def test_provider_account_api_key_is_write_only(staff_client):
    from outreach.models import ProviderAccount

    client, team = staff_client
    account = ProviderAccount(team=team, provider="lemlist", name="main")
    account.api_key = "lemlist-key-do-not-show"
    account.save()
    url = f"/admin/outreach/provideraccount/{account.pk}/change/"
    assert "lemlist-key-do-not-show" not in client.get(url).content.decode()
    form = {"team": team.pk, "provider": "lemlist", "name": "main", "base_url": "", "api_key": ""}
    assert client.post(url, form).status_code == 302
    account.refresh_from_db()
    assert account.api_key == "lemlist-key-do-not-show"
    client.post(url, {**form, "api_key": "rotated-key"})
    account.refresh_from_db()
    assert account.api_key == "rotated-key"


# --- Admin crashes and bypasses (issue 10, item 7) ------------------------------------------------


def _inline_management(prefix: str, total: int, initial: int = 0) -> dict:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1"}


def test_contact_inline_add_lead_goes_through_the_service(staff_client):
    from outreach.models import Lead, TimelineEvent

    client, team = staff_client
    contact = make_contact(team, email="inline@example.org")
    form = {"team": team.pk, "email": "inline@example.org", "first_name": "In", "last_name": "Line", "company": "",
            "title": "", "phone": "", "linkedin_url": "", "custom_fields": "{}", "source": "manual",
            **_inline_management("lead", 1), "lead-0-status": "new", "lead-0-owner": "", "lead-0-source": "admin",
            "lead-0-contact": contact.pk, **_inline_management("external_ids", 0)}
    response = client.post(f"/admin/outreach/contact/{contact.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    lead = Lead.objects.get(contact=contact)
    assert lead.team == team and lead.source == "admin"
    kinds = set(TimelineEvent.objects.filter(contact=contact).values_list("kind", flat=True))
    assert {TimelineEvent.Kind.LEAD_CREATED, TimelineEvent.Kind.CONTACT_UPDATED} <= kinds


def test_contact_inline_vendor_ids_go_through_the_service(staff_client):
    from outreach.models import ExternalId
    from outreach.selectors import external_id_values

    client, team = staff_client
    contact = make_contact(team, email="ids@example.org", leadlex_contact_id="cont_old")
    make_lead(contact)
    old = ExternalId.objects.get(contact=contact)
    base = {"team": team.pk, "email": "ids@example.org", "first_name": "", "last_name": "", "company": "", "title": "",
            "phone": "", "linkedin_url": "", "custom_fields": "{}", "source": "manual",
            **_inline_management("lead", 1, 1), "lead-0-id": contact.lead.pk, "lead-0-contact": contact.pk,
            "lead-0-status": "new", "lead-0-owner": "", "lead-0-source": ""}
    rows = {"external_ids-0-id": old.pk, "external_ids-0-contact": contact.pk, "external_ids-0-DELETE": "on",
            "external_ids-0-declared": "contact:leadlex:contact_id", "external_ids-0-value": "cont_old",
            "external_ids-0-extra_data": "{}",
            "external_ids-1-contact": contact.pk, "external_ids-1-declared": "contact:lemlist:contactId",
            "external_ids-1-value": " ctc_9 ", "external_ids-1-extra_data": '{"campaign": "c1"}',
            "external_ids-2-contact": contact.pk, "external_ids-2-declared": "lead:leadlex:deal_id",
            "external_ids-2-value": "deal_7", "external_ids-2-extra_data": "{}"}
    management = {"external_ids-TOTAL_FORMS": "3", "external_ids-INITIAL_FORMS": "1", "external_ids-MIN_NUM_FORMS": "0",
                  "external_ids-MAX_NUM_FORMS": "1000"}
    response = client.post(f"/admin/outreach/contact/{contact.pk}/change/", {**base, **rows, **management})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert external_id_values(contact=contact, object="contact") == {"lemlist_contact_id": "ctc_9"}
    assert external_id_values(contact=contact, object="lead") == {"leadlex_deal_id": "deal_7"}
    assert ExternalId.objects.get(contact=contact, kind="contactId").extra_data == {"campaign": "c1"}
    # An id no provider declares is refused on the form, naming the row.
    bad = {**base, **management, "external_ids-TOTAL_FORMS": "1", "external_ids-INITIAL_FORMS": "0",
           "external_ids-0-contact": contact.pk, "external_ids-0-declared": "contact:lemlist:bogus",
           "external_ids-0-value": "x", "external_ids-0-extra_data": "{}"}
    response = client.post(f"/admin/outreach/contact/{contact.pk}/change/", bad)
    assert response.status_code == 200 and "bogus" in response.content.decode()


def test_mailbox_provider_is_a_registry_choice(staff_client, settings):
    from django.core.exceptions import ValidationError

    from outreach.services.mailboxes import mailbox_update

    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    client, team = staff_client
    form = {"team": team.pk, "provider": "bogus", "sender_name": "A", "sender_email": "a@example.com",
            "is_active": "on", "smtp_host": "127.0.0.1", "smtp_port": "587", "smtp_login": "a",
            "smtp_password": "pw", "smtp_security": "starttls", "imap_security": "ssl", "imap_sent_folder": "Sent"}
    response = client.post("/admin/outreach/mailbox/add/", form)
    assert response.status_code == 200 and "provider" in response.context["adminform"].form.errors
    assert not Mailbox.objects.exists()
    # A legacy row with an unknown provider: its edit page answers, the service refuses by name.
    legacy = Mailbox.objects.create(team=team, provider="bogus", sender_email="b@example.com",
                                    provider_config={"smtp_host": "127.0.0.1", "smtp_port": 587})
    assert client.get(f"/admin/outreach/mailbox/{legacy.pk}/change/").status_code == 200
    with pytest.raises(ValidationError) as err:
        mailbox_update(mailbox=legacy, data={"sender_name": "B"})
    assert "provider" in err.value.message_dict


def test_sent_messages_and_timeline_are_read_only(staff_client):
    from tests.factories import make_mailbox, make_sent_message

    client, team = staff_client
    message = make_sent_message(make_mailbox(team), make_contact(team, "bob@example.org", first_name="Bob", last_name="Stone"))
    assert client.get("/admin/outreach/sentmessage/add/").status_code == 403
    url = f"/admin/outreach/sentmessage/{message.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and 'name="subject"' not in page.content.decode()
    assert client.post(url, {"subject": "Rewritten", "to": '["x@evil.example"]'}).status_code == 403
    message.refresh_from_db()
    assert message.subject == "Hello"
    from outreach.models import TimelineEvent

    event = TimelineEvent.objects.filter(sent_message=message).first()
    assert client.post(f"/admin/outreach/timelineevent/{event.pk}/change/", {"summary": "x"}).status_code == 403


def test_rotate_credentials_action_honours_the_selection(staff_client, settings):
    from tests.factories import make_mailbox

    client, team = staff_client
    chosen, other = make_mailbox(team), make_mailbox(team)
    before = {m.pk: Mailbox.objects.get(pk=m.pk).provider_config["smtp_password"] for m in (chosen, other)}
    new_key = "bmV3LXJvdGF0aW9uLWtleS1mb3ItdGVzdHMtMDEyMzQ="
    settings.OUTREACH_ENCRYPTION_KEYS = [new_key, *settings.OUTREACH_ENCRYPTION_KEYS]
    response = client.post("/admin/outreach/mailbox/", {"action": "rotate_selected_credentials", "_selected_action": [chosen.pk]})
    assert response.status_code == 302
    assert Mailbox.objects.get(pk=chosen.pk).provider_config["smtp_password"] != before[chosen.pk]
    assert Mailbox.objects.get(pk=other.pk).provider_config["smtp_password"] == before[other.pk]
    assert Mailbox.objects.get(pk=chosen.pk).provider_settings["smtp_password"] == "smtp-secret"
