"""Inbound views: the inbound message page, replying from the timeline, one-click unsubscribe
(public, no login) and the suppression list."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..models import SentMessage, Suppression
from ..views.common import add_service_errors, get_team, method_not_allowed, team_object_or_404
from ..views.listing import AdminListView, BulkAction, Column, ListFilter
from . import selectors
from .display import sanitize_inbound_html
from .forms import ReplyForm, SuppressionAddForm
from .models import InboundMessage
from .services import reply_draft, reply_send, suppression_add, suppressions_remove, unsubscribe_by_token
from .unsubscribe import unsubscribe_key_for_token


def inbound_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An inbound mail (``inbound/detail.html``): headers, classification, the trimmed reply, the full
    text, and the HTML sanitised with no remote content."""
    team = get_team(request)
    row = team_object_or_404(InboundMessage, request, pk, queryset=selectors.inbound_message_for_team(team=team))
    if refused := method_not_allowed(request):
        return refused
    return render(request, "inbound/detail.html", {
        "row": row, "safe_html": mark_safe(sanitize_inbound_html(row.html_body)),  # nh3 allow-list output
    })


def _reply(request: HttpRequest, draft, back_url: str) -> HttpResponse:
    team = get_team(request)
    initial = {"subject": draft.subject}
    if draft.root is not None:
        initial["mailbox"] = draft.root.mailbox_id
    elif draft.inbound is not None:
        initial["mailbox"] = draft.inbound.mailbox_id
    form = ReplyForm(request.POST or None, team=team, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            message = reply_send(team=team, actor=request.user, draft=draft, mailbox=data["mailbox"], subject=data["subject"],
                                 body=data["body"], include_quote=data["include_quote"], idempotency_key=data["submission_key"])
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            messages.success(request, f"Queued your reply “{message.subject}” to {draft.to}.")
            return redirect(reverse("contact_detail", args=[draft.contact.pk]) + "#timeline")
    return render(request, "inbound/reply.html", {"form": form, "draft": draft, "back_url": back_url})


@require_http_methods(["GET", "POST"])
def inbound_reply(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the reply form for an inbound mail (``inbound/reply.html``). POST: queue the threaded reply."""
    row = team_object_or_404(InboundMessage, request, pk, queryset=InboundMessage.objects.select_related("contact", "sent_message__mailbox"))
    try:
        draft = reply_draft(team=get_team(request), inbound=row)
    except ValidationError as err:
        messages.error(request, " ".join(err.messages))
        return redirect("inbound_detail", pk=row.pk)
    return _reply(request, draft, reverse("inbound_detail", args=[row.pk]))


@require_http_methods(["GET", "POST"])
def message_reply(request: HttpRequest, pk: int) -> HttpResponse:
    """GET/POST: a follow-up in the thread of one of our sent messages (``inbound/reply.html``)."""
    message = team_object_or_404(SentMessage, request, pk, queryset=SentMessage.objects.select_related("contact", "mailbox"))
    draft = reply_draft(team=get_team(request), sent_message=message)
    return _reply(request, draft, reverse("message_detail", args=[message.pk]))


# --- one-click unsubscribe (RFC 8058) -------------------------------------------------------------

@login_not_required
@csrf_exempt  # mail clients POST "List-Unsubscribe=One-Click" without cookies or a CSRF token (RFC 8058 §3.1)
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a confirmation page with one button (scanners prefetch GETs: GET never unsubscribes).
    POST: suppress the address within the request; 200, no redirect, idempotent. A forged or
    altered token answers 400 and changes nothing. No login, cookie or CSRF token needed."""
    if request.method == "POST":
        row = unsubscribe_by_token(token=token)
        if row is None:
            return render(request, "inbound/unsubscribe_invalid.html", status=400)
        return render(request, "inbound/unsubscribe_done.html", {"email": row.email})
    key = unsubscribe_key_for_token(token)
    if key is None:
        return render(request, "inbound/unsubscribe_invalid.html", status=400)
    return render(request, "inbound/unsubscribe_confirm.html", {"email": key.email, "team": key.team, "token": token})


# --- suppression list ---------------------------------------------------------------------------

class SuppressionListView(AdminListView):
    """The team's suppression list (``suppressions/list.html``): search, filter by reason, sort,
    remove selected (confirmed); each row links to the message that caused it."""

    template_name = "suppressions/list.html"
    title = "Suppression list"
    noun = "suppressed address"
    noun_plural = "suppressed addresses"
    search_placeholder = "Search address or note"
    columns = (Column("Email", "email"), Column("Reason", "reason"), Column("Cause"), Column("Note"),
               Column("Added", "created", css="nowrap"))
    filters = (ListFilter("reason", "Reason", lambda team: Suppression.Reason.choices, all_label="Any reason"),)
    actions = (BulkAction("remove", "Remove from the suppression list", "bulk_remove", confirm=True, confirm_verb="Remove",
                          warning="Outreach will write to these addresses again."),)

    def select(self, team, query):
        return selectors.suppression_list(team=team, query=query)

    def selected(self, team, ids):
        return selectors.suppressions_by_ids(team=team, ids=ids)

    def bulk_remove(self, selection, value) -> str:
        count = suppressions_remove(team=self.team, ids=list(self.rows(selection).values_list("pk", flat=True)))
        return f"Removed {count} address{'es' if count != 1 else ''} from the suppression list."


suppression_list = SuppressionListView.as_view()


@require_http_methods(["GET", "POST"])
def suppression_create(request: HttpRequest) -> HttpResponse:
    """GET: the add form (``suppressions/form.html``). POST: add (lower-cased; an address already
    listed is reported, not duplicated)."""
    team = get_team(request)
    form = SuppressionAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            row, created = suppression_add(team=team, actor=request.user, **form.cleaned_data)
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            if created:
                messages.success(request, f"{row.email} is on the suppression list.")
            else:
                messages.info(request, f"{row.email} was already on the suppression list ({row.get_reason_display().lower()}).")
            return redirect("suppression_list")
    return render(request, "suppressions/form.html", {"form": form})


@require_http_methods(["GET", "POST"])
def suppression_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: confirm removing one address (``suppressions/delete.html``). POST: remove it."""
    row = team_object_or_404(Suppression, request, pk)
    if request.method == "POST":
        suppressions_remove(team=get_team(request), ids=[row.pk])
        messages.success(request, f"{row.email} removed from the suppression list.")
        return redirect("suppression_list")
    return render(request, "suppressions/delete.html", {"row": row})
