"""The lemlist API reference "Send Email" (https://developer.lemlist.com;
``POST https://api.lemlist.com/api/inbox/email``) through the contract suite, plus lemlist-only cases."""
from __future__ import annotations

import base64

import pytest

from outreach.models import Mailbox, SentMessage, TimelineEvent
from providers import errors as perr
from providers.schemas import lemlist as schema
from tests.fakes.base import Reply
from tests.fakes.lemlist import FakeLemlist
from tests.factories import set_fields

from tests.factories import set_external_ids

from .contract import ErrorCase, MissingIdCase, ProviderContract, UnsupportedCase, drive

USER, USER_EMAIL, USER_MAILBOX = "usr_FU6yAd3UdBFel0UDy", "john@example.com", "usm_pmZsNNO1gl5nwCQ07"
CONTACT, LEAD = "ctc_ei6zVayP9B2ugwUPN", "lea_wadZOcDDSFWSbFaCf"


_set = set_fields  # columns, or a mailbox's provider settings by form field name


def _text(status, body):
    return lambda fake, env: fake.fail_next(reply=Reply(status, body, "text/plain"))


class TestLemlist(ProviderContract):
    provider = "lemlist"
    fake_class = FakeLemlist
    base_path = "/api"
    idempotent = False
    promises_json = False  # 200 {"ok": true} with additionalProperties: nothing is read from it

    error_cases = [
        ErrorCase("bad-team", lambda f, e: setattr(f, "team_ok", False), perr.PermissionDenied, "Bad team", 400),
        ErrorCase("invalid-send-user-id", lambda f, e: _set(e.mailbox, lemlist_send_user_id="usr_unknown"),
                  perr.InvalidRequest, "Invalid sendUserId", 400, field="lemlist_send_user_id"),
        ErrorCase("invalid-send-user-email", lambda f, e: _set(e.mailbox, lemlist_send_user_email="other@example.com"),
                  perr.InvalidRequest, "Invalid sendUserEmail", 400, field="lemlist_send_user_email"),
        ErrorCase("invalid-send-user-mailbox-id", lambda f, e: _set(e.mailbox, lemlist_send_user_mailbox_id="usm_other"),
                  perr.InvalidRequest, "Invalid sendUserMailboxId", 400, field="lemlist_send_user_mailbox_id"),
        ErrorCase("contact-or-lead-required", _text(400, "contactId or leadId is required"),
                  perr.InvalidRequest, "contactId or leadId is required", 400, field="lemlist_contact_id"),
        ErrorCase("invalid-lead-id", lambda f, e: set_external_ids(e.contact, "lead", lemlist_lead_id="not-a-lead"),
                  perr.InvalidRequest, "Invalid leadId", 400, field="lemlist_lead_id"),
        ErrorCase("lead-not-found", lambda f, e: set_external_ids(e.contact, "lead", lemlist_lead_id="lea_unknown"),
                  perr.InvalidRequest, "Lead not found", 400, field="lemlist_lead_id"),
        ErrorCase("failed-to-send", lambda f, e: setattr(f, "fail_sending", True),
                  perr.ProviderUnavailable, "Failed to send email", 400),
        ErrorCase("unauthorized", lambda f, e: _set(e.account, api_key="wrong"),
                  perr.AuthenticationFailed, schema.UNAUTHORIZED_TEXT, 401),
        ErrorCase("method-not-allowed", _text(405, "Method not allowed"), perr.ConfigurationError, "Method not allowed", 405),
        ErrorCase("rate-limited", lambda f, e: f.fail_next(reply=f.rate_limited_reply(2, 20)), perr.RateLimited, status=429),
        # No idempotency key: a 500 may have been processed, so it is "unknown", not retried (issue 8).
        ErrorCase("server-error", lambda f, e: f.fail_next(status=500), perr.OutcomeUnknown, status=500),
    ]
    missing_id_cases = [
        MissingIdCase("send-user-id", lambda e: _set(e.mailbox, lemlist_send_user_id=""), "lemlist sendUserId"),
        MissingIdCase("send-user-email", lambda e: _set(e.mailbox, lemlist_send_user_email=""), "lemlist sendUserEmail"),
        MissingIdCase("send-user-mailbox-id", lambda e: _set(e.mailbox, lemlist_send_user_mailbox_id=""), "lemlist sendUserMailboxId"),
        MissingIdCase("contact-id", lambda e: set_external_ids(e.contact, lemlist_contact_id=""), "contact's lemlist contactId"),
        MissingIdCase("lead-id", lambda e: set_external_ids(e.contact, "lead", lemlist_lead_id=""), "lead's lemlist leadId"),
        MissingIdCase("no-lead", lambda e: e.contact.lead.delete(), "lead's lemlist leadId"),
    ]
    unsupported_cases = [
        UnsupportedCase("custom-headers", {"headers": {"X-Campaign": "spring"}}, "headers",
                        "lemlist mailboxes cannot send custom headers.", outgoing={"headers": {"X-Campaign": "spring"}}),
        UnsupportedCase("attachments", {"attachments": [__import__("outreach.services.sending", fromlist=["x"]).AttachmentData("a.pdf", "application/pdf", b"%PDF")]},
                        "attachments", "lemlist mailboxes cannot send attachments.",
                        outgoing={"attachments": (__import__("providers.base", fromlist=["x"]).OutgoingAttachment("a.pdf", "application/pdf", b"%PDF"),)}),
        UnsupportedCase("bcc", {"bcc": ["boss@example.com"]}, "bcc", "lemlist mailboxes cannot send Bcc."),
        UnsupportedCase("reply-to", {"reply_to": "replies@example.com"}, "reply_to", "lemlist mailboxes cannot set Reply-To."),
        UnsupportedCase("several-recipients", {"to": ["jane@example.com", "bob@example.com"]}, "to",
                        "lemlist mailboxes send to one recipient per message."),
        UnsupportedCase("thread", {"thread_id": "thr_1"}, "thread_id", "lemlist mailboxes cannot reply in a thread."),
    ]

    def seed(self, fake):
        fake.add_send_user(USER, USER_EMAIL, USER_MAILBOX)
        fake.add_lead(CONTACT, LEAD)

    def mailbox_fields(self, fake):
        return {"lemlist_send_user_id": USER, "lemlist_send_user_email": USER_EMAIL, "lemlist_send_user_mailbox_id": USER_MAILBOX}

    def contact_ids(self, fake):
        return {"lemlist_contact_id": CONTACT, "lead": {"lemlist_lead_id": LEAD}}

    def queue(self, env, **kwargs):
        kwargs.setdefault("cc", ["manager@example.com"])
        return super().queue(env, **kwargs)

    def assert_request(self, recorded, message, env):
        assert recorded.method == "POST" and recorded.path == "/api/inbox/email"
        assert recorded.header("Authorization") == "Basic " + base64.b64encode(f":{env.account.api_key}".encode()).decode()
        assert recorded.header("Content-Type") == "application/json"
        assert recorded.header("Idempotency-Key") is None
        assert recorded.json() == {
            "sendUserId": USER, "sendUserEmail": USER_EMAIL, "sendUserMailboxId": USER_MAILBOX,
            "contactId": CONTACT, "leadId": LEAD, "subject": "Follow up",
            "message": "<p>Hello Jane,</p><p>Following up on our conversation.</p>", "cc": ["manager@example.com"],
        }

    def assert_result(self, message, fake):
        assert message.provider_status == "sent" and message.provider_response == {"ok": True}

    # --- lemlist only ------------------------------------------------------------------------

    @pytest.mark.django_db
    def test_400_bodies_are_text_plain(self, env, fake):
        _set(env.mailbox, lemlist_send_user_id="usr_unknown")
        message = self.queue(env)
        with pytest.raises(perr.InvalidRequest) as info:
            self.provider_for(env).send(__import__("outreach.services.sending", fromlist=["x"]).sent_message_outgoing(message))
        assert fake.requests[0].status == 400
        assert info.value.provider_message == "Invalid sendUserId" and "Invalid sendUserId" in info.value.message

    @pytest.mark.django_db
    def test_text_only_message_is_sent_as_html(self, env, fake):
        from .contract import drive

        message = self.queue(env, html="", text="Hi <Jane>,\n\nsee you.")
        drive(message.pk)
        assert fake.messages[0]["message"] == "<p>Hi &lt;Jane&gt;,</p><p>see you.</p>"

    @pytest.mark.django_db
    def test_a_configuration_error_in_an_answer_fails_the_message_once(self, env, fake):
        """lemlist's 405 means the base URL is wrong: a ConfigurationError (not a ProviderError), so the
        pipeline fails the message at once, keeping lemlist's text as the vendor's code."""
        fake.fail_next(reply=Reply(405, "Method not allowed", "text/plain"))
        message = self.queue(env)
        outcomes = drive(message.pk)
        message.refresh_from_db()
        assert len(outcomes) == 1 and message.status == SentMessage.Status.FAILED
        assert message.error_code == "configuration" and "base URL" in message.error_message
        failed = TimelineEvent.objects.get(sent_message=message, kind=TimelineEvent.Kind.MESSAGE_FAILED)
        assert (failed.data["provider_code"], failed.data["status"], failed.data["reason"]) == ("Method not allowed", 405, "")

    def test_provider_for_a_mailbox_without_account_is_a_configuration_error(self):
        from providers.lemlist import LemlistProvider

        with pytest.raises(perr.ConfigurationError, match="no lemlist provider account"):
            LemlistProvider.from_mailbox(Mailbox(provider="lemlist", sender_email="x@example.com", provider_config={
                "send_user_id": USER, "send_user_email": USER_EMAIL, "send_user_mailbox_id": USER_MAILBOX}))
