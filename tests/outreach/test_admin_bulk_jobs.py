"""Django admin's "select all N" (``select_across=1``) on the contacts, leads and timeline lists:
above the threshold the action becomes BulkJob(s) selecting exactly the changelist's rows (the
staff user's team, the admin's search and list filters), delete still asks first; at or below
it, Django admin's behaviour. Real changelist POSTs through the test client."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from outreach.admin_bulk import admin_list_query
from outreach.models import BulkJob, Campaign, Contact, Enrolment, Lead, Membership, TimelineEvent
from outreach.services import bulk_jobs
from outreach.services.bulk_jobs import KINDS
from tests.factories import make_mailbox, make_team, make_user
from tests.outreach.test_bulk_jobs import _run, published, small  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

CONTACTS = reverse("admin:outreach_contact_changelist")
LEADS = reverse("admin:outreach_lead_changelist")
EVENTS = reverse("admin:outreach_timelineevent_changelist")


@pytest.fixture
def world(client):
    """Two teams with look-alike contacts: 14 "gone" (search match) and 3 "keep" in each; ours
    also has 2 "gone" ones created long ago (outside the created-at filter). A staff owner of
    the first team, logged in."""
    mine, theirs = make_team("Mine"), make_team("Theirs")
    rows = {}
    for team in (mine, theirs):
        rows[team.pk] = {
            "gone": Contact.objects.bulk_create([Contact(team=team, email=f"gone{i:02d}@example.com") for i in range(14)]),
            "keep": Contact.objects.bulk_create([Contact(team=team, email=f"keep{i:02d}@example.com") for i in range(3)]),
        }
    old = Contact.objects.bulk_create([Contact(team=mine, email=f"gone-old{i}@example.com") for i in range(2)])
    Contact.objects.filter(pk__in=[c.pk for c in old]).update(created_at=timezone.now() - timedelta(days=30))
    staff = make_user(mine, role=Membership.Role.OWNER, is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="outreach"))
    client.force_login(staff)
    return {"client": client, "mine": mine, "theirs": theirs, "rows": rows, "old": old, "staff": staff}


def _since_yesterday() -> str:
    return urlencode({"created_at__gte": (timezone.now() - timedelta(days=1)).replace(microsecond=0).isoformat(sep=" ")})


def _admin_pks(client, url: str) -> set[int]:
    """The pks of the changelist's whole selection (what "select all" selects), as the admin computes it."""
    response = client.get(url)
    assert response.status_code == 200
    return set(response.context["cl"].queryset.values_list("pk", flat=True))


def _job_pks(job: BulkJob) -> set[int]:
    kind = KINDS[job.kind]
    return set(kind.rows(team=job.team, selection=bulk_jobs._selection(job)).filter(pk__lte=job.max_pk)
               .values_list("pk", flat=True))


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_delete_all_above_the_threshold_asks_first_then_queues_a_job_of_exactly_the_admins_rows(
        world, small, published, django_capture_on_commit_callbacks):
    client, mine = world["client"], world["mine"]
    url = f"{CONTACTS}?q=gone&{_since_yesterday()}"
    expected = {c.pk for c in world["rows"][mine.pk]["gone"]}
    assert _admin_pks(client, url) == expected  # search and filter: not "keep", not the old ones, not their team
    checked = [str(pk) for pk in sorted(expected)[:3]]  # the page's checkboxes, as the browser sends them
    post = {"action": "delete_selected", "select_across": "1", "index": "0", "_selected_action": checked}
    confirm = client.post(url, post)
    page = confirm.content.decode()
    assert confirm.status_code == 200 and 'id="bulk-delete-what"' in page and "Delete all 14 contacts" in page
    assert page.count('name="_selected_action"') == 3 and 'name="select_across" value="1"' in page
    assert not BulkJob.objects.exists() and Contact.objects.count() == 36  # nothing yet

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"action": "delete_selected", "select_across": "1", "post": "yes",
                                 "_selected_action": checked}, follow=True)
    job = BulkJob.objects.get()
    assert (job.team, job.kind, job.status, job.actor) == (mine, "delete", "queued", world["staff"])
    assert job.query["admin"] is True and job.query["q"] == "gone" and list(job.query["lookups"]) == ["created_at__gte"]
    assert published == [job.pk] and Contact.objects.count() == 36  # the request deleted nothing
    [message] = _messages(done)
    assert "runs in the background" in message and f'href="{reverse("bulk_job_detail", args=[job.pk])}"' in message
    assert _job_pks(job) == expected

    job = _run(job)
    assert (job.status, job.changed, job.message) == ("done", 14, "Deleted 14 contacts.")
    left = set(Contact.objects.values_list("pk", flat=True))
    assert not left & expected and len(left) == 36 - 14  # their 14 look-alikes, all "keep", the old ones stay
    page = client.get(reverse("bulk_job_detail", args=[job.pk])).content.decode()
    assert "All contacts of the Django admin list matching “gone”" in page and "created_at__gte" in page
    assert f'href="{CONTACTS}?q=gone&amp;created_at__gte=' in page


def test_delete_at_the_threshold_or_without_select_all_is_djangos_own(world, small, published):
    client, mine = world["client"], world["mine"]
    gone = world["rows"][mine.pk]["gone"]
    Contact.objects.filter(pk__in=[c.pk for c in gone[10:]]).delete()  # 10 left: at the threshold
    url = f"{CONTACTS}?q=gone&{_since_yesterday()}"
    checked = [str(c.pk) for c in gone[:2]]
    confirm = client.post(url, {"action": "delete_selected", "select_across": "1", "index": "0", "_selected_action": checked})
    page = confirm.content.decode()
    assert confirm.status_code == 200 and 'id="bulk-delete-what"' not in page and "Are you sure" in page
    client.post(url, {"action": "delete_selected", "select_across": "1", "post": "yes", "_selected_action": checked})
    assert not Contact.objects.filter(pk__in=[c.pk for c in gone]).exists()
    # Checked rows only, more than the threshold: Django's action on them.
    keep = [str(pk) for pk in Contact.objects.filter(team=mine).values_list("pk", flat=True)]
    assert len(keep) == 5
    many = [str(c.pk) for c in Contact.objects.bulk_create([Contact(team=mine, email=f"x{i}@example.com") for i in range(12)])]
    client.post(CONTACTS, {"action": "delete_selected", "index": "0", "_selected_action": many, "post": "yes"})
    assert not BulkJob.objects.exists() and published == []
    assert sorted(str(pk) for pk in Contact.objects.filter(team=mine).values_list("pk", flat=True)) == sorted(keep)


def test_a_superusers_select_all_spans_teams_and_becomes_one_job_per_team(world, small, published):
    client, mine, theirs = world["client"], world["mine"], world["theirs"]
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-123")
    client.force_login(root)
    url = f"{CONTACTS}?q=gone"
    expected = {c.pk for team in (mine, theirs) for c in world["rows"][team.pk]["gone"]} | {c.pk for c in world["old"]}
    assert _admin_pks(client, url) == expected
    post = {"action": "delete_selected", "select_across": "1", "post": "yes", "_selected_action": [str(min(expected))]}
    response = client.post(url, post, follow=True)
    jobs = list(BulkJob.objects.order_by("team_id"))
    assert [j.team for j in jobs] == sorted([mine, theirs], key=lambda t: t.pk)
    [message] = _messages(response)
    for job in jobs:  # root is in no team: each job's read-only admin page
        assert f'href="{reverse("admin:outreach_bulkjob_change", args=[job.pk])}"' in message
    assert set().union(*(_job_pks(j) for j in jobs)) == expected
    for job in jobs:
        _run(job)
    assert not Contact.objects.filter(pk__in=expected).exists() and Contact.objects.count() == 6


def test_enrol_all_above_the_threshold_queues_an_enrol_job_for_the_campaigns_team(world, small, published):
    client, mine = world["client"], world["mine"]
    campaign = Campaign.objects.create(team=mine, name="Launch")
    campaign.mailboxes.add(make_mailbox(mine))
    url = f"{CONTACTS}?q=gone"
    checked = [str(c.pk) for c in world["rows"][mine.pk]["gone"][:2]]
    choose = client.post(url, {"action": "enrol_contacts_action", "select_across": "1", "index": "0",
                               "_selected_action": checked})
    page = choose.content.decode()
    assert "Enrol 16 selected contacts in" in page and page.count('name="_selected_action"') == 2
    assert 'name="select_across" value="1"' in page
    response = client.post(url, {"action": "enrol_contacts_action", "select_across": "1", "_selected_action": checked,
                                 "campaign": campaign.pk}, follow=True)
    job = BulkJob.objects.get()
    assert (job.kind, job.value, job.team) == ("enrol", str(campaign.pk), mine) and not Enrolment.objects.exists()
    assert f'href="{reverse("bulk_job_detail", args=[job.pk])}"' in _messages(response)[0]
    expected = {c.pk for c in world["rows"][mine.pk]["gone"]} | {c.pk for c in world["old"]}
    assert _job_pks(job) == expected
    job = _run(job)
    assert job.message == "Launch: Enrolled 16 contacts."
    assert set(Enrolment.objects.values_list("contact_id", flat=True)) == expected


def test_enrol_all_at_the_threshold_enrols_in_the_request(world, small, published):
    client, mine = world["client"], world["mine"]
    campaign = Campaign.objects.create(team=mine, name="Launch")
    campaign.mailboxes.add(make_mailbox(mine))
    url = f"{CONTACTS}?q=keep"  # 3 of ours
    response = client.post(url, {"action": "enrol_contacts_action", "select_across": "1",
                                 "_selected_action": [str(world["rows"][mine.pk]["keep"][0].pk)],
                                 "campaign": campaign.pk}, follow=True)
    assert "Launch: Enrolled 3 contacts." in response.content.decode()
    assert not BulkJob.objects.exists() and Enrolment.objects.count() == 3


def test_lead_delete_all_with_a_status_filter_is_a_delete_leads_job(world, small, published):
    client, mine, theirs = world["client"], world["mine"], world["theirs"]
    for team in (mine, theirs):
        gone = world["rows"][team.pk]["gone"]
        Lead.objects.bulk_create([Lead(team=team, contact=c, status="new") for c in gone[:12]]
                                 + [Lead(team=team, contact=c, status="won") for c in gone[12:]])
    url = f"{LEADS}?status__exact=new"
    expected = set(Lead.objects.filter(team=mine, status="new").values_list("pk", flat=True))
    assert _admin_pks(client, url) == expected and len(expected) == 12
    confirm = client.post(url, {"action": "delete_selected", "select_across": "1", "index": "0",
                                "_selected_action": [str(min(expected))]})
    assert "Delete all 12 leads" in confirm.content.decode() and "the contacts stay" in confirm.content.decode()
    client.post(url, {"action": "delete_selected", "select_across": "1", "post": "yes", "_selected_action": [str(min(expected))]})
    job = BulkJob.objects.get()
    assert job.kind == "delete_leads" and job.query["lookups"] == {"status__exact": ["new"]} and _job_pks(job) == expected
    job = _run(job)
    assert job.message == "Deleted 12 leads."
    assert not Lead.objects.filter(pk__in=expected).exists()
    assert Lead.objects.filter(team=mine).count() == 2 and Lead.objects.filter(team=theirs).count() == 14
    assert Contact.objects.count() == 36


def test_timeline_delete_all_with_a_kind_filter_is_a_delete_events_job(world, small, published):
    client, mine, theirs = world["client"], world["mine"], world["theirs"]
    for team in (mine, theirs):
        TimelineEvent.objects.bulk_create(
            [TimelineEvent(team=team, contact=c, kind="lead_status", summary="n") for c in world["rows"][team.pk]["gone"]]
            + [TimelineEvent(team=team, contact=c, kind="contact_created", summary="c") for c in world["rows"][team.pk]["gone"]])
    url = f"{EVENTS}?kind__exact=lead_status&q=gone1"  # gone10…gone13
    expected = set(TimelineEvent.objects.filter(team=mine, kind="lead_status", contact__email__startswith="gone1")
                   .values_list("pk", flat=True))
    TimelineEvent.objects.bulk_create([TimelineEvent(team=mine, contact=world["rows"][mine.pk]["gone"][0], kind="lead_status",
                                                     summary="more") for _ in range(8)])
    assert len(expected) == 4
    small.OUTREACH_BULK_JOB_THRESHOLD = 3
    assert _admin_pks(client, url) == expected
    client.post(url, {"action": "delete_selected", "select_across": "1", "post": "yes", "_selected_action": [str(min(expected))]})
    job = BulkJob.objects.get()
    assert job.kind == "delete_events" and _job_pks(job) == expected
    assert _run(job).message == "Deleted 4 timeline events."
    assert not TimelineEvent.objects.filter(pk__in=expected).exists()
    assert TimelineEvent.objects.count() == 2 * 28 + 8 - 4


def test_a_selection_the_job_cannot_express_is_refused_and_nothing_changes(world, small, published, rf):
    from django.contrib import admin
    from django.contrib.admin import SimpleListFilter
    from django.core.exceptions import ValidationError

    from outreach.admin import ContactAdmin

    class Domain(SimpleListFilter):
        title, parameter_name = "domain", "domain"

        def lookups(self, request, model_admin):
            return [("example.com", "example.com")]

        def queryset(self, request, queryset):
            return queryset.filter(email__endswith=self.value()) if self.value() else queryset

    class CustomAdmin(ContactAdmin):
        list_filter = ("created_at", Domain)

    model_admin = CustomAdmin(Contact, admin.site)
    request = rf.get(CONTACTS, {"domain": "example.com", "q": "gone"})
    request.user = world["staff"]
    with pytest.raises(ValidationError, match="custom one"):
        admin_list_query(model_admin, request, kind="delete")
    request = rf.get(CONTACTS, {"q": "gone", "created_at__gte": "2026-01-01"})
    request.user = world["staff"]
    query = admin_list_query(model_admin, request, kind="delete")
    assert (query.q, query.lookups) == ("gone", {"created_at__gte": ["2026-01-01"]})
    with pytest.raises(ValidationError, match="search differs"):
        admin_list_query(model_admin, request, kind="set_status")


def test_remove_all_enrolments_of_a_campaign_above_the_threshold_is_a_job(world, small, published):
    client, mine, theirs = world["client"], world["mine"], world["theirs"]
    campaigns = {}
    for team in (mine, theirs):
        mailbox = make_mailbox(team)
        for name in ("Launch", "Later"):
            campaign = Campaign.objects.create(team=team, name=name)
            campaign.mailboxes.add(mailbox)
            Enrolment.objects.bulk_create([Enrolment(team=team, campaign=campaign, contact=c, mailbox=mailbox)
                                           for c in world["rows"][team.pk]["gone"] + world["rows"][team.pk]["keep"]])
            campaigns[team.pk, name] = campaign
    launch = campaigns[mine.pk, "Launch"]
    Enrolment.objects.filter(campaign=launch, contact=world["rows"][mine.pk]["gone"][0]).update(status="stopped")
    url = f"{reverse('admin:outreach_enrolment_changelist')}?campaign__id__exact={launch.pk}&q=gone"
    expected = set(Enrolment.objects.filter(campaign=launch, contact__email__startswith="gone").values_list("pk", flat=True))
    assert _admin_pks(client, url) == expected and len(expected) == 14
    response = client.post(url, {"action": "remove_from_campaign", "select_across": "1", "index": "0",
                                 "_selected_action": [str(min(expected))]}, follow=True)
    job = BulkJob.objects.get()
    assert "runs in the background" in _messages(response)[0] and not Enrolment.objects.filter(reason="removed").exists()
    assert job.kind == "remove_enrolments" and _job_pks(job) == expected
    job = _run(job)
    assert job.message == "Removed 13 enrolments from their campaign; 1 was no longer active."
    assert set(Enrolment.objects.filter(reason="removed").values_list("pk", flat=True)) == expected - {
        Enrolment.objects.get(campaign=launch, contact=world["rows"][mine.pk]["gone"][0]).pk}
    assert Enrolment.objects.filter(status="active").count() == 4 * 17 - 14


def test_remove_enrolments_in_the_request_counts_enrolments_as_the_job_does(world, small, published):
    client, mine = world["client"], world["mine"]
    mailbox = make_mailbox(mine)
    campaign = Campaign.objects.create(team=mine, name="Launch")
    campaign.mailboxes.add(mailbox)
    rows = Enrolment.objects.bulk_create([Enrolment(team=mine, campaign=campaign, contact=c, mailbox=mailbox)
                                          for c in world["rows"][mine.pk]["keep"] + world["rows"][mine.pk]["gone"][:2]])
    Enrolment.objects.filter(pk=rows[0].pk).update(status="stopped")
    url = f"{reverse('admin:outreach_enrolment_changelist')}?campaign__id__exact={campaign.pk}"  # 5: at the threshold
    response = client.post(url, {"action": "remove_from_campaign", "select_across": "1", "index": "0",
                                 "_selected_action": [str(rows[1].pk)]}, follow=True)
    assert not BulkJob.objects.exists()
    assert _messages(response) == ["Removed 4 enrolments from their campaign; 1 was no longer active."]
