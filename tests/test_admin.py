"""Django admin: team-scoped for non-superuser staff, credentials write-only, timeline read-only."""
import pytest
from django.contrib.auth.models import Permission

from outreach.models import Contact, Mailbox
from tests.mailhelpers import make_contact, make_team

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    team, user = make_team()
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="outreach"))
    client.force_login(user)
    return client, team


def test_staff_sees_only_their_team(staff_client):
    client, team = staff_client
    other, _ = make_team()
    mine = make_contact(team, email="mine@example.org")
    theirs = make_contact(other, email="theirs@example.org")
    page = client.get("/admin/outreach/contact/").content.decode()
    assert "mine@example.org" in page and "theirs@example.org" not in page
    assert client.get(f"/admin/outreach/contact/{theirs.pk}/change/").status_code == 302  # "doesn't exist" redirect
    assert client.get(f"/admin/outreach/contact/{mine.pk}/change/").status_code == 200


def test_mailbox_passwords_are_write_only(staff_client):
    client, team = staff_client
    mailbox = Mailbox(team=team, sender_email="a@example.com", smtp_host="smtp.example.com", smtp_port=587)
    mailbox.smtp_password = "very-secret-smtp-pw"
    mailbox.save()
    page = client.get(f"/admin/outreach/mailbox/{mailbox.pk}/change/").content.decode()
    assert "very-secret-smtp-pw" not in page
    assert mailbox.smtp_password_encrypted not in page
    form = {"team": team.pk, "provider": "smtp", "sender_name": "A", "sender_email": "a@example.com",
            "is_active": "on", "smtp_host": "smtp.example.com", "smtp_port": "587", "smtp_login": "",
            "smtp_password": "", "smtp_security": "starttls", "imap_security": "ssl", "imap_sent_folder": "Sent",
            "imap_password": "", "daily_cap": "50", "min_interval_seconds": "90", "interval_jitter_seconds": "60",
            "send_days": "0,1,2,3,4", "send_window_start": "08:00", "send_window_end": "18:00", "time_zone": "UTC"}
    response = client.post(f"/admin/outreach/mailbox/{mailbox.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    mailbox.refresh_from_db()
    assert mailbox.smtp_password == "very-secret-smtp-pw"  # blank keeps the stored password
    form["smtp_password"] = "new-pw"
    client.post(f"/admin/outreach/mailbox/{mailbox.pk}/change/", form)
    mailbox.refresh_from_db()
    assert mailbox.smtp_password == "new-pw"


def test_staff_cannot_pick_another_teams_contact_in_forms(staff_client):
    client, team = staff_client
    other, _ = make_team()
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
