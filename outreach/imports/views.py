"""CSV import pages: list, upload, mapping + progress (htmx), error report download.

Each view calls one service from ``outreach.imports.services`` and renders its result.
"""
from __future__ import annotations

import os

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from .forms import ImportMappingForm, ImportUploadForm
from ..models import ImportJob
from ..views.common import add_service_errors, get_team, team_object_or_404
from ..views.listing import AdminListView, BulkAction, Column, ListFilter
from .selectors import (import_job_columns, import_job_list, import_job_preview, import_job_progress, import_jobs_by_ids,
                        import_mapping_remembered)
from .services import import_job_cancel, import_job_create, import_job_set_header_row, import_job_start


class ImportListView(AdminListView):
    """The team's imports (``imports/list.html``) on the shared list page; bulk: cancel."""

    template_name = "imports/list.html"
    title = "Imports"
    noun = "import"
    noun_plural = "imports"
    search_placeholder = "Search name, file"
    columns = (
        Column("Name", "name"), Column("Status", "status"), Column("Rows", "rows", "num"),
        Column("Created", "created_count", "num"), Column("Updated", css="num"), Column("Unchanged", css="num"),
        Column("Rejected", "rejected", "num"), Column("By"), Column("When", "created"),
    )
    filters = (ListFilter("status", "Status", lambda team: ImportJob.Status.choices, all_label="Any status"),)
    actions = (BulkAction("cancel", "Cancel", "bulk_cancel", confirm=True, confirm_verb="Cancel",
                          warning="Imports not started yet are discarded; running ones stop after their current batch."),)

    def select(self, team, query):
        return import_job_list(team=team, query=query)

    def selected(self, team, ids):
        return import_jobs_by_ids(team=team, ids=ids)

    def bulk_cancel(self, ids, value) -> str:
        jobs = [import_job_cancel(job=job) for job in import_jobs_by_ids(team=self.team, ids=ids)]
        return f"Cancel requested for {len(jobs)} import{'s' if len(jobs) != 1 else ''}."


import_list = ImportListView.as_view()


@require_http_methods(["GET", "POST"])
def import_create(request: HttpRequest) -> HttpResponse:
    """Upload step: stores and checks the file (import_job_create), then redirects to the mapping step."""
    team = get_team(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_job_create(team=team, file=form.cleaned_data["file"], name=form.cleaned_data["name"],
                                    user=request.user)
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            return redirect("import_detail", pk=job.pk)
    return render(request, "imports/create.html", {"form": form})


@require_http_methods(["GET", "POST"])
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Mapping step (preview, column targets, policy, lead and campaign options → import_job_start) while the
    job is ``uploaded``; afterwards its progress and results. POST ``cancel`` cancels (import_job_cancel)."""
    job = team_object_or_404(ImportJob, request, pk)
    form = None
    if job.status == ImportJob.Status.UPLOADED:
        form = ImportMappingForm(request.POST if request.method == "POST" and "start" in request.POST else None, job=job)
    if request.method == "POST":
        if "header_row" in request.POST and job.status == ImportJob.Status.UPLOADED:
            raw = request.POST.get("header_row", "")
            try:
                import_job_set_header_row(job=job, header_row=int(raw) if raw.isdigit() else 0)
            except ValidationError as err:
                messages.error(request, " ".join(err.messages))
            else:
                messages.info(request, f"Row {raw} is now the header; check the columns again.")
            return redirect("import_detail", pk=job.pk)
        if "cancel" in request.POST:
            import_job_cancel(job=job)
            messages.info(request, "The import is being cancelled." if job.status == ImportJob.Status.RUNNING
                          else "The import was cancelled.")
            return redirect("import_detail", pk=job.pk)
        if form is not None and form.is_valid():
            data = form.cleaned_data
            try:
                import_job_start(job=job, mapping=form.mapping(), policy=data["policy"], as_leads=data["as_leads"],
                                 lead_status=data["lead_status"] or "new", lead_owner=data["lead_owner"],
                                 campaign=data["campaign"], enrol_updated=data["enrol_updated"])
            except ValidationError as err:
                add_service_errors(form, err)
            else:
                return redirect("import_detail", pk=job.pk)
    context = {"job": job, "form": form, "progress": import_job_progress(job=job)}
    if form is not None:
        context["preview"] = import_job_preview(job=job)
        context["columns"] = list(zip(form.column_fields(), import_job_columns(job=job)))
        context["remembered"] = import_mapping_remembered(team=job.team, headers=job.headers, exclude_id=job.pk)
    return render(request, "imports/detail.html", context)


@require_GET
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment (htmx polls it every second until the job is finished)."""
    job = team_object_or_404(ImportJob, request, pk)
    return render(request, "imports/_progress.html", {"job": job, "progress": import_job_progress(job=job)})


@require_GET
def import_errors(request: HttpRequest, pk: int) -> FileResponse:
    """Download the error report CSV (rejected rows and rows imported without an invalid cell,
    with their spreadsheet row, line and problem)."""
    job = team_object_or_404(ImportJob, request, pk)
    if not job.error_report or not job.error_report.storage.exists(job.error_report.name):
        raise Http404("This import has no error report.")
    stem = os.path.splitext(job.original_filename or "import")[0]
    return FileResponse(job.error_report.storage.open(job.error_report.name, "rb"), as_attachment=True,
                        filename=f"{stem}-errors.csv", content_type="text/csv; charset=utf-8")
