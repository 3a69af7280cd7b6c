"""Admin for campaigns: read-mostly. Campaigns, their steps (inline) and enrolments are shown; state
changes and enrolment go through the same services as the UI (start, pause, stop; enrol selected
contacts from the contact list). Registered from ``outreach/admin.py``."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import render

from ..admin_bulk import admin_bulk_form_fields, admin_bulk_jobs_create, admin_bulk_jobs_message, admin_bulk_wanted
from ..admin_scoping import TeamScopedAdmin
from ..models import BulkJob
from ..selectors import Selection
from ..services.teams import team_for_user
from .models import Campaign, CampaignStep, Enrolment
from .services import (campaign_enrol, campaign_pause, campaign_start, campaign_stop, enrolments_remove,
                       enrolments_removed_summary)


class CampaignStepInline(admin.TabularInline):
    model = CampaignStep
    extra = 0
    fields = ("position", "delay_amount", "delay_unit", "business_days_only", "new_thread")
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


def _state_action(service, verb: str):
    def action(modeladmin, request, queryset):
        done = 0
        for campaign in queryset:
            try:
                service(campaign=campaign, actor=request.user)
                done += 1
            except ValidationError as err:
                modeladmin.message_user(request, f"{campaign.name}: {' '.join(err.messages)}", messages.WARNING)
        if done:
            modeladmin.message_user(request, f"{verb.capitalize()} {done} campaign(s).", messages.SUCCESS)

    action.__name__ = f"{verb}_campaigns"
    action.short_description = f"{verb.capitalize()} selected campaigns"
    return action


class CampaignAdmin(TeamScopedAdmin):
    list_display = ("name", "status", "team", "time_zone", "created_at", "started_at")
    list_filter = ("status", "team")
    search_fields = ("name",)
    list_select_related = ("team",)
    readonly_fields = ("status", "created_by", "started_at", "finished_at", "created_at", "updated_at")
    filter_horizontal = ("mailboxes",)
    inlines = [CampaignStepInline]
    actions = [_state_action(campaign_start, "started"), _state_action(campaign_pause, "paused"),
               _state_action(campaign_stop, "stopped")]


class EnrolmentAdmin(TeamScopedAdmin):
    list_display = ("contact", "campaign", "status", "reason", "next_step", "next_due_at", "mailbox", "created_at")
    list_filter = ("status", "reason", "campaign")
    search_fields = ("contact__email", "campaign__name")
    list_select_related = ("contact", "campaign", "mailbox")
    readonly_fields = ("team", "campaign", "contact", "mailbox", "status", "reason", "detail", "next_step", "next_due_at",
                       "finished_at", "created_at", "updated_at")
    actions = ["remove_from_campaign"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # enrol through the contact list's action or the campaign services

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Remove selected enrolments from their campaign")
    def remove_from_campaign(self, request, queryset):
        """Stop the selected active enrolments (``enrolments_remove``). After "select all" on more
        than ``OUTREACH_BULK_JOB_THRESHOLD`` of them: a bulk job per team instead
        (``outreach.admin_bulk``), with a link to its progress."""
        if admin_bulk_wanted(request, queryset):
            try:
                jobs = admin_bulk_jobs_create(self, request, queryset, kind=BulkJob.Kind.REMOVE_ENROLMENTS)
            except ValidationError as err:
                self.message_user(request, " ".join(err.messages), messages.ERROR)
                return
            admin_bulk_jobs_message(self, request, jobs)
            return
        selected = queryset.count()  # before: a status filter may no longer match removed rows
        removed = enrolments_remove(enrolments=queryset, actor=request.user)
        self.message_user(request, enrolments_removed_summary(removed, selected - removed), messages.SUCCESS)


class EnrolForm(forms.Form):
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.none())

    def __init__(self, *args, campaigns, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = campaigns


def enrol_contacts_action(modeladmin, request, queryset):
    """Contact admin action: choose a campaign on an intermediate page, then enrol the selected
    contacts of the campaign's team through ``campaign_enrol`` (the same skips and counts as the
    UI). After "select all" on more than ``OUTREACH_BULK_JOB_THRESHOLD`` of them it queues an
    enrol BulkJob instead (``outreach.admin_bulk``) and says so with a link to its progress."""
    campaigns = Campaign.objects.filter(status__in=(Campaign.Status.DRAFT, Campaign.Status.ACTIVE, Campaign.Status.PAUSED))
    if not request.user.is_superuser:
        campaigns = campaigns.filter(team=team_for_user(request.user))
    if "campaign" in request.POST:
        form = EnrolForm(request.POST, campaigns=campaigns)
        if form.is_valid():
            campaign = form.cleaned_data["campaign"]
            if admin_bulk_wanted(request, queryset.filter(team=campaign.team)):
                try:
                    jobs = admin_bulk_jobs_create(modeladmin, request, queryset, kind=BulkJob.Kind.ENROL,
                                                  value=str(campaign.pk), team=campaign.team)
                except ValidationError as err:
                    modeladmin.message_user(request, " ".join(err.messages), messages.ERROR)
                    return None
                admin_bulk_jobs_message(modeladmin, request, jobs)
                return None
            ids = list(queryset.filter(team=campaign.team).values_list("pk", flat=True))
            result = campaign_enrol(campaign=campaign, selection=Selection.of_ids(ids), actor=request.user)
            modeladmin.message_user(request, f"{campaign.name}: {result.summary()}", messages.SUCCESS)
            return None
    else:
        form = EnrolForm(campaigns=campaigns)
    return render(request, "admin/outreach/enrol_in_campaign.html", {
        **modeladmin.admin_site.each_context(request), "title": "Enrol contacts in a campaign", "form": form,
        "contacts": queryset[:50], "count": queryset.count(), "opts": modeladmin.model._meta,
        **admin_bulk_form_fields(request)})


enrol_contacts_action.short_description = "Enrol selected contacts in a campaign…"
