"""The leadlex API "Send Email" (https://docs.leadlex.com;
``POST https://data.leadlex.com/functions/v1/api-gateway/v1/email/send``) through the contract suite, plus leadlex-only cases."""
from __future__ import annotations

import base64
import dataclasses

import pytest

from outreach.services.sending import AttachmentData, sent_message_outgoing
from providers import errors as perr
from providers.leadlex import LeadlexProvider
from tests.fakes.leadlex import FakeLeadlex, error

from tests.factories import set_external_ids

from .contract import ErrorCase, MissingIdCase, ProviderContract, UnsupportedCase, drive

CONTACT, DEAL = "123e4567-e89b-12d3-a456-426614174000", "9b2d3c4e-1f2a-4b5c-8d7e-6f5a4b3c2d1e"


def _inject(status):
    return lambda fake, env: fake.fail_next(reply=error(status, f"doc row {status}"))


class TestLeadlex(ProviderContract):
    provider = "leadlex"
    fake_class = FakeLeadlex
    base_path = "/functions/v1/api-gateway"
    idempotent = True
    transient_status = 502

    error_cases = [
        ErrorCase("validation-error", _inject(400), perr.InvalidRequest, "validation_error", 400),
        ErrorCase("invalid-key", lambda f, e: setattr(f, "api_key", "wbk_other"), perr.AuthenticationFailed, "invalid_key", 401),
        ErrorCase("insufficient-permissions", lambda f, e: setattr(f, "permissions_ok", False),
                  perr.PermissionDenied, "insufficient_permissions", 403),
        ErrorCase("idempotency-conflict", _inject(409), perr.IdempotencyConflict, "idempotency_conflict", 409),
        ErrorCase("rate-limited", lambda f, e: f.fail_next(reply=f.rate_limited_reply(1, 10)), perr.RateLimited, "rate_limited", 429),
        ErrorCase("provider-error", _inject(502), perr.ProviderUnavailable, "provider_error", 502),
    ]
    # contact_id / deal_id are optional in the document: nothing is missing by default.
    missing_id_cases = []
    unsupported_cases = [
        UnsupportedCase("custom-headers", {"headers": {"X-Campaign": "spring"}}, "headers",
                        "leadlex mailboxes cannot send custom headers.", outgoing={"headers": {"X-Campaign": "spring"}}),
    ]

    def contact_ids(self, fake):
        return {"leadlex_contact_id": CONTACT, "lead": {"leadlex_deal_id": DEAL}}

    def queue(self, env, **kwargs):
        kwargs.setdefault("cc", ["manager@example.com"])
        kwargs.setdefault("bcc", ["crm@example.com"])
        kwargs.setdefault("reply_to", "replies@example.com")
        return super().queue(env, **kwargs)

    def assert_request(self, recorded, message, env):
        assert recorded.method == "POST" and recorded.path == "/functions/v1/api-gateway/v1/email/send"
        assert recorded.header("Authorization") == f"Bearer {env.account.api_key}"
        assert recorded.header("Content-Type") == "application/json"
        assert recorded.header("Idempotency-Key") == str(message.idempotency_key)
        assert recorded.json() == {
            "to": ["Jane Doe <jane@example.com>"], "subject": "Follow up",
            "body_html": "<p>Hello Jane,</p><p>Following up on our conversation.</p>",
            "body_text": message.text_body, "cc": ["manager@example.com"], "bcc": ["crm@example.com"],
            "reply_to": "replies@example.com", "contact_id": CONTACT, "deal_id": DEAL,
        }

    def assert_result(self, message, fake):
        data = message.provider_response["data"]
        assert message.provider_message_id == data["id"] and message.provider_thread_id == data["thread_id"]
        assert message.provider_status == "sent" and message.provider_response["request_id"].startswith("req_")

    @pytest.mark.django_db
    def test_idempotency_key_reused_with_another_payload_is_a_conflict(self, env, fake):
        message = self.queue(env)
        drive(message.pk)
        message.refresh_from_db()
        changed = dataclasses.replace(sent_message_outgoing(message), subject="Another subject")
        with pytest.raises(perr.IdempotencyConflict) as info:
            self.provider_for(env).send(changed)
        assert info.value.status == 409 and not info.value.transient
        assert len(fake.messages) == 1

    @pytest.mark.django_db
    def test_same_key_same_payload_replays_the_original_answer(self, env, fake):
        message = self.queue(env)
        provider = self.provider_for(env)
        first = provider.send(sent_message_outgoing(message))
        second = provider.send(sent_message_outgoing(message))
        assert first.provider_message_id == second.provider_message_id and len(fake.messages) == 1

    @pytest.mark.django_db
    def test_attachments_as_base64_and_thread_id(self, env, fake):
        message = self.queue(env, attachments=[AttachmentData("quote.pdf", "application/pdf", b"%PDF-1.4 data")], thread_id="18c9a4b2e7ff21aa")
        drive(message.pk)
        sent = fake.messages[0]
        assert sent["attachments"] == [{"filename": "quote.pdf", "mime_type": "application/pdf",
                                        "content_base64": base64.b64encode(b"%PDF-1.4 data").decode()}]
        assert sent["thread_id"] == "18c9a4b2e7ff21aa"

    @pytest.mark.django_db
    def test_contact_id_required_when_configured(self, env, fake):
        set_external_ids(env.contact, leadlex_contact_id="")
        message = self.queue(env)
        account = env.account
        provider = LeadlexProvider(api_key=account.api_key, base_url=account.base_url, require_contact_id=True)
        with pytest.raises(perr.ConfigurationError, match="leadlex contact_id"):
            provider.send(sent_message_outgoing(message))
        assert fake.requests == []
