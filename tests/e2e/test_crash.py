"""Crash safety proven by killing real processes (issue 8).

A real prefork Celery worker and a real ``celery beat`` (the outbox dispatcher) send messages to a slow
local SMTP server; the test SIGKILLs pool children and the worker's main process at random moments and
restarts the worker. Afterwards every message is settled, none is left queued or sending, the server saw
each Message-ID at most once, every ``sent`` message exactly once, and ``unknown`` only where the
hand-over point was recorded. A second test restarts Redis (broker) in the middle of a burst.

Each test runs its own Redis database (or server) as broker, so the session's worker never takes part.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter

import pytest

from outreach.models import SentMessage
from outreach.services import sending
from outreach.services.sending import sent_message_create
from tests.conftest import CeleryWorkerProcess
from tests.factories import make_contact, make_smtp_mailbox, make_team_with_owner
from tests.processes import FAST_LEASES, Beat, child_pids, kill_group, prefork_worker
from tests.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

def _queue(n: int, servers, monkeypatch, text: str = "") -> list[SentMessage]:
    # No wake-up tasks: the dispatcher (beat) must find every message in the table on its own.
    monkeypatch.setattr(sending, "wake_up", lambda pk: None)
    team, user = make_team_with_owner()
    mailbox = make_smtp_mailbox(team, servers, imap=False)
    contact = make_contact(team, "bob@example.org", first_name="Bob", last_name="Stone")
    return [sent_message_create(team=team, actor=user, mailbox=mailbox, contact=contact, subject=f"Crash {i}",
                                text=text or f"Message {i}") for i in range(n)]


def _wait_settled(ids: list[int], timeout: float, worker: CeleryWorkerProcess) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = Counter(SentMessage.objects.filter(pk__in=ids).values_list("status", flat=True))
        if not counts.get("queued") and not counts.get("sending") and not counts.get("scheduled"):
            return dict(counts)
        time.sleep(0.3)
    pytest.fail(f"not settled after {timeout} s: {dict(counts)}\n--- worker log ---\n{worker.logs()}", pytrace=False)


def _assert_exactly_once_or_unknown(ids: list[int], smtp) -> dict[str, int]:
    seen = Counter(smtp.message_ids())
    assert all(count == 1 for count in seen.values()), f"a Message-ID reached the server twice: {seen.most_common(3)}"
    counts = Counter()
    for message in SentMessage.objects.filter(pk__in=ids):
        counts[message.status] += 1
        assert message.status in ("sent", "unknown"), (message.pk, message.status, message.error_message)
        if message.status == "sent":
            assert seen[message.message_id] == 1, f"sent but never seen: {message.pk}"
        else:  # unknown only past the hand-over point
            assert message.handed_over_at is not None, (message.pk, message.error_message)
    return dict(counts)


def test_sigkill_pool_children_and_main_process_while_sending(celery_worker_env, mail_settings, tmp_path, monkeypatch):
    rng = random.Random(int(os.environ.get("OUTREACH_CRASH_SEED", "8")))
    mail_settings.smtp.data_delay = 0.12
    mail_settings.smtp.rcpt_delay = 0.03
    worker, beat = prefork_worker(celery_worker_env, tmp_path, name="crash", redis_db=90)
    messages = _queue(40, mail_settings, monkeypatch)
    ids = [m.pk for m in messages]
    kills = Counter()
    try:
        worker.start(timeout=60)
        beat.start()
        for _ in range(12):
            time.sleep(rng.uniform(0.4, 1.6))
            pending = SentMessage.objects.filter(pk__in=ids, status__in=("queued", "sending")).count()
            if not pending:
                break
            children = child_pids(worker.process.pid)
            if children and rng.random() < 0.6:
                os.kill(rng.choice(children), signal.SIGKILL)  # what the OOM killer does to a pool process
                kills["pool child"] += 1
            else:
                os.kill(worker.process.pid, signal.SIGKILL)  # the main process (its prefetched tasks are lost)
                kills["main process"] += 1
                time.sleep(0.3)
                kill_group(worker)  # orphaned pool children go too, as with a killed container
                worker.start(timeout=60)
        counts = _wait_settled(ids, timeout=90, worker=worker)
    finally:
        beat.stop()
        kill_group(worker)
    assert sum(kills.values()) >= 3, kills
    result = _assert_exactly_once_or_unknown(ids, mail_settings.smtp)
    assert result.get("sent", 0) + result.get("unknown", 0) == len(ids)
    assert counts == result
    print(f"kills={dict(kills)} outcome={result}")


def test_redis_restart_mid_burst_loses_nothing(celery_worker_env, mail_settings, tmp_path, monkeypatch):
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()

    def start_redis():
        return subprocess.Popen([redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                 "--appendonly", "no", "--dir", str(tmp_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    redis = start_redis()
    url = f"redis://127.0.0.1:{port}/0"
    mail_settings.smtp.data_delay = 0.05
    env = {**celery_worker_env, **FAST_LEASES, "CELERY_BROKER_URL": url, "REDIS_URL": url}
    worker = CeleryWorkerProcess(env, tmp_path / "worker.log", nodename="redis-restart@%h",
                                 args=("--pool=prefork", "--concurrency=2"))
    beat = Beat(env, tmp_path)
    messages = _queue(30, mail_settings, monkeypatch)
    ids = [m.pk for m in messages]
    try:
        time.sleep(0.3)
        worker.start(timeout=60)
        beat.start()
        worker.wait_for(lambda: len(mail_settings.smtp.messages) >= 5, timeout=60, message="first sends")
        redis.kill()
        redis.wait()
        time.sleep(2.0)
        redis = start_redis()
        _wait_settled(ids, timeout=90, worker=worker)
    finally:
        beat.stop()
        kill_group(worker)
        redis.kill()
        redis.wait()
    result = _assert_exactly_once_or_unknown(ids, mail_settings.smtp)
    assert result == {"sent": len(ids)}, result


def test_send_batches_stopped_by_their_soft_time_limit_lose_and_repeat_nothing(celery_worker_env, mail_settings,
                                                                                 tmp_path, monkeypatch):
    """A real prefork worker whose send batches outlast OUTREACH_SEND_SOFT_TIME_LIMIT (Celery raises
    SoftTimeLimitExceeded inside the task): each batch stops, gives back what it had not handed over, and
    the dispatcher sends the rest later. Every message ends sent exactly once (or unknown past hand-over)."""
    mail_settings.smtp.data_delay = 0.3
    worker, beat = prefork_worker(celery_worker_env, tmp_path, name="soft-limit", redis_db=110, concurrency=1,
                                   OUTREACH_DISPATCH_CHUNK="8", OUTREACH_SEND_SOFT_TIME_LIMIT="1")
    messages = _queue(16, mail_settings, monkeypatch)
    ids = [m.pk for m in messages]
    try:
        worker.start(timeout=60)
        beat.start()
        _wait_settled(ids, timeout=120, worker=worker)
    finally:
        beat.stop()
        kill_group(worker)
    assert "stopped by its soft time limit" in worker.logs(tail=10**6)
    result = _assert_exactly_once_or_unknown(ids, mail_settings.smtp)
    assert result.get("sent", 0) + result.get("unknown", 0) == len(ids)
    assert result.get("sent", 0) >= len(ids) // 2, result


_STOP_AT_THE_MARKER = r"""
import os, sys, time
import django
django.setup()
from outreach.services import outbox
from outreach.services.outbox import sent_messages_send_claimed

original = outbox._write_held

def write_held(worker, rows):  # the hand-over marker: DATA answered (a large content at the server), no indicator yet
    if any("handed_over_at" in fields for _, fields, _ in rows):
        open(sys.argv[3], "w").close()
        time.sleep(600)  # SIGKILLed here
    return original(worker, rows)

outbox._write_held = write_held
sent_messages_send_claimed(ids=[int(sys.argv[1])], token=sys.argv[2])
"""


@pytest.mark.parametrize("large", [False, True], ids=["content-after-the-marker", "content-before-the-marker"])
def test_a_kill_at_the_marker_before_the_end_of_data_indicator_delivers_nothing_and_sends_once(
        celery_worker_env, mail_settings, tmp_path, monkeypatch, caplog, large):
    """The hand-over point is SMTP's end-of-data indicator (RFC 5321 sections 4.1.1.4 and 3.8): a real process
    that sent DATA (and, for a content above the one-write size, the whole content), and is SIGKILLed before its
    marker commits (so before the final CRLF "." CRLF), leaves the server with no message; recovery queues it
    again (no marker) and it is sent exactly once. A small content is not at the server yet at that moment: it
    goes with the indicator, after the marker."""
    import logging
    import sys
    from datetime import timedelta

    from django.utils import timezone

    from outreach.services.outbox import sent_messages_dispatch, sent_messages_send_claimed
    from providers.smtp import _ONE_WRITE_BYTES

    caplog.set_level(logging.DEBUG, logger="mail.log")  # aiosmtpd logs each DATA line it reads
    text = "A line of the message body, long enough.\n" * (_ONE_WRITE_BYTES // 40 + 100) if large else ""
    [message] = _queue(1, mail_settings, monkeypatch, text=text)
    handed: list = []
    sent_messages_dispatch(enqueue=lambda ids, token: handed.append((ids, token)))
    [(ids, token)] = handed
    flag = tmp_path / "at-the-marker"
    child = subprocess.Popen([sys.executable, "-c", _STOP_AT_THE_MARKER, str(ids[0]), token, str(flag)],
                             env=celery_worker_env, cwd=str(__import__("tests.conftest").conftest.REPO_ROOT),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never reached its hand-over marker"
            time.sleep(0.05)
        subject = f"Subject: {message.subject}".encode()

        def content_at_the_server() -> bool:
            return any(subject in r.getMessage().encode() for r in caplog.records if "DATA readline" in r.getMessage())

        deadline = time.monotonic() + (10 if large else 0.5)
        while not content_at_the_server() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert content_at_the_server() is large, "a large content goes before the marker, a small one after it"
        assert any("354" in r.getMessage() for r in caplog.records), "DATA was answered before the marker"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    time.sleep(0.5)  # the server sees the connection close
    assert mail_settings.smtp.message_ids() == []
    message.refresh_from_db()
    assert message.status == "sending" and message.handed_over_at is None

    later = timezone.now() + timedelta(hours=1)  # the lease expired: recovery queues it again and claims it
    handed.clear()
    result = sent_messages_dispatch(now=later, enqueue=lambda ids, token: handed.append((ids, token)))
    assert message.pk in result.recovered
    for ids, token in handed:
        sent_messages_send_claimed(ids=ids, token=token)
    message.refresh_from_db()
    assert message.status == "sent" and message.handed_over_at is not None
    assert mail_settings.smtp.message_ids() == [message.message_id]
