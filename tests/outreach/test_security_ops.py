"""Issue 10 items 5, 6, 8, 9: login throttling, CSP and remote images, team roles and invitations,
runapp (demo password, SIGTERM stops its children, static files with DEBUG=false)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.urls import URLPattern, get_resolver, reverse

from outreach.models import Mailbox, Membership
from outreach.services.teams import INVITATION_SALT, invitation_create
from tests.factories import PASSWORD, make_contact, make_mailbox, make_sent_message, make_team_user, make_user

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


# --- 5. Login throttling ---------------------------------------------------------------------------


def test_login_locks_after_n_failures_with_a_clear_message_and_operator_unlock(client, settings):
    from django.core.management import call_command

    team, user = make_team_user()
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = client.post(reverse("login"), {"username": user.username, "password": "wrong"})
        assert response.status_code == 200 and "Please enter a correct" in response.content.decode()
    locked = client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    # Even the right password is refused now.
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    # The operator unlocks; the right password works again.
    call_command("axes_reset_username", user.username)
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)


# --- 6. CSP and remote images --------------------------------------------------------------------


def _ui_urls(objects: dict) -> list[str]:
    """Every URL without an id, some with ids, and admin pages."""
    urls = []
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLPattern) and pattern.name and not pattern.pattern.converters:
            urls.append(reverse(pattern.name))
    urls += [reverse("contact_detail", args=[objects["contact"].pk]), reverse("message_detail", args=[objects["message"].pk]),
             reverse("mailbox_edit", args=[objects["mailbox"].pk]), "/admin/", "/admin/outreach/contact/",
             f"/admin/outreach/contact/{objects['contact'].pk}/change/", reverse("login")]
    return urls


def test_every_page_has_a_csp_without_inline_script_or_style(client, team):
    contact = make_contact(team)
    mailbox = make_mailbox(team)
    message = make_sent_message(mailbox, contact)
    client.force_login(make_user(team, role=Membership.Role.OWNER, is_staff=True, is_superuser=True))
    checked = 0
    for url in _ui_urls({"contact": contact, "mailbox": mailbox, "message": message}):
        response = client.get(url, follow=True)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, url
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy, url
        if response.headers.get("Content-Type", "").startswith("text/html") and not url.startswith("/admin/"):
            page = response.content.decode()
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), f"inline <script> on {url}"
            assert "<style" not in page and ' style="' not in page, f"inline style on {url}"
        checked += 1
    assert checked >= 20


def test_htmx_inline_indicator_styles_are_off(user_client):
    page = user_client.get(reverse("contact_list")).content.decode()
    assert '<meta name="htmx-config" content=\'{"includeIndicatorStyles": false' in page


def test_message_body_remote_images_blocked_until_asked(user_client, team):
    body = '<p>Hi</p><img src="https://tracker.example.net/pixel.gif?u=1" alt="t"><img src="//cdn.example.net/x.png">'

    message = make_sent_message(make_mailbox(team), make_contact(team), html_body=body)
    url = reverse("message_detail", args=[message.pk])
    response = user_client.get(url)
    page = response.content.decode()
    assert "tracker.example.net" not in page and "cdn.example.net" not in page
    assert "Remote images are blocked (2)" in page and "?images=1" in page
    assert "https:" not in response.headers["Content-Security-Policy"].split("img-src")[1].split(";")[0]
    shown = user_client.get(url + "?images=1")
    assert "tracker.example.net/pixel.gif" in shown.content.decode()
    img_src = shown.headers["Content-Security-Policy"].split("img-src")[1].split(";")[0]
    assert "https:" in img_src


# --- 8. Roles ---------------------------------------------------------------------------------------


def _admin_only_patterns() -> list[URLPattern]:
    return [p for p in get_resolver().url_patterns
            if isinstance(p, URLPattern) and p.name and getattr(p.callback, "team_admin_only", False)]


def test_admin_only_urls_are_the_expected_ones():
    names = {p.name for p in _admin_only_patterns()}
    assert {"mailbox_connect", "mailbox_connect_provider", "mailbox_edit", "mailbox_delete", "mailbox_test",
            "provider_account_create", "provider_account_edit", "provider_account_delete", "member_invite"} <= names
    assert not names & {"contact_list", "contact_create", "contact_compose", "lead_list", "lead_edit", "member_list"}


def test_members_cannot_manage_mailboxes_accounts_or_members(client, settings):
    team, owner = make_team_user(role=Membership.Role.OWNER)
    member = make_user(team)
    mailbox = make_mailbox(team)
    client.force_login(member)
    for pattern in _admin_only_patterns():
        kwargs = {name: mailbox.pk for name in pattern.pattern.converters}
        url = reverse(pattern.name, kwargs=kwargs)
        assert client.get(url).status_code in (403, 405), pattern.name
        assert client.post(url, {"sender_name": "x", "email": "a@example.com"}).status_code == 403, pattern.name
    assert "owners and admins can do this" in client.get(reverse("mailbox_connect")).content.decode()
    # Bulk actions on mailboxes and members too.
    assert client.post(reverse("mailbox_list"), {"action": "deactivate", "ids": [mailbox.pk]}).status_code == 403
    assert client.post(reverse("member_list"), {"action": "remove", "ids": [owner.membership.pk],
                                                "confirmed": "yes"}).status_code == 403
    assert Mailbox.objects.get(pk=mailbox.pk).is_active and Membership.objects.filter(user=owner).exists()
    # Members still compose, work leads and see the lists (and the members page, read-only).
    for name in ("contact_list", "lead_list", "mailbox_list", "member_list", "contact_create"):
        assert client.get(reverse(name)).status_code == 200, name
    assert "Invite" not in client.get(reverse("member_list")).content.decode()
    assert 'href="/mailboxes/connect/"' not in client.get(reverse("mailbox_list")).content.decode()


def test_admin_invites_by_signed_link_and_the_invitee_joins(client, team_user):
    team, owner = team_user
    client.force_login(owner)
    response = client.post(reverse("member_invite"), {"email": "new.person@example.com", "role": "admin"}, follow=True)
    assert response.status_code == 200
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.person@example.com"]
    link = re.search(r"http://testserver(/invite/\S+/)", mail.outbox[0].body).group(1)
    client.logout()
    page = client.get(link)
    assert page.status_code == 200 and team.name in page.content.decode()
    response = client.post(link, {"username": "newperson", "password": "a-long-enough-pw-42"})
    assert response.status_code == 302
    newbie = get_user_model().objects.get(username="newperson")
    assert newbie.membership.team == team and newbie.membership.role == "admin" and newbie.email == "new.person@example.com"
    # The link works once.
    client.logout()
    again = client.post(link, {"username": "someone-else", "password": "a-long-enough-pw-42"})
    assert again.status_code == 200 and "already used" in again.content.decode()


def test_invitation_link_expires_and_cannot_be_forged(client, team_user, settings):
    team, owner = team_user
    token = invitation_create(team=team, email="late@example.com", role="member", actor=owner)
    settings.OUTREACH_INVITATION_MAX_AGE = -1
    assert "expired" in client.get(reverse("invitation_accept", args=[token])).content.decode()
    settings.OUTREACH_INVITATION_MAX_AGE = 3600
    forged = signing.dumps({"team": team.pk, "email": "x@example.com", "role": "owner"}, salt="other-salt")
    response = client.get(reverse("invitation_accept", args=[forged]))
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert signing.loads(token, salt=INVITATION_SALT)["role"] == "member"


def test_roles_change_and_the_last_owner_stays(client, team_user):
    team, owner = team_user
    member = make_user(team)
    client.force_login(owner)
    client.post(reverse("member_list"), {"action": "set_role", "value": "admin", "ids": [member.membership.pk]})
    member.membership.refresh_from_db()
    assert member.membership.role == "admin"
    response = client.post(reverse("member_list"), {"action": "set_role", "value": "member", "ids": [owner.membership.pk]}, follow=True)
    assert "only owner" in response.content.decode()
    owner.membership.refresh_from_db()
    assert owner.membership.role == "owner"
    client.post(reverse("member_list"), {"action": "remove", "ids": [member.membership.pk], "confirmed": "yes"})
    assert not Membership.objects.filter(user=member).exists()


def test_admin_honours_roles(client):
    from django.contrib.auth.models import Permission

    team, owner = make_team_user(role=Membership.Role.OWNER)
    staff_member = make_user(team, is_staff=True)
    staff_member.user_permissions.set(Permission.objects.filter(content_type__app_label="outreach"))
    mailbox = make_mailbox(team)
    client.force_login(staff_member)
    assert client.get("/admin/outreach/mailbox/").status_code == 200
    assert client.get("/admin/outreach/mailbox/add/").status_code == 403
    assert client.post(f"/admin/outreach/mailbox/{mailbox.pk}/change/", {"sender_name": "x"}).status_code == 403
    assert client.post(f"/admin/outreach/membership/{owner.membership.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/outreach/contact/add/").status_code == 200  # members work contacts


def test_data_migration_makes_the_first_member_owner():
    from importlib import import_module

    from django.apps import apps

    team, first = make_team_user(role=Membership.Role.MEMBER)
    second = make_user(team)
    import_module("outreach.migrations.0005_roles_and_provider_choices").first_member_becomes_owner(apps, None)
    first.membership.refresh_from_db()
    second.membership.refresh_from_db()
    assert (first.membership.role, second.membership.role) == ("owner", "member")


# --- 9. runapp ------------------------------------------------------------------------------------


def test_runapp_keeps_an_existing_demo_password():
    from outreach.management.commands.runapp import demo_user_ensure

    user, password = demo_user_ensure()
    assert password and user.check_password(password) and user.is_superuser
    again, none = demo_user_ensure()
    again.refresh_from_db()
    assert none is None and again.check_password(password)
    _, fresh = demo_user_ensure(reset_password=True)
    again.refresh_from_db()
    assert fresh and fresh != password and again.check_password(fresh)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_to_runapp_stops_its_children(tmp_path):
    from tests.servers import free_port

    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "outreach.settings.local", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
           "CELERY_BROKER_URL": "filesystem://", "CELERY_FILESYSTEM_BROKER_DIR": str(tmp_path / "broker"),
           "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "var" / "celerybeat-schedule"), "REDIS_URL": ""}
    proc = subprocess.Popen([sys.executable, "manage.py", "runapp", f"127.0.0.1:{port}"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        children: list[int] = []
        while time.monotonic() < deadline and len(children) < 3:  # three workers: sends (+ beat), imports, inbound
            assert proc.poll() is None, proc.stdout.read()
            children = _children(proc.pid)
            time.sleep(0.2)
        assert len(children) == 3, f"runapp started {len(children)} worker processes, not 3"
        time.sleep(1.0)  # let the worker get going
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(c) for c in children):
            time.sleep(0.2)
        assert not [c for c in children if _alive(c)], "children still running after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in _children(proc.pid):
            os.kill(child, signal.SIGKILL)


def test_static_files_are_served_with_debug_off(client, settings):
    assert settings.DEBUG is False
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content if response.streaming else [response.content])
