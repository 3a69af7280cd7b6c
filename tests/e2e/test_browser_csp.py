"""The Content-Security-Policy in a real headless Chromium: the app's pages (htmx included) and the
admin run without a single CSP violation, and a message body's remote image is never fetched."""
import os
import re
from urllib.parse import urlsplit

import pytest

from outreach.models import Membership
from tests.factories import PASSWORD, make_contact, make_mailbox, make_sent_message, make_team_user

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_pages_run_without_csp_violations_and_fetch_no_remote_image(browser_page, live_server):
    from playwright.sync_api import expect

    page = browser_page
    team, user = make_team_user(role=Membership.Role.OWNER, is_staff=True, is_superuser=True)
    contact = make_contact(team, first_name="Dana")
    message = make_sent_message(make_mailbox(team), contact, status="sent",
                                html_body='<p>Hello</p><img src="https://tracker.example.net/pixel.gif" alt="pixel">')
    violations, foreign = [], []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda err: violations.append(str(err)))
    local = urlsplit(live_server.url).netloc
    page.on("request", lambda req: foreign.append(req.url) if urlsplit(req.url).netloc not in (local, "") and
            not req.url.startswith("data:") else None)

    page.goto("/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/contacts/$"))
    for path in ("/contacts/", f"/contacts/{contact.pk}/", f"/messages/{message.pk}/", "/team/members/",
                 "/mailboxes/connect/", "/leads/", "/admin/", f"/admin/outreach/contact/{contact.pk}/change/",
                 "/admin/outreach/lead/add/"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    page.goto(f"/messages/{message.pk}/")
    expect(page.locator(".notice")).to_contain_text("Remote images are blocked")
    assert violations == [], violations
    assert foreign == [], foreign
