"""The list rows' formatting filter and link tag (outreach/templatetags/outreach_format.py)."""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, reverse, set_script_prefix
from django.utils import timezone

from outreach.templatetags.outreach_format import pk_url, strftime


def test_strftime_formats_in_the_current_time_zone_like_the_date_filter():
    value = datetime(2026, 12, 2, 23, 45, 12, tzinfo=dt_timezone.utc)
    with timezone.override("Europe/Paris"):
        assert strftime(value, "%Y-%m-%d %H:%M") == "2026-12-03 00:45"
        rendered = Template('{% load outreach_format %}{{ v|strftime:"%Y-%m-%d %H:%M" }}|{{ v|date:"Y-m-d H:i" }}')
        mine, django_date = rendered.render(Context({"v": value})).split("|")
        assert mine == django_date == "2026-12-03 00:45"
    with timezone.override("UTC"):
        assert strftime(value, "%Y-%m-%dT%H:%M:%S%z") == "2026-12-02T23:45:12+0000"


@pytest.mark.parametrize("value", [None, "", "2026-12-02", 5])
def test_strftime_of_no_datetime_is_empty_so_default_applies(value):
    assert strftime(value, "%Y") == ""
    assert Template('{% load outreach_format %}{{ v|strftime:"%Y"|default:"—" }}').render(Context({"v": value})) == "—"


def test_strftime_leaves_a_naive_datetime_as_it_is():
    assert strftime(datetime(2026, 1, 2, 3, 4), "%Y-%m-%d %H:%M") == "2026-01-02 03:04"


@pytest.mark.parametrize("name", ["contact_detail", "lead_edit", "message_detail"])
@pytest.mark.parametrize("pk", [1, 7, 91827, "42"])
def test_pk_url_is_what_url_gives(name, pk):
    assert pk_url(name, pk) == reverse(name, args=[pk])
    rendered = Template("{% load outreach_format %}{% pk_url name pk %}|{% url name pk %}").render(Context({"name": name, "pk": pk}))
    mine, django_url = rendered.split("|")
    assert mine == django_url


def test_pk_url_follows_the_script_prefix_and_refuses_what_url_refuses():
    try:
        set_script_prefix("/outreach/")
        assert pk_url("contact_detail", 5) == "/outreach/contacts/5/" == reverse("contact_detail", args=[5])
    finally:
        set_script_prefix("/")
    assert pk_url("contact_detail", 5) == "/contacts/5/"
    with pytest.raises(NoReverseMatch):
        pk_url("no_such_route", 5)
    with pytest.raises(ValueError):
        pk_url("contact_detail", "x/../../admin")


def test_status_badge_renders_the_badge_markup_escaped_with_the_status_as_default_label():
    rendered = Template('{% load outreach_format %}{% status_badge "lead-"|add:s label %}|{% status_badge "sent" "" %}')
    badge, plain = rendered.render(Context({"s": 'won"><b>', "label": "<i>Won</i>"})).split("|")
    assert badge == '<span class="badge badge-lead-won&quot;&gt;&lt;b&gt;">&lt;i&gt;Won&lt;/i&gt;</span>'
    assert plain == '<span class="badge badge-sent">sent</span>'


@pytest.mark.parametrize("text", ["", "short", "x" * 59, "x" * 60, "x" * 61, "a, b, c" * 20, "Chloé Müller",
                                  "e\u0301" * 40, "é" * 61, "<b>&amp;</b>"])
@pytest.mark.parametrize("length", [1, 60])
def test_truncate_equals_truncatechars(text, length):
    """The cheap filter renders exactly what Django's truncatechars renders, safe or not."""
    from django.utils.safestring import mark_safe

    for value in (text, mark_safe(text)):
        ours = Template("{% load outreach_format %}{{ v|truncate:n }}").render(Context({"v": value, "n": length}))
        django_s = Template("{{ v|truncatechars:n }}").render(Context({"v": value, "n": length}))
        assert ours == django_s
