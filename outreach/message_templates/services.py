"""Writes and rendering of message templates. Every rule lives here, so the UI, the admin and
campaigns get the same checks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..html_text import html_to_text
from ..models import Contact, Mailbox, MessageTemplate, SentMessage, Team
from ..services.common import is_unique_violation, model_create, model_update
from ..validation import validate_header_value
from .engine import TemplateInfo, check_template, missing_fields, render_template

TEMPLATE_FIELDS = ("name", "subject", "html_body")


@dataclass(frozen=True)
class RenderedMessage:
    """A template rendered for one contact: ``subject`` (one line), ``html`` and its plain-text ``text``;
    ``missing`` lists required merge fields that were empty for the contact."""

    subject: str
    html: str
    text: str
    missing: tuple[str, ...] = ()


def _sender_context(mailbox: Mailbox | None) -> dict[str, str]:
    name = (mailbox.sender_name if mailbox else "") or ""
    first, _, last = name.strip().partition(" ")
    return {"name": name, "first_name": first, "last_name": last.strip(), "email": mailbox.sender_email if mailbox else ""}


def merge_context(*, contact: Contact, mailbox: Mailbox | None) -> dict[str, Any]:
    """The merge fields of ``contact`` (with its lead and custom fields) and the sender of ``mailbox``,
    as plain str/dict values (no model instances reach a template)."""
    lead = getattr(contact, "lead", None)
    custom = {str(k): "" if v is None else str(v) for k, v in (contact.custom_fields or {}).items()}
    return {
        "first_name": contact.first_name, "last_name": contact.last_name, "full_name": contact.full_name,
        "email": contact.email, "company": contact.company, "title": contact.title, "phone": contact.phone,
        "linkedin_url": contact.linkedin_url, "custom": custom,
        "lead": {"status": lead.get_status_display() if lead else "", "source": lead.source if lead else "",
                 "owner_name": (lead.owner.get_full_name() or lead.owner.get_username()) if lead and lead.owner else ""},
        "sender": _sender_context(mailbox),
    }


def template_check(*, subject: str, html_body: str) -> tuple[TemplateInfo, TemplateInfo]:
    """Check a subject and a body. Returns their TemplateInfos; raises ValidationError naming
    ``subject`` and/or ``html_body`` with the line of each problem."""
    errors: dict[str, list[str]] = {}
    infos = []
    for field, source in (("subject", subject), ("html_body", html_body)):
        try:
            infos.append(check_template(source, field=field))
        except ValidationError as err:
            errors.update(err.message_dict)
    try:
        validate_header_value(subject)
    except ValidationError as err:
        errors.setdefault("subject", []).extend(err.messages)
    if errors:
        raise ValidationError(errors)
    return infos[0], infos[1]


def _clean(data: dict[str, Any]) -> dict[str, str]:
    values = {k: (data.get(k) or "") for k in TEMPLATE_FIELDS}
    values["name"] = values["name"].strip()
    values["subject"] = values["subject"].strip()
    errors = {}
    if not values["name"]:
        errors["name"] = "Give the template a name."
    if not values["subject"]:
        errors["subject"] = "Enter a subject."
    if not values["html_body"].strip():
        errors["html_body"] = "Write a message body."
    if errors:
        raise ValidationError(errors)
    template_check(subject=values["subject"], html_body=values["html_body"])
    return values


def _duplicate(name: str) -> ValidationError:
    return ValidationError({"name": f"Your team already has a template named “{name}”."})


def message_template_create(*, team: Team, actor=None, data: dict[str, Any]) -> MessageTemplate:
    """Create a template from ``data`` (name, subject, html_body). Returns it.

    Raises ValidationError for a blank field, a duplicate name in the team, or a subject/body
    that does not check (see :func:`template_check`).
    """
    values = _clean(data)
    try:
        with transaction.atomic():
            return model_create(MessageTemplate, team=team, created_by=actor, **values)
    except IntegrityError as err:
        raise _duplicate(values["name"]) from err


def message_template_update(*, template: MessageTemplate, data: dict[str, Any]) -> MessageTemplate:
    """Save ``data`` onto ``template`` through :func:`model_update` (only the changed fields). Same errors as create."""
    values = _clean(data)
    try:
        with transaction.atomic():
            model_update(template, fields=TEMPLATE_FIELDS, data=values)
    except IntegrityError as err:  # a concurrent save of the same name
        raise _duplicate(values["name"]) from err
    except ValidationError as err:
        if is_unique_violation(err):
            raise _duplicate(values["name"]) from err
        raise
    return template


def message_template_delete(*, template: MessageTemplate) -> None:
    """Delete ``template``; messages already sent from it keep their text."""
    template.delete()


def message_template_render(*, subject: str, html_body: str, contact: Contact, mailbox: Mailbox | None,
                            seed: str) -> RenderedMessage:
    """Render a subject and body for ``contact`` sent from ``mailbox``. Returns a RenderedMessage.

    ``seed`` (str) fixes the spintax choices, e.g. ``f"template:{id}:{contact.pk}"``. The subject is
    one line (line breaks from merge values become spaces); the text part is derived from the HTML.
    Raises ValidationError when the subject or body does not check.
    """
    subject_info, body_info = template_check(subject=subject, html_body=html_body)
    context = merge_context(contact=contact, mailbox=mailbox)
    rendered_subject = " ".join(render_template(subject, context, html=False, seed=f"{seed}:subject").split())
    html = render_template(html_body, context, html=True, seed=f"{seed}:body")
    missing = sorted(set(missing_fields(subject_info, context)) | set(missing_fields(body_info, context)))
    return RenderedMessage(subject=rendered_subject, html=html, text=html_to_text(html), missing=tuple(missing))


def message_template_render_for(*, template: MessageTemplate, contact: Contact, mailbox: Mailbox | None) -> RenderedMessage:
    """Render saved ``template`` for ``contact`` (seeded by template and contact: stable across renders)."""
    if template.team_id != contact.team_id:
        raise ValidationError("The template and the contact must belong to the same team.")
    return message_template_render(subject=template.subject, html_body=template.html_body, contact=contact,
                                   mailbox=mailbox, seed=f"template:{template.pk}:{contact.pk}")


def message_template_test_send(*, subject: str, html_body: str, contact: Contact, mailbox: Mailbox, actor,
                               seed: str) -> SentMessage:
    """Queue ``subject``/``html_body`` rendered for ``contact`` to the signed-in user's own address
    (``actor.email``), subject prefixed "[Test]". Returns the SentMessage (on the contact's timeline).

    Raises ValidationError when the user has no email address, the template does not check, or the
    message cannot be queued (the same rules as any message).
    """
    from ..services.sending import sent_message_create

    if not getattr(actor, "email", ""):
        raise ValidationError("Your account has no email address to send the test to; add one first.")
    rendered = message_template_render(subject=subject, html_body=html_body, contact=contact, mailbox=mailbox, seed=seed)
    return sent_message_create(team=contact.team, actor=actor, mailbox=mailbox, contact=contact,
                               subject=f"[Test] {rendered.subject}", html=rendered.html, text=rendered.text,
                               to=[actor.email])
