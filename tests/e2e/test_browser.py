"""The main job in a real headless Chromium: log in, connect a mailbox (with Test connection),
send from a contact's page through a real Celery worker, and watch the timeline turn `sent`.
Screenshots of each main page go to tests/artifacts/."""
import os
import re

import pytest

from outreach.models import Mailbox, SentMessage
from tests.browser import launch_chromium, screenshot
from tests.factories import NO_SENDING_RULES, OWNER_PASSWORD, make_contact, make_team_with_owner

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser_page):
    return browser_page


def test_login_connect_mailbox_send_and_see_it_sent(page, live_server, celery_worker_process, mail_settings):
    from playwright.sync_api import expect

    team, user = make_team_with_owner("Browser team")
    contact = make_contact(team, email="dana@example.org", first_name="Dana", last_name="Kim", company="Kim & Co")
    smtp, imap = mail_settings.smtp, mail_settings.imap

    page.goto("/login/")
    screenshot(page, "01-login")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", OWNER_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/contacts/$"))
    screenshot(page, "02-contact-list")

    page.goto("/mailboxes/connect/")
    page.fill("[name=sender_name]", "Ann Lée")
    page.fill("[name=sender_email]", "ann@example.com")
    page.fill("[name=smtp_host]", "localhost")
    page.fill("[name=smtp_port]", str(smtp.port))
    page.select_option("[name=smtp_security]", "starttls")
    page.fill("[name=smtp_login]", smtp.username)
    page.fill("[name=smtp_password]", "wrong-password")
    page.fill("[name=imap_host]", "localhost")
    page.fill("[name=imap_port]", str(imap.port))
    page.select_option("[name=imap_security]", "starttls")
    page.fill("[name=imap_login]", imap.username)
    page.fill("[name=imap_password]", imap.password)
    page.click("text=Test connection")
    expect(page.locator("#connection-result")).to_contain_text("SMTP authentication refused")
    page.fill("[name=smtp_password]", smtp.password)
    page.click("text=Test connection")
    expect(page.locator("#connection-result")).to_contain_text("IMAP: logged in")
    screenshot(page, "03-mailbox-connect-tested")
    page.click("button:has-text('Connect mailbox')")
    expect(page.locator("body")).to_contain_text("ann@example.com")
    mailbox = Mailbox.objects.get(team=team)
    assert mailbox.daily_cap == 50  # a new mailbox starts with the cold-mailbox sending rules ...
    Mailbox.objects.filter(pk=mailbox.pk).update(**NO_SENDING_RULES)  # ... lifted here to send at once
    assert mailbox.provider_settings["smtp_password"] == smtp.password
    assert smtp.password not in page.content()
    screenshot(page, "04-mailbox-list")

    page.goto(f"/contacts/{contact.pk}/compose/")
    page.fill("[name=subject]", "Intro from the browser")
    page.fill("[name=html_body]", "<p>Hello <b>Dana</b></p>")
    screenshot(page, "05-compose")
    page.click("button:has-text('Send')")
    expect(page).to_have_url(re.compile(rf"/contacts/{contact.pk}/(#timeline)?$"))
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Intro from the browser")
    expect(timeline.locator(".badge", has_text=re.compile(r"^\s*sent\s*$", re.I)).first).to_be_visible(timeout=30_000)
    screenshot(page, "06-contact-timeline-sent")

    message = SentMessage.objects.get(contact=contact)
    assert message.status == "sent"
    assert len(smtp.messages) == 1 and smtp.messages[0].message["Subject"] == "Intro from the browser"

    for name, path in [("07-messages", "/messages/"), ("08-message-detail", f"/messages/{message.pk}/"),
                       ("09-leads", "/leads/"), ("10-contact-edit", f"/contacts/{contact.pk}/edit/")]:
        page.goto(path)
        expect(page.locator("body")).not_to_contain_text("Server Error")
        screenshot(page, name)
