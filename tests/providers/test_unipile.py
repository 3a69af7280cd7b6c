"""The Unipile API "Send an email" (https://developer.unipile.com/docs/send-email;
``POST {base}/api/v1/emails``) through the contract suite, plus Unipile-only cases."""
from __future__ import annotations

import json

import pytest

from outreach.models import SentMessage, Suppression
from outreach.services.sending import AttachmentData, sent_message_outgoing
from providers import errors as perr
from providers.schemas import unipile as schema
from providers.unipile import UnipileConfig, UnipileProvider
from tests.fakes.base import parse_multipart
from tests.fakes.unipile import FakeUnipile, typed
from tests.factories import set_fields

from .contract import ErrorCase, MissingIdCase, ProviderContract, UnsupportedCase, drive

ACCOUNT = "acc_Y2FkZjE3"


_set = set_fields  # columns, or a mailbox's provider settings by form field name


def _inject(status, kind):
    return lambda fake, env: fake.fail_next(reply=typed(status, kind, "doc row"))


# Every typed error of the document, with the class it must map to.
_EXPECTED = {401: perr.AuthenticationFailed, 403: perr.PermissionDenied, 404: perr.InvalidRequest, 422: perr.InvalidRequest,
             500: perr.OutcomeUnknown, 503: perr.ProviderUnavailable, 504: perr.OutcomeUnknown}
_SPECIAL = {
    "errors/insufficient_privileges": perr.PermissionDenied, "errors/disconnected_feature": perr.PermissionDenied,
    "errors/blocked_recipient": perr.RecipientSuppressed, "errors/invalid_recipient": perr.RecipientRefused,
    "errors/recipient_rejected": perr.RecipientRefused, "errors/user_unreachable": perr.RecipientRefused,
    "errors/no_connection_with_recipient": perr.RecipientRefused, "errors/limit_exceeded": perr.RateLimited,
    "errors/cannot_resend_yet": perr.RateLimited, "errors/provider_unreachable": perr.ProviderUnavailable,
    "errors/realtime_client_not_initialized": perr.ProviderUnavailable, "errors/invalid_account": perr.PermissionDenied,
    "errors/account_configuration_error": perr.PermissionDenied, "errors/send_as_denied": perr.PermissionDenied,
    "errors/sender_rejected": perr.PermissionDenied, "errors/unauthorized": perr.PermissionDenied,
    "errors/ip_rejected_by_server": perr.PermissionDenied,
}


class TestUnipile(ProviderContract):
    provider = "unipile"
    fake_class = FakeUnipile
    idempotent = False
    success_status = 201

    error_cases = [
        ErrorCase(f"{status}-{kind.split('/')[1]}", _inject(status, kind), _SPECIAL.get(kind, _EXPECTED[status]), kind, status)
        for status, kinds in schema.ERROR_TYPES.items() for kind in kinds
    ] + [
        ErrorCase("missing-credentials-natural", lambda f, e: _set(e.account, api_key="wrong"), perr.AuthenticationFailed,
                  "errors/invalid_credentials", 401),
        ErrorCase("account-not-found-natural", lambda f, e: _set(e.mailbox, unipile_account_id="acc_unknown"),
                  perr.InvalidRequest, "errors/resource_not_found", 404, field="unipile_account_id"),
        ErrorCase("parent-mail-not-found-natural", lambda f, e: None, perr.InvalidRequest, "errors/parent_mail_not_found", 422,
                  field="thread_id", message_kwargs={"thread_id": "unknown-mail"}),
        ErrorCase("blocked-recipient-natural", lambda f, e: f.blocked.add("jane@example.com"), perr.RecipientSuppressed,
                  "errors/blocked_recipient", 422),
    ]
    missing_id_cases = [
        MissingIdCase("account-id", lambda e: _set(e.mailbox, unipile_account_id=""), "Unipile account_id"),
    ]
    unsupported_cases = [
        UnsupportedCase("bad-custom-header", {"subject": "x"}, "", "", outgoing={"headers": {"List-Unsubscribe": "<mailto:u@x>"}}),
    ]

    def seed(self, fake):
        fake.add_account(ACCOUNT)

    def mailbox_fields(self, fake):
        return {"unipile_account_id": ACCOUNT}

    def queue(self, env, **kwargs):
        kwargs.setdefault("cc", ["manager@example.com"])
        kwargs.setdefault("bcc", ["crm@example.com"])
        kwargs.setdefault("reply_to", "replies@example.com")
        return super().queue(env, **kwargs)

    def assert_request(self, recorded, message, env):
        assert recorded.method == "POST" and recorded.path == "/api/v1/emails"
        assert recorded.header("X-API-KEY") == env.account.api_key
        assert recorded.header("Authorization") is None and recorded.header("Idempotency-Key") is None
        parts = parse_multipart(recorded.header("Content-Type"), recorded.body)
        fields = {p.name: p.text for p in parts}
        assert fields == {
            "account_id": ACCOUNT,
            "from": json.dumps({"display_name": "John Seller", "identifier": "john@example.com"}, separators=(",", ":")),
            "to": json.dumps([{"display_name": "Jane Doe", "identifier": "jane@example.com"}], separators=(",", ":")),
            "cc": json.dumps([{"identifier": "manager@example.com"}], separators=(",", ":")),
            "bcc": json.dumps([{"identifier": "crm@example.com"}], separators=(",", ":")),
            "subject": "Follow up",
            "body": "<p>Hello Jane,</p><p>Following up on our conversation.</p>",
            "custom_headers": json.dumps([{"name": "Reply-To", "value": "replies@example.com"}], separators=(",", ":")),
        }

    def assert_result(self, message, fake):
        assert message.provider_message_id == message.provider_response["tracking_id"]
        assert message.provider_response["object"] == "EmailSent" and message.provider_status == "sent"

    def test_capability_refusal(self, env, fake, unsupported_case):
        import dataclasses

        ok = self.queue(env)
        outgoing = dataclasses.replace(sent_message_outgoing(ok), **unsupported_case.outgoing)
        with pytest.raises(perr.UnsupportedFeature, match="X-"):
            self.provider_for(env).send(outgoing)
        assert fake.requests == []

    @pytest.mark.django_db
    def test_custom_headers_tracking_and_attachments(self, env, fake):
        import dataclasses

        message = self.queue(env, attachments=[AttachmentData("quote.pdf", "application/pdf", b"%PDF-1.4")])
        account = env.account
        provider = UnipileProvider(api_key=account.api_key, base_url=account.base_url, config=UnipileConfig(
            account_id=ACCOUNT, track_opens=True, track_links=True, tracking_label="outreach"))
        outgoing = dataclasses.replace(sent_message_outgoing(message), headers={"X-Campaign": "spring"})
        result = provider.send(outgoing)
        sent = fake.messages[0]
        assert result.provider_message_id and sent["tracking_options"] == {"opens": True, "links": True, "label": "outreach"}
        assert sent["custom_headers"] == [{"name": "X-Campaign", "value": "spring"}, {"name": "Reply-To", "value": "replies@example.com"}]
        assert sent["attachments"][0][:2] == ("quote.pdf", "application/pdf")

    @pytest.mark.django_db
    def test_custom_headers_from_compose_reach_unipile(self, env, fake):
        """The user's X- headers (compose, send_email --header) travel in the document's custom_headers."""
        message = self.queue(env, headers={"X-Campaign": "spring", "X-CRM-Id": "42"})
        drive(message.pk)
        message.refresh_from_db()
        assert message.status == SentMessage.Status.SENT, message.error_message
        assert fake.messages[0]["custom_headers"] == [
            {"name": "X-Campaign", "value": "spring"}, {"name": "X-CRM-Id", "value": "42"},
            {"name": "Reply-To", "value": "replies@example.com"}]

    @pytest.mark.django_db
    def test_blocked_recipient_is_suppressed(self, env, fake):
        fake.blocked.add("jane@example.com")
        message = self.queue(env, cc=[], bcc=[])
        drive(message.pk)
        message.refresh_from_db()
        assert message.status == SentMessage.Status.FAILED and message.error_code == "recipient_suppressed"
        assert Suppression.objects.filter(team=env.team, email="jane@example.com").exists()
