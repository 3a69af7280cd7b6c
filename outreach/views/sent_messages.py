"""Sent messages: list, detail (sanitised HTML body), and the polling status partial."""
from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe

from .. import selectors
from ..html_text import sanitize_html, sanitize_html_blocking_remote_images
from ..models import SentMessage
from ..services.sending import sent_messages_cancel, sent_messages_mark_sent, sent_messages_send_again
from .common import method_not_allowed, team_object_or_404
from .listing import AdminListView, BulkAction, Column, ListFilter


class MessageListView(AdminListView):
    """The team's sent messages (``messages/list.html``), newest first."""

    template_name = "sent_messages/list.html"
    title = "Messages"
    noun = "message"
    noun_plural = "messages"
    search_placeholder = "Search subject, recipient"
    columns = (
        Column("Subject"), Column("To"), Column("Mailbox"), Column("Status", "status"),
        Column("Attempts", "attempts", css="num"), Column("Created", "created", css="nowrap"),
        Column("Sent", "sent", css="nowrap"),
    )
    filters = (
        ListFilter("status", "Status", lambda team: SentMessage.Status.choices, all_label="Any status"),
        ListFilter("mailbox", "Mailbox", lambda team: selectors.mailbox_choices(team=team), all_label="Any mailbox"),
    )

    actions = (
        BulkAction("cancel", "Cancel queued or scheduled", "bulk_cancel", confirm=True, confirm_verb="Cancel",
                   warning="Messages already being sent are not affected."),
        BulkAction("send_again", "Send failed / unknown again", "bulk_send_again", confirm=True, confirm_verb="Send again",
                   warning="A message marked “may have been delivered” could reach the recipient twice."),
        BulkAction("mark_sent", "Mark “may have been delivered” as sent", "bulk_mark_sent"),
    )

    def select(self, team, query):
        return selectors.sent_message_list(team=team, query=query)

    def selected(self, team, ids):
        return SentMessage.objects.for_team(team).filter(pk__in=ids).select_related("contact")

    def _summary(self, done: int, asked: int, verb: str, allowed: str) -> str:
        noun = "message" if done == 1 else "messages"
        skipped = asked - done
        return f"{verb} {done:,} {noun}." + (f" {skipped:,} skipped (only {allowed} ones)." if skipped else "")

    def _ids(self, selection) -> list[int]:
        return list(self.rows(selection).order_by().values_list("pk", flat=True))

    def bulk_cancel(self, selection, value) -> str:
        ids = self._ids(selection)
        done = sent_messages_cancel(team=self.team, ids=ids, actor=self.request.user)
        return self._summary(done, len(ids), "Cancelled", "queued or scheduled")

    def bulk_send_again(self, selection, value) -> str:
        ids = self._ids(selection)
        done = sent_messages_send_again(team=self.team, ids=ids, actor=self.request.user)
        return self._summary(done, len(ids), "Queued again", "failed, unknown or cancelled")

    def bulk_mark_sent(self, selection, value) -> str:
        ids = self._ids(selection)
        done = sent_messages_mark_sent(team=self.team, ids=ids, actor=self.request.user)
        return self._summary(done, len(ids), "Marked as sent", "“may have been delivered”")


message_list = MessageListView.as_view()


def _message(request: HttpRequest, pk: int) -> SentMessage:
    return team_object_or_404(SentMessage, request, pk, queryset=SentMessage.objects.select_related("mailbox", "contact"))


def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The message page (``messages/detail.html``): headers, ids, status panel, sanitised HTML body,
    text body, attachments (name/size) and its timeline events. Remote images in the body are
    blocked (no tracking pixel is fetched) until the user asks with ``?images=1``."""
    message = _message(request, pk)
    if refused := method_not_allowed(request):
        return refused
    show_images = request.GET.get("images") == "1"
    if show_images:
        safe_html, blocked = sanitize_html(message.html_body), 0
    else:
        safe_html, blocked = sanitize_html_blocking_remote_images(message.html_body)
    response = render(request, "sent_messages/detail.html", {
        "message": message,
        "safe_html": mark_safe(safe_html),  # nh3 allow-list output
        "blocked_images": blocked,
        "showing_images": show_images,
        "attachments": message.attachments.only("id", "filename", "content_type", "size"),
        "events": selectors.sent_message_events(sent_message=message),
    })
    if show_images:  # the user asked: this one response may load the body's remote images
        response._csp_update = {"img-src": ["https:", "http:"]}
    return response


def message_timeline_card(request: HttpRequest, pk: int) -> HttpResponse:
    """The message's card on its contact's timeline (``contacts/_timeline_message.html``); while
    the message is queued or sending the card polls itself every 2 s, and stops once it settles."""
    message = _message(request, pk)
    if refused := method_not_allowed(request):
        return refused
    return render(request, "contacts/_timeline_message.html", {
        "m": message, "events": selectors.sent_message_events(sent_message=message),
    })


_ACTIONS = {"cancel": sent_messages_cancel, "send_again": sent_messages_send_again, "mark_sent": sent_messages_mark_sent}


def message_action(request: HttpRequest, pk: int) -> HttpResponse:
    """POST ``action`` (cancel | send_again | mark_sent) for one message, from its page; redirects back
    (a GET just goes to the message page). Another team's message is a 404."""
    message = _message(request, pk)
    if request.method != "POST":
        return redirect("message_detail", pk=message.pk)
    if request.POST.get("action") not in _ACTIONS:
        return HttpResponseBadRequest("Unknown action.")
    done = _ACTIONS[request.POST["action"]](team=message.team, ids=[message.pk], actor=request.user)
    if done:
        flash.success(request, {"cancel": "Cancelled.", "send_again": "Queued again as a new send.",
                                "mark_sent": "Marked as sent."}[request.POST["action"]])
    else:
        flash.error(request, "Nothing changed: the message is no longer in a state that allows this.")
    return redirect("message_detail", pk=message.pk)


def message_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status panel partial (``messages/_status.html``): badge, attempts, error, times, events;
    polls every 2 s (``hx-trigger``) only while the message is queued or sending."""
    message = _message(request, pk)
    if refused := method_not_allowed(request):
        return refused
    return render(request, "sent_messages/_status.html", {
        "message": message, "events": selectors.sent_message_events(sent_message=message),
    })
