"""The admin-style list page, written once: search, filters, sortable columns, pagination and
bulk actions with a confirmation page for destructive ones.

A list page is a subclass of :class:`AdminListView` that declares its columns, filters and
actions and implements :meth:`AdminListView.select` (a call to a selector) and
:meth:`AdminListView.selected` (the team's rows among posted ids). Its template extends
``list.html`` and fills ``{% block cells %}`` for one row (the object is ``obj``).

Query parameters: ``q`` (search), one per filter (its ``param``), ``o`` (sort key, ``-`` for
descending), and the keyset page tokens ``after`` / ``before`` (or ``last=1``); see
``outreach.pagination``. The total is exact up to 10,000 rows and PostgreSQL's estimate beyond.
Bulk POST fields: ``ids`` (repeated) or ``all=1`` (every row matching the current search and
filters, which stay in the URL), ``action``, ``value`` (for actions with choices) and
``confirmed=yes`` once the confirmation page was accepted. Handlers receive a
:class:`~outreach.selectors.Selection`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from ..models import Team
from ..pagination import list_page
from ..selectors import ListQuery, Selection
from ..services.bulk_jobs import bulk_job_create, bulk_job_wanted
from .common import get_team, method_not_allowed

PAGE_PARAMS = ("after", "before", "last")
CONFIRM_PREVIEW_ROWS = 20


@dataclass(frozen=True)
class Column:
    """A column header; ``sort`` is the selector's ordering key ("" = not sortable)."""

    label: str
    sort: str = ""
    css: str = ""


@dataclass(frozen=True)
class ListFilter:
    """A filter select: ``?<param>=<value>``; ``choices(team)`` returns [(value, label)].

    With ``autocomplete`` (a URL name) the filter is a text box whose suggestions come from that
    view (htmx, into a ``<datalist>``) instead of a select listing every value: for columns with
    many distinct values (companies).
    """

    param: str
    label: str
    choices: Callable[[Team], Sequence[tuple[str, str]]] = lambda team: ()
    all_label: str = "All"
    autocomplete: str = ""


@dataclass(frozen=True)
class BulkAction:
    """A bulk action on the checked rows (or on all rows matching the list's filter).

    ``handler`` names a view method ``(selection: Selection, value: str) -> str`` that calls a
    service and returns the success message. ``confirm`` actions show the confirmation page first.
    ``choices`` adds a value select (e.g. the status to set); ``choose`` is the same for
    choices that cost a query (e.g. the team's campaigns): ``choose(team)`` is only called on the
    confirmation page, where the value is picked, so the list page's query count does not grow.
    ``warning`` is shown on the confirmation page. ``job`` (a BulkJob.Kind value) lets the
    action run as a background job when the selection is "all matching" and larger than
    ``settings.OUTREACH_BULK_JOB_THRESHOLD`` (``outreach.services.bulk_jobs``): the user is then
    sent to the job's progress page instead of waiting on the request.
    """

    name: str
    label: str
    handler: str
    confirm: bool = False
    choices: Sequence[tuple[str, str]] = ()
    confirm_verb: str = ""
    warning: str = ""
    choose: Callable[[Team], Sequence[tuple[str, str]]] | None = None
    job: str = ""


class AdminListView(View):
    """GET: the list page (``template_name``, extending ``list.html``). POST: a bulk action —
    redirects back to the same list with a message, or renders ``list_confirm.html`` first."""

    template_name = "list.html"
    title = ""
    noun = "item"
    noun_plural = "items"
    columns: Sequence[Column] = ()
    filters: Sequence[ListFilter] = ()
    actions: Sequence[BulkAction] = ()
    search_placeholder = "Search"
    paginate_by = 50
    export_url_name = ""  # a URL name taking the same query parameters, answering a CSV file

    # --- to implement ------------------------------------------------------------------
    def select(self, team: Team, query: ListQuery) -> tuple[QuerySet, str]:
        """Return (queryset, sort key used) for ``query``; call a selector."""
        raise NotImplementedError

    def selected(self, team: Team, ids: list[int]) -> QuerySet:
        """Return the team's rows among ``ids`` (listed on the confirmation page)."""
        raise NotImplementedError

    def rows(self, selection: Selection) -> QuerySet:
        """The team's rows a selection stands for: its ids, or every row matching its query."""
        if selection.query is not None:
            return self.select(self.team, selection.query)[0]
        return self.selected(self.team, list(selection.ids))

    def extra_context(self) -> dict:
        """Extra template context for the list page."""
        return {}

    def export_url(self) -> str:
        """The CSV export of the current search, filters and sort ("" when the list has none)."""
        if not self.export_url_name:
            return ""
        params = self.request.GET.copy()
        for name in PAGE_PARAMS:
            params.pop(name, None)
        return reverse(self.export_url_name) + ("?" + params.urlencode() if params else "")

    # --- machinery ---------------------------------------------------------------------
    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        self.team = get_team(request)
        return super().dispatch(request, *args, **kwargs)

    @staticmethod
    def query_from(params, filters: Sequence[ListFilter]) -> ListQuery:
        """The ListQuery that query parameters ``params`` ask for (``q``, each filter, ``o``)."""
        return ListQuery(
            q=params.get("q", "").strip(),
            filters={f.param: params.get(f.param, "") for f in filters},
            order=params.get("o", ""),
        )

    def list_query(self) -> ListQuery:
        return self.query_from(self.request.GET, self.filters)

    def bulk_query(self) -> ListQuery:
        """The query an "all matching" bulk action stands for: the list's query, plus whatever a
        job needs to select the same rows outside this view (e.g. the campaign of a campaign's
        enrolment list, which is in the URL's path, not its query)."""
        return self.list_query()

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render one keyset page of the list."""
        query = self.list_query()
        qs, order = self.select(self.team, query)
        params = request.GET
        page, total = list_page(qs, per_page=self.paginate_by, after=params.get("after", ""),
                                before=params.get("before", ""), last=params.get("last") == "1")
        if not page.object_list and page.is_first:
            total = None
        filtering = bool(query.q or any(query.filters.values()))
        context = {
            "title": self.title,
            "noun": self.noun,
            "noun_plural": self.noun_plural,
            "page_obj": page,
            "object_list": page.object_list,
            "total": total,
            "q": query.q,
            "order": order,
            "headers": self.headers(order),
            "pages": self.page_links(page),
            "filters": [
                {"param": f.param, "label": f.label, "all_label": f.all_label,
                 "choices": [] if f.autocomplete else list(f.choices(self.team)),
                 "autocomplete_url": reverse(f.autocomplete) if f.autocomplete else "",
                 "current": query.filters.get(f.param, "")}
                for f in self.filters
            ],
            "actions": self.actions,
            "filtering": filtering,
            "search_placeholder": self.search_placeholder,
            "colspan": len(self.columns) + (1 if self.actions else 0),
            "export_url": self.export_url(),
        }
        context.update(self.extra_context())
        return render(request, self.template_name, context)

    def page_links(self, page) -> dict[str, str]:
        """Query strings for the first/previous/next/last pages ("" where there is none); they
        keep the search, filters and sort."""
        base = self.request.GET.copy()
        for name in PAGE_PARAMS:
            base.pop(name, None)

        def link(**extra) -> str:
            params = base.copy()
            for key, value in extra.items():
                params[key] = value
            return "?" + params.urlencode()

        return {
            "first": "" if page.is_first else link(),
            "previous": link(before=page.previous_cursor) if page.has_previous else "",
            "next": link(after=page.next_cursor) if page.has_next else "",
            "last": "" if page.is_last else link(last="1"),
        }

    def headers(self, order: str) -> list[dict]:
        """Column headers with their sort link (toggles direction on the current column)."""
        result = []
        for col in self.columns:
            header = {"label": col.label, "css": col.css, "url": "", "sorted": ""}
            if col.sort:
                if order == col.sort:
                    header["sorted"], new = "asc", f"-{col.sort}"
                elif order == f"-{col.sort}":
                    header["sorted"], new = "desc", col.sort
                else:
                    new = col.sort
                params = self.request.GET.copy()
                params["o"] = new
                for name in PAGE_PARAMS:
                    params.pop(name, None)
                header["url"] = "?" + params.urlencode()
            result.append(header)
        return result

    def post(self, request: HttpRequest) -> HttpResponse:
        """Run a bulk action on the checked rows, or on every row matching the list's search and
        filters (``all=1``); destructive actions show the confirmation page first. An action
        with a ``job`` kind on "all matching" more than the threshold becomes a BulkJob and
        the answer redirects to its progress page (``bulk_job_detail``)."""
        back = HttpResponseRedirect(request.get_full_path())
        action = next((a for a in self.actions if a.name == request.POST.get("action")), None)
        if action is None:
            messages.error(request, "Choose an action.")
            return back
        if request.POST.get("all") == "1":
            selection = Selection(query=self.bulk_query())
        else:
            selection = Selection.of_ids(v for v in request.POST.getlist("ids") if v.isdigit())
        if selection.is_empty:
            messages.warning(request, "Select at least one row first.")
            return back
        value = request.POST.get("value", "")
        choices = list(action.choose(self.team)) if action.choose else action.choices
        if action.choose and not choices:
            messages.warning(request, f"There is nothing to choose for “{action.label}” yet.")
            return back
        if choices and value not in {v for v, _ in choices} and not (action.choose and not value):
            messages.error(request, f"Choose a value for “{action.label}”.")
            return back
        confirmed = request.POST.get("confirmed") == "yes"
        if (action.confirm and not confirmed) or (action.choose and not (confirmed and value)):
            rows = self.rows(selection)
            preview = list(rows[:CONFIRM_PREVIEW_ROWS])
            if not preview:
                messages.warning(request, "None of the selected rows exist any more.")
                return back
            count = len(preview) if len(preview) < CONFIRM_PREVIEW_ROWS else rows.count()
            return render(request, "list_confirm.html", {
                "title": self.title, "action": action, "value": value, "objects": preview, "count": count,
                "more": count - len(preview), "all": selection.query is not None, "ids": selection.ids,
                "choose": choices if action.choose else (),
                "noun": self.noun, "noun_plural": self.noun_plural, "cancel_url": request.get_full_path(),
            })
        if action.job:
            try:
                if bulk_job_wanted(team=self.team, kind=action.job, selection=selection):
                    job = bulk_job_create(team=self.team, kind=action.job, query=selection.query, value=value,
                                          actor=request.user)
                    return HttpResponseRedirect(reverse("bulk_job_detail", args=[job.pk]))
            except ValidationError as err:
                messages.error(request, " ".join(err.messages))
                return back
        message = getattr(self, action.handler)(selection, value)
        messages.success(request, message)
        return back


def list_export_view(view_class: type[AdminListView], lines: Callable[[QuerySet], Iterable[str]], filename: str):
    """A view answering ``view_class``'s list for the request's search, filters and sort (the
    same query parameters) as a streamed CSV download of ``lines(queryset)``."""

    def export(request: HttpRequest) -> HttpResponse:
        team = get_team(request)
        if refused := method_not_allowed(request):
            return refused
        qs, _ = view_class().select(team, view_class.query_from(request.GET, view_class.filters))
        response = StreamingHttpResponse(lines(qs), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    export.__doc__ = f"The {view_class.noun_plural} list's current search, filters and sort as a streamed CSV file."
    return export
