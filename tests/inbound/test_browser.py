"""In headless Chromium: a reply read from dovecot appears on the contact's timeline; answering it
from the timeline sends a threaded reply (through a real Celery worker and SMTP server) whose
In-Reply-To / References / Subject are right at the SMTP server."""
import os
import re

import pytest

from outreach.inbound.models import InboundMessage
from outreach.inbound.services import mailbox_sync
from outreach.models import SentMessage
from tests.browser import screenshot
from tests.factories import OWNER_PASSWORD, make_contact, make_sent_message, make_smtp_mailbox, make_team_with_owner
from tests.inbound import mails as M

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_reply_appears_on_the_timeline_and_is_answered_in_thread(browser_page, live_server, celery_worker_process,
                                                                  mail_settings, settings):
    from playwright.sync_api import expect

    page = browser_page
    team, user = make_team_with_owner("Inbound browser team")
    mailbox = make_smtp_mailbox(team, mail_settings)
    contact = make_contact(team, email="dana@example.org", first_name="Dana", last_name="Kim")
    ours = make_sent_message(mailbox, contact, status=SentMessage.Status.SENT, subject="Intro")
    mail_settings.imap.append("INBOX", M.reply(to=mailbox.sender_email, sender="Dana Kim <dana@example.org>",
                                               in_reply_to=ours.message_id, references=ours.message_id,
                                               body="Happy to talk. Does Thursday work?"))
    assert mailbox_sync(mailbox=mailbox).kinds == {"reply": 1}
    theirs = InboundMessage.objects.get(mailbox=mailbox)

    page.goto("/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", OWNER_PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"/contacts/{contact.pk}/")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Happy to talk. Does Thursday work?")
    expect(timeline).not_to_contain_text("Best,")  # the signature and quoted history are trimmed
    expect(timeline.locator(".badge", has_text=re.compile(r"^\s*replied\s*$", re.I)).first).to_be_visible()
    screenshot(page, "inbound-01-timeline-reply")

    timeline.locator(".tl-inbound a:has-text('Reply')").first.click()
    expect(page.locator("[name=subject]")).to_have_value("Re: Intro")
    page.fill("[name=body]", "Thursday at 10 works for me.")
    screenshot(page, "inbound-02-reply-form")
    page.click("button:has-text('Send reply')")
    expect(page).to_have_url(re.compile(rf"/contacts/{contact.pk}/(#timeline)?$"))

    received = mail_settings.smtp.wait_for_messages(1, timeout=60)[0].message
    assert received["Subject"] == "Re: Intro"
    assert received["In-Reply-To"] == theirs.message_id
    assert received["References"].split() == [ours.message_id, theirs.message_id]
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = received.get_body(preferencelist=("plain",)).get_content()
    assert body.startswith("Thursday at 10 works for me.") and "> Happy to talk." in body
    reply = SentMessage.objects.get(contact=contact, in_reply_to=theirs.message_id)
    celery_worker_process.wait_for(lambda: SentMessage.objects.get(pk=reply.pk).status == "sent", timeout=60)
    page.reload()
    expect(page.locator("#timeline .tl-message", has_text="Re: Intro").first).to_be_visible()
    screenshot(page, "inbound-03-timeline-after-reply")
