"""The delivery engine: the SentMessage table is the outbox, Celery messages are only wake-up calls.

Path of one message (see README, "Path of one message")::

    waiting (scheduled | queued, due_at)                       sent_message_create
      └─ claim: dispatcher (beat, worker start) or the wake-up task for one id
         rows due now, SELECT … FOR UPDATE SKIP LOCKED (PostgreSQL) / a conditional UPDATE
         (SQLite), sending rules per mailbox → status sending, claimed_by=<dispatch token>,
         lease_until
      └─ a worker takes the claim (UPDATE … WHERE claimed_by=<dispatch token> → its own token;
         a duplicated or late broker message finds nothing to take) and sends each message:
           start attempt (attempts+1, lease renewed)        one short transaction
           prepare once (stored in prepared_request)        reused verbatim by every retry
           on_handover → handed_over_at (conditional)       just before SMTP's end-of-data indicator /
                                                            the HTTP request (with the previous outcome)
           provider.deliver()                               never inside a transaction
           outcome, conditional on status=sending AND claimed_by=<worker token>, with its event
      └─ recovery (every dispatch): an expired lease before hand-over → queued again; after
         hand-over → queued again with the same idempotency key for providers that have one,
         else ``unknown`` ("may have been delivered": the user marks it sent or sends it again).

Every function takes ``now`` (default ``timezone.now()``) so tests move time without sleeping.
"""
from __future__ import annotations

import functools
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from providers import errors as perr
from providers.registry import get_provider_class, provider_for_mailbox

from ..crypto import CredentialDecryptionError
from ..models import Mailbox, SentMessage, TimelineEvent
from .sending_rules import mailbox_allowance
from .timeline import timeline_event_record, timeline_events_statement

logger = logging.getLogger(__name__)

S = SentMessage.Status
K = TimelineEvent.Kind


class LeaseLost(Exception):
    """Raised from the hand-over callback when this worker no longer holds the message's lease:
    the provider aborts before the point of no return and nothing is recorded."""


def _infrastructure_errors() -> tuple[type[BaseException], ...]:
    """Errors of our own infrastructure (database, Redis, broker): transient, never a message's fault."""
    found: list[type[BaseException]] = [DatabaseError]
    try:
        import redis.exceptions

        found.append(redis.exceptions.RedisError)
    except ImportError:  # pragma: no cover - redis is pinned in requirements.txt
        pass
    try:
        import kombu.exceptions

        found.append(kombu.exceptions.OperationalError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


INFRASTRUCTURE_ERRORS = _infrastructure_errors()


@dataclass(frozen=True)
class SendOutcome:
    """What one send of one message did: ``retry_in`` seconds until it is due again (a retry), else None.
    ``sent_message`` is the row as this run left it (refreshed)."""

    sent_message: SentMessage
    retry_in: float | None = None


@dataclass
class DispatchResult:
    """One dispatcher run: ``claimed`` ids handed to workers (by task), ``recovered`` ids whose lease had
    expired, ``held`` ids kept back by sending rules, ``released`` ids whose hand-off to the broker failed."""

    claimed: list[list[int]] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)


def _token(kind: str) -> str:
    """A unique claim token naming who holds a lease (for humans reading the row, and for the conditions)."""
    return f"{kind}:{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def _supports_skip_locked() -> bool:
    return connection.features.has_select_for_update_skip_locked


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the provider's Retry-After if given, else
    exponential backoff (base OUTREACH_RETRY_BASE_SECONDS × 2^(attempt-1), capped at
    OUTREACH_RETRY_MAX_SECONDS) with full jitter in its upper half."""
    if retry_after is not None:
        return max(float(retry_after), 0.0)
    base = settings.OUTREACH_RETRY_BASE_SECONDS * (2 ** max(attempt - 1, 0))
    capped = min(base, settings.OUTREACH_RETRY_MAX_SECONDS)
    return capped / 2 + random.uniform(0, capped / 2)


# --- recovery ------------------------------------------------------------------------------------


def sent_messages_recover(*, now: datetime | None = None) -> list[int]:
    """Settle every ``sending`` message whose lease expired (its worker died, was killed, or lost the
    broker message). Returns the ids recovered.

    Before the hand-over point the message is simply queued again (due now). After it, a provider that
    deduplicates on our idempotency key gets it again with the same key and the same stored request;
    any other provider's message becomes ``unknown`` with a timeline event.
    """
    now = now or timezone.now()
    expired = SentMessage.objects.filter(status=S.SENDING).filter(Q(lease_until__lt=now) | Q(lease_until__isnull=True))
    recovered = list(expired.filter(handed_over_at__isnull=True).values_list("pk", flat=True)[:1000])
    if recovered:
        expired.filter(pk__in=recovered, handed_over_at__isnull=True).update(
            status=S.QUEUED, due_at=now, claimed_by="", lease_until=None, hold_reason="")
    with transaction.atomic():
        qs = expired.filter(handed_over_at__isnull=False).select_related("contact").order_by("pk")
        if _supports_skip_locked():
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        rows = list(qs[:200])
        for message in rows:
            mine = SentMessage.objects.filter(pk=message.pk, status=S.SENDING, claimed_by=message.claimed_by,
                                              handed_over_at=message.handed_over_at)
            if get_provider_class(message.provider).capabilities.idempotent:
                if mine.update(status=S.QUEUED, due_at=now, claimed_by="", lease_until=None):
                    timeline_event_record(
                        contact=message.contact, kind=K.MESSAGE_RETRY, sent_message=message,
                        summary=f"The worker stopped after handing attempt {message.attempts} to {message.provider}; "
                                "retrying with the same idempotency key (the provider cannot send it twice).",
                        data={"code": "worker_lost", "attempt": message.attempts, "retry_in": 0})
                    recovered.append(message.pk)
            elif mine.update(status=S.UNKNOWN, claimed_by="", lease_until=None, failed_at=now,
                             error_code="worker_lost",
                             error_message="The worker stopped after handing the message to the server; it may have "
                                           "been delivered. Mark it as sent, or send it again."):
                timeline_event_record(
                    contact=message.contact, kind=K.MESSAGE_UNKNOWN, sent_message=message,
                    summary=f"“{message.subject}” may have been delivered: the worker stopped after handing it to "
                            f"{message.provider}. Not sent again automatically.",
                    data={"code": "worker_lost", "attempt": message.attempts})
                recovered.append(message.pk)
    return recovered


# --- claiming -------------------------------------------------------------------------------------


def _claim_due(*, now: datetime, limit: int, ids: list[int] | None = None) -> tuple[list[tuple[str, list[int]]], list[int]]:
    """Claim due waiting messages (all, or only ``ids``) under the mailboxes' sending rules.

    Returns ([(dispatch token, [ids claimed under it])], [ids held back]). One token per mailbox chunk
    of at most OUTREACH_DISPATCH_CHUNK messages, so one worker task sends a mailbox's messages over
    one SMTP session. The claim is a conditional UPDATE (status still waiting, still due), so two
    dispatchers can never claim the same row; PostgreSQL also skips rows another dispatcher holds.
    """
    claims: list[tuple[str, list[int]]] = []
    held: list[int] = []
    chunk = max(int(settings.OUTREACH_DISPATCH_CHUNK), 1)
    lease = timedelta(seconds=settings.OUTREACH_DISPATCH_LEASE_SECONDS)
    with transaction.atomic():
        due = Q(due_at__lte=now) | Q(due_at__isnull=True)  # rows made outside the service have no due time: due now
        qs = SentMessage.objects.filter(due, status__in=SentMessage.WAITING)
        if ids is not None:
            qs = qs.filter(pk__in=ids)
        qs = qs.order_by("due_at", "pk")
        if _supports_skip_locked():
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        rows = list(qs.values_list("pk", "mailbox_id")[:limit])
        if not rows:
            return claims, held
        by_mailbox: dict[int, list[int]] = {}
        for pk, mailbox_id in rows:
            by_mailbox.setdefault(mailbox_id, []).append(pk)
        # Lock the mailboxes (in id order) so two dispatchers agree on caps and intervals.
        mailboxes = Mailbox.objects.filter(pk__in=by_mailbox).order_by("pk")
        if connection.features.has_select_for_update:
            mailboxes = mailboxes.select_for_update(of=("self",))
        for mailbox in mailboxes:
            pending = by_mailbox[mailbox.pk]
            allowance = mailbox_allowance(mailbox=mailbox, now=now, wanted=len(pending))
            take, rest = pending[:allowance.count], pending[allowance.count:]
            if rest:
                SentMessage.objects.filter(pk__in=rest, status__in=SentMessage.WAITING).update(
                    due_at=allowance.next_at, hold_reason=allowance.reason[:300])
                held.extend(rest)
            if allowance.next_send_at is not None:
                Mailbox.objects.filter(pk=mailbox.pk).update(next_send_at=allowance.next_send_at)
            for start in range(0, len(take), chunk):
                part = take[start:start + chunk]
                token = _token("dispatch")
                SentMessage.objects.filter(due, pk__in=part, status__in=SentMessage.WAITING).update(
                    status=S.SENDING, claimed_by=token, lease_until=now + lease, hold_reason="", handed_over_at=None)
                got = list(SentMessage.objects.filter(pk__in=part, claimed_by=token).order_by("due_at", "pk")
                           .values_list("pk", flat=True))
                if got:
                    claims.append((token, got))
    return claims, held


def _release(ids: list[int], token: str, *, now: datetime, reason: str) -> None:
    """Give claimed-but-never-started messages back to the outbox (e.g. the broker refused the task)."""
    SentMessage.objects.filter(pk__in=ids, status=S.SENDING, claimed_by=token).update(
        status=S.QUEUED, claimed_by="", lease_until=None, due_at=now + timedelta(seconds=settings.OUTREACH_INFRA_RETRY_SECONDS),
        hold_reason=reason[:300])


def sent_messages_dispatch(*, now: datetime | None = None, limit: int | None = None, enqueue=None) -> DispatchResult:
    """One dispatcher run (Celery beat every OUTREACH_DISPATCH_INTERVAL_SECONDS, and at worker start):
    recover expired leases, claim due messages under the sending rules, hand each chunk of ids to a
    worker. Safe to run in any number of processes at once.

    ``enqueue(ids, token)`` sends the chunk to a worker (default: the ``outreach.send_messages`` task,
    published without retries); when it raises (broker down), the chunk is released to the outbox and
    picked up by a later run. Returns a DispatchResult.
    """
    now = now or timezone.now()
    result = DispatchResult(recovered=sent_messages_recover(now=now))
    claims, result.held = _claim_due(now=now, limit=limit or settings.OUTREACH_DISPATCH_BATCH_SIZE)
    if enqueue is None:
        from ..tasks import send_messages

        def enqueue(chunk, token):
            send_messages.apply_async((chunk, token), retry=False)
    broker_error: Exception | None = None
    for token, chunk in claims:
        if broker_error is None:
            try:
                enqueue(chunk, token)
                result.claimed.append(chunk)
                continue
            except Exception as err:  # broker unavailable: the outbox keeps the message, a later run retries
                broker_error = err
                logger.warning("Could not hand messages to a worker (%s); released to the outbox.", err)
        _release(chunk, token, now=now,
                 reason=f"waiting: the task queue is unavailable ({type(broker_error).__name__}); retrying shortly")
        result.released.extend(chunk)
    return result


# --- sending claimed messages ----------------------------------------------------------------------


def sent_messages_send_claimed(*, ids: list[int], token: str) -> list[SendOutcome]:
    """Take over the claim ``token`` on ``ids`` (a worker task's job) and send each message in order.

    The take-over is a conditional UPDATE from the dispatch token to this worker's own token, so a
    broker message delivered twice, or late after its lease was recovered, takes nothing. What does not
    change per message is read once per batch (:class:`_Batch`): the rows with their mailbox, contact and
    attachments, their unsubscribe keys, the suppressed addresses, one provider (decrypted credentials)
    per mailbox. Returns a SendOutcome per message this worker sent (in order).
    """
    worker = _token("worker")
    now = timezone.now()
    lease = timedelta(seconds=settings.OUTREACH_SEND_LEASE_SECONDS)
    if not SentMessage.objects.filter(pk__in=ids, status=S.SENDING, claimed_by=token).update(
            claimed_by=worker, lease_until=now + lease):
        return []
    batch = _Batch.load(ids, worker)
    outcomes = []
    try:
        for index, message in enumerate(batch.messages):
            batch.later = [m.pk for m in batch.messages[index + 1:]]
            outcomes.append(_send_one(message, batch))
    except SoftTimeLimitExceeded:
        # The task's soft time limit (settings.CELERY_TASK_ANNOTATIONS): stop here. What was not handed over
        # goes back to the outbox, due now; a message past its hand-over point keeps its lease, whose
        # expiry settles it as after a crash (same key again, or unknown).
        batch.flush()
        given_back = SentMessage.objects.filter(pk__in=ids, status=S.SENDING, claimed_by=worker,
                                                handed_over_at__isnull=True).update(
            status=S.QUEUED, due_at=timezone.now(), claimed_by="", lease_until=None, hold_reason="")
        logger.warning("Send batch stopped by its soft time limit after %d of %d messages; %d given back to the outbox.",
                       len(outcomes), len(batch.messages), given_back)
        return outcomes
    batch.flush()
    return outcomes


class _Batch:
    """One worker's batch of claimed messages (one mailbox, usually): what is read once per batch, and the
    outcomes not yet written.

    A ``sent`` outcome waits in ``pending`` until the next message's hand-over marker, whose transaction
    writes both (:meth:`write`: one transaction per message), else until the end of the batch
    (:meth:`flush`). So it is durable before the next message is handed over, and waiting is safe: until it
    is written the row stays ``sending`` past its hand-over point, which recovery settles as it would after
    a crash (one kill leaves at most one message there). While the server takes a message after its
    end-of-data indicator, the next message is built (:meth:`idle`). Every write is conditional on this
    worker's lease. Suppressions are read once per batch: one added meanwhile applies from the next batch.
    """

    def __init__(self, worker: str, messages: list[SentMessage], suppressed: set[str],
                 attachments: dict[int, list] | None = None, external_ids: dict[int, list] | None = None):
        self.worker = worker
        self.messages = messages
        self.attachments = attachments or {}  #: message id → its Attachment rows
        self.external_ids = external_ids or {}  #: contact id → its ExternalId rows
        self.by_id = {m.pk: m for m in messages}
        self.suppressed = suppressed  #: lower-cased addresses of the batch on their team's suppression list
        self.providers: dict[int, object] = {}  #: mailbox id → provider (credentials decrypted once)
        self.pending: list[tuple[SentMessage, dict, list[dict]]] = []  #: (message, fields, events) to write
        self.later: list[int] = []  #: ids still to send after the current one
        self.ready: dict[int, tuple[object, bytes | None]] = {}  #: id → (OutgoingMessage, request built) ahead of time
        self.outgoing: dict[int, object] = {}  #: id → OutgoingMessage built ahead of time (its request not yet)
        self.lease_renewed = time.monotonic()

    @classmethod
    def load(cls, ids: list[int], worker: str) -> "_Batch":
        from ..inbound.unsubscribe import unsubscribe_keys_attach
        from ..models import Attachment, ExternalId, Suppression, Team

        mine = SentMessage.objects.filter(pk__in=ids, status=S.SENDING, claimed_by=worker)
        messages = list(mine.select_related("contact", "contact__lead", "unsubscribe_key").defer(*_NOT_READ_TO_SEND)
                        .order_by("due_at", "pk"))
        # The batch's few mailboxes and teams, read once and shared (not one copy per row of a join).
        mailboxes = Mailbox.objects.select_related("provider_account").in_bulk({m.mailbox_id for m in messages})
        teams = Team.objects.in_bulk({m.team_id for m in messages})
        for message in messages:
            message.mailbox, message.team = mailboxes[message.mailbox_id], teams[message.team_id]
        unsubscribe_keys_attach(sent_messages=messages)
        # Attachments and vendor ids of the whole batch in one query each (not Django's per-row prefetch).
        attachments: dict[int, list] = {}
        for attachment in Attachment.objects.filter(sent_message__in=[m.pk for m in messages]).order_by("pk"):
            attachments.setdefault(attachment.sent_message_id, []).append(attachment)
        external_ids: dict[int, list] = {}
        for row in ExternalId.objects.filter(contact__in={m.contact_id for m in messages}).order_by("pk"):
            external_ids.setdefault(row.contact_id, []).append(row)
        by_team: dict[int, set[str]] = {}
        for message in messages:
            by_team.setdefault(message.team_id, set()).update(a.lower() for a in (*message.to, *message.cc, *message.bcc))
        suppressed: set[str] = set()
        for team_id, addresses in by_team.items():
            suppressed.update(e.lower() for e in Suppression.objects.filter(team_id=team_id, email__in=addresses)
                              .values_list("email", flat=True))
        return cls(worker, messages, suppressed, attachments, external_ids)

    def provider(self, message: SentMessage):
        """The provider of ``message``'s mailbox, built (credentials decrypted) once per batch."""
        provider = self.providers.get(message.mailbox_id)
        if provider is None:
            provider = self.providers[message.mailbox_id] = provider_for_mailbox(message.mailbox)
        return provider

    def blocked(self, message: SentMessage) -> list[str]:
        """The recipients of ``message`` on its team's suppression list (as read at the batch's start)."""
        return [a for a in (*message.to, *message.cc, *message.bcc) if a.lower() in self.suppressed]

    def build(self, message: SentMessage) -> tuple[object, bytes | None]:
        """(the OutgoingMessage of ``message``, its provider request if it had none stored yet, else None).
        Raises what the provider's ``prepare`` raises."""
        return self._request(message, self._outgoing(message))

    def _outgoing(self, message: SentMessage):
        """The OutgoingMessage of ``message`` (from what the batch read)."""
        from .sending import sent_message_outgoing

        return sent_message_outgoing(message, attachments=self.attachments.get(message.pk, ()),
                                     external_ids=self.external_ids.get(message.contact_id, ()))

    def _request(self, message: SentMessage, outgoing) -> tuple[object, bytes | None]:
        """(``outgoing``, the provider's request for it, or None when ``message`` has one stored)."""
        if message.prepared_request is not None:
            return outgoing, None
        return outgoing, self.provider(message).prepare(outgoing)

    def take(self, message: SentMessage) -> tuple[object, bytes | None]:
        """What :meth:`build` returns for ``message``: built ahead of time (:meth:`prepare_next`) as far as
        it got, the rest now. Raises what :meth:`build` raises."""
        ready = self.ready.pop(message.pk, None)
        if ready is not None:
            return ready
        outgoing = self.outgoing.pop(message.pk, None)
        return self.build(message) if outgoing is None else self._request(message, outgoing)

    def prepare_next(self) -> None:
        """Build the next message of the batch ahead of time, one step per call: its OutgoingMessage (kept
        in ``outgoing``), then its provider request (kept in ``ready``), so that each step fits in one of
        the server's answers. Any error is left for :func:`_send_one` to meet again at its usual place;
        nothing is written."""
        if not self.later or self.later[0] in self.ready:
            return
        message = self.by_id[self.later[0]]
        if self.blocked(message):
            return
        try:
            outgoing = self.outgoing.pop(message.pk, None)
            if outgoing is None:
                self.outgoing[message.pk] = self._outgoing(message)
            else:
                self.ready[message.pk] = self._request(message, outgoing)
        except SoftTimeLimitExceeded:
            raise
        except Exception:  # noqa: BLE001 - met again, and recorded, when the message's turn comes
            pass

    def idle(self) -> None:
        """The provider waits for the server (``deliver``'s ``idle``): one step of building the next message
        of the batch (:meth:`prepare_next`). Never raises (but a soft time limit). Outcomes are not written
        here: they ride in the next hand-over marker's transaction (:meth:`write`)."""
        self.prepare_next()

    def defer(self, message: SentMessage, fields: dict, events: list[dict]) -> None:
        """Keep an outcome to write with the next :meth:`write` (the next hand-over marker) or :meth:`flush`."""
        self.pending.append((message, fields, events))

    def write(self, message: SentMessage, fields: dict, events: list[dict]) -> bool:
        """In one transaction: the pending outcomes, then ``fields`` on ``message`` (conditional on the
        lease) with its ``events`` (timeline event kwargs), and now and then the lease of the rest of the
        batch. Returns whether ``message``'s row was still ours."""
        return self._commit([*self.pending, (message, fields, events)])[-1]

    def flush(self) -> None:
        """Write the pending outcomes (end of the batch)."""
        if self.pending:
            self._commit(list(self.pending))

    def _commit(self, rows: list[tuple[SentMessage, dict, list[dict]]], *, tries: int = 5) -> list[bool]:
        # Retried a few times while the database is briefly unavailable: a send that happened must be recorded.
        for attempt in range(tries):
            try:
                held_ids = _write_held(self.worker, [
                    (message.pk, fields, [{"contact": message.contact, "sent_message": message, **event} for event in events])
                    for message, fields, events in rows])
                break
            except DatabaseError:
                if attempt == tries - 1:
                    raise
                logger.warning("Database unavailable while recording outcomes; retrying.")
                connection.close()
                time.sleep(1.0 + attempt)
        if self.later and time.monotonic() - self.lease_renewed > settings.OUTREACH_SEND_LEASE_SECONDS / 4:
            # heartbeat: the rest of this batch stays ours while we work through it (one UPDATE, autocommit)
            SentMessage.objects.filter(pk__in=self.later, status=S.SENDING, claimed_by=self.worker).update(
                lease_until=timezone.now() + timedelta(seconds=settings.OUTREACH_SEND_LEASE_SECONDS))
            self.lease_renewed = time.monotonic()
        self.pending = [row for row in self.pending if all(row[0] is not written[0] for written in rows)]
        held = []
        for message, fields, _ in rows:
            ok = message.pk in held_ids
            held.append(ok)
            if ok:
                for name, value in fields.items():
                    setattr(message, name, value)
            else:
                logger.warning("SentMessage %s: lease lost; %s not recorded by this worker.", message.pk,
                               fields.get("status") or "the hand-over")
                if rows[-1][0] is not message or fields.get("status"):
                    message.refresh_from_db()
        return held


#: Columns of a batch's rows (and their contact, lead and unsubscribe key) that sending does not read: left out of
#: the batch's query (Django loads a deferred field on first access, so reading one costs a query, never a
#: wrong value). What a send writes is written by field name, without reading the old value.
_NOT_READ_TO_SEND = (
    "created_at", "updated_at", "created_by", "provider_message_id", "provider_thread_id", "provider_status",
    "provider_response", "recipient_results", "error_code", "error_message", "scheduled_at", "due_at", "hold_reason",
    "lease_until", "queued_at", "sent_at", "failed_at", "bounced_at", "bounce_reason", "replied_at",
    *(f"contact__{name}" for name in ("created_at", "updated_at", "company", "title", "phone", "linkedin_url",
                                      "custom_fields", "source", "time_zone", "import_job", "import_row")),
    *(f"contact__lead__{name}" for name in ("created_at", "updated_at", "status", "owner", "source")),
    *(f"unsubscribe_key__{name}" for name in ("created_at", "updated_at", "used_at")),
)


def _write_held(worker: str, rows: list[tuple[int, dict, list[dict]]]) -> set[int]:
    """The send path's one write transaction: for each row (SentMessage id, ``fields`` {field name: value},
    its timeline ``events`` as :func:`timeline_events_statement` takes them), the fields and ``updated_at``
    are written only where this ``worker`` still holds the row (status ``sending``, ``claimed_by`` =
    worker), and the events only of the rows written. Returns the ids written.

    Two statements, the UPDATE of :func:`_update_held` and the INSERT of the events, on the database
    driver's own cursor (no ORM, no Django cursor layer: this runs once per message), in one transaction:
    ``BEGIN IMMEDIATE`` (SQLite: the write lock at once) or ``BEGIN`` … ``COMMIT``; inside a caller's
    ``atomic()`` block (tests), a savepoint of it. Driver errors are raised as Django's DatabaseError."""
    connection.ensure_connection()
    if connection.in_atomic_block or not connection.get_autocommit():
        with transaction.atomic():
            return _write_rows(worker, rows)
    raw = connection.connection
    with connection.wrap_database_errors:
        cursor = raw.cursor()
        try:
            cursor.execute(_BEGIN.get(connection.vendor, "BEGIN"))
            try:
                held = _write_rows(worker, rows, cursor)
                cursor.execute("COMMIT")
            except BaseException:
                try:
                    cursor.execute("ROLLBACK")
                except Exception:  # the connection is gone: nothing to roll back, the first error tells
                    pass
                raise
        finally:
            cursor.close()
    return held


_BEGIN = {"sqlite": "BEGIN IMMEDIATE"}  #: the transaction start of :func:`_write_held` per vendor (else BEGIN)


def _write_rows(worker: str, rows: list[tuple[int, dict, list[dict]]], cursor=None) -> set[int]:
    """The statements of :func:`_write_held` on ``cursor`` (a driver cursor; None: Django's)."""
    held = _update_held(worker, [(key, fields) for key, fields, _ in rows], cursor)
    events = [event for key, _, row_events in rows if key in held for event in row_events]
    if events:
        _execute(cursor, *timeline_events_statement(events))
    return held


def _execute(cursor, sql: str, params: list):
    """Run ``sql`` (Django's ``%s`` placeholders) on a driver ``cursor`` (its own placeholder style), or on a
    Django cursor when ``cursor`` is None. Returns the cursor used (closed when it was Django's)."""
    if cursor is None:
        with connection.cursor() as django_cursor:
            django_cursor.execute(sql, params)
            return _Fetched(django_cursor.rowcount, django_cursor.fetchall() if django_cursor.description else [])
    cursor.execute(_driver_sql(sql, connection.vendor), params)
    return _Fetched(cursor.rowcount, cursor.fetchall() if cursor.description else [])


@dataclass(frozen=True)
class _Fetched:
    rowcount: int
    rows: list


@functools.lru_cache(maxsize=128)
def _driver_sql(sql: str, vendor: str) -> str:
    """``sql`` in the driver's placeholder style: sqlite3 takes ``?`` (the statements here hold no ``%``
    but their placeholders), psycopg takes ``%s`` as Django writes it."""
    return sql.replace("%s", "?") if vendor == "sqlite" else sql


def _update_held(worker: str, rows: list[tuple[int, dict]], cursor=None) -> set[int]:
    """Write each row's ``fields`` ({field name: value}) on SentMessage ``pk``, only where this ``worker``
    still holds it (status ``sending``, ``claimed_by`` = worker), in one UPDATE (a CASE per column when
    the rows set different columns), and ``updated_at``; on the driver ``cursor`` (None: Django's). Returns
    the ids written. One statement where the database returns rows from an UPDATE (PostgreSQL, SQLite ≥
    3.35); else one per row."""
    now = timezone.now()
    rows = [(key, {**fields, "updated_at": now}) for key, fields in rows]
    if not connection.features.can_return_columns_from_insert:  # no RETURNING: one row at a time, by its count
        return {key for key, fields in rows
                if _execute(cursor, _update_sql((tuple(fields),), returning=False),
                            [*_set_params([(key, fields)]), key, S.SENDING.value, worker]).rowcount}
    done = _execute(cursor, _update_sql(tuple(tuple(fields) for _, fields in rows), returning=True),
                    [*_set_params(rows), *(key for key, _ in rows), S.SENDING.value, worker])
    return {row[0] for row in done.rows}


@functools.lru_cache(maxsize=64)
def _update_sql(shape: tuple[tuple[str, ...], ...], *, returning: bool) -> str:
    """The UPDATE of :func:`_update_held` for rows setting the columns ``shape`` (a tuple of field names
    per row): ``col = %s`` for one row, else ``col = CASE id WHEN %s THEN %s … ELSE col END`` per column
    any row sets (parameters: :func:`_set_params`), then ``id IN (…)`` and the lease condition."""
    meta = SentMessage._meta
    quote = connection.ops.quote_name
    pk = quote(meta.pk.column)
    names = list(dict.fromkeys(name for fields in shape for name in fields))
    if len(shape) == 1:
        sets = [f"{quote(meta.get_field(name).column)} = %s" for name in names]
    else:
        sets = []
        for name in names:
            column = quote(meta.get_field(name).column)
            whens = " ".join("WHEN %s THEN %s" for fields in shape if name in fields)
            sets.append(f"{column} = CASE {pk} {whens} ELSE {column} END")
    marks = ", ".join(["%s"] * len(shape))
    return (f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} WHERE {pk} IN ({marks}) "
            f"AND {quote('status')} = %s AND {quote('claimed_by')} = %s" + (f" RETURNING {pk}" if returning else ""))


def _set_params(rows: list[tuple[int, dict]]) -> list:
    """The SET parameters of :func:`_update_sql` for ``rows``, in its order."""
    meta = SentMessage._meta
    if len(rows) == 1:
        return [_db_value(meta.get_field(name), value) for name, value in rows[0][1].items()]
    params = []
    for name in dict.fromkeys(name for _, fields in rows for name in fields):
        field = meta.get_field(name)
        for key, fields in rows:
            if name in fields:
                params.extend((key, _db_value(field, fields[name])))
    return params


def _db_value(field, value):
    """``value`` as the database takes it for ``field``, as ``field.get_db_prep_save`` gives it, with
    shortcuts for what the send path writes most: a str (or a str choice) on a char or text field and an
    int on an integer field as they are (what those fields' preparation returns for them; on PostgreSQL
    Django wraps the int in psycopg's Int4/Int8, the same integer to the driver), and an aware
    datetime on a datetime field through ``connection.ops.adapt_datetimefield_value`` alone (what
    DateTimeField's preparation comes to for it). Anything else (naive datetimes, JSON, bytes) through the
    field."""
    if value is None:
        return None
    kind = _KINDS.get(field) or _kind(field)
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "integer" and type(value) is int:
        return value
    if kind == "datetime" and type(value) is datetime and value.tzinfo is not None:
        return connection.ops.adapt_datetimefield_value(value)
    return field.get_db_prep_save(value, connection)


_KINDS: dict = {}  #: field → "text", "integer", "datetime" or "other" (:func:`_db_value`)


def _kind(field) -> str:
    internal = field.get_internal_type()
    kind = _KINDS[field] = ("text" if internal in ("CharField", "TextField") else
                            "integer" if internal in ("PositiveIntegerField", "IntegerField") else
                            "datetime" if internal == "DateTimeField" else "other")
    return kind


def sent_message_send(*, sent_message_id: int, now: datetime | None = None) -> SendOutcome:
    """Claim one message if it is due (and its mailbox's rules allow it now) and send it in this process.
    The wake-up task queued by ``sent_message_create`` runs this; so do tests and scripts.

    Returns a SendOutcome; when the message was not claimable (not due, held, already claimed or
    settled) nothing happens and the outcome carries the row as it is.
    """
    now = now or timezone.now()
    claims, _ = _claim_due(now=now, limit=1, ids=[sent_message_id])
    for token, ids in claims:
        outcomes = sent_messages_send_claimed(ids=ids, token=token)
        if outcomes:
            return outcomes[0]
    return SendOutcome(SentMessage.objects.get(pk=sent_message_id))


def _attempt(message: SentMessage) -> tuple[dict, dict]:
    """The fields and the timeline event (kwargs) recording the start of attempt ``message.attempts``."""
    return ({"attempts": message.attempts, "sending_started_at": message.sending_started_at},
            dict(kind=K.MESSAGE_SENDING, summary=f"Attempt {message.attempts} via {message.provider}.",
                 data={"attempt": message.attempts}))


def _send_one(message: SentMessage, batch: _Batch) -> SendOutcome:
    """One attempt at ``message``. Nothing is written before the hand-over point: the attempt (its count,
    start time and timeline event) is recorded with the hand-over marker, or with the outcome when the
    attempt ends before that point (refused, suppressed…). The marker's transaction also writes the previous
    message's outcome; the next message is built while the provider waits for its server (``_Batch.idle``)."""
    message.attempts += 1
    message.sending_started_at, message.handed_over_at = timezone.now(), None
    message.attempt_recorded = False
    handed_over = False
    unsaved_request: bytes | None = None

    def on_handover() -> None:
        nonlocal handed_over, unsaved_request
        fields, event = _attempt(message)
        fields["handed_over_at"] = timezone.now()
        if unsaved_request is not None:  # stored with the marker: one write at the point of no return
            fields["prepared_request"] = unsaved_request
        if not batch.write(message, fields, [event]):
            raise LeaseLost(f"SentMessage {message.pk}: lease lost before hand-over")
        message.attempt_recorded = True
        handed_over, unsaved_request = True, None

    try:
        blocked = batch.blocked(message)
        if blocked:
            raise perr.RecipientSuppressed(f"Not sent: {', '.join(blocked)} is on your suppression list.",
                                           provider=message.provider, recipient=blocked[0])
        provider = batch.provider(message)
        outgoing, built = batch.take(message)  # built (as far as it got) while the server took the previous one
        if built is not None:
            message.prepared_request = unsaved_request = built
        prepared = bytes(message.prepared_request)
        result = provider.deliver(prepared, outgoing, on_handover=on_handover, idle=batch.idle)
    except LeaseLost:
        logger.warning("SentMessage %s: lease lost to another worker; this worker records nothing.", message.pk)
        return SendOutcome(SentMessage.objects.get(pk=message.pk))
    except perr.ProviderError as err:
        return _record_failure(message, batch, err, handed_over=handed_over, unsaved_request=unsaved_request)
    except perr.ConfigurationError as err:  # set up wrongly, not a provider's answer: failed, never retried
        return _record_failure(message, batch, err, handed_over=handed_over)
    except CredentialDecryptionError as err:
        return _record_failure(message, batch, perr.ConfigurationError(str(err), provider=message.provider,
                                                                        reason="credentials"), handed_over=handed_over)
    except INFRASTRUCTURE_ERRORS as err:
        return _release_infrastructure(message, batch, err)
    except SoftTimeLimitExceeded:  # the batch stops (sent_messages_send_claimed); not this message's fault
        raise
    except Exception as err:  # a bug must not leave the message in 'sending' forever
        logger.exception("Unexpected error sending SentMessage %s", message.pk)
        if handed_over:
            error = perr.OutcomeUnknown(f"Unexpected error after the hand-over ({type(err).__name__}); it may have "
                                        "been delivered.", provider=message.provider, reason="internal_error")
        else:
            error = perr.ProviderError(f"Unexpected error before anything was sent ({type(err).__name__}: {err}).",
                                       provider=message.provider, reason="internal_error")
        return _record_failure(message, batch, error, handed_over=handed_over)
    return _record_sent(message, batch, result)


def _write(message: SentMessage, batch: _Batch, fields: dict, event: dict | None, *, attempt: bool = True) -> bool:
    """Write an outcome now (with the batch's pending ones), only if this worker still holds the lease, with
    its timeline event, atomically. An attempt that ended before its hand-over point is recorded with it
    (``attempt=False``: it does not count, e.g. a wait in our own rate limiter)."""
    events = [event] if event else []
    if attempt and not getattr(message, "attempt_recorded", True):
        start_fields, start_event = _attempt(message)
        fields, events = {**start_fields, **fields}, [start_event, *events]
    message.attempt_recorded = True
    return batch.write(message, fields, events)


def _record_sent(message: SentMessage, batch: _Batch, result) -> SendOutcome:
    raw = dict(result.raw)
    recipients = raw.get("recipients") if isinstance(raw.get("recipients"), dict) else {}
    rejected = [r for r, v in recipients.items() if isinstance(v, dict) and v.get("status") != "sent"]
    note = ""
    imap = raw.get("imap") if isinstance(raw, dict) else None
    if imap:
        note = f" Copy saved to {imap.get('folder')}." if imap.get("appended") else f" (Sent-folder copy failed: {imap.get('error')})"
    if rejected:
        note += f" Refused by the server: {', '.join(rejected)}."
    now = timezone.now()
    fields = dict(status=S.SENT, sent_at=now, claimed_by="", lease_until=None, provider_message_id=result.provider_message_id,
                  provider_thread_id=result.provider_thread_id, provider_status=result.provider_status,
                  provider_response=raw, recipient_results=recipients, error_code="", error_message="", hold_reason="")
    event = dict(kind=K.MESSAGE_SENT,
                 summary=f"Sent “{message.subject}” to {', '.join(r for r in (recipients or message.to) if r not in rejected) or ', '.join(message.to)} "
                         f"via {message.provider}.{note}",
                 data={"provider_message_id": result.provider_message_id, "attempt": message.attempts,
                       "rejected": rejected})
    batch.defer(message, fields, [event])
    return SendOutcome(message)


def _release_infrastructure(message: SentMessage, batch: _Batch, err: BaseException) -> SendOutcome:
    """Our own infrastructure failed (Redis, the database, the broker): back to the outbox, due again
    shortly; this was not a provider attempt, so the attempt is given back. Never failed or unknown."""
    delay = float(settings.OUTREACH_INFRA_RETRY_SECONDS)
    due = timezone.now() + timedelta(seconds=delay)
    logger.warning("SentMessage %s: infrastructure unavailable (%s: %s); retrying in %.0f s.", message.pk,
                   type(err).__name__, err, delay)
    try:
        message.attempts -= 1
        _write(message, batch, dict(status=S.QUEUED, due_at=due, claimed_by="", lease_until=None, handed_over_at=None,
                                    attempts=message.attempts,
                                    hold_reason=f"waiting: {type(err).__name__} (infrastructure unavailable); "
                                                f"next try {timezone.localtime(due):%H:%M:%S}"), None, attempt=False)
    except DatabaseError:  # the database itself is down: the lease expires and recovery re-queues it
        logger.warning("SentMessage %s: could not release; the expired lease will re-queue it.", message.pk)
    return SendOutcome(message, retry_in=delay)


def _record_failure(message: SentMessage, batch: _Batch, err: perr.ProviderError | perr.ConfigurationError, *, handed_over: bool,
                    unsaved_request: bytes | None = None) -> SendOutcome:
    """Retry (transient, attempts left: due again after the backoff), ``unknown`` (OutcomeUnknown, or a
    success answer we could not read from a provider without an idempotency key: it accepted the request,
    so the message may have been delivered) or ``failed``; the timeline event with it. A local
    rate-limiter wait is not counted as an attempt."""
    from .sending import suppress_recipient

    if isinstance(err, perr.BadResponse) and not get_provider_class(message.provider).capabilities.idempotent:
        err = perr.OutcomeUnknown(
            f"{err.message} It accepted the request, so the message may have been delivered; it is not sent "
            "again automatically.", provider=err.provider, status=err.status, provider_code=err.provider_code,
            provider_message=err.provider_message, body=err.body, reason=err.reason)
    not_an_attempt = isinstance(err, perr.RateLimited) and err.reason == "local_rate_limit"
    attempts = message.attempts - (1 if not_an_attempt else 0)
    retry = err.transient and (not_an_attempt or attempts < settings.OUTREACH_SEND_MAX_ATTEMPTS)
    detail = {"code": err.code, "provider_code": err.provider_code, "reason": err.reason, "provider_message": err.provider_message,
              "status": err.status, "attempt": attempts, "handed_over": handed_over}
    now = timezone.now()
    common = dict(error_code=err.code, error_message=err.message, claimed_by="", lease_until=None)
    if unsaved_request is not None:  # built but not yet stored (it failed before the hand-over): keep it for the retry
        common["prepared_request"] = unsaved_request
    if retry:
        delay = retry_delay(max(attempts, 1), getattr(err, "retry_after", None))
        due = now + timedelta(seconds=delay)
        fields = dict(status=S.QUEUED, due_at=due, handed_over_at=None, **common)
        if not_an_attempt:
            fields["attempts"] = message.attempts = attempts
            _write(message, batch, {**fields, "hold_reason": f"waiting: {err.message}"}, None, attempt=False)
        else:
            _write(message, batch, fields, dict(
                kind=K.MESSAGE_RETRY, summary=f"Attempt {attempts} failed: {err.message} Retrying in {delay:.0f} s.",
                data={**detail, "retry_in": delay}))
        message.refresh_from_db()
        return SendOutcome(message, retry_in=delay)
    if isinstance(err, perr.OutcomeUnknown):
        _write(message, batch, dict(status=S.UNKNOWN, failed_at=now, **common), dict(
            kind=K.MESSAGE_UNKNOWN, summary=f"“{message.subject}” may have been delivered: {err.message}", data=detail))
        return SendOutcome(message)
    if _write(message, batch, dict(status=S.FAILED, failed_at=now, **common), dict(
            kind=K.MESSAGE_FAILED, summary=f"Failed to send “{message.subject}”: {err.message}", data=detail)):
        if isinstance(err, perr.RecipientSuppressed) and err.recipient:
            suppress_recipient(message, err)
    return SendOutcome(message)


def sent_messages_pending_count() -> int:
    """Messages waiting or being sent (benchmarks and tests wait for this to reach zero)."""
    return SentMessage.objects.filter(status__in=(*SentMessage.WAITING, S.SENDING)).count()


