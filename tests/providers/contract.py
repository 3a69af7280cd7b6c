"""The shared provider contract suite (anymail's SessionSharingTestCases, allauth's OAuth2TestsMixin).

:class:`ProviderContract` holds every case all HTTP providers must pass, run through the real
provider module over HTTP against its strict fake (``tests/fakes``) and, where the outcome
matters, through the real send pipeline (``outreach.services.sending``). A provider's test module
subclasses it and supplies only what differs: its fake, how to seed it, the mailbox/contact ids,
the exact request it expects, and its lists of documented errors, missing vendor ids and
capability refusals (parametrised by ``tests/providers/conftest.py``).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from django.core.exceptions import ValidationError

from outreach.models import Contact, Mailbox, ProviderAccount, SentMessage, Team, TimelineEvent
from outreach.services.sending import sent_message_create, sent_message_outgoing, sent_message_send
from providers import errors as perr
from providers.registry import get_provider_class, provider_for_mailbox
from tests.factories import make_contact, make_provider_account, make_provider_mailbox
from tests.fakes.base import Reply

K = TimelineEvent.Kind

#: Who every contract send is from and to: each subclass' ``assert_request`` names them.
SENDER = dict(sender_name="John Seller", sender_email="john@example.com")
RECIPIENT = dict(email="jane@example.com", first_name="Jane", last_name="Doe")


def timeline_kinds(message: SentMessage) -> list[str]:
    """The message's timeline kinds, oldest first."""
    return list(TimelineEvent.objects.filter(sent_message=message).order_by("created_at", "id").values_list("kind", flat=True))


@dataclass
class Env:
    """What one test works with."""

    team: Team
    account: ProviderAccount
    mailbox: Mailbox
    contact: Contact


@dataclass
class ErrorCase:
    """One documented error path: ``arrange(fake, env)`` provokes it; the send must raise exactly
    ``error`` (a ProviderError, or a ConfigurationError where the answer shows a setup mistake) with the
    vendor's ``provider_code`` (and ``field`` for validation errors), delivering nothing."""

    id: str
    arrange: Callable[[Any, Env], None]
    error: type[perr.ProviderError] | type[perr.ConfigurationError]
    provider_code: str | None = None
    status: int | None = None
    field: str | None = None
    message_kwargs: dict = dataclasses.field(default_factory=dict)


@dataclass
class MissingIdCase:
    """``blank(env)`` removes a vendor id the document requires; the send fails with a
    ConfigurationError whose message contains ``words``, before any HTTP call."""

    id: str
    blank: Callable[[Env], None]
    words: str


@dataclass
class UnsupportedCase:
    """A feature the provider cannot carry: queuing with ``kwargs`` is refused on form field
    ``field`` with ``text``; the provider itself raises UnsupportedFeature for ``outgoing`` changes."""

    id: str
    kwargs: dict
    field: str
    text: str
    outgoing: dict = dataclasses.field(default_factory=dict)


def drive(message_id: int, *, max_runs: int = 8) -> list:
    """Run the send service like the Celery task would, honouring each retry_in (capped at 2 s)."""
    outcomes = []
    for _ in range(max_runs):
        outcome = sent_message_send(sent_message_id=message_id)
        outcomes.append(outcome)
        if outcome.retry_in is None:
            break
        time.sleep(min(outcome.retry_in, 2.0))
    return outcomes


class ProviderContract:
    """Subclass as ``Test<Provider>`` and set the attributes below."""

    provider: str
    fake_class: type
    base_path = ""  # the document's base path, appended to the fake's URL
    idempotent = False  # the provider deduplicates on our Idempotency-Key
    success_status = 200  # the document's status for an accepted send
    promises_json = True  # the document promises a JSON body with the fields parse_result reads
    transient_status = 503
    error_cases: list[ErrorCase] = []
    missing_id_cases: list[MissingIdCase] = []
    unsupported_cases: list[UnsupportedCase] = []

    # --- what a subclass supplies ---------------------------------------------------------------

    def seed(self, fake) -> None:
        """Put the ids the mailbox and contact use into the fake."""

    def mailbox_fields(self, fake) -> dict:
        return {}

    def contact_ids(self, fake) -> dict:
        """The recipient's vendor ids by key, and ``lead={...}`` to make it a lead with the lead's
        ids (keyword arguments of :func:`tests.factories.make_contact`)."""
        return {}

    def assert_request(self, recorded, message: SentMessage, env: Env) -> None:
        """Assert the exact URL, headers and body of a successful send."""
        raise NotImplementedError

    def assert_result(self, message: SentMessage, fake) -> None:
        """Assert what the pipeline stored from the provider's answer."""

    # --- fixtures ---------------------------------------------------------------------------------

    @pytest.fixture
    def fake(self):
        server = self.fake_class().start()
        self.seed(server)
        yield server
        server.stop()
        assert server.schema_violations == [], "a request broke the document's schema"

    @pytest.fixture
    def env(self, team, fake) -> Env:
        account = make_provider_account(team, provider=self.provider, base_url=fake.url + self.base_path,
                                        api_key=fake.api_key)
        mailbox = make_provider_mailbox(account, **{**SENDER, **self.mailbox_fields(fake)})
        return Env(team=team, account=account, mailbox=mailbox,
                   contact=make_contact(team, **RECIPIENT, **self.contact_ids(fake)))

    def queue(self, env: Env, **kwargs) -> SentMessage:
        kwargs.setdefault("subject", "Follow up")
        kwargs.setdefault("html", "<p>Hello Jane,</p><p>Following up on our conversation.</p>")
        return sent_message_create(team=env.team, actor=None, mailbox=env.mailbox, contact=env.contact, **kwargs)

    def provider_for(self, env: Env):
        return provider_for_mailbox(Mailbox.objects.select_related("provider_account").get(pk=env.mailbox.pk))

    # --- the contract ------------------------------------------------------------------------------

    @pytest.mark.django_db
    def test_send_success(self, env, fake):
        message = self.queue(env)
        drive(message.pk)
        message.refresh_from_db()
        assert message.status == SentMessage.Status.SENT, message.error_message
        assert len(fake.requests) == 1 and len(fake.messages) == 1
        recorded = fake.requests[0]
        assert recorded.header("User-Agent").startswith("Outreach/")
        assert recorded.header("Accept") == "application/json"
        self.assert_request(recorded, message, env)
        assert timeline_kinds(message) == [K.MESSAGE_QUEUED, K.MESSAGE_SENDING, K.MESSAGE_SENT]
        self.assert_result(message, fake)

    @pytest.mark.django_db
    def test_idempotency_key_sent_exactly_when_the_provider_deduplicates(self, env, fake):
        assert get_provider_class(self.provider).capabilities.idempotent is self.idempotent
        message = self.queue(env)
        drive(message.pk)
        expected = str(SentMessage.objects.get(pk=message.pk).idempotency_key) if self.idempotent else None
        assert [r.header("Idempotency-Key") for r in fake.requests] == [expected]

    @pytest.mark.django_db
    def test_unreadable_success_answer_is_bad_response(self, env, fake):
        """A 2xx whose body is not the document's JSON: BadResponse from the shared base, permanent (it
        was accepted, so no retry), with our reason and the body kept. Where the document promises no
        field, the text is kept as the raw answer instead."""
        fake.fail_next(reply=Reply(self.success_status, "<html>maintenance</html>", "text/html"))
        message = self.queue(env)
        provider = self.provider_for(env)
        if not self.promises_json:
            assert provider.send(sent_message_outgoing(message)).raw == {"body": "<html>maintenance</html>"}
            return
        with pytest.raises(perr.BadResponse) as info:
            provider.send(sent_message_outgoing(message))
        err = info.value
        assert err.provider == self.provider and err.status == self.success_status and not err.transient
        assert err.reason == "bad_response" and err.provider_code == "" and "maintenance" in err.body

    @pytest.mark.django_db
    def test_unreadable_success_answer_settles_the_message(self, env, fake):
        """Through the pipeline, an unreadable 2xx is not retried (the request was accepted). Where the
        provider has no idempotency key it may have been delivered: ``unknown``, for the user to decide;
        where it deduplicates on our key it stays ``failed``."""
        if not self.promises_json:
            pytest.skip("the document promises no body: any 2xx is a send")
        fake.fail_next(reply=Reply(self.success_status, "<html>maintenance</html>", "text/html"))
        message = self.queue(env)
        [outcome] = drive(message.pk)
        message.refresh_from_db()
        assert outcome.retry_in is None and len(fake.requests) == 1
        if self.idempotent:
            assert message.status == "failed" and message.error_code == "bad_response"
            assert timeline_kinds(message)[-1] == "message_failed"
        else:
            assert message.status == "unknown" and message.error_code == "outcome_unknown"
            assert "may have been delivered" in message.error_message and message.handed_over_at is not None
            assert timeline_kinds(message)[-1] == "message_unknown"

    @pytest.mark.django_db
    def test_documented_error(self, env, fake, error_case: ErrorCase):
        error_case.arrange(fake, env)
        message = self.queue(env, **error_case.message_kwargs)
        provider = self.provider_for(env)
        with pytest.raises((perr.ProviderError, perr.ConfigurationError)) as info:
            provider.send(sent_message_outgoing(message))
        err = info.value
        assert type(err) is error_case.error, f"{type(err).__name__}: {err}"
        assert err.provider == self.provider
        if error_case.provider_code is not None:
            assert err.provider_code == error_case.provider_code
        if error_case.status is not None:
            assert err.status == error_case.status
        if error_case.field is not None:
            assert err.field == error_case.field
        if isinstance(err, perr.RateLimited) and fake.statuses()[-1] == 429:
            assert err.retry_after is not None
        assert fake.messages == []

    @pytest.mark.django_db
    def test_missing_vendor_id_fails_before_any_http_call(self, env, fake, missing_id_case: MissingIdCase):
        missing_id_case.blank(env)
        message = self.queue(env)
        drive(message.pk)
        message.refresh_from_db()
        assert message.status == SentMessage.Status.FAILED
        assert message.error_code == "configuration"
        assert missing_id_case.words in message.error_message
        assert fake.requests == []

    @pytest.mark.django_db
    def test_capability_refusal(self, env, fake, unsupported_case: UnsupportedCase):
        with pytest.raises(ValidationError) as info:
            self.queue(env, **unsupported_case.kwargs)
        assert unsupported_case.text in " ".join(info.value.message_dict[unsupported_case.field])
        if unsupported_case.outgoing:
            ok = self.queue(env)
            outgoing = dataclasses.replace(sent_message_outgoing(ok), **unsupported_case.outgoing)
            with pytest.raises(perr.UnsupportedFeature):
                self.provider_for(env).send(outgoing)
        assert fake.requests == []

    @pytest.mark.django_db
    def test_transient_error_then_success_delivers_once(self, env, fake):
        fake.fail_next(1, status=self.transient_status)
        message = self.queue(env)
        outcomes = drive(message.pk)
        message.refresh_from_db()
        assert [o.retry_in is not None for o in outcomes] == [True, False]
        assert message.status == SentMessage.Status.SENT and message.attempts == 2
        assert fake.statuses()[0] == self.transient_status and len(fake.requests) == 2
        assert len(fake.messages) == 1
        assert timeline_kinds(message) == [K.MESSAGE_QUEUED, K.MESSAGE_SENDING, K.MESSAGE_RETRY, K.MESSAGE_SENDING, K.MESSAGE_SENT]
        retry = TimelineEvent.objects.get(sent_message=message, kind=K.MESSAGE_RETRY)
        assert retry.data["status"] == self.transient_status and retry.data["attempt"] == 1

    @pytest.mark.django_db
    def test_rate_limited_waits_retry_after(self, env, fake):
        fake.fail_next(1, reply=fake.rate_limited_reply(1, 20))
        message = self.queue(env)
        outcomes = drive(message.pk)
        message.refresh_from_db()
        assert outcomes[0].retry_in == 1.0
        assert message.status == SentMessage.Status.SENT and len(fake.messages) == 1
        retry = TimelineEvent.objects.get(sent_message=message, kind=K.MESSAGE_RETRY)
        assert retry.data["code"] == "rate_limited" and retry.data["retry_in"] == 1.0

    @pytest.mark.django_db
    def test_lost_response_never_sends_twice(self, env, fake, settings):
        settings.OUTREACH_HTTP_READ_TIMEOUT = 0.3
        fake.delay_next_response(1.0)
        message = self.queue(env)
        drive(message.pk)
        message.refresh_from_db()
        assert len(fake.messages) == 1
        if self.idempotent:
            assert message.status == SentMessage.Status.SENT
            keys = [r.header("Idempotency-Key") for r in fake.requests]
            assert keys == [str(message.idempotency_key)] * 2
            assert timeline_kinds(message) == [K.MESSAGE_QUEUED, K.MESSAGE_SENDING, K.MESSAGE_RETRY, K.MESSAGE_SENDING, K.MESSAGE_SENT]
        else:  # no idempotency key in the document: the outcome is unknown, so no second try
            assert message.status == SentMessage.Status.UNKNOWN and message.error_code == "outcome_unknown"
            assert len(fake.requests) == 1 and message.handed_over_at is not None

    @pytest.mark.django_db
    def test_wrong_api_key_is_permanent(self, env, fake):
        env.account.api_key = "not-the-key"
        env.account.save()
        message = self.queue(env)
        outcomes = drive(message.pk)
        message.refresh_from_db()
        assert len(outcomes) == 1 and message.status == SentMessage.Status.FAILED
        assert message.error_code == "authentication"
        assert fake.messages == []
