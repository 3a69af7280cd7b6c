"""Template services (checks at save, rendering per contact, test send) and pages (list, editor,
preview, delete, compose from a template), team-scoped."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from outreach.message_templates.services import (
    merge_context,
    message_template_create,
    message_template_render_for,
    message_template_update,
)
from outreach.models import MessageTemplate, SentMessage
from tests.factories import make_contact, make_lead, make_mailbox, make_team_user

pytestmark = pytest.mark.django_db

BODY = '<table style="width:600px;border-collapse:collapse"><tr><td style="color:#333">{Hi|Hello} {{ first_name|default:"there" }},</td></tr></table><p>{{ company }} x {{ sender.first_name }}</p>'


def test_create_refuses_unknown_fields_and_duplicates_with_inline_errors(team_user):
    team, user = team_user
    with pytest.raises(ValidationError) as info:
        message_template_create(team=team, actor=user, data={"name": "A", "subject": "Hi {{ frist_name }}",
                                                             "html_body": "<p>{{ settings.SECRET_KEY }}</p>"})
    assert set(info.value.message_dict) == {"subject", "html_body"}
    assert MessageTemplate.objects.count() == 0
    message_template_create(team=team, actor=user, data={"name": "A", "subject": "Hi", "html_body": "<p>x</p>"})
    with pytest.raises(ValidationError) as info:
        message_template_create(team=team, actor=user, data={"name": "A", "subject": "Hi", "html_body": "<p>y</p>"})
    assert "already has a template named" in info.value.message_dict["name"][0]
    other_team, other = make_team_user()
    message_template_create(team=other_team, actor=other, data={"name": "A", "subject": "Hi", "html_body": "<p>z</p>"})


def test_update_saves_only_valid_changes(team_user):
    team, user = team_user
    template = message_template_create(team=team, actor=user, data={"name": "A", "subject": "Hi", "html_body": "<p>x</p>"})
    with pytest.raises(ValidationError):
        message_template_update(template=template, data={"name": "A", "subject": "Hi {{ x }}", "html_body": "<p>x</p>"})
    template.refresh_from_db()
    assert template.subject == "Hi"
    message_template_update(template=template, data={"name": "B", "subject": "Hi {{ first_name }}", "html_body": "<p>x</p>"})
    template.refresh_from_db()
    assert (template.name, template.subject) == ("B", "Hi {{ first_name }}")


def test_render_for_contact_uses_lead_custom_fields_and_sender(team_user):
    team, user = team_user
    mailbox = make_mailbox(team, sender_name="Ann Lee", sender_email="ann@acme.com")
    contact = make_contact(team, "bob@example.com", first_name="Bob", company="Acme", custom_fields={"plan": "Pro"})
    make_lead(contact, owner=user)
    template = message_template_create(team=team, actor=user, data={
        "name": "Intro", "subject": "{{ first_name }}, {{ custom.plan }} for {{ company }}?\n",
        "html_body": BODY + "<p>{{ lead.status }} {{ sender.email }}</p>"})
    rendered = message_template_render_for(template=template, contact=contact, mailbox=mailbox)
    assert rendered.subject == "Bob, Pro for Acme?"
    assert "Bob," in rendered.html and "Acme x Ann" in rendered.html and "New ann@acme.com" in rendered.html
    assert rendered.missing == ()
    again = message_template_render_for(template=template, contact=contact, mailbox=mailbox)
    assert again == rendered  # spintax choice is stable per (template, contact)
    context = merge_context(contact=contact, mailbox=mailbox)
    assert all(isinstance(v, (str, dict)) for v in context.values())  # no model instance reaches a template


def test_missing_required_field_is_reported(team_user):
    team, user = team_user
    contact = make_contact(team, "noname@example.com")
    template = message_template_create(team=team, actor=user, data={"name": "A", "subject": "Hi {{ first_name }}",
                                                                    "html_body": "<p>{{ company|default:'your team' }}</p>"})
    rendered = message_template_render_for(template=template, contact=contact, mailbox=None)
    assert rendered.missing == ("first_name",)
    assert rendered.html == "<p>your team</p>"


def test_outgoing_html_keeps_inline_styles_and_tables_and_text_keeps_words_and_links(team_user):
    from outreach.services.sending import sent_message_create

    team, user = team_user
    mailbox = make_mailbox(team)
    contact = make_contact(team, first_name="Bob")
    html = ('<table style="border-collapse:collapse;position:fixed" bgcolor="#eee"><tr><td style="color:red">Hello</td>'
            '<td>World</td></tr></table><p onclick="x()">See <a href="https://example.com/deck">our deck</a></p><script>x</script>')
    message = sent_message_create(team=team, actor=user, mailbox=mailbox, contact=contact, subject="S", html=html)
    assert 'style="border-collapse:collapse"' in message.html_body and 'bgcolor="#eee"' in message.html_body
    assert 'style="color:red"' in message.html_body
    assert "position" not in message.html_body and "onclick" not in message.html_body and "<script" not in message.html_body
    assert "Hello  World" in message.text_body
    assert "[our deck](https://example.com/deck)" in message.text_body


# --- pages ----------------------------------------------------------------------------------------


def test_template_pages_list_create_preview_edit_delete(user_client, team_user):
    team, user = team_user
    make_contact(team, "bob@example.com", first_name="Bob", company="Acme")
    assert "No templates yet" in user_client.get(reverse("message_template_list")).content.decode()
    response = user_client.post(reverse("message_template_create"), {
        "name": "Intro", "subject": "Hi {{ frist_name }}", "html_body": BODY, "action": "save"})
    assert response.status_code == 200 and "Line 1: unknown merge field “frist_name”" in response.content.decode()
    response = user_client.post(reverse("message_template_create"), {
        "name": "Intro", "subject": "Hi {{ first_name }}", "html_body": BODY, "action": "preview",
        "preview_contact": "BOB@example.com"})
    page = response.content.decode()
    assert MessageTemplate.objects.count() == 0  # preview saves nothing
    assert "Preview for" in page and "Hi Bob" in page and "Acme x" in page
    response = user_client.post(reverse("message_template_create"), {
        "name": "Intro", "subject": "Hi {{ first_name }}", "html_body": BODY, "action": "save"})
    template = MessageTemplate.objects.get()
    assert response.status_code == 302 and response.url == reverse("message_template_edit", args=[template.pk])
    assert template.team == team and template.created_by == user
    page = user_client.get(reverse("message_template_list") + "?q=intro").content.decode()
    assert "Intro" in page
    assert user_client.get(reverse("message_template_delete", args=[template.pk])).status_code == 200
    assert MessageTemplate.objects.count() == 1  # GET only confirms
    user_client.post(reverse("message_template_delete", args=[template.pk]))
    assert MessageTemplate.objects.count() == 0


def test_preview_of_unknown_contact_is_an_inline_error(user_client):
    response = user_client.post(reverse("message_template_create"), {
        "name": "Intro", "subject": "Hi", "html_body": "<p>x</p>", "action": "preview", "preview_contact": "nobody@example.com"})
    assert "No contact of your team has this address." in response.content.decode()


def test_test_send_goes_to_the_signed_in_user(user_client, team_user):
    team, user = team_user
    user.email = "me@acme.com"
    user.save()
    mailbox = make_mailbox(team)
    contact = make_contact(team, "bob@example.com", first_name="Bob")
    response = user_client.post(reverse("message_template_create"), {
        "name": "Intro", "subject": "Hi {{ first_name }}", "html_body": "<p>Hello {{ first_name }}</p>", "action": "test",
        "preview_contact": "bob@example.com", "test_mailbox": mailbox.pk})
    message = SentMessage.objects.get()
    assert response.status_code == 302 and response.url == reverse("message_detail", args=[message.pk])
    assert message.to == ["me@acme.com"] and message.subject == "[Test] Hi Bob" and message.contact == contact
    assert "Hello Bob" in message.html_body


def test_other_teams_templates_are_404(client):
    team, me = make_team_user()
    other_team, other = make_team_user()
    theirs = message_template_create(team=other_team, actor=other, data={"name": "Their pricing", "subject": "S", "html_body": "<p>x</p>"})
    client.force_login(me)
    for name in ("message_template_edit", "message_template_delete"):
        url = reverse(name, args=[theirs.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"name": "Mine", "subject": "S", "html_body": "<p>y</p>", "action": "save"}).status_code == 404
    contact = make_contact(team)
    assert client.get(reverse("contact_compose", args=[contact.pk]) + f"?template={theirs.pk}").status_code == 404
    assert "Their pricing" not in client.get(reverse("message_template_list")).content.decode()
    theirs.refresh_from_db()
    assert theirs.name == "Their pricing"


def test_compose_starts_from_a_template(user_client, team_user):
    team, user = team_user
    first = make_mailbox(team, sender_name="Ann Lee")
    second = make_mailbox(team, sender_name="Carl Diaz")
    contact = make_contact(team, "bob@example.com", first_name="Bob")
    template = message_template_create(team=team, actor=user, data={
        "name": "Intro", "subject": "Hi {{ first_name }}", "html_body": "<p>From {{ sender.first_name }} to {{ first_name }}</p>"})
    page = user_client.get(reverse("contact_compose", args=[contact.pk])).content.decode()
    assert "Start from template" in page and "Intro" in page
    url = reverse("contact_compose", args=[contact.pk]) + f"?template={template.pk}&mailbox={second.pk}"
    page = user_client.get(url).content.decode()
    assert 'value="Hi Bob"' in page and "From Carl to Bob" in page
    assert f'<option value="{second.pk}" selected>' in page and first.pk != second.pk


def test_admin_checks_templates_like_the_ui(client, team_user):
    from django.contrib.auth import get_user_model

    team, _ = team_user
    admin = get_user_model().objects.create_superuser("root", "root@acme.com", "pw-for-tests-123")
    client.force_login(admin)
    url = reverse("admin:outreach_messagetemplate_add")
    response = client.post(url, {"team": team.pk, "name": "A", "subject": "Hi {{ frist_name }}", "html_body": "<p>x</p>"})
    assert response.status_code == 200 and "Line 1: unknown merge field “frist_name”" in response.content.decode()
    assert MessageTemplate.objects.count() == 0
    response = client.post(url, {"team": team.pk, "name": "A", "subject": "Hi {{ first_name }}", "html_body": "<p>x</p>"})
    assert response.status_code == 302
    assert MessageTemplate.objects.get().created_by == admin
