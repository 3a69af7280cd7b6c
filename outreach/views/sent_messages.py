"""Sent messages: list, detail (sanitised HTML body), and the polling status partial."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from .. import selectors
from ..html_text import sanitize_html, sanitize_html_blocking_remote_images
from ..models import SentMessage
from .common import method_not_allowed, team_object_or_404
from .listing import AdminListView, Column, ListFilter


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

    def select(self, team, query):
        return selectors.sent_message_list(team=team, query=query)


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


def message_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status panel partial (``messages/_status.html``): badge, attempts, error, times, events;
    polls every 2 s (``hx-trigger``) only while the message is queued or sending."""
    message = _message(request, pk)
    if refused := method_not_allowed(request):
        return refused
    return render(request, "sent_messages/_status.html", {
        "message": message, "events": selectors.sent_message_events(sent_message=message),
    })
