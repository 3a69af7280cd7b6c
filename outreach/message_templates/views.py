"""Template pages: list (search, sort, bulk delete), add/edit with live preview for a chosen contact
and a test send to yourself, delete with confirmation. Thin: every rule is in ``services``."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from ..html_text import sanitize_html
from ..models import Contact, MessageTemplate
from ..views.common import add_service_errors, get_team, team_object_or_404
from ..views.listing import AdminListView, BulkAction, Column
from . import selectors, services
from .engine import MERGE_FIELDS
from .forms import MessageTemplateForm


class MessageTemplateListView(AdminListView):
    """The team's templates (``message_templates/list.html``); bulk delete after confirmation."""

    template_name = "message_templates/list.html"
    title = "Templates"
    noun = "template"
    noun_plural = "templates"
    search_placeholder = "Search name, subject"
    columns = (Column("Name", "name"), Column("Subject", "subject"), Column("Updated", "updated", css="nowrap"))
    actions = (BulkAction("delete", "Delete selected templates", "bulk_delete", confirm=True, confirm_verb="Delete",
                          warning="Messages already sent from them keep their text."),)

    def select(self, team, query):
        return selectors.message_template_list(team=team, query=query)

    def selected(self, team, ids):
        return selectors.message_templates(team=team).filter(pk__in=ids)

    def bulk_delete(self, selection, value) -> str:
        count = 0
        for template in self.rows(selection):
            services.message_template_delete(template=template)
            count += 1
        return f"Deleted {count} template{'s' if count != 1 else ''}."


message_template_list = MessageTemplateListView.as_view()


def _preview_contact(team, email: str) -> Contact | None:
    qs = Contact.objects.for_team(team).select_related("lead__owner")
    if email:
        return qs.filter(email=email.strip().lower()).first()
    return qs.order_by("-created_at", "-pk").first()


def _editor(request: HttpRequest, template: MessageTemplate | None) -> HttpResponse:
    """GET: the editor. POST ``action``: ``save``, ``preview`` (render for a contact, nothing saved)
    or ``test`` (queue the rendered message to the signed-in user's own address)."""
    team = get_team(request)
    initial = {"name": template.name, "subject": template.subject, "html_body": template.html_body} if template else {}
    form = MessageTemplateForm(request.POST or None, initial=initial, team=team)
    preview = None
    if request.method == "POST" and form.is_valid():
        data, action = form.cleaned_data, request.POST.get("action", "save")
        try:
            if action == "save":
                if template is None:
                    template = services.message_template_create(team=team, actor=request.user, data=data)
                    messages.success(request, f"Template “{template.name}” created.")
                else:
                    services.message_template_update(template=template, data=data)
                    messages.success(request, f"Template “{template.name}” saved.")
                return redirect("message_template_edit", pk=template.pk)
            contact = _preview_contact(team, data["preview_contact"])
            if contact is None:
                raise ValidationError({"preview_contact": "No contact of your team has this address."
                                       if data["preview_contact"] else "Add a contact first to preview."})
            mailbox = data["test_mailbox"]
            seed = f"template:{template.pk if template else 'new'}:{contact.pk}"
            rendered = services.message_template_render(subject=data["subject"], html_body=data["html_body"],
                                                        contact=contact, mailbox=mailbox, seed=seed)
            preview = {"contact": contact, "subject": rendered.subject, "html": sanitize_html(rendered.html),
                       "text": rendered.text, "missing": rendered.missing}
            if action == "test":
                if mailbox is None:
                    raise ValidationError({"test_mailbox": "Connect a mailbox to send a test."})
                message = services.message_template_test_send(
                    subject=data["subject"], html_body=data["html_body"], contact=contact, mailbox=mailbox,
                    actor=request.user, seed=seed)
                messages.success(request, f"Test queued to {request.user.email} (rendered for {contact.email}).")
                return redirect(reverse("message_detail", args=[message.pk]))
        except ValidationError as err:
            add_service_errors(form, err)
    return render(request, "message_templates/form.html", {
        "form": form, "template": template, "preview": preview, "merge_fields": MERGE_FIELDS.items(),
        "title": f"Edit template “{template.name}”" if template else "New template",
    })


@require_http_methods(["GET", "POST"])
def message_template_create(request: HttpRequest) -> HttpResponse:
    """The empty template editor (``message_templates/form.html``)."""
    return _editor(request, None)


@require_http_methods(["GET", "POST"])
def message_template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor for the team's template ``pk`` (404 for another team's)."""
    return _editor(request, team_object_or_404(MessageTemplate, request, pk))


@require_http_methods(["GET", "POST"])
def message_template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: confirmation page. POST: delete and go back to the list."""
    template = team_object_or_404(MessageTemplate, request, pk)
    if request.method == "POST":
        services.message_template_delete(template=template)
        messages.success(request, f"Template “{template.name}” deleted.")
        return redirect("message_template_list")
    return render(request, "message_templates/delete.html", {"template": template})
