"""Django admin's "select all N" on the large lists (contacts, leads, timeline events, enrolments) through the
bulk-job service (``outreach.services.bulk_jobs``), as the UI lists' "all N matching".

An admin action called with ``select_across=1`` on more than ``OUTREACH_BULK_JOB_THRESHOLD`` rows
(:func:`admin_bulk_wanted`, counted up to the threshold + 1) queues a BulkJob per team instead of
writing inside the request (:func:`admin_bulk_jobs_create`), and tells the user with a link to
each job's progress page (:func:`admin_bulk_jobs_message`). Checked rows, and a selection at or
below the threshold, keep Django admin's behaviour.

The job must select the rows the changelist selected. The changelist's queryset is the admin's
team-scoped queryset (``admin_scoping``) narrowed by its search box and its list filters; the
job's is the kind's selector (``contacts_selected``, ``leads_selected``,
``timeline_events_selected``) for one team, given a ListQuery (:func:`admin_list_query`):

- the team: the staff user's team; for a superuser (whose changelist spans every team) one job
  per team that has rows in the selection;
- the search box → ``ListQuery.q``: the contacts, leads and timeline admins search with
  ``apply_text_search`` over ``contact_search_text(contact_search_prefix)``, the expression the
  selectors search; the enrolment admin with Django's own search over its ``search_fields``,
  which ``enrolments_selected`` repeats with ``apply_search`` (:data:`SAME_SEARCH` checks it);
- the list filters → ``ListQuery.lookups``: the changelist's filter query parameters as they
  came (Django checked each with ``lookup_allowed`` before calling the action), which
  ``apply_lookups`` applies the way Django's field list filters do (``prepare_lookup_value``,
  then ``build_q_object_from_lookup_parameters``). Translating them into the UI's named filters
  instead would cover only the filters the UI has (no "created at" range, no team), and every
  new admin filter would need a twin.

What this cannot express is refused with a ValidationError (shown as the admin's error message,
nothing changed): a custom ``SimpleListFilter`` or a FieldListFilter class other than Django's
plain ones in use, a ``date_hierarchy`` drill-down, a search on an admin whose search is not the
selector's, or a lookup that spans a to-many relation (its rows could repeat).
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.filters import (AllValuesFieldListFilter, BooleanFieldListFilter, ChoicesFieldListFilter,
                                          DateFieldListFilter, RelatedFieldListFilter)
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import lookup_spawns_duplicates
from django.contrib.admin.views.main import ERROR_FLAG, IGNORED_PARAMS, PAGE_VAR, SEARCH_VAR
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .admin_scoping import request_team
from .campaigns.selectors import ENROLMENT_ADMIN_SEARCH
from .models import BulkJob, Team
from .selectors import ListQuery, more_rows_than
from .services.bulk_jobs import bulk_job_create

#: The FieldListFilter classes whose queryset() is ``filter(build_q_object_from_lookup_parameters(
#: used_parameters))`` over their own query parameters, i.e. what ``apply_lookups`` re-applies.
PLAIN_FILTERS = (RelatedFieldListFilter, ChoicesFieldListFilter, DateFieldListFilter, AllValuesFieldListFilter,
                 BooleanFieldListFilter)

def _contact_text_search(prefix: str):
    """An admin searching like the kind's selector: the contact's indexed text from ``prefix``."""
    return lambda modeladmin: getattr(modeladmin, "contact_search_prefix", None) == prefix


def _django_search(fields: tuple[str, ...]):
    """An admin searching like the kind's selector: Django's own search over exactly ``fields``."""
    return lambda modeladmin: (type(modeladmin).get_search_results is admin.ModelAdmin.get_search_results
                               and tuple(modeladmin.search_fields) == fields)


#: Per job kind: whether a ModelAdmin's search box is the search the kind's selector runs.
SAME_SEARCH = {BulkJob.Kind.MAKE_LEADS: _contact_text_search(""), BulkJob.Kind.DELETE: _contact_text_search(""),
               BulkJob.Kind.ENROL: _contact_text_search(""), BulkJob.Kind.SET_STATUS: _contact_text_search("contact__"),
               BulkJob.Kind.DELETE_LEADS: _contact_text_search("contact__"),
               BulkJob.Kind.DELETE_EVENTS: _contact_text_search("contact__"),
               BulkJob.Kind.REMOVE_ENROLMENTS: _django_search(ENROLMENT_ADMIN_SEARCH)}


def admin_bulk_wanted(request, queryset: QuerySet) -> bool:
    """Whether an admin action on ``queryset`` must run as bulk jobs: the user chose "select all"
    (``select_across=1`` in the POST) and it holds more than ``OUTREACH_BULK_JOB_THRESHOLD`` rows
    (counted up to the threshold + 1)."""
    if request.POST.get("select_across") not in ("1", "True", "true"):
        return False
    return more_rows_than(queryset, settings.OUTREACH_BULK_JOB_THRESHOLD)


def admin_list_query(modeladmin: admin.ModelAdmin, request, *, kind: str) -> ListQuery:
    """The ListQuery selecting, within one team, the rows of ``modeladmin``'s changelist for
    ``request`` (its search ``q`` and its list filters as ``lookups``; page, sort and display
    parameters are left out). Raises ValidationError when the changelist's selection cannot be
    expressed this way (see the module's docstring)."""
    params = {key: values for key, values in request.GET.lists()
              if key not in IGNORED_PARAMS and key not in (PAGE_VAR, ERROR_FLAG)}
    search = request.GET.get(SEARCH_VAR, "")
    refuse = "This selection cannot run in the background: "
    if search.strip() and not SAME_SEARCH[kind](modeladmin):
        raise ValidationError(refuse + "this list's search differs from the job's.")
    if modeladmin.date_hierarchy and any(key.startswith(f"{modeladmin.date_hierarchy}__") for key in params):
        raise ValidationError(refuse + "clear the date drill-down and filter with the list filters instead.")
    for entry in modeladmin.get_list_filter(request):
        if isinstance(entry, (list, tuple)):
            path, filter_class = entry
            if not (isinstance(filter_class, type) and issubclass(filter_class, PLAIN_FILTERS)) and _uses(params, path):
                raise ValidationError(refuse + f"the “{path}” filter is a custom one.")
        elif not isinstance(entry, str):
            name = getattr(entry, "parameter_name", None)
            if name is None or name in params:
                raise ValidationError(refuse + f"the “{getattr(entry, 'title', name)}” filter is a custom one.")
    opts = modeladmin.model._meta
    for key in params:
        if lookup_spawns_duplicates(opts, key):
            raise ValidationError(refuse + f"the “{key}” filter can match a row more than once.")
    return ListQuery(q=search, lookups=params)


def _uses(params: dict, path: str) -> bool:
    return any(key == path or key.startswith(f"{path}__") for key in params)


def admin_bulk_jobs_create(modeladmin: admin.ModelAdmin, request, queryset: QuerySet, *, kind: str, value: str = "",
                           team: Team | None = None) -> list[BulkJob]:
    """Queue bulk jobs of ``kind`` (with ``value``) for the changelist's "select all" selection
    ``queryset``: one for ``team`` if given (e.g. an enrolment's campaign's team), else one for the
    staff user's team, or for a superuser one per team with rows in ``queryset``. All in one
    transaction (each job's task is published after it commits). Returns the jobs (``queued``).
    Raises ValidationError from :func:`admin_list_query` or ``bulk_job_create`` (nothing queued)."""
    query = admin_list_query(modeladmin, request, kind=kind)
    if team is not None:
        teams = [team]
    elif not request.user.is_superuser:
        teams = [t for t in [request_team(request)] if t is not None]
    else:
        teams = list(Team.objects.filter(Exists(queryset.order_by().filter(team=OuterRef("pk")))).order_by("pk"))
    with transaction.atomic():
        return [bulk_job_create(team=t, kind=kind, query=query, value=value, actor=request.user, from_admin=True)
                for t in teams]


def admin_bulk_job_url(request, job: BulkJob) -> str:
    """The job's progress page: the UI's when the job is of the user's own team, else (a
    superuser's job for another team) its read-only BulkJob admin page."""
    if job.team_id == getattr(request_team(request), "pk", None):
        return reverse("bulk_job_detail", args=[job.pk])
    return reverse("admin:outreach_bulkjob_change", args=[job.pk])


def admin_bulk_jobs_message(modeladmin: admin.ModelAdmin, request, jobs: list[BulkJob]) -> None:
    """Tell the user the action runs in the background, linking each job's progress page."""
    if not jobs:
        modeladmin.message_user(request, "Nothing was selected; no job was started.", messages.WARNING)
        return
    links = format_html_join(", ", '<a href="{}">job #{} ({})</a>',
                             ((admin_bulk_job_url(request, job), job.pk, job.team.name) for job in jobs))
    modeladmin.message_user(request, format_html(
        "{}: more than {} rows are selected, so this runs in the background: {}. Follow its progress there; "
        "operators see every job under Bulk jobs.", jobs[0].get_kind_display(),
        f"{settings.OUTREACH_BULK_JOB_THRESHOLD:,}", links), messages.SUCCESS)


def admin_bulk_form_fields(request) -> dict:
    """Hidden-field values an intermediate page (a confirmation) posts back to the changelist so
    the action runs again on the same selection: the page's checked ids (Django refuses an action
    without one) and ``select_across``. Never every id of a "select all" selection."""
    return {"action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": "1" if request.POST.get("select_across") in ("1", "True", "true") else "0"}


def delete_selected(modeladmin: admin.ModelAdmin, request, queryset: QuerySet):
    """Django's "Delete selected …" action, except for "select all" on more than the threshold
    (:func:`admin_bulk_wanted`) on an admin with a ``bulk_delete_kind``: a confirmation page of
    its own first (Django's would collect and list every row and every related row in the
    request, and post every id back), then, confirmed (``post=yes``), bulk jobs of that kind
    (the rows are deleted through the same services as the UI's delete: ``contacts_delete``,
    ``leads_delete``, ``timeline_events_delete``). Returns the confirmation page, or None (the
    changelist follows, with the job message)."""
    kind = getattr(modeladmin, "bulk_delete_kind", None)
    if kind is None or not admin_bulk_wanted(request, queryset):
        return django_delete_selected(modeladmin, request, queryset)
    try:
        if request.POST.get("post") == "yes":
            admin_bulk_jobs_message(modeladmin, request, admin_bulk_jobs_create(modeladmin, request, queryset, kind=kind))
            return None
        query = admin_list_query(modeladmin, request, kind=kind)  # refuse before asking, not after
    except ValidationError as err:
        modeladmin.message_user(request, " ".join(err.messages), messages.ERROR)
        return None
    opts = modeladmin.model._meta
    return TemplateResponse(request, "admin/outreach/bulk_delete_confirmation.html", {
        **modeladmin.admin_site.each_context(request),
        "title": f"Delete all selected {opts.verbose_name_plural}?", "opts": opts, "app_label": opts.app_label,
        "count": queryset.count(), "preview": list(queryset[:20]), "query": query,
        "kind_label": BulkJob.Kind(kind).label, "threshold": settings.OUTREACH_BULK_JOB_THRESHOLD,
        "cascade": getattr(modeladmin, "bulk_delete_cascade", ""), **admin_bulk_form_fields(request)})

