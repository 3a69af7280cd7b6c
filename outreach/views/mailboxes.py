"""Mailboxes: list, connect, edit, test connection (htmx), delete."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from providers.registry import provider_choices

from ..inbound.selectors import sync_state
from .. import selectors
from ..forms import SECRET_FIELD_NAMES, MailboxForm
from ..models import Mailbox
from ..services.mailboxes import mailbox_connect as mailbox_connect_service
from ..services.teams import user_is_team_admin
from ..services.mailboxes import (mailbox_config_clean, mailbox_delete_unused, mailbox_test_connection, mailbox_update,
                                 mailboxes_set_active)
from .common import add_service_errors, get_team, require_team_admin, team_admin_required, team_object_or_404
from .listing import AdminListView, BulkAction, Column, ListFilter


class MailboxListView(AdminListView):
    """The team's mailboxes (``mailboxes/list.html``); bulk: deactivate, activate."""

    template_name = "mailboxes/list.html"
    title = "Mailboxes"
    noun = "mailbox"
    noun_plural = "mailboxes"
    search_placeholder = "Search sender, host"
    columns = (
        Column("Sender", "sender"), Column("Provider", "provider"), Column("SMTP server", "smtp_host"),
        Column("IMAP server", "imap_host"), Column("Last check", "checked"), Column("Active", "active"),
    )
    filters = (
        ListFilter("active", "Active", lambda team: [("yes", "Active"), ("no", "Inactive")], all_label="Active or not"),
        ListFilter("provider", "Provider", lambda team: provider_choices(), all_label="Any provider"),
    )
    actions = (
        BulkAction("deactivate", "Deactivate", "bulk_deactivate"),
        BulkAction("activate", "Activate", "bulk_activate"),
    )

    def post(self, request):
        require_team_admin(request)  # bulk (de)activation: owners/admins only
        return super().post(request)

    def dispatch(self, request, *args, **kwargs):
        if not (request.user.is_authenticated and (request.user.is_superuser or user_is_team_admin(request.user))):
            self.actions = ()  # members see the list without bulk actions
        return super().dispatch(request, *args, **kwargs)

    def select(self, team, query):
        return selectors.mailbox_list(team=team, query=query)

    def selected(self, team, ids):
        return selectors.mailboxes_by_ids(team=team, ids=ids)

    def extra_context(self):
        return {"provider_labels": provider_choices()}

    def bulk_deactivate(self, selection, value) -> str:
        n = mailboxes_set_active(team=self.team, ids=self.rows(selection).values_list("pk", flat=True), active=False)
        return f"Deactivated {n:,} mailbox{'es' if n != 1 else ''}."

    def bulk_activate(self, selection, value) -> str:
        n = mailboxes_set_active(team=self.team, ids=self.rows(selection).values_list("pk", flat=True), active=True)
        return f"Activated {n:,} mailbox{'es' if n != 1 else ''}."


mailbox_list = MailboxListView.as_view()


@team_admin_required  # owners/admins only (views.common)
@sensitive_post_parameters(*SECRET_FIELD_NAMES)  # error reports show them as ********
@require_http_methods(["GET", "POST"])
def mailbox_connect(request: HttpRequest) -> HttpResponse:
    """GET: the connect form (``mailboxes/form.html``). POST: save through ``mailbox_connect``
    (which checks everything and, when asked, registers the mailbox at lemlist too, deleting it
    again if lemlist refuses) and redirect to the list."""
    team = get_team(request)
    form = MailboxForm(request.POST or None, team=team)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            mailbox = mailbox_connect_service(team=team, data=data, register_at_lemlist=data.get("register_at_lemlist"),
                                              lemlist_user_id=data.get("lemlist_user_id", ""))
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            if data.get("register_at_lemlist") is not None:
                messages.success(request, f"Registered at lemlist ({data['register_at_lemlist'].name}) as "
                                          f"{mailbox.setting('lemlist_email_account_id')}.")
            messages.success(request, f"Mailbox {mailbox.sender_email} connected. Use “Test connection” to check the login.")
            return redirect("mailbox_list")
    return render(request, "mailboxes/form.html", {"form": form, "title": "Connect a mailbox"})


@team_admin_required  # owners/admins only (views.common)
@sensitive_post_parameters(*SECRET_FIELD_NAMES)  # error reports show them as ********
@require_http_methods(["GET", "POST"])
def mailbox_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the mailbox's form without its passwords (``mailboxes/form.html``); a provider-bound
    mailbox shows its sender and its provider's sender ids instead of SMTP/IMAP. POST: save through
    ``mailbox_update`` (blank passwords keep the stored ones) and redirect to the list."""
    mailbox = team_object_or_404(Mailbox, request, pk)
    form = MailboxForm(request.POST or None, mailbox=mailbox)
    if request.method == "POST" and form.is_valid():
        try:
            mailbox_update(mailbox=mailbox, data=form.cleaned_data)
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            messages.success(request, f"Mailbox {mailbox.sender_email} saved.")
            return redirect("mailbox_list")
    return render(request, "mailboxes/form.html", {"form": form, "mailbox": mailbox, "title": f"Edit {mailbox}",
                                                   "sync_state": sync_state(mailbox=mailbox)})


@team_admin_required  # owners/admins only (views.common)
@sensitive_post_parameters(*SECRET_FIELD_NAMES)  # error reports show them as ********
@require_POST
def mailbox_test(request: HttpRequest) -> HttpResponse:
    """htmx POST from the connect/edit form: validate it and really log in to SMTP (and IMAP).

    Renders ``mailboxes/_test_result.html`` (the ``#connection-result`` box): a ✓ list or the
    problem. A ``mailbox_id`` field (edit form) lets blank passwords fall back to the stored ones;
    it must be one of the team's mailboxes (404 otherwise).
    """
    existing = None
    if request.POST.get("mailbox_id"):
        existing = team_object_or_404(Mailbox, request, request.POST["mailbox_id"])
    else:
        get_team(request)
    form = MailboxForm(request.POST, mailbox=existing)
    if not form.is_valid():
        return render(request, "mailboxes/_test_result.html", {"form_errors": form.errors, "form": form})
    if not form.can_test:
        return render(request, "mailboxes/_test_result.html", {"ok": False, "lines": ["This mailbox sends through a provider account; there is no SMTP login to test."]})
    problems = mailbox_config_clean(provider=form.provider, data=form.cleaned_data, existing=existing).problems
    if problems:  # the same checks as saving, shown on their fields
        add_service_errors(form, ValidationError(problems))
        return render(request, "mailboxes/_test_result.html", {"form_errors": form.errors, "form": form})
    ok, lines = mailbox_test_connection(data=form.cleaned_data, existing=existing)
    return render(request, "mailboxes/_test_result.html", {"ok": ok, "lines": lines})


@team_admin_required  # owners/admins only (views.common)
@require_http_methods(["GET", "POST"])
def mailbox_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation page (``mailboxes/delete.html``), or a refusal offering deactivation
    when the mailbox has sent messages. POST: delete (refused with a message if it has messages)."""
    team = get_team(request)
    mailbox = team_object_or_404(Mailbox, request, pk)
    message_count = mailbox.sent_messages.count()
    if request.method == "POST":
        if request.POST.get("deactivate"):
            mailboxes_set_active(team=team, ids=[mailbox.pk], active=False)
            messages.success(request, f"Mailbox {mailbox.sender_email} deactivated.")
            return redirect("mailbox_list")
        if mailbox_delete_unused(mailbox=mailbox):
            messages.success(request, f"Mailbox {mailbox.sender_email} deleted.")
            return redirect("mailbox_list")
        messages.error(request, f"Mailbox {mailbox.sender_email} has sent messages, so it cannot be deleted "
                                "(their history would go with it). Deactivate it instead.")
        return redirect("mailbox_delete", pk=mailbox.pk)
    return render(request, "mailboxes/delete.html", {"mailbox": mailbox, "message_count": message_count})
