"""Campaign pages: list, create/edit, the campaign page (funnel, chart, steps, state actions),
steps with A/B variants, and the enrolment list. Thin: each view calls one service or selector."""
from __future__ import annotations

from dataclasses import replace

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from ..models import BulkJob
from ..views.common import add_service_errors, get_team, method_not_allowed, team_object_or_404
from ..views.listing import AdminListView, BulkAction, Column, ListFilter
from . import selectors, services
from .forms import CampaignForm, StepForm
from .models import Campaign, CampaignStep, Enrolment


class CampaignListView(AdminListView):
    """The team's campaigns (``campaigns/list.html``): status, enrolled, sent, replied."""

    template_name = "campaigns/list.html"
    title = "Campaigns"
    noun = "campaign"
    noun_plural = "campaigns"
    search_placeholder = "Search name"
    columns = (Column("Name", "name"), Column("Status", "status"), Column("Enrolled", "enrolled", css="num"),
               Column("Sent", "sent", css="num"), Column("Replied", "replied", css="num"),
               Column("Created", "created", css="nowrap"))
    filters = (ListFilter("status", "Status", lambda team: Campaign.Status.choices, all_label="Any status"),)

    def select(self, team, query):
        return selectors.campaign_list(team=team, query=query)

    def selected(self, team, ids):
        return Campaign.objects.for_team(team).filter(pk__in=ids)


campaign_list = CampaignListView.as_view()


def _campaign_form_page(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    team = get_team(request)
    initial = CampaignForm.initial_for(campaign) if campaign else {}
    form = CampaignForm(request.POST or None, initial=initial, team=team)
    if request.method == "POST" and form.is_valid():
        try:
            if campaign is None:
                campaign = services.campaign_create(team=team, actor=request.user, data=form.cleaned_data)
                messages.success(request, f"Campaign “{campaign.name}” created. Add its first step.")
                return redirect("campaign_step_create", pk=campaign.pk)
            services.campaign_update(campaign=campaign, data=form.cleaned_data)
            messages.success(request, "Campaign settings saved; they apply to every message not yet created.")
            return redirect("campaign_detail", pk=campaign.pk)
        except ValidationError as err:
            add_service_errors(form, err)
    return render(request, "campaigns/form.html", {
        "form": form, "campaign": campaign, "title": f"Settings of “{campaign.name}”" if campaign else "New campaign"})


@require_http_methods(["GET", "POST"])
def campaign_create(request: HttpRequest) -> HttpResponse:
    """GET: the empty campaign form. POST: create a draft and go on to its first step."""
    return _campaign_form_page(request, None)


@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The settings form of the team's campaign ``pk``."""
    return _campaign_form_page(request, team_object_or_404(Campaign, request, pk))


def _detail_context(campaign: Campaign) -> dict:
    return {"campaign": campaign, "funnel": selectors.campaign_funnel(campaign=campaign),
            "counts": selectors.campaign_status_counts(campaign=campaign),
            "series": selectors.campaign_daily_series(campaign=campaign),
            "problems": services.campaign_problems(campaign) if campaign.status == Campaign.Status.DRAFT else []}


def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The campaign page (``campaigns/detail.html``): state and actions, funnel per step, sends and
    replies per day, steps, enrolment counts."""
    campaign = team_object_or_404(Campaign, request, pk)
    if refused := method_not_allowed(request):
        return refused
    context = _detail_context(campaign)
    context["steps"] = campaign.steps.prefetch_related("variants").order_by("position")
    context["mailboxes"] = campaign.mailboxes.all()
    return render(request, "campaigns/detail.html", context)


def campaign_funnel_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the campaign page (``campaigns/_funnel.html``), polled with htmx while active."""
    campaign = team_object_or_404(Campaign, request, pk)
    if refused := method_not_allowed(request):
        return refused
    return render(request, "campaigns/_funnel.html", _detail_context(campaign))


@require_http_methods(["GET", "POST"])
def campaign_state(request: HttpRequest, pk: int) -> HttpResponse:
    """POST ``action`` = start | pause | resume | stop (stop shows a confirmation page first, on GET)."""
    campaign = team_object_or_404(Campaign, request, pk)
    if request.method == "GET":
        return render(request, "campaigns/stop.html", {"campaign": campaign,
                                                       "active": selectors.campaign_status_counts(campaign=campaign)["active"]})
    action = request.POST.get("action", "")
    try:
        if action in ("start", "resume"):
            services.campaign_start(campaign=campaign, actor=request.user)
            messages.success(request, f"Campaign “{campaign.name}” is running.")
        elif action == "pause":
            services.campaign_pause(campaign=campaign, actor=request.user)
            messages.success(request, "Paused: no new step messages are created until you resume.")
        elif action == "stop":
            services.campaign_stop(campaign=campaign, actor=request.user)
            messages.success(request, f"Campaign “{campaign.name}” stopped.")
        else:
            messages.error(request, "Unknown action.")
    except ValidationError as err:
        messages.error(request, " ".join(err.messages))
    return redirect("campaign_detail", pk=campaign.pk)


@require_http_methods(["GET", "POST"])
def campaign_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: confirmation. POST: delete a draft campaign that sent nothing."""
    campaign = team_object_or_404(Campaign, request, pk)
    if request.method == "POST":
        try:
            services.campaign_delete(campaign=campaign)
        except ValidationError as err:
            messages.error(request, " ".join(err.messages))
            return redirect("campaign_detail", pk=campaign.pk)
        messages.success(request, f"Campaign “{campaign.name}” deleted.")
        return redirect("campaign_list")
    return render(request, "campaigns/delete.html", {"campaign": campaign})


def _step_page(request: HttpRequest, campaign: Campaign, step: CampaignStep | None) -> HttpResponse:
    form = StepForm(request.POST or None, initial=StepForm.initial_for(step) if step else {})
    if request.method == "POST" and form.is_valid():
        variants = [services.VariantData(*v) for v in form.variants()]
        try:
            step = services.campaign_step_save(campaign=campaign, step=step, data=form.cleaned_data, variants=variants)
        except ValidationError as err:
            for key, errors in err.message_dict.items():
                form.add_error(form.service_error_field(key), errors)
        else:
            messages.success(request, f"Step {step.position} saved; it applies to every message not yet created.")
            return redirect("campaign_detail", pk=campaign.pk)
    from ..message_templates.engine import MERGE_FIELDS

    return render(request, "campaigns/step_form.html", {
        "form": form, "campaign": campaign, "step": step, "merge_fields": MERGE_FIELDS.items(),
        "position": step.position if step else campaign.steps.count() + 1})


@require_http_methods(["GET", "POST"])
def campaign_step_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a step at the end of the team's campaign ``pk``."""
    return _step_page(request, team_object_or_404(Campaign, request, pk), None)


@require_http_methods(["GET", "POST"])
def campaign_step_edit(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    """Edit step ``step_pk`` of the team's campaign ``pk``."""
    campaign = team_object_or_404(Campaign, request, pk)
    return _step_page(request, campaign, get_object_or_404(CampaignStep, pk=step_pk, campaign=campaign))


def campaign_step_delete(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    """POST: delete a step that has sent nothing yet (another team's ids are 404 to every method)."""
    campaign = team_object_or_404(Campaign, request, pk)
    step = get_object_or_404(CampaignStep, pk=step_pk, campaign=campaign)
    if refused := method_not_allowed(request, ("POST",)):
        return refused
    try:
        services.campaign_step_delete(step=step)
        messages.success(request, "Step deleted.")
    except ValidationError as err:
        messages.error(request, " ".join(err.messages))
    return redirect("campaign_detail", pk=campaign.pk)


class EnrolmentListView(AdminListView):
    """One campaign's enrolments (``campaigns/enrolments.html``): filter by status and reason;
    bulk "remove from campaign" (confirmed first; "all N matching" above
    ``OUTREACH_BULK_JOB_THRESHOLD`` runs as a ``remove_enrolments`` BulkJob selecting the same rows
    through :func:`~outreach.campaigns.selectors.campaign_enrolments_selected`)."""

    template_name = "campaigns/enrolments.html"
    noun = "enrolment"
    noun_plural = "enrolments"
    search_placeholder = "Search email, name, company"
    columns = (Column("Contact", "email"), Column("Status", "status"), Column("Next step", "step", css="num"),
               Column("Due", "due", css="nowrap"), Column("Mailbox"), Column("Reason"), Column("Enrolled", "created", css="nowrap"))
    filters = (ListFilter("status", "Status", lambda team: Enrolment.Status.choices, all_label="Any status"),
               ListFilter("reason", "Reason", lambda team: [c for c in Enrolment.Reason.choices if c[0]], all_label="Any reason"))
    actions = (BulkAction("remove", "Remove from campaign", "bulk_remove", confirm=True, confirm_verb="Remove",
                          warning="Nothing more is sent to them from this campaign.",
                          job=BulkJob.Kind.REMOVE_ENROLMENTS),)

    def dispatch(self, request, *args, **kwargs):
        self.campaign = team_object_or_404(Campaign, request, kwargs.pop("pk"))
        self.title = f"Enrolments of “{self.campaign.name}”"
        return super().dispatch(request, *args, **kwargs)

    def select(self, team, query):
        return selectors.enrolment_list(campaign=self.campaign, query=query)

    def selected(self, team, ids):
        return Enrolment.objects.filter(campaign=self.campaign, pk__in=ids).select_related("contact")

    def extra_context(self):
        return {"campaign": self.campaign}

    def bulk_query(self):
        """The list's query with the campaign as the ``campaign`` filter (its id), which
        ``campaign_enrolments_selected`` reads; ``enrolment_list`` ignores it."""
        query = self.list_query()
        return replace(query, filters={**query.filters, "campaign": str(self.campaign.pk)})

    def bulk_remove(self, selection, value) -> str:
        rows = self.rows(selection)
        selected = rows.count()  # before: the list's status filter may no longer match removed rows
        removed = services.enrolments_remove(enrolments=rows, actor=self.request.user)
        return services.enrolments_removed_summary(removed, selected - removed)


enrolment_list = EnrolmentListView.as_view()
