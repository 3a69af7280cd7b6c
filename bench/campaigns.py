"""Benchmark campaigns: enrol 100,000 contacts and schedule step 1, then dispatch due steps through
the delivery engine to a local SMTP server.

    DEBUG=true DATABASE_URL=postgres://... PYTHONPATH=. .venv/bin/python bench/campaigns.py \
        [--contacts 100000] [--dispatch 1000]

1. Seeds ``--contacts`` contacts in a fresh team (COPY-speed ``bulk_create``, not timed) and a
   one-step campaign over two mailboxes.
2. In a child process (so its peak RSS is its own): ``campaign_enrol`` of every contact ("all
   matching"), which stores each enrolment with step 1 due — seconds, enrolments/s, peak RSS.
3. Dispatch: with the mailboxes' caps and intervals lifted, the scheduler (``campaigns_advance``)
   renders and queues ``--dispatch`` due steps and the delivery engine (``sent_messages_dispatch``,
   sending each claimed chunk in this process over one SMTP session per mailbox) delivers them to
   a local aiosmtpd server without TLS. Prints steps/s end to end, beside the ceiling: a bare
   ``smtplib`` loop over one connection to the same server in the same run.

Prints a table, and JSON on the last line.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _django(smtp_port: int | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
    os.environ.setdefault("OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS", "true")
    if smtp_port:
        os.environ["OUTREACH_SMTP_PORTS"] = str(smtp_port)
    import django

    django.setup()


def child_enrol(team_id: int, campaign_id: int) -> None:
    """Run in a child process: enrol every contact of the team; print seconds and peak RSS as JSON."""
    _django()
    from outreach.campaigns.models import Campaign
    from outreach.campaigns.services import campaign_enrol
    from outreach.selectors import ListQuery, Selection

    campaign = Campaign.objects.get(pk=campaign_id, team_id=team_id)
    started = time.perf_counter()
    result = campaign_enrol(campaign=campaign, selection=Selection(query=ListQuery()))
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": rss_mb, **result.as_dict()}))


def smtp_ceiling(port: int, n: int) -> float:
    """Messages/s of a bare smtplib loop over one connection to the local server."""
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    for i in range(n):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "bench@example.com", f"c{i}@example.com", f"Ceiling {i}"
        msg.set_content("Hello")
        client.send_message(msg)
    seconds = time.perf_counter() - started
    client.quit()
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--dispatch", type=int, default=1_000)
    parser.add_argument("--child-enrol", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_enrol:
        child_enrol(*args.child_enrol)
        return

    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)

    class Sink:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Sink.count += 1
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    _django(port)

    from datetime import time as dtime

    from django.conf import settings
    from django.db import connection

    from outreach.campaigns.services import (VariantData, campaign_create, campaign_start, campaign_step_save,
                                             campaigns_advance)
    from outreach.models import Contact, Mailbox, SentMessage, Team
    from outreach.services.outbox import sent_messages_dispatch, sent_messages_send_claimed

    team = Team.objects.create(name=f"bench-campaigns-{int(time.time())}")
    started = time.perf_counter()
    batch = 10_000
    for start in range(0, args.contacts, batch):
        Contact.objects.bulk_create([Contact(team=team, email=f"c{i}@bench{i % 97}.example.com", first_name=f"First{i}",
                                             company=f"Company {i % 997}")
                                     for i in range(start, min(start + batch, args.contacts))], batch_size=batch)
    seed_seconds = time.perf_counter() - started
    mailboxes = []
    for n in (1, 2):
        mailbox = Mailbox(team=team, provider="smtp", sender_name=f"Sender {n}", sender_email=f"s{n}@bench.example.com",
                          provider_config={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none",
                                           "smtp_login": ""},
                          daily_cap=0, min_interval_seconds=0, interval_jitter_seconds=0, send_days="",
                          send_window_start=dtime(0), send_window_end=dtime(0))
        mailbox.save()
        mailboxes.append(mailbox)
    campaign = campaign_create(team=team, data={"name": "bench", "mailboxes": mailboxes, "send_days": "",
                                                "window_start": dtime(0), "window_end": dtime(0)})
    campaign_step_save(campaign=campaign, data={}, variants=[
        VariantData("A", "{Hi|Hello} {{ first_name }}", "<p>Hello {{ first_name }} at {{ company }}</p>")])
    connection.close()

    out = subprocess.run([sys.executable, __file__, "--child-enrol", str(team.pk), str(campaign.pk)],
                         capture_output=True, text=True, env=os.environ.copy(), check=True)
    enrol = json.loads(out.stdout.strip().splitlines()[-1])

    campaign_start(campaign=campaign)
    settings.OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX = args.dispatch
    ceiling = smtp_ceiling(port, min(args.dispatch, 1000))
    Sink.count = 0
    started = time.perf_counter()
    created = 0
    while created < args.dispatch:
        created += campaigns_advance(batch=min(500, args.dispatch - created)).created
    create_seconds = time.perf_counter() - started
    sent = 0
    while sent < args.dispatch:
        result = sent_messages_dispatch(enqueue=lambda chunk, token: sent_messages_send_claimed(ids=chunk, token=token))
        sent = SentMessage.objects.filter(team=team, status="sent").count()
        if not result.claimed and not SentMessage.objects.filter(team=team, status__in=("queued", "sending")).exists():
            break
    total_seconds = time.perf_counter() - started
    controller.stop()
    report = {
        "contacts": args.contacts, "seed_seconds": round(seed_seconds, 1),
        "enrol_seconds": round(enrol["seconds"], 2), "enrolments_per_s": round(enrol["enrolled"] / enrol["seconds"]),
        "enrol_peak_rss_mb": round(enrol["peak_rss_mb"]), "enrolled": enrol["enrolled"],
        "steps_dispatched": sent, "smtp_received": Sink.count,
        "steps_created_per_s": round(created / create_seconds, 1),
        "steps_end_to_end_per_s": round(sent / total_seconds, 1), "smtplib_ceiling_per_s": round(ceiling, 1),
    }
    print(f"enrol {args.contacts:,} contacts, step 1 due: {report['enrol_seconds']} s "
          f"({report['enrolments_per_s']:,}/s), peak RSS {report['enrol_peak_rss_mb']} MB")
    print(f"due steps rendered and queued: {report['steps_created_per_s']}/s")
    print(f"due steps to SMTP end to end: {report['steps_end_to_end_per_s']}/s "
          f"(bare smtplib on one connection: {report['smtplib_ceiling_per_s']}/s); "
          f"{sent} sent, {Sink.count} received")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
