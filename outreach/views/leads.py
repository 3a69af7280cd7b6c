"""Leads: list with bulk status change, edit, and create from a contact."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .. import exports, selectors
from ..forms import LeadForm
from ..models import BulkJob, Contact, Lead
from ..services.contacts import lead_create as lead_create_service
from ..services.contacts import lead_update, leads_set_status
from .common import add_service_errors, get_team, team_object_or_404
from .listing import AdminListView, BulkAction, Column, ListFilter, list_export_view


class LeadListView(AdminListView):
    """The team's leads (``leads/list.html``); bulk action: set status."""

    template_name = "leads/list.html"
    title = "Leads"
    noun = "lead"
    noun_plural = "leads"
    search_placeholder = "Search email, name, company"
    export_url_name = "lead_export"
    columns = (
        Column("Email", "email"), Column("Name", "name"), Column("Company", "company"),
        Column("Status", "status"), Column("Owner"), Column("Created", "created", css="nowrap"),
    )
    filters = (
        ListFilter("status", "Status", lambda team: Lead.Status.choices, all_label="Any status"),
        ListFilter("owner", "Owner", lambda team: selectors.lead_owner_choices(team=team), all_label="Any owner"),
    )
    actions = (BulkAction("set_status", "Set status to…", "bulk_set_status", choices=tuple(Lead.Status.choices),
                          job=BulkJob.Kind.SET_STATUS),)

    def select(self, team, query):
        return selectors.lead_list(team=team, query=query)

    def selected(self, team, ids):
        return selectors.leads_by_ids(team=team, ids=ids)

    def bulk_set_status(self, selection, value) -> str:
        changed = leads_set_status(team=self.team, selection=selection, status=value, actor=self.request.user)
        return f"Set {changed:,} lead{'s' if changed != 1 else ''} to “{Lead.Status(value).label}”."


lead_list = LeadListView.as_view()


lead_export = list_export_view(LeadListView, exports.leads_csv, "leads.csv")


@require_http_methods(["GET", "POST"])
def lead_create(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the lead form for contact ``pk`` (``leads/form.html``). POST: make the contact a lead and
    redirect to the contact. A contact that already is a lead redirects to that lead's edit page."""
    team = get_team(request)
    contact = team_object_or_404(Contact, request, pk)
    existing = Lead.objects.for_team(team).filter(contact=contact).first()
    if existing is not None:
        messages.info(request, f"{contact.email} already is a lead.")
        return redirect("lead_edit", pk=existing.pk)
    form = LeadForm(request.POST or None, team=team, initial={"owner": request.user.pk})
    if request.method == "POST" and form.is_valid():
        try:
            lead_create_service(team=team, contact=contact, actor=request.user, data=form.cleaned_data)
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            messages.success(request, f"{contact.email} is now a lead.")
            return redirect("contact_detail", pk=contact.pk)
    return render(request, "leads/form.html", {"form": form, "contact": contact, "title": f"Make {contact.email} a lead"})


@require_http_methods(["GET", "POST"])
def lead_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the lead's form (``leads/form.html``). POST: save (status changes go on the timeline)."""
    team = get_team(request)
    lead = team_object_or_404(Lead, request, pk, queryset=Lead.objects.select_related("contact", "owner"))
    form = LeadForm(request.POST or None, team=team, initial=LeadForm.initial_for(lead))
    if request.method == "POST" and form.is_valid():
        try:
            lead_update(lead=lead, actor=request.user, data=form.cleaned_data)
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            messages.success(request, f"Lead {lead.contact.email} saved.")
            return redirect("contact_detail", pk=lead.contact_id)
    return render(request, "leads/form.html", {"form": form, "contact": lead.contact, "lead": lead,
                                               "title": f"Lead: {lead.contact}"})
