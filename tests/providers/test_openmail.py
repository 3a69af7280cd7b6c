"""The OpenMail API "Send email" (https://openmail-docs-cc-replies.mintlify.site;
``POST https://api.openmail.sh/v1/inboxes/{id}/send``) through the contract suite, plus OpenMail-only cases."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from outreach.models import SentMessage, Suppression, TimelineEvent
from outreach.services.sending import AttachmentData
from providers import errors as perr
from providers.base import OutgoingAttachment
from tests.fakes.openmail import FakeOpenMail
from tests.factories import set_fields

from .contract import ErrorCase, MissingIdCase, ProviderContract, UnsupportedCase, drive, timeline_kinds

INBOX = "inb_8f2a1c"
K = TimelineEvent.Kind


_set = set_fields  # columns, or a mailbox's provider settings by form field name


class TestOpenMail(ProviderContract):
    provider = "openmail"
    fake_class = FakeOpenMail
    idempotent = True

    error_cases = [
        ErrorCase("invalid-to", lambda f, e: f.fail_next(reply=__import__("tests.fakes.openmail", fromlist=["x"]).error(400, "invalid_to", "Invalid 'to' address")),
                  perr.InvalidRequest, "invalid_to", 400, field="to"),
        ErrorCase("free-plan-reply-to", lambda f, e: setattr(f, "plan", "free"), perr.PermissionDenied, "plan_required", 403,
                  message_kwargs={"reply_to": "someone@elsewhere.example"}),
        ErrorCase("inbox-not-found", lambda f, e: _set(e.mailbox, openmail_inbox_id="inb_unknown"), perr.InvalidRequest,
                  "not_found", 404, field="openmail_inbox_id"),
        ErrorCase("thread-not-found", lambda f, e: None, perr.InvalidRequest, "not_found", 404, field="thread_id",
                  message_kwargs={"thread_id": "thr_unknown"}),
        ErrorCase("recipient-suppressed", lambda f, e: f.suppressed.add("jane@example.com"), perr.RecipientSuppressed,
                  "recipient_suppressed", 422),
        ErrorCase("rate-limited", lambda f, e: f.fail_next(reply=f.rate_limited_reply(3, 10)), perr.RateLimited, "rate_limited", 429),
        ErrorCase("unauthorized", lambda f, e: _set(e.account, api_key="wrong"), perr.AuthenticationFailed, "unauthorized", 401),
    ]
    missing_id_cases = [
        MissingIdCase("inbox-id", lambda e: _set(e.mailbox, openmail_inbox_id=""), "OpenMail inbox id"),
    ]
    unsupported_cases = [
        UnsupportedCase("custom-headers", {"headers": {"X-Campaign": "spring"}}, "headers",
                        "OpenMail mailboxes cannot send custom headers.", outgoing={"headers": {"X-Campaign": "spring"}}),
        UnsupportedCase("cc", {"cc": ["boss@example.com"]}, "cc", "OpenMail mailboxes cannot send Cc.",
                        outgoing={"cc": (__import__("providers.base", fromlist=["x"]).Address("boss@example.com"),)}),
        UnsupportedCase("bcc", {"bcc": ["boss@example.com"]}, "bcc", "OpenMail mailboxes cannot send Bcc."),
        UnsupportedCase("several-recipients", {"to": ["jane@example.com", "bob@example.com"]}, "to",
                        "OpenMail mailboxes send to one recipient per message."),
        UnsupportedCase("attachments-over-25-mb", {}, "attachments", "at most 25 MB",
                        outgoing={"attachments": (OutgoingAttachment("big.bin", "application/octet-stream", b"x" * (25 * 1024 * 1024 + 1)),)}),
    ]

    def seed(self, fake):
        fake.add_inbox(INBOX, "sales@openmail.example")

    def mailbox_fields(self, fake):
        return {"openmail_inbox_id": INBOX, "sender_email": "sales@openmail.example"}

    def assert_request(self, recorded, message, env):
        assert recorded.method == "POST" and recorded.path == f"/v1/inboxes/{INBOX}/send"
        assert recorded.header("Authorization") == f"Bearer {env.account.api_key}"
        assert recorded.header("Content-Type") == "application/json"
        assert recorded.header("Idempotency-Key") == str(message.idempotency_key)
        assert recorded.json() == {"to": "jane@example.com", "subject": "Follow up",
                                   "body": "<p>Hello Jane,</p><p>Following up on our conversation.</p>"}

    def assert_result(self, message, fake):
        assert message.provider_message_id.startswith("msg_") and message.provider_thread_id.startswith("thr_")
        assert message.provider_status == "sent"

    def test_capability_refusal(self, env, fake, unsupported_case):
        if not unsupported_case.kwargs:  # over the provider's limit but under ours: only the provider check applies
            ok = self.queue(env)
            from outreach.services.sending import sent_message_outgoing
            import dataclasses

            with pytest.raises(perr.UnsupportedFeature, match="at most 25 MB"):
                self.provider_for(env).send(dataclasses.replace(sent_message_outgoing(ok), **unsupported_case.outgoing))
            assert fake.requests == []
            return
        super().test_capability_refusal(env, fake, unsupported_case)

    @pytest.mark.django_db
    def test_422_suppresses_the_recipient_for_the_team(self, env, fake):
        fake.suppressed.add("jane@example.com")
        message = self.queue(env)
        second = self.queue(env, subject="Queued before the bounce was known")
        outcomes = drive(message.pk)
        message.refresh_from_db()
        assert len(outcomes) == 1 and message.status == SentMessage.Status.FAILED
        assert message.error_code == "recipient_suppressed"
        assert Suppression.objects.filter(team=env.team, email="jane@example.com").exists()
        assert timeline_kinds(message) == [K.MESSAGE_QUEUED, K.MESSAGE_SENDING, K.MESSAGE_FAILED, K.SUPPRESSED]
        requests_before = len(fake.requests)
        # already queued: failed by the pipeline without an HTTP call
        drive(second.pk)
        second.refresh_from_db()
        assert second.status == SentMessage.Status.FAILED and len(fake.requests) == requests_before
        # new messages are refused when queued
        with pytest.raises(ValidationError, match="Suppressed address"):
            self.queue(env, subject="Again")
        assert fake.messages == []

    @pytest.mark.django_db
    def test_attachments_go_as_multipart(self, env, fake):
        message = self.queue(env, attachments=[AttachmentData("quote.pdf", "application/pdf", b"%PDF-1.4")], reply_to="sales@openmail.example")
        drive(message.pk)
        message.refresh_from_db()
        assert message.status == SentMessage.Status.SENT
        recorded = fake.requests[0]
        assert recorded.header("Content-Type").startswith("multipart/form-data; boundary=")
        assert recorded.header("Idempotency-Key") == str(message.idempotency_key)
        sent = fake.messages[0]
        assert sent["attachments"] == [("quote.pdf", "application/pdf", 8)]
        assert sent["replyTo"] == "sales@openmail.example" and sent["to"] == "jane@example.com"

    @pytest.mark.django_db
    def test_lost_multipart_response_replays(self, env, fake, settings):
        settings.OUTREACH_HTTP_READ_TIMEOUT = 0.3
        fake.delay_next_response(1.0)
        message = self.queue(env, attachments=[AttachmentData("a.txt", "text/plain", b"hello")])
        drive(message.pk)
        message.refresh_from_db()
        assert message.status == SentMessage.Status.SENT and len(fake.requests) == 2 and len(fake.messages) == 1

    @pytest.mark.django_db
    def test_reply_in_thread(self, env, fake):
        first = self.queue(env)
        drive(first.pk)
        first.refresh_from_db()
        reply = self.queue(env, subject="Re: Follow up", thread_id=first.provider_thread_id)
        drive(reply.pk)
        reply.refresh_from_db()
        assert reply.status == SentMessage.Status.SENT and fake.messages[1]["threadId"] == first.provider_thread_id
