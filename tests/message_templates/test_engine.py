"""The merge-field engine: rendering, Django-style defaults, spintax, and the sandbox refusing
everything beyond the documented fields when a template is checked."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from outreach.message_templates.engine import check_template, expand_spintax, missing_fields, render_template

CONTEXT = {
    "first_name": "Bob", "last_name": "", "full_name": "Bob", "email": "bob@example.com", "company": "<Acme & Co>",
    "title": "", "phone": "", "linkedin_url": "", "custom": {"industry": "SaaS"},
    "lead": {"status": "New", "source": "", "owner_name": ""},
    "sender": {"name": "Ann Lee", "first_name": "Ann", "last_name": "Lee", "email": "ann@acme.com"},
}


def render(source, *, html=True, seed="s"):
    return render_template(source, CONTEXT, html=html, seed=seed)


def test_merge_fields_render_and_html_is_escaped():
    assert render("Hi {{ first_name }} at {{ company }} ({{ custom.industry }}) — {{ sender.first_name }}") == (
        "Hi Bob at &lt;Acme &amp; Co&gt; (SaaS) — Ann")
    assert render("{{ company }}", html=False) == "<Acme & Co>"


def test_django_style_default_applies_to_empty_values():
    assert render('Hi {{ last_name|default:"there" }}') == "Hi there"
    assert render("Hi {{ last_name|default('there') }}") == "Hi there"
    assert render('Hi {{ first_name|default:"there" }}') == "Hi Bob"
    assert render("{{ custom.missing|default:'n/a' }}|{{ custom.missing }}|") == "n/a||"


def test_if_blocks_and_filters():
    assert render("{% if company %}at {{ company|upper }}{% else %}-{% endif %}", html=False) == "at <ACME & CO>"
    assert render("{% if title %}{{ title }}{% endif %}.") == "."


def test_spintax_is_stable_per_seed_and_varies_across_seeds():
    source = "{Hi|Hello|Hey} {{ first_name }}"
    first = render(source, seed="template:1:42")
    assert all(render(source, seed="template:1:42") == first for _ in range(5))
    outcomes = {render(source, seed=f"template:1:{n}") for n in range(60)}
    assert outcomes == {"Hi Bob", "Hello Bob", "Hey Bob"}


def test_spintax_nesting_merge_fields_in_options_and_literal_braces():
    seen = {expand_spintax("{a|{b|c}}", seed=str(n)) for n in range(80)}
    assert seen == {"a", "b", "c"}
    assert render("{Hi {{ first_name }}|Hello {{ first_name }}}", seed="x") in {"Hi Bob", "Hello Bob"}
    # A brace group without alternatives (CSS) and an unclosed brace stay as written.
    assert render("<style>p { color: red }</style>{ not spin") == "<style>p { color: red }</style>{ not spin"


@pytest.mark.parametrize("source, fragment", [
    ("{{ frist_name }}", "unknown merge field “frist_name”"),
    ("{{ settings.SECRET_KEY }}", "unknown merge field “settings.SECRET_KEY”"),
    ("{{ ''.__class__.__mro__ }}", "only merge fields"),
    ("{{ first_name.__class__ }}", "unknown merge field"),
    ("{{ sender.__dict__ }}", "unknown merge field “sender.__dict__”"),
    ("{{ custom.__class__ }}", "not a custom field name"),
    ("{{ custom['__init__'] }}", "not a custom field name"),
    ("{{ lead.contact }}", "unknown merge field “lead.contact”"),
    ("{% include '/etc/passwd' %}", "“Include” is not allowed"),
    ("{% extends 'base.html' %}", "“Extends” is not allowed"),
    ("{% import 'x' as y %}", "“Import” is not allowed"),
    ("{% for i in range(10**9) %}x{% endfor %}", "“For” is not allowed"),
    ("{{ range(10) }}", "“Call” is not allowed"),
    ("{{ lipsum() }}", "“Call” is not allowed"),
    ("{% set x = 1 %}", "“Assign” is not allowed"),
    ("{% macro m() %}{% endmacro %}", "“Macro” is not allowed"),
    ("{{ first_name|safe }}", "unknown filter “safe”"),
    ("{{ first_name|attr('x') }}", "unknown filter “attr”"),
    ("{{ custom }}", "needs a field"),
    ("{Hi|{{ nope }}}", "unknown merge field “nope”"),
])
def test_sandbox_refuses_at_check_time(source, fragment):
    with pytest.raises(ValidationError) as info:
        check_template(source, field="html_body")
    message = " ".join(info.value.message_dict["html_body"])
    assert fragment in message and message.startswith("Line 1:")


def test_errors_name_the_line():
    with pytest.raises(ValidationError) as info:
        check_template("Hello\n\nthere {{ first_name }}\n{{ frist_name }}", field="subject")
    assert info.value.message_dict["subject"] == ["Line 4: unknown merge field “frist_name”."]
    with pytest.raises(ValidationError) as info:
        check_template("a\nb\n{{ first_name", field="html_body")
    assert info.value.message_dict["html_body"][0].startswith("Line 3: unexpected end of template")


def test_required_fields_are_those_shown_without_default_or_condition():
    info = check_template("Hi {{ first_name }} {{ last_name|default:'' }} {% if company %}{{ company }}{% endif %} {{ title }}")
    assert info.required == {"first_name", "title"}
    assert info.fields == {"first_name", "last_name", "company", "title"}
    assert missing_fields(info, CONTEXT) == ["title"]
