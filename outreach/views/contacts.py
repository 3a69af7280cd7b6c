"""Contacts: list, create, edit, delete, detail with its timeline, and compose."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .. import exports, selectors
from ..forms import ComposeForm, ContactForm
from ..campaigns.selectors import campaigns_open
from ..campaigns.services import campaign_enrol
from ..message_templates.selectors import message_templates
from ..message_templates.services import message_template_render_for
from ..models import BulkJob, Contact, Lead, MessageTemplate
from ..services.contacts import contact_create as contact_create_service
from ..services.contacts import contact_update, contacts_delete, contacts_make_leads
from ..services.sending import AttachmentData, sent_message_create
from .common import add_service_errors, get_team, method_not_allowed, team_object_or_404
from .listing import AdminListView, BulkAction, Column, ListFilter, list_export_view


def _lead_filter_choices(team):
    return [("yes", "Is a lead"), ("no", "Not a lead")] + [(v, f"Lead: {label}") for v, label in Lead.Status.choices]


class ContactListView(AdminListView):
    """The team's contacts (template ``contacts/list.html``); bulk delete (confirmed) and make leads."""

    template_name = "contacts/list.html"
    title = "Contacts"
    noun = "contact"
    noun_plural = "contacts"
    search_placeholder = "Search email, name, company"
    export_url_name = "contact_export"
    columns = (
        Column("Email", "email"), Column("Name", "name"), Column("Company", "company"), Column("Title", "title"),
        Column("Lead status"), Column("Created", "created", css="nowrap"),
    )
    filters = (
        ListFilter("lead", "Lead", _lead_filter_choices, all_label="Any lead status"),
        ListFilter("company", "Company", all_label="Any company", autocomplete="contact_company_suggestions"),
    )
    actions = (
        BulkAction("make_leads", "Make leads", "bulk_make_leads", job=BulkJob.Kind.MAKE_LEADS),
        BulkAction("enrol", "Enrol in campaign…", "bulk_enrol", confirm_verb="Enrol", job=BulkJob.Kind.ENROL,
                   choose=lambda team: [(str(c.pk), c.name) for c in campaigns_open(team=team)]),
        BulkAction("delete", "Delete selected contacts", "bulk_delete", confirm=True, confirm_verb="Delete",
                   warning="Their leads, sent messages and timelines are deleted with them. This cannot be undone.",
                   job=BulkJob.Kind.DELETE),
    )

    def select(self, team, query):
        return selectors.contact_list(team=team, query=query)

    def selected(self, team, ids):
        return selectors.contacts_by_ids(team=team, ids=ids)

    def bulk_delete(self, selection, value) -> str:
        count = contacts_delete(team=self.team, selection=selection)
        return f"Deleted {count:,} contact{'s' if count != 1 else ''}."

    def bulk_enrol(self, selection, value) -> str:
        campaign = campaigns_open(team=self.team).get(pk=int(value))
        result = campaign_enrol(campaign=campaign, selection=selection, actor=self.request.user)
        return f"{campaign.name}: {result.summary()}"

    def bulk_make_leads(self, selection, value) -> str:
        made, skipped = contacts_make_leads(team=self.team, selection=selection, owner=self.request.user,
                                            actor=self.request.user)
        return f"Made {made:,} lead{'s' if made != 1 else ''}" + (f"; {skipped:,} already were leads." if skipped else ".")


contact_list = ContactListView.as_view()


contact_export = list_export_view(ContactListView, exports.contacts_csv, "contacts.csv")


def contact_company_suggestions(request: HttpRequest) -> HttpResponse:
    """The company filter's suggestions (htmx): ``<option>`` elements for the filter's
    ``<datalist>``, at most 20 of the team's company names starting with ``?company=``
    (``selectors.company_suggestions``)."""
    team = get_team(request)
    if refused := method_not_allowed(request):
        return refused
    names = selectors.company_suggestions(team=team, term=request.GET.get("company", "").strip())
    return render(request, "contacts/_company_options.html", {"names": names})


@require_http_methods(["GET", "POST"])
def contact_create(request: HttpRequest) -> HttpResponse:
    """GET: the empty contact form (``contacts/form.html``). POST: create and redirect to the contact."""
    team = get_team(request)
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            contact = contact_create_service(team=team, actor=request.user, data=form.cleaned_data)
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            messages.success(request, f"Contact {contact.email} created.")
            return redirect("contact_detail", pk=contact.pk)
    return render(request, "contacts/form.html", {"form": form, "title": "Add contact"})


@require_http_methods(["GET", "POST"])
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the contact's edit form (``contacts/form.html``). POST: save and redirect to the contact."""
    contact = team_object_or_404(Contact, request, pk)
    form = ContactForm(request.POST or None, initial=ContactForm.initial_for(contact))
    if request.method == "POST" and form.is_valid():
        try:
            contact_update(contact=contact, actor=request.user, data=form.cleaned_data)
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            messages.success(request, f"Contact {contact.email} saved.")
            return redirect("contact_detail", pk=contact.pk)
    return render(request, "contacts/form.html", {"form": form, "contact": contact, "title": f"Edit {contact}"})


@require_http_methods(["GET", "POST"])
def contact_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation page (``contacts/delete.html``, what goes with the contact). POST: delete."""
    contact = team_object_or_404(Contact, request, pk)
    if request.method == "POST":
        contacts_delete(team=get_team(request), ids=[contact.pk])
        messages.success(request, f"Contact {contact.email} deleted.")
        return redirect("contact_list")
    return render(request, "contacts/delete.html", {
        "contact": contact, "message_count": contact.sent_messages.count(),
        "event_count": contact.timeline_events.count(),
    })


def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The contact page (``contacts/detail.html``): fields, lead box, vendor ids, compose form, timeline."""
    team = get_team(request)
    contact = team_object_or_404(Contact, request, pk, queryset=Contact.objects.select_related("lead__owner"))
    if refused := method_not_allowed(request):
        return refused
    timeline = selectors.contact_timeline(contact=contact, older=request.GET.get("older", ""))
    compose_form = ComposeForm(team=team)
    return render(request, "contacts/detail.html", {
        "contact": contact, "lead": getattr(contact, "lead", None), "timeline": timeline,
        "external_ids": selectors.external_id_rows(contact=contact),
        "compose_form": compose_form, "has_mailbox": compose_form.has_mailbox,
    })


def contact_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    """The timeline partial: the newest page (``contacts/_timeline.html``), or with ``?older=<token>``
    the next older page's entries and its own "Older" button (``contacts/_timeline_entries.html``,
    swapped in place of the button that asked). Only pending messages poll, each its own card."""
    contact = team_object_or_404(Contact, request, pk)
    if refused := method_not_allowed(request):
        return refused
    older = request.GET.get("older", "")
    timeline = selectors.contact_timeline(contact=contact, older=older)
    template = "contacts/_timeline_entries.html" if older else "contacts/_timeline.html"
    return render(request, template, {"contact": contact, "timeline": timeline})


@require_http_methods(["GET", "POST"])
def contact_compose(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the compose page (``contacts/compose.html``). POST: queue the message through
    ``sent_message_create`` and redirect to the contact with "Queued…" — SMTP happens in Celery."""
    team = get_team(request)
    contact = team_object_or_404(Contact, request, pk)
    initial = _compose_initial_from_template(request, team, contact) if request.method == "GET" else {}
    form = ComposeForm(request.POST or None, request.FILES or None, team=team, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        files = [AttachmentData(f.name, f.content_type or "application/octet-stream", f.read()) for f in data["attachments"]]
        try:
            message = sent_message_create(
                team=team, actor=request.user, mailbox=data["mailbox"], contact=contact, subject=data["subject"],
                html=data["html_body"], cc=data["cc"], bcc=data["bcc"], reply_to=data["reply_to"], attachments=files,
                headers=data["headers"], idempotency_key=data["submission_key"], scheduled_at=data.get("scheduled_at"),
            )
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            if message.status == message.Status.SCHEDULED:
                messages.success(request, f"Scheduled “{message.subject}” to {contact.email} for "
                                          f"{timezone.localtime(message.due_at):%a %Y-%m-%d %H:%M}; you can cancel it until then.")
            else:
                messages.success(request, f"Queued “{message.subject}” to {contact.email}; it is being sent in the background.")
            return redirect(reverse("contact_detail", args=[contact.pk]) + "#timeline")
    return render(request, "contacts/compose.html", {
        "contact": contact, "form": form, "has_mailbox": selectors.active_mailboxes(team=team).exists(),
        "templates": message_templates(team=team), "mailboxes": selectors.active_mailboxes(team=team),
        "chosen_template": request.GET.get("template", ""), "chosen_mailbox": request.GET.get("mailbox", ""),
    })


def _compose_initial_from_template(request: HttpRequest, team, contact: Contact) -> dict:
    """Initial compose values from ``?template=ID`` (rendered for ``contact``, sent from ``?mailbox=ID``
    or the team's first active mailbox); {} without a template. Another team's id is a 404."""
    template_id, mailbox_id = request.GET.get("template", ""), request.GET.get("mailbox", "")
    if not template_id.isdigit():
        return {}
    template = team_object_or_404(MessageTemplate, request, int(template_id))
    mailboxes = selectors.active_mailboxes(team=team)
    mailbox = (mailboxes.filter(pk=int(mailbox_id)).first() if mailbox_id.isdigit() else None) or mailboxes.first()
    try:
        rendered = message_template_render_for(template=template, contact=contact, mailbox=mailbox)
    except ValidationError as err:
        messages.error(request, f"Template “{template.name}” cannot be used: {' '.join(err.messages)}")
        return {}
    if rendered.missing:
        messages.warning(request, f"Empty for {contact.email}: {', '.join(rendered.missing)} — check the text before sending.")
    return {"subject": rendered.subject, "html_body": rendered.html, **({"mailbox": mailbox} if mailbox else {})}
