"""Bulk jobs' pages: a job's progress (polled with htmx), its outcome, and cancelling it
(``outreach.services.bulk_jobs``). Team-scoped: another team's job is a 404."""
from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from ..models import BulkJob
from ..selectors import bulk_job_list, bulk_jobs_by_ids
from ..services.bulk_jobs import bulk_job_cancel
from .common import method_not_allowed, team_object_or_404
from .listing import AdminListView, BulkAction, Column, ListFilter


class BulkJobListView(AdminListView):
    """The team's bulk jobs (``bulk_jobs/list.html``), newest first; bulk: cancel."""

    template_name = "bulk_jobs/list.html"
    title = "Background jobs"
    noun = "job"
    noun_plural = "jobs"
    search_placeholder = "Search result, user"
    columns = (Column("Action"), Column("Status"), Column("Rows", css="num"), Column("Result"), Column("By"),
               Column("Started", "created", css="nowrap"))
    filters = (ListFilter("status", "Status", lambda team: BulkJob.Status.choices, all_label="Any status"),
               ListFilter("kind", "Action", lambda team: BulkJob.Kind.choices, all_label="Any action"))
    actions = (BulkAction("cancel", "Cancel", "bulk_cancel", confirm=True, confirm_verb="Cancel",
                          warning="Queued jobs are discarded; running ones stop after their current batch."),)

    def select(self, team, query):
        return bulk_job_list(team=team, query=query)

    def selected(self, team, ids):
        return bulk_jobs_by_ids(team=team, ids=ids)

    def bulk_cancel(self, selection, value) -> str:
        jobs = [bulk_job_cancel(job=job) for job in self.rows(selection)]
        return f"Cancel requested for {len(jobs)} job{'s' if len(jobs) != 1 else ''}."


bulk_job_list_view = BulkJobListView.as_view()


#: Per kind: (what the rows are, the UI list, the admin changelist).
_ROWS = {
    BulkJob.Kind.SET_STATUS: ("leads", "lead_list", "admin:outreach_lead_changelist"),
    BulkJob.Kind.DELETE_LEADS: ("leads", "lead_list", "admin:outreach_lead_changelist"),
    BulkJob.Kind.DELETE_EVENTS: ("timeline events", "", "admin:outreach_timelineevent_changelist"),
    BulkJob.Kind.REMOVE_ENROLMENTS: ("enrolments", "", "admin:outreach_enrolment_changelist"),
}
_CONTACTS = ("contacts", "contact_list", "admin:outreach_contact_changelist")


def bulk_job_back_url(job: BulkJob) -> str:
    """The list the job was started from, with its search and filters: the UI's contacts or
    leads list or a campaign's enrolment list, or — for a job started from Django admin
    (``query["admin"]``) — that admin changelist with its search and list filters."""
    query = job.query or {}
    _noun, ui, changelist = _ROWS.get(job.kind, _CONTACTS)
    from_campaign_list = job.kind == BulkJob.Kind.REMOVE_ENROLMENTS and "campaign" in (query.get("filters") or {})
    if query.get("admin") or not (ui or from_campaign_list):
        params = [("q", query["q"])] if query.get("q") else []
        params += [(key, v) for key, values in (query.get("lookups") or {}).items() for v in values]
        return reverse(changelist) + ("?" + urlencode(params) if params else "")
    filters = dict(query.get("filters") or {})
    if job.kind == BulkJob.Kind.REMOVE_ENROLMENTS:  # from a campaign's enrolment list: its id is in the path
        ui_url = reverse("campaign_enrolments", args=[int(filters.pop("campaign"))])
    else:
        ui_url = reverse(ui)
    params = {"q": query.get("q", ""), **filters, "o": query.get("order", "")}
    params = {k: v for k, v in params.items() if v}
    return ui_url + ("?" + urlencode(params) if params else "")


def _context(job: BulkJob) -> dict:
    return {"job": job, "back_url": bulk_job_back_url(job), "rows_noun": _ROWS.get(job.kind, _CONTACTS)[0]}


def bulk_job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The job's page (``bulk_jobs/detail.html``): what it does, its progress bar (polled from
    :func:`bulk_job_progress` until it is finished), the final message, a cancel button."""
    job = team_object_or_404(BulkJob, request, pk)  # before the method check: another team's id is a 404
    if refused := method_not_allowed(request):
        return refused
    return render(request, "bulk_jobs/detail.html", _context(job))


def bulk_job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment (``bulk_jobs/_progress.html``; htmx polls it every second while the
    job is queued or running, and it stops polling once the job is finished)."""
    job = team_object_or_404(BulkJob, request, pk)
    if refused := method_not_allowed(request):
        return refused
    return render(request, "bulk_jobs/_progress.html", _context(job))


def bulk_job_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation page (``bulk_jobs/cancel.html``). POST: cancel (``bulk_job_cancel``:
    at once while queued, before the next batch while running) and back to the job's page."""
    job = team_object_or_404(BulkJob, request, pk)
    if refused := method_not_allowed(request, ("GET", "HEAD", "POST")):
        return refused
    if request.method == "POST":
        job = bulk_job_cancel(job=job)
        if job.status == BulkJob.Status.CANCELLED:
            messages.info(request, "The job was cancelled before it started; nothing was changed.")
        elif job.status == BulkJob.Status.RUNNING:
            messages.info(request, "The job stops after the batch it is working on; rows done so far stay done.")
        return redirect("bulk_job_detail", pk=job.pk)
    if job.is_finished:
        return redirect("bulk_job_detail", pk=job.pk)
    return render(request, "bulk_jobs/cancel.html", _context(job))
