"""Views of the sales UI: login, tenant isolation, lists, forms, compose, mailboxes, htmx partials."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone as dt_timezone

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from outreach.models import Attachment, BulkJob, Contact, Lead, Mailbox, ProviderAccount, SentMessage, TimelineEvent
from outreach.selectors import external_id_values
from providers import registry
from tests.factories import (
    make_contact,
    make_lead,
    make_mailbox,
    make_provider_account,
    make_sent_message,
    make_team_user,
    make_user,
)

pytestmark = pytest.mark.django_db


def ui_patterns() -> list[URLPattern]:
    """Every named top-level URL pattern of the project outside the admin."""
    return [p for p in get_resolver().url_patterns if isinstance(p, URLPattern) and p.name]


def all_ui_patterns(resolver: URLResolver | None = None) -> list[URLPattern]:
    """Every named URL pattern outside the admin, those of included URL files (imports, templates,
    campaigns, inbound…) too."""
    found = []
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            if "admin" not in (pattern.app_name, pattern.namespace):
                found.extend(all_ui_patterns(pattern))
        elif pattern.name:
            found.append(pattern)
    return found


# --- Login and teams -------------------------------------------------------------------------


def test_every_url_requires_login(client):
    from outreach.urls import PUBLIC_URL_NAMES

    patterns = [p for p in all_ui_patterns() if p.name not in PUBLIC_URL_NAMES]
    # The public allow-list is exactly the views marked login_not_required.
    assert {p.name for p in all_ui_patterns() if getattr(p.callback, "login_required", True) is False} == PUBLIC_URL_NAMES
    assert {"campaign_detail", "message_template_edit", "import_detail"} <= {p.name for p in patterns}
    assert len(patterns) >= 40
    for pattern in patterns:
        url = reverse(pattern.name, kwargs={k: 1 for k in pattern.pattern.converters})
        response = client.get(url)
        assert response.status_code == 302, pattern.name
        assert response.url.startswith(reverse("login") + "?next="), pattern.name


def test_login_page_and_login(client):
    team, user = make_team_user()
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="password"' in page.content
    response = client.post(reverse("login"), {"username": user.username, "password": "pw-for-tests-123"})
    assert response.status_code == 302 and response.url == reverse("contact_list")
    assert client.get("/").url == reverse("contact_list")


def test_logout_is_a_post_form(user_client):
    page = user_client.get(reverse("contact_list")).content.decode()
    assert re.search(r'<form method="post" action="/logout/"', page)
    assert user_client.post(reverse("logout")).status_code == 302
    assert user_client.get(reverse("contact_list")).status_code == 302


def test_user_without_team_gets_403_with_explanation(client):
    client.force_login(make_user(None))
    response = client.get(reverse("contact_list"))
    assert response.status_code == 403
    assert "not a member of any team" in response.content.decode()


def test_nav_shows_team_and_links(user_client, team):
    page = user_client.get(reverse("contact_list")).content.decode()
    assert team.name in page
    for name in ("contact_list", "lead_list", "message_list", "mailbox_list", "provider_account_list"):
        assert f'href="{reverse(name)}"' in page
    assert "/admin/" not in page  # not staff
    assert 'hx-headers=\'{"X-CSRFToken": "' in page
    assert "js/htmx.min.js" in page


# --- Tenant isolation ----------------------------------------------------------------------------


def _objects_of(team):
    """One object of each kind for ``team``: the kinds URL ids refer to."""
    contact = make_contact(team)
    lead_contact = make_contact(team)
    lead = make_lead(lead_contact)
    mailbox = make_mailbox(team)
    message = make_sent_message(mailbox, contact)
    account = make_provider_account(team)
    job = BulkJob.objects.create(team=team, kind=BulkJob.Kind.DELETE, query={"q": contact.email})
    return {"contact": contact, "lead": lead, "mailbox": mailbox, "message": message, "provider_account": account,
            "bulk_job": job}


# Which object each id-taking URL refers to. A new URL with an id must be added here, or the
# isolation test below fails, so no such URL can be forgotten.
ID_KINDS = {
    "contact_detail": "contact", "contact_edit": "contact", "contact_delete": "contact",
    "contact_compose": "contact", "contact_timeline": "contact", "lead_create": "contact",
    "lead_edit": "lead", "mailbox_edit": "mailbox", "mailbox_delete": "mailbox",
    "message_detail": "message", "message_status": "message", "message_timeline_card": "message",
    "message_action": "message",
    "provider_account_edit": "provider_account", "provider_account_delete": "provider_account",
    "bulk_job_detail": "bulk_job", "bulk_job_progress": "bulk_job", "bulk_job_cancel": "bulk_job",
}


def test_every_url_with_an_id_is_404_for_another_team(client):
    mine_team, me = make_team_user(role="owner")  # owners: admin-only URLs answer them too
    other_team, other = make_team_user(role="owner")
    theirs = _objects_of(other_team)
    _objects_of(mine_team)
    from outreach.urls import PUBLIC_URL_NAMES

    patterns = [p for p in ui_patterns() if p.pattern.converters and p.name not in PUBLIC_URL_NAMES]
    assert {p.name for p in patterns} <= set(ID_KINDS), "map the new URL's id to an object kind in ID_KINDS"
    assert len(patterns) == len(ID_KINDS)
    for pattern in patterns:
        kwargs = {name: theirs[ID_KINDS[pattern.name]].pk for name in pattern.pattern.converters}
        url = reverse(pattern.name, kwargs=kwargs)
        # The owner can open it (so the id is real)…
        client.force_login(other)
        assert client.get(url).status_code in (200, 302), pattern.name
        # …another team gets 404 for GET and POST.
        client.force_login(me)
        assert client.get(url).status_code == 404, f"GET {pattern.name}"
        assert client.post(url, {"confirmed": "yes", "deactivate": "1"}).status_code == 404, f"POST {pattern.name}"
    # Nothing of the other team changed.
    assert Contact.objects.for_team(other_team).count() == 2
    assert Mailbox.objects.for_team(other_team).count() == 1
    assert ProviderAccount.objects.for_team(other_team).count() == 1
    assert BulkJob.objects.get(team=other_team).status == BulkJob.Status.QUEUED


def test_mailbox_test_with_another_teams_mailbox_id_is_404(user_client):
    other_team, _ = make_team_user()
    theirs = make_mailbox(other_team, smtp_password="their-secret")
    response = user_client.post(reverse("mailbox_test"), {"mailbox_id": theirs.pk, "sender_name": "x"})
    assert response.status_code == 404


def test_lists_show_only_own_team(user_client, team):
    other_team, _ = make_team_user()
    make_contact(other_team, "theirs@example.com")
    make_contact(team, "mine@example.com")
    page = user_client.get(reverse("contact_list")).content.decode()
    assert "mine@example.com" in page and "theirs@example.com" not in page


# --- Lists -----------------------------------------------------------------------------------------


def _emails_in(page: str) -> list[str]:
    return re.findall(r'<a href="/contacts/\d+/">([^<]+)</a>', page)


def test_contact_list_search_filter_sort(user_client, team):
    ann = make_contact(team, "ann@alpha.com", first_name="Ann", company="Alpha")
    make_contact(team, "bob@beta.com", first_name="Bob", company="Beta")
    make_contact(team, "cyd@alpha.com", first_name="Cyd", company="Alpha")
    make_lead(ann, status=Lead.Status.REPLIED)
    url = reverse("contact_list")

    assert _emails_in(user_client.get(url, {"q": "bob"}).content.decode()) == ["bob@beta.com"]
    assert _emails_in(user_client.get(url, {"q": "alpha ann"}).content.decode()) == ["ann@alpha.com"]
    assert sorted(_emails_in(user_client.get(url, {"company": "Alpha"}).content.decode())) == ["ann@alpha.com", "cyd@alpha.com"]
    assert _emails_in(user_client.get(url, {"lead": "replied"}).content.decode()) == ["ann@alpha.com"]
    assert sorted(_emails_in(user_client.get(url, {"lead": "no"}).content.decode())) == ["bob@beta.com", "cyd@alpha.com"]
    assert _emails_in(user_client.get(url, {"o": "email"}).content.decode()) == ["ann@alpha.com", "bob@beta.com", "cyd@alpha.com"]
    page = user_client.get(url, {"o": "-email"}).content.decode()
    assert _emails_in(page) == ["cyd@alpha.com", "bob@beta.com", "ann@alpha.com"]
    assert 'aria-sort="descending"' in page
    # The header of the sorted column toggles the direction; unknown sort keys fall back.
    assert 'href="?o=email"' in page
    assert user_client.get(url, {"o": "password"}).status_code == 200
    # No match → the "no match" empty state with a way out.
    assert "No contacts match" in user_client.get(url, {"q": "zzz"}).content.decode()


def test_contact_list_rows_show_lead_status_and_created_time(user_client, team):
    ann = make_contact(team, "ann@alpha.com")
    make_contact(team, "bob@beta.com")
    make_lead(ann, status=Lead.Status.REPLIED)
    Contact.objects.filter(pk=ann.pk).update(created_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt_timezone.utc))
    rows = user_client.get(reverse("contact_list"), {"o": "email"}).content.decode().split("<tr>")[2:]
    assert "ann@alpha.com" in rows[0] and '<span class="badge badge-lead-replied">Replied</span>' in rows[0]
    assert 'title="2026-03-04 05:06:07 UTC">2026-03-04 05:06</td>' in rows[0]
    assert "bob@beta.com" in rows[1] and '<span class="muted">not a lead</span>' in rows[1]


def test_contact_list_pagination(user_client, team):
    Contact.objects.bulk_create([Contact(team=team, email=f"p{i:03d}@example.com") for i in range(120)])
    url = reverse("contact_list")
    first = user_client.get(url, {"o": "email"})
    page = first.content.decode()
    assert "120 contacts" in page and "Previous" not in page and "First" not in page
    assert len(_emails_in(page)) == 50 and _emails_in(page)[0] == "p000@example.com"
    # Page links keep the sort order; the next page continues after the last row shown.
    assert f'href="?o=email&amp;after={first.context["page_obj"].next_cursor}"' in page
    last = user_client.get(url, {"o": "email", "last": "1"}).content.decode()
    assert _emails_in(last) == [f"p{i:03d}@example.com" for i in range(70, 120)]
    assert "Next" not in last and "Previous" in last
    # A malformed page token shows the first page.
    assert _emails_in(user_client.get(url, {"o": "email", "after": "!!"}).content.decode())[0] == "p000@example.com"


def test_contact_list_empty_state(user_client):
    page = user_client.get(reverse("contact_list")).content.decode()
    assert "No contacts yet" in page
    assert f'href="{reverse("contact_create")}"' in page
    assert "import a CSV" in page


def test_lead_list_filters_and_bulk_set_status(user_client, team, team_user):
    user = team_user[1]
    a = make_lead(make_contact(team, "a@x.com"), status=Lead.Status.NEW, owner=user)
    b = make_lead(make_contact(team, "b@x.com"), status=Lead.Status.WON)
    other_team, _ = make_team_user()
    theirs = make_lead(make_contact(other_team, "t@x.com"))
    url = reverse("lead_list")
    assert "a@x.com" in (p := user_client.get(url, {"status": "new"}).content.decode()) and "b@x.com" not in p
    assert "b@x.com" in (p := user_client.get(url, {"owner": "none"}).content.decode()) and "a@x.com" not in p
    assert "a@x.com" in (p := user_client.get(url, {"owner": str(user.pk)}).content.decode()) and "b@x.com" not in p
    response = user_client.post(url, {"action": "set_status", "value": "contacted", "ids": [a.pk, b.pk, theirs.pk]})
    assert response.status_code == 302
    a.refresh_from_db(), b.refresh_from_db(), theirs.refresh_from_db()
    assert (a.status, b.status, theirs.status) == ("contacted", "contacted", "new")
    assert TimelineEvent.objects.filter(contact=a.contact, kind=TimelineEvent.Kind.LEAD_STATUS).exists()
    messages = [str(m) for m in user_client.get(response.url).context["messages"]]
    assert messages == ["Set 2 leads to “Contacted”."]
    # An invalid value is refused.
    user_client.post(url, {"action": "set_status", "value": "bogus", "ids": [a.pk]})
    a.refresh_from_db()
    assert a.status == "contacted"


def test_message_list_filters(user_client, team):
    mailbox = make_mailbox(team)
    contact = make_contact(team, "ann@x.com")
    make_sent_message(mailbox, contact, subject="Quarterly update", status=SentMessage.Status.SENT)
    make_sent_message(mailbox, contact, subject="Broken one", status=SentMessage.Status.FAILED, error_message="535 nope")
    url = reverse("message_list")
    assert "Broken one" in (p := user_client.get(url, {"status": "failed"}).content.decode()) and "Quarterly" not in p
    assert "Quarterly" in (p := user_client.get(url, {"q": "quarterly"}).content.decode()) and "Broken" not in p
    assert "Quarterly" in user_client.get(url, {"q": "ann@x.com", "mailbox": mailbox.pk}).content.decode()
    assert "No messages match" in user_client.get(url, {"mailbox": "999999"}).content.decode()


def test_mailbox_list_search_and_bulk_deactivate(user_client, team):
    m1 = make_mailbox(team, sender_email="one@acme.com")
    m2 = make_mailbox(team, sender_email="two@acme.com")
    url = reverse("mailbox_list")
    assert "two@acme.com" in (p := user_client.get(url, {"q": "one"}).content.decode()) or "one@acme.com" in p
    assert "two@acme.com" not in user_client.get(url, {"q": "one"}).content.decode()
    user_client.post(url, {"action": "deactivate", "ids": [m1.pk]})
    m1.refresh_from_db(), m2.refresh_from_db()
    assert (m1.is_active, m2.is_active) == (False, True)
    assert "one@acme.com" in (p := user_client.get(url, {"active": "no"}).content.decode()) and "two@acme.com" not in p


def test_bulk_delete_confirms_first_and_deletes_only_own_rows(user_client, team):
    mine = [make_contact(team, f"m{i}@x.com") for i in range(3)]
    other_team, _ = make_team_user()
    theirs = make_contact(other_team, "their@x.com")
    url = reverse("contact_list") + "?q=x.com"
    ids = [mine[0].pk, mine[1].pk, theirs.pk]

    confirm = user_client.post(url, {"action": "delete", "ids": ids})
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Are you sure?" in page
    assert "m0@x.com" in page and "m1@x.com" in page and "their@x.com" not in page
    assert 'name="confirmed" value="yes"' in page
    assert Contact.objects.count() == 4  # nothing deleted yet

    done = user_client.post(url, {"action": "delete", "ids": ids, "confirmed": "yes"})
    assert done.status_code == 302 and done.url == url
    assert set(Contact.objects.values_list("email", flat=True)) == {"m2@x.com", "their@x.com"}
    assert [str(m) for m in user_client.get(url).context["messages"]] == ["Deleted 2 contacts."]


def test_bulk_action_without_selection_warns(user_client, team):
    make_contact(team)
    response = user_client.post(reverse("contact_list"), {"action": "delete"}, follow=True)
    assert "Select at least one row" in response.content.decode()
    assert Contact.objects.count() == 1


def test_bulk_make_leads(user_client, team, team_user):
    a, b = make_contact(team), make_contact(team)
    make_lead(b)
    user_client.post(reverse("contact_list"), {"action": "make_leads", "ids": [a.pk, b.pk]})
    a.refresh_from_db()
    assert a.lead.owner == team_user[1]
    assert Lead.objects.count() == 2


# --- Contacts -------------------------------------------------------------------------------------


def test_contact_create_and_detail(user_client, team):
    response = user_client.post(reverse("contact_create"), {
        "email": " Ann.Lee@Example.COM ", "first_name": "Ann", "last_name": "Lee", "company": "Acme",
        "custom_fields": "industry: SaaS\nsize: 50-200", "lemlist_contact_id": "ctc_1", "leadlex_contact_id": "ll_9",
    })
    contact = Contact.objects.get()
    assert response.status_code == 302 and response.url == reverse("contact_detail", args=[contact.pk])
    assert contact.email == "ann.lee@example.com" and contact.team == team
    assert contact.custom_fields == {"industry": "SaaS", "size": "50-200"}
    page = user_client.get(response.url).content.decode()
    for text in ("Ann Lee", "industry", "50-200", "ctc_1", "ll_9", "Contact created", "Make lead"):
        assert text in page
    assert external_id_values(contact=contact, object="contact") == {"lemlist_contact_id": "ctc_1",
                                                                      "leadlex_contact_id": "ll_9"}
    assert f'href="{reverse("contact_compose", args=[contact.pk])}"' in page


def test_contact_edit_changes_and_clears_vendor_ids_with_a_timeline_row(user_client, team):
    contact = make_contact(team, email="v@example.com", lemlist_contact_id="ctc_1", leadlex_contact_id="ll_1")
    form = user_client.get(reverse("contact_edit", args=[contact.pk])).content.decode()
    assert 'value="ctc_1"' in form and "lemlist contactId" in form and "leadlex contact_id" in form
    response = user_client.post(reverse("contact_edit", args=[contact.pk]), {
        "email": "v@example.com", "lemlist_contact_id": "ctc_2", "leadlex_contact_id": ""})
    assert response.status_code == 302
    assert external_id_values(contact=contact, object="contact") == {"lemlist_contact_id": "ctc_2"}
    event = contact.timeline_events.get(kind="contact_updated")
    assert event.data == {"fields": ["lemlist_contact_id", "leadlex_contact_id"]}
    bad = user_client.post(reverse("contact_edit", args=[contact.pk]), {"email": "v@example.com",
                                                                        "lemlist_contact_id": "x" * 256})
    assert bad.status_code == 200 and "lemlist_contact_id" in bad.context["form"].errors


def test_contact_create_duplicate_email_in_other_case_is_an_inline_error(user_client, team):
    make_contact(team, "ann@example.com")
    response = user_client.post(reverse("contact_create"), {"email": "ANN@Example.com"})
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["A contact with the email ann@example.com already exists in your team."]
    assert 'id="id_email_error"' in response.content.decode()
    assert Contact.objects.count() == 1


def test_same_email_in_another_team_is_fine(user_client):
    other_team, _ = make_team_user()
    make_contact(other_team, "ann@example.com")
    assert user_client.post(reverse("contact_create"), {"email": "ann@example.com"}).status_code == 302


def test_contact_create_malformed_custom_fields_line(user_client):
    response = user_client.post(reverse("contact_create"), {"email": "a@b.com", "custom_fields": "good: 1\nno colon here"})
    assert response.status_code == 200
    assert "Line 2 is not" in response.context["form"].errors["custom_fields"][0]
    assert not Contact.objects.exists()


def test_contact_edit_shows_values_and_saves(user_client, team):
    contact = make_contact(team, "ann@x.com", company="Old", custom_fields={"k": "v"})
    page = user_client.get(reverse("contact_edit", args=[contact.pk])).content.decode()
    assert 'value="Old"' in page and "k: v" in page
    response = user_client.post(reverse("contact_edit", args=[contact.pk]), {"email": "ann@x.com", "company": "New"})
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.company == "New" and contact.custom_fields == {}
    assert TimelineEvent.objects.filter(contact=contact, kind=TimelineEvent.Kind.CONTACT_UPDATED).exists()


def test_contact_delete_confirms_then_deletes(user_client, team):
    contact = make_contact(team, "gone@x.com")
    page = user_client.get(reverse("contact_delete", args=[contact.pk])).content.decode()
    assert "cannot be undone" in page and Contact.objects.exists()
    response = user_client.post(reverse("contact_delete", args=[contact.pk]))
    assert response.status_code == 302 and response.url == reverse("contact_list")
    assert not Contact.objects.exists()


def test_lead_create_and_edit(user_client, team, team_user):
    contact = make_contact(team)
    response = user_client.post(reverse("lead_create", args=[contact.pk]),
                                {"status": "interested", "owner": team_user[1].pk, "lemlist_lead_id": "lea_1"})
    assert response.status_code == 302
    lead = Lead.objects.get(contact=contact)
    assert (lead.status, lead.owner) == ("interested", team_user[1])
    assert external_id_values(contact=contact, object="lead") == {"lemlist_lead_id": "lea_1"}
    assert 'value="lea_1"' in user_client.get(reverse("lead_edit", args=[lead.pk])).content.decode()
    # A second "make lead" goes to the existing lead.
    assert user_client.get(reverse("lead_create", args=[contact.pk])).url == reverse("lead_edit", args=[lead.pk])
    # Owners are limited to the team's members.
    stranger = make_team_user()[1]
    bad = user_client.post(reverse("lead_edit", args=[lead.pk]), {"status": "won", "owner": stranger.pk})
    assert bad.status_code == 200 and "owner" in bad.context["form"].errors
    user_client.post(reverse("lead_edit", args=[lead.pk]), {"status": "won", "owner": ""})
    lead.refresh_from_db()
    assert (lead.status, lead.owner) == ("won", None)


# --- Compose ---------------------------------------------------------------------------------------


def _compose(client, contact, mailbox, **overrides):
    data = {"mailbox": mailbox.pk, "subject": "Hello there", "html_body": "<p>Hi <b>Ann</b></p>",
            "cc": "", "bcc": "", "reply_to": "", "submission_key": str(uuid.uuid4())}
    data.update(overrides)
    return client.post(reverse("contact_compose", args=[contact.pk]), data)


def test_compose_queues_one_message_and_one_task(user_client, team, django_capture_on_commit_callbacks):
    contact = make_contact(team, "ann@x.com")
    mailbox = make_mailbox(team)
    files = [SimpleUploadedFile("a.txt", b"hello", content_type="text/plain"),
             SimpleUploadedFile("b.pdf", b"%PDF-1.4 x", content_type="application/pdf")]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _compose(user_client, contact, mailbox, cc="Bob@X.com, cyd@x.com", bcc="dee@x.com",
                            reply_to="Replies@X.com", attachments=files)
    assert response.status_code == 302
    assert response.url.startswith(reverse("contact_detail", args=[contact.pk]))
    assert len(callbacks) == 1
    message = SentMessage.objects.get()
    assert message.status == SentMessage.Status.QUEUED and message.attempts == 0
    assert (message.to, message.cc, message.bcc, message.reply_to) == (["ann@x.com"], ["bob@x.com", "cyd@x.com"], ["dee@x.com"], "replies@x.com")
    assert sorted(Attachment.objects.values_list("filename", "size")) == [("a.txt", 5), ("b.pdf", 10)]
    follow = user_client.get(response.url)
    assert any(str(m).startswith("Queued") for m in follow.context["messages"])
    assert "Hello there" in follow.content.decode()


def test_compose_submitted_twice_queues_once(user_client, team, django_capture_on_commit_callbacks):
    contact, mailbox = make_contact(team), make_mailbox(team)
    page = user_client.get(reverse("contact_compose", args=[contact.pk])).content.decode()
    key = re.search(r'name="submission_key" value="([0-9a-f-]{36})"', page).group(1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = _compose(user_client, contact, mailbox, submission_key=key)
        second = _compose(user_client, contact, mailbox, submission_key=key)
    assert first.status_code == second.status_code == 302
    assert SentMessage.objects.count() == 1 and len(callbacks) == 1
    assert str(SentMessage.objects.get().idempotency_key) == key


def test_compose_crlf_in_subject_is_refused(user_client, team, django_capture_on_commit_callbacks):
    contact, mailbox = make_contact(team), make_mailbox(team)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _compose(user_client, contact, mailbox, subject="Hi\r\nBcc: victim@evil.test")
    assert response.status_code == 200
    assert "Line breaks are not allowed" in response.context["form"].errors["subject"][0]
    assert not SentMessage.objects.exists() and callbacks == []


def test_compose_invalid_cc_and_inactive_or_foreign_mailbox(user_client, team):
    contact = make_contact(team)
    inactive = make_mailbox(team, is_active=False)
    foreign = make_mailbox(make_team_user()[0])
    active = make_mailbox(team)
    bad_cc = _compose(user_client, contact, active, cc="ok@x.com, not-an-address")
    assert "not-an-address is not a valid email address" in bad_cc.context["form"].errors["cc"][0]
    for mailbox in (inactive, foreign):
        response = _compose(user_client, contact, mailbox)
        assert "mailbox" in response.context["form"].errors
    assert not SentMessage.objects.exists()


def test_compose_capability_problem_is_shown_on_the_field(user_client, team):
    """lemlist's send document has no attachments: the form says so before anything is queued."""
    label = registry.get_provider_class("lemlist").label
    contact, mailbox = make_contact(team), make_mailbox(team, provider="lemlist")
    response = _compose(user_client, contact, mailbox, attachments=[SimpleUploadedFile("a.txt", b"x")])
    assert response.status_code == 200
    assert response.context["form"].errors["attachments"] == [f"{label} mailboxes cannot send attachments."]
    assert f"{label} mailboxes cannot send attachments." in response.content.decode()
    assert not SentMessage.objects.exists()


def test_compose_without_mailbox_explains(user_client, team):
    contact = make_contact(team)
    page = user_client.get(reverse("contact_compose", args=[contact.pk])).content.decode()
    assert "No active mailbox yet" in page and reverse("mailbox_connect") in page


# --- Timeline and status partials ------------------------------------------------------------------


def test_timeline_polls_only_the_pending_message_card_until_it_settles(user_client, team):
    contact, mailbox = make_contact(team), make_mailbox(team)
    done = make_sent_message(mailbox, contact, subject="Done", status=SentMessage.Status.SENT)
    message = make_sent_message(mailbox, contact, subject="Ping")
    card = reverse("message_timeline_card", args=[message.pk])
    page = user_client.get(reverse("contact_detail", args=[contact.pk])).content.decode()
    # Only the pending message's card polls; the timeline itself and the settled card do not.
    assert page.count('hx-trigger="every 2s"') == 1 and f'hx-get="{card}"' in page
    assert reverse("message_timeline_card", args=[done.pk]) not in page
    assert "badge-queued" in page and "Ping" in page and reverse("message_detail", args=[message.pk]) in page

    SentMessage.objects.filter(pk=message.pk).update(status=SentMessage.Status.SENDING)
    fragment = user_client.get(card).content.decode()
    assert 'hx-trigger="every 2s"' in fragment and f'id="message-card-{message.pk}"' in fragment

    SentMessage.objects.filter(pk=message.pk).update(status=SentMessage.Status.SENT, attempts=1)
    fragment = user_client.get(card).content.decode()
    assert "hx-trigger" not in fragment and "badge-sent" in fragment and "1 attempt" in fragment


def test_timeline_pages_newest_50_then_older(user_client, team):
    contact, mailbox = make_contact(team), make_mailbox(team)
    for i in range(60):
        TimelineEvent.objects.create(team=team, contact=contact, kind=TimelineEvent.Kind.CONTACT_UPDATED, summary=f"Event {i:02d}.")
    make_sent_message(mailbox, contact, subject="Newest message")
    page = user_client.get(reverse("contact_detail", args=[contact.pk])).content.decode()
    shown = re.findall(r"Event (\d\d)\.", page)
    assert "Newest message" in page and len(shown) == 49 and shown[0] == "59" and shown[-1] == "11"
    older = re.search(r'hx-get="([^"]+older=[^"]+)"', page).group(1).replace("&amp;", "&")
    rest = user_client.get(older).content.decode()
    assert re.findall(r"Event (\d\d)\.", rest) == [f"{i:02d}" for i in range(10, -1, -1)]
    assert "Older" not in rest and 'id="timeline"' not in rest  # entries only, swapped in place of the button
    # Without JavaScript the button is a link to the contact page showing the older page.
    assert "Event 05." in user_client.get(reverse("contact_detail", args=[contact.pk]), {"older": older.split("older=")[1]}).content.decode()


def test_timeline_shows_failure_and_newest_first(user_client, team):
    contact, mailbox = make_contact(team), make_mailbox(team)
    make_sent_message(mailbox, contact, subject="First")
    make_sent_message(mailbox, contact, subject="Second", status=SentMessage.Status.FAILED,
                      error_message="SMTP authentication refused for x (535 5.7.8)")
    page = user_client.get(reverse("contact_timeline", args=[contact.pk])).content.decode()
    assert page.index("Second") < page.index("First")
    assert "SMTP authentication refused for x (535 5.7.8)" in page and "badge-failed" in page


def test_message_status_partial_polls_until_settled(user_client, team):
    message = make_sent_message(make_mailbox(team), make_contact(team))
    url = reverse("message_status", args=[message.pk])
    assert 'hx-trigger="every 2s"' in user_client.get(url).content.decode()
    SentMessage.objects.filter(pk=message.pk).update(status=SentMessage.Status.FAILED, error_message="boom")
    page = user_client.get(url).content.decode()
    assert "hx-trigger" not in page and "boom" in page


def test_message_detail_renders_sanitised_html(user_client, team):
    message = make_sent_message(
        make_mailbox(team), make_contact(team), subject="Hi",
        html_body='<p onclick="evil()">Hello <b>there</b></p><script>alert(1)</script><img src=x onerror="alert(2)">')
    page = user_client.get(reverse("message_detail", args=[message.pk])).content.decode()
    assert "<b>there</b>" in page
    assert "alert(1)" not in page and "onerror" not in page and "evil()" not in page
    assert message.message_id.replace("<", "&lt;").replace(">", "&gt;") in page
    assert str(message.idempotency_key) in page


# --- Mailboxes -------------------------------------------------------------------------------------


def _mailbox_data(**overrides):
    data = {"sender_name": "Ann Lee", "sender_email": "Ann@Acme.com", "smtp_host": "127.0.0.1", "smtp_port": 587,
            "smtp_login": "ann@acme.com", "smtp_password": "smtp-pass-1", "smtp_security": "starttls",
            "imap_host": "", "imap_port": 993, "imap_login": "", "imap_password": "", "imap_security": "ssl",
            "imap_sent_folder": "Sent"}
    data.update(overrides)
    return data


def test_mailbox_connect_refuses_loopback_host_inline(user_client, settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = False
    response = user_client.post(reverse("mailbox_connect"), _mailbox_data())
    assert response.status_code == 200
    error = response.context["form"].errors["smtp_host"][0]
    assert "loopback" in error and "public internet" in error
    assert error.replace("’", "&#x27;") in response.content.decode() or "loopback address" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_mailbox_connect_saves_encrypted_and_never_renders_passwords(user_client, team, settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    secret = "Sup3r-Secret-SMTP!"
    imap_secret = "Imap-Secret-42?"
    response = user_client.post(reverse("mailbox_connect"), _mailbox_data(
        smtp_password=secret, imap_host="127.0.0.1", imap_login="ann", imap_password=imap_secret))
    assert response.status_code == 302
    mailbox = Mailbox.objects.get()
    assert mailbox.team == team and mailbox.sender_email == "ann@acme.com"
    assert mailbox.provider_settings["smtp_password"] == secret and secret not in mailbox.provider_config["smtp_password"]
    assert mailbox.provider_settings["imap_password"] == imap_secret
    page = user_client.get(reverse("mailbox_edit", args=[mailbox.pk])).content.decode()
    assert secret not in page and imap_secret not in page
    assert mailbox.provider_config["smtp_password"] not in page
    assert "Leave blank to keep the current password." in page
    assert 'id="connection-result"' in page and f'hx-post="{reverse("mailbox_test")}"' in page
    # A re-rendered form (with an error) does not echo a typed password either.
    bad = user_client.post(reverse("mailbox_edit", args=[mailbox.pk]),
                           _mailbox_data(smtp_password="typed-new-secret", smtp_port=""))
    assert bad.status_code == 200 and "typed-new-secret" not in bad.content.decode()
    assert secret not in bad.content.decode()


def test_mailbox_edit_blank_password_keeps_stored_one(user_client, team, settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    mailbox = make_mailbox(team, smtp_password="keep-me", smtp_host="127.0.0.1", smtp_login="ann@acme.com")
    response = user_client.post(reverse("mailbox_edit", args=[mailbox.pk]), _mailbox_data(smtp_password="", sender_name="New Name"))
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.sender_name, mailbox.provider_settings["smtp_password"]) == ("New Name", "keep-me")


def test_mailbox_connect_requires_password_and_complete_imap(user_client, settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    response = user_client.post(reverse("mailbox_connect"), _mailbox_data(smtp_password="", imap_host="127.0.0.1"))
    errors = response.context["form"].errors
    assert "smtp_password" in errors and "imap_login" in errors and "imap_password" in errors
    assert not Mailbox.objects.exists()


def test_mailbox_connect_form_defaults(user_client):
    page = user_client.get(reverse("mailbox_connect")).content.decode()
    assert 'name="smtp_port" value="587"' in page and 'name="imap_port" value="993"' in page
    assert 'type="password" name="smtp_password"' in page


def test_mailbox_test_reports_form_errors_and_connection_failure(user_client, team, settings, monkeypatch):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = False
    response = user_client.post(reverse("mailbox_test"), _mailbox_data())
    assert response.status_code == 200
    assert "Fix the form first" in response.content.decode() and "loopback" in response.content.decode()

    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    mailbox = make_mailbox(team, smtp_password="stored-pw", smtp_host="127.0.0.1", smtp_login="ann@acme.com")
    seen = {}

    def fake_test(*, data, existing=None):
        seen.update(data=data, existing=existing)
        return False, ["SMTP authentication refused for ann@acme.com (535 5.7.8 bad credentials)"]

    monkeypatch.setattr("outreach.views.mailboxes.mailbox_test_connection", fake_test)
    response = user_client.post(reverse("mailbox_test"), {**_mailbox_data(smtp_password=""), "mailbox_id": mailbox.pk})
    page = response.content.decode()
    assert "result-bad" in page and "535 5.7.8" in page
    assert seen["existing"] == mailbox and seen["data"]["smtp_password"] == ""

    monkeypatch.setattr("outreach.views.mailboxes.mailbox_test_connection",
                        lambda *, data, existing=None: (True, ["SMTP login OK", "IMAP login OK"]))
    page = user_client.post(reverse("mailbox_test"), _mailbox_data()).content.decode()
    assert "result-ok" in page and "✓ SMTP login OK" in page


def test_mailbox_test_really_connects(user_client, settings):
    """No server listens on 127.0.0.1:2525 here: the real connection attempt fails in plain words."""
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    settings.OUTREACH_MAIL_TIMEOUT = 3
    page = user_client.post(reverse("mailbox_test"), _mailbox_data(smtp_port=2525)).content.decode()
    assert "result-bad" in page and "127.0.0.1" in page


def test_mailbox_delete_refused_when_it_has_messages(user_client, team):
    used = make_mailbox(team)
    make_sent_message(used, make_contact(team))
    unused = make_mailbox(team)
    page = user_client.get(reverse("mailbox_delete", args=[used.pk])).content.decode()
    assert "cannot be deleted" in page and "Deactivate" in page
    response = user_client.post(reverse("mailbox_delete", args=[used.pk]), follow=True)
    assert Mailbox.objects.filter(pk=used.pk).exists()
    assert "Deactivate it instead" in response.content.decode()
    user_client.post(reverse("mailbox_delete", args=[used.pk]), {"deactivate": "1"})
    used.refresh_from_db()
    assert used.is_active is False
    assert user_client.post(reverse("mailbox_delete", args=[unused.pk])).status_code == 302
    assert not Mailbox.objects.filter(pk=unused.pk).exists()


def test_provider_mailbox_edit_shows_only_sender_fields(user_client, team):
    mailbox = Mailbox.objects.create(team=team, provider="lemlist", sender_name="Ann", sender_email="ann@acme.com")
    page = user_client.get(reverse("mailbox_edit", args=[mailbox.pk])).content.decode()
    assert 'name="sender_name"' in page and 'name="smtp_host"' not in page and "Test connection" not in page
    assert 'name="lemlist_send_user_id"' in page and 'name="openmail_inbox_id"' not in page
    ids = {"lemlist_send_user_id": "usr_1", "lemlist_send_user_email": "bo@acme.com", "lemlist_send_user_mailbox_id": "usm_1"}
    response = user_client.post(reverse("mailbox_edit", args=[mailbox.pk]), {"sender_name": "Bo", "sender_email": "bo@acme.com", **ids})
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.sender_name, mailbox.sender_email, mailbox.provider) == ("Bo", "bo@acme.com", "lemlist")
    assert mailbox.setting("send_user_mailbox_id") == "usm_1"


def test_compose_custom_headers_are_queued_and_shown_on_the_message_page(user_client, team):
    contact, mailbox = make_contact(team), make_mailbox(team)
    response = _compose(user_client, contact, mailbox, headers="X-Campaign: spring\n\nX-CRM-Id: 42\n")
    assert response.status_code == 302
    message = SentMessage.objects.get()
    assert message.headers == [["X-Campaign", "spring"], ["X-CRM-Id", "42"]]
    page = user_client.get(reverse("message_detail", args=[message.pk])).content.decode()
    assert "<dt>X-Campaign</dt><dd><code>spring</code></dd>" in page


def test_compose_custom_headers_refused_with_a_clear_error(user_client, team):
    contact = make_contact(team)
    bad = _compose(user_client, contact, make_mailbox(team), headers="X-Campaign spring")
    assert "not a header: write it as X-Name: value" in bad.context["form"].errors["headers"][0]
    label = registry.get_provider_class("lemlist").label
    refused = _compose(user_client, contact, make_mailbox(team, provider="lemlist"), headers="X-Campaign: spring")
    assert refused.context["form"].errors["headers"] == [f"{label} mailboxes cannot send custom headers."]
    assert not SentMessage.objects.exists()
