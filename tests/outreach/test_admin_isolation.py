"""Tenant isolation in Django admin for a team-scoped staff user, generated from the admin registry:
every changelist, add page, change page and autocomplete endpoint, so a new admin is covered
without editing this file (it fails until the world below has a row of the new model)."""
from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.urls import reverse

from outreach.admin_scoping import scope_to_team
from outreach.inbound.models import InboundMessage
from outreach.models import BulkJob, Campaign, Enrolment, ImportJob, Lead, Membership, MessageTemplate, Suppression, Team, TimelineEvent
from tests.factories import (
    make_contact,
    make_lead,
    make_mailbox,
    make_provider_account,
    make_provider_mailbox,
    make_sent_message,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db


def _world(team: Team, tag: str) -> dict:
    """One row of every team-owned model the admin shows, names carrying ``tag``."""
    owner = make_user(team, username=f"{tag}-owner", role=Membership.Role.OWNER, email=f"{tag}-owner@example.com")
    contact = make_contact(team, email=f"{tag}-contact@example.com", first_name=f"{tag}-first",
                           lemlist_contact_id=f"{tag}-ctc")
    lead = make_lead(make_contact(team, email=f"{tag}-lead@example.com"), owner=owner, source=f"{tag}-source")
    mailbox = make_mailbox(team, sender_name=f"{tag}-sender", sender_email=f"{tag}-sender@acme.com")
    account = make_provider_account(team, name=f"{tag}-account")
    make_provider_mailbox(account, sender_name=f"{tag}-provider-sender")
    message = make_sent_message(mailbox, contact, subject=f"{tag}-subject")
    TimelineEvent.objects.create(team=team, contact=contact, kind=TimelineEvent.Kind.CONTACT_CREATED,
                                 summary=f"{tag}-event", sent_message=message)
    Suppression.objects.create(team=team, email=f"{tag}-suppressed@example.com")
    job = ImportJob(team=team, name=f"{tag}-import", created_by=owner, lead_owner=owner)
    job.file.save(f"{tag}.csv", ContentFile(b"email\na@example.com\n"), save=False)
    job.save()
    BulkJob.objects.create(team=team, kind=BulkJob.Kind.DELETE, actor=owner, query={"q": f"{tag}-bulk-query"},
                           message=f"{tag}-bulk-message")
    MessageTemplate.objects.create(team=team, name=f"{tag}-template", subject="Hi", html_body="<p>Hi</p>", created_by=owner)
    campaign = Campaign.objects.create(team=team, name=f"{tag}-campaign", created_by=owner)
    campaign.mailboxes.add(mailbox)
    Enrolment.objects.create(team=team, campaign=campaign, contact=contact, mailbox=mailbox, detail=f"{tag}-enrolment")
    InboundMessage.objects.create(team=team, mailbox=mailbox, uidvalidity=1, uid=1, message_key=f"<{tag}-in@example.com>",
                                  kind=InboundMessage.Kind.UNMATCHED, subject=f"{tag}-inbound", from_email=f"{tag}-from@example.com")
    return {"owner": owner, "lead": lead, "mailbox": mailbox}


@pytest.fixture
def setup(client):
    mine = make_team("Alpha-Mine")
    theirs = make_team("Zeta-Theirs")
    _world(theirs, "zeta")
    mine_world = _world(mine, "alpha")
    staff = mine_world["owner"]
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label__in=("outreach", "auth")))
    client.force_login(staff)
    return client, mine, theirs, staff


def _registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _team_owned(model) -> bool:
    """Whether scope_to_team narrows ``model`` (else it is not a team's data, e.g. auth Group)."""
    return scope_to_team(model._default_manager.all(), None).query.is_empty()


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


LEAK_MARKERS = ("zeta", "Zeta-Theirs")


def _assert_no_leak(page: str, where: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in page, f"{where} shows another team's {marker!r}"


def test_every_admin_page_shows_only_the_own_team(setup):
    client, mine, theirs, staff = setup
    scoped = [(model, model_admin) for model, model_admin in _registered() if _team_owned(model)]
    assert len(scoped) >= 11  # Team, Membership, User, Contact, Lead, Mailbox, ProviderAccount, SentMessage, …
    for model, model_admin in scoped:
        name = model._meta.label
        their_rows = list(scope_to_team(model._default_manager.all(), theirs))
        my_rows = list(scope_to_team(model._default_manager.all(), mine))
        assert their_rows and my_rows, f"add a {name} row to _world() so its admin is tested"
        # Changelist: 200, only own rows, no other team in filters or cells.
        response = client.get(_url(model, "changelist"))
        assert response.status_code == 200, name
        shown = set(response.context["cl"].queryset.values_list("pk", flat=True))
        assert shown and shown.isdisjoint({row.pk for row in their_rows}), name
        _assert_no_leak(response.content.decode(), f"{name} changelist")
        # Add page: no other team's rows among the choices.
        response = client.get(_url(model, "add"))
        assert response.status_code in (200, 403), name
        _assert_no_leak(response.content.decode(), f"{name} add page")
        # Own change page works (no 500) and offers no other team's rows.
        response = client.get(_url(model, "change", my_rows[0].pk))
        assert response.status_code == 200, name
        _assert_no_leak(response.content.decode(), f"{name} change page")
        # Another team's change, history and delete pages: "does not exist", for GET and POST.
        for view in ("change", "history", "delete"):
            url = _url(model, view, their_rows[0].pk)
            assert client.get(url).status_code in (302, 403), f"GET {name} {view}"
            assert client.post(url, {"post": "yes"}).status_code in (302, 403), f"POST {name} {view}"
        assert model._default_manager.filter(pk=their_rows[0].pk).exists(), f"{name} row of the other team deleted"


def test_every_autocomplete_endpoint_answers_only_own_team(setup):
    client, mine, theirs, staff = setup
    checked = 0
    for model, model_admin in _registered():
        for field in model._meta.get_fields():
            if not (field.is_relation and field.concrete and (field.many_to_one or field.one_to_one or field.many_to_many)):
                continue
            remote = field.remote_field.model
            remote_admin = admin.site._registry.get(remote)
            if remote_admin is None or not remote_admin.search_fields or not _team_owned(remote):
                continue
            response = client.get(reverse("admin:autocomplete"), {
                "app_label": model._meta.app_label, "model_name": model._meta.model_name,
                "field_name": field.name, "term": ""})
            if response.status_code == 403:
                continue
            assert response.status_code == 200, f"{model._meta.label}.{field.name}"
            ids = {int(r["id"]) for r in response.json()["results"]}
            allowed = set(scope_to_team(remote._default_manager.all(), mine).values_list("pk", flat=True))
            assert ids and ids <= allowed, f"autocomplete {model._meta.label}.{field.name} leaks {ids - allowed}"
            checked += 1
    assert checked >= 5  # team, contact, user… fields across the registry


def test_staff_cannot_move_their_membership_into_another_team(setup):
    client, mine, theirs, staff = setup
    membership = staff.membership
    url = _url(Membership, "change", membership.pk)
    response = client.post(url, {"user": staff.pk, "team": theirs.pk, "role": "owner"})
    assert response.status_code in (200, 302)
    membership.refresh_from_db()
    assert membership.team == mine
    # Nor add anyone to a team, nor make a user of another team theirs.
    other_user = get_user_model().objects.get(username="zeta-owner")
    assert client.post(_url(Membership, "add"), {"user": other_user.pk, "team": mine.pk, "role": "member"}).status_code == 403
    assert other_user.membership.team == theirs
    # The UI then still shows only the own team.
    assert "zeta" not in client.get(reverse("contact_list")).content.decode()


def test_staff_cannot_pick_another_teams_user_as_lead_owner(setup):
    client, mine, theirs, staff = setup
    own_lead = Lead.objects.for_team(mine).first()
    other_user = get_user_model().objects.get(username="zeta-owner")
    url = _url(type(own_lead), "change", own_lead.pk)
    response = client.post(url, {"contact": own_lead.contact_id, "team": mine.pk, "status": "new",
                                 "owner": other_user.pk, "source": ""})
    assert response.status_code == 200 and "owner" in response.context["adminform"].form.errors
    own_lead.refresh_from_db()
    assert own_lead.owner_id != other_user.pk


def test_staff_cannot_grant_themselves_superuser(setup):
    client, mine, theirs, staff = setup
    page = client.get(_url(get_user_model(), "change", staff.pk)).content.decode()
    assert 'name="is_superuser"' not in page
