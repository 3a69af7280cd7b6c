"""Admin for CSV imports: upload a CSV (runs the same services as the web UI, in the Celery
task), follow its counts, download the error report, cancel.

Register from ``outreach/admin.py``::

    from .imports.admin import ImportJobAdmin
    admin.site.register(ImportJob, ImportJobAdmin)
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from ..admin_scoping import TeamScopedAdmin
from .mapping import validate_mapping
from ..models import ImportJob, Team
from .services import import_job_cancel, import_job_create, import_job_start
from ..services.teams import team_for_user


class ImportJobAddForm(forms.ModelForm):
    """The admin's upload form: the CSV is stored and checked (format, an Email column) in ``clean``
    through ``import_job_create``; ``ImportJobAdmin.save_model`` then starts it."""

    upload = forms.FileField(label="CSV file")

    class Meta:
        model = ImportJob
        fields = ("team", "name", "policy", "as_leads", "lead_status", "lead_owner")

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.fields["name"].required = False
        self.created_job: ImportJob | None = None

    def clean(self):
        data = super().clean()
        team = data.get("team")
        upload = data.get("upload")
        if team is None or upload is None or self.errors:
            return data
        try:
            job = import_job_create(team=team, file=upload, name=data.get("name") or "", user=self.request.user)
        except ValidationError as err:
            raise ValidationError({"upload": err.messages}) from err
        try:
            validate_mapping(job.headers, job.mapping)
        except ValidationError as err:
            job.file.delete(save=False)
            job.delete()
            raise ValidationError({"upload": err.messages + [
                "Rename the column to “Email”, or use the import page, where columns can be mapped by hand."]}) from err
        self.created_job = job
        return data


@admin.display(description="Error report")
def _error_report_link(job: ImportJob) -> str:
    if not (job.rejected_count or job.blanked_count):
        return "—"
    return format_html('<a href="{}">Download ({} rows)</a>', reverse("import_errors", args=[job.pk]),
                       job.rejected_count + job.blanked_count)


class ImportJobAdmin(TeamScopedAdmin):
    """Upload on "Add"; everything else is read-only. Non-superuser staff see and use only their team."""

    list_display = ("name", "team", "status", "total_rows", "created_count", "updated_count", "unchanged_count",
                    "rejected_count", "created_by", "created_at")
    list_filter = ("status", "policy", "team", "created_at")
    search_fields = ("name", "original_filename", "team__name")
    list_select_related = ("team", "created_by")
    actions = ["cancel_imports"]
    readonly_fields = ("team", "name", "created_by", "original_filename", "size_bytes", "encoding", "delimiter",
                       "header_row", "header_line", "headers", "mapping", "policy", "as_leads", "lead_status", "lead_owner", "status",
                       "cancel_requested", "total_rows", "rows_done", "created_count", "updated_count",
                       "unchanged_count", "rejected_count", "blanked_count", "suppressed_count", "leads_created_count",
                       "campaign", "enrol_updated", "enrolled_count", "enrol_already_count", "enrol_skipped",
                       "error_message", _error_report_link, "started_at", "finished_at", "created_at")
    exclude = ("file", "error_report", "task_id")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        kwargs["form"] = ImportJobAddForm
        kwargs["fields"] = None
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class RequestForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, request=request, **kw)
                if not request.user.is_superuser:
                    team = team_for_user(request.user)
                    self.fields["team"].queryset = Team.objects.filter(pk=getattr(team, "pk", None))
                    owner = self.fields["lead_owner"]
                    owner.queryset = owner.queryset.filter(membership__team=team)

        return RequestForm

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ("upload", "team", "name", "policy")}),
                    ("Leads", {"fields": ("as_leads", "lead_status", "lead_owner")})]
        return super().get_fieldsets(request, obj)

    def save_model(self, request, obj, form, change):
        """Add: start the job created (and checked) by the form, with the guessed column mapping."""
        if change:
            return
        job = form.created_job
        data = form.cleaned_data
        try:
            job = import_job_start(job=job, mapping=job.mapping, policy=data["policy"], as_leads=data["as_leads"],
                                   lead_status=data["lead_status"], lead_owner=data["lead_owner"])
        except ValidationError as err:
            messages.error(request, " ".join(err.messages))
        obj.pk = job.pk
        obj.__dict__.update({k: v for k, v in job.__dict__.items() if not k.startswith("_")})

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(description="Cancel selected imports")
    def cancel_imports(self, request, queryset):
        for job in queryset:
            import_job_cancel(job=job)
        messages.info(request, f"Cancel requested for {queryset.count()} import(s).")
