"""Provider accounts (a team's API key and base URL at lemlist, leadlex, OpenMail, Unipile): list,
add, edit, delete; and "Add provider mailbox", a mailbox that sends through one of them.

The API key is write-only: no page, message or log line ever contains it (error reports mask it).
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from providers.registry import provider_choices

from .. import selectors
from ..forms import ProviderAccountForm, ProviderMailboxForm
from ..models import ProviderAccount
from ..services.mailboxes import mailbox_connect_provider as mailbox_connect_provider_service
from ..services.provider_accounts import provider_account_create as provider_account_create_service
from ..services.provider_accounts import provider_account_delete as provider_account_delete_service
from ..services.provider_accounts import provider_account_update
from .common import add_service_errors, get_team, require_team_admin, team_admin_required, team_object_or_404
from .listing import AdminListView, Column, ListFilter


class ProviderAccountListView(AdminListView):
    """The team's provider accounts (``provider_accounts/list.html``): name, provider, base URL,
    how many mailboxes use it, created; search by name or base URL; filter by provider."""

    template_name = "provider_accounts/list.html"
    title = "Provider accounts"
    noun = "provider account"
    noun_plural = "provider accounts"
    search_placeholder = "Search name, base URL"
    columns = (
        Column("Name", "name"), Column("Provider", "provider"), Column("Base URL", "base_url"),
        Column("Mailboxes", "mailboxes", css="num"), Column("Created", "created", css="nowrap"),
    )
    filters = (
        ListFilter("provider", "Provider", lambda team: provider_choices(include_smtp=False), all_label="Any provider"),
    )

    def select(self, team, query):
        return selectors.provider_account_list(team=team, query=query)

    def selected(self, team, ids):
        return selectors.provider_accounts(team=team).filter(pk__in=ids)

    def extra_context(self):
        return {"provider_labels": provider_choices(include_smtp=False)}


provider_account_list = ProviderAccountListView.as_view()


@team_admin_required  # owners/admins only (views.common)
@sensitive_post_parameters("api_key")  # error reports show it as ********
@require_http_methods(["GET", "POST"])
def provider_account_create(request: HttpRequest) -> HttpResponse:
    """GET: the form (``provider_accounts/form.html``). POST: save through ``provider_account_create``
    (the key is encrypted) and redirect to the list."""
    team = get_team(request)
    form = ProviderAccountForm(request.POST or None, initial={"provider": request.GET.get("provider", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = provider_account_create_service(team=team, provider=data["provider"], name=data["name"],
                                                      api_key=data["api_key"], base_url=data["base_url"])
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            messages.success(request, f"Provider account {account.name} added. Add a mailbox that sends through it.")
            return redirect("provider_account_list")
    return render(request, "provider_accounts/form.html", {"form": form, "title": "Add a provider account"})


@team_admin_required  # owners/admins only (views.common)
@sensitive_post_parameters("api_key")  # error reports show it as ********
@require_http_methods(["GET", "POST"])
def provider_account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the account's form, never with its key. POST: save through ``provider_account_update``
    (a blank key keeps the stored one) and redirect to the list."""
    account = team_object_or_404(ProviderAccount, request, pk)
    form = ProviderAccountForm(request.POST or None, account=account)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            provider_account_update(account=account, name=data["name"], api_key=data["api_key"], base_url=data["base_url"])
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            messages.success(request, f"Provider account {account.name} saved.")
            return redirect("provider_account_list")
    return render(request, "provider_accounts/form.html", {
        "form": form, "account": account, "title": f"Edit {account.name}",
        "mailbox_count": account.mailboxes.count(),
    })


@team_admin_required  # owners/admins only (views.common)
@require_http_methods(["GET", "POST"])
def provider_account_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation page (``provider_accounts/delete.html``), or the refusal listing the
    mailboxes that use it. POST: delete through ``provider_account_delete`` (refused with a
    message while mailboxes use it)."""
    account = team_object_or_404(ProviderAccount, request, pk)
    if request.method == "POST":
        try:
            provider_account_delete_service(account=account)
        except ValidationError as err:
            messages.error(request, " ".join(err.messages))
            return redirect("provider_account_delete", pk=account.pk)
        messages.success(request, f"Provider account {account.name} deleted.")
        return redirect("provider_account_list")
    mailboxes = account.mailboxes.order_by("sender_email")
    return render(request, "provider_accounts/delete.html", {"account": account, "mailboxes": mailboxes})


@team_admin_required  # owners/admins only (views.common)
@require_http_methods(["GET", "POST"])
def mailbox_connect_provider(request: HttpRequest) -> HttpResponse:
    """GET: "Add provider mailbox" (``mailboxes/provider_form.html``); ``?account=ID`` preselects
    one of the team's accounts. POST: save through ``mailbox_connect_provider`` and redirect to
    the mailbox list."""
    team = get_team(request)
    initial = {"provider_account": request.GET["account"]} if request.GET.get("account", "").isdigit() else {}
    form = ProviderMailboxForm(request.POST or None, team=team, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            mailbox = mailbox_connect_provider_service(team=team, account=data["provider_account"], data=data)
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            messages.success(request, f"Mailbox {mailbox.sender_email} added; it sends through {data['provider_account'].name}.")
            return redirect("mailbox_list")
    return render(request, "mailboxes/provider_form.html", {
        "form": form, "title": "Add a provider mailbox", "has_accounts": form.fields["provider_account"].queryset.exists(),
    })
