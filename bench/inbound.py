"""Benchmark the inbound sync: a dovecot mailbox holding N mixed messages (default 10,000).

    DEBUG=true DATABASE_URL=postgres://... PYTHONPATH=. .venv/bin/python bench/inbound.py [--messages 10000]

Starts Debian's dovecot on 127.0.0.1 (tests/servers.py), fills its INBOX (written straight into
the maildir, then indexed by dovecot) with: 40 % replies to our messages (In-Reply-To), 15 %
bounces (RFC 3464, Postfix, Exim, Exchange, Gmail, Yahoo layouts), 10 % auto-replies, 5 % other
mail from contacts and 30 % spam from strangers; creates a team with 1,000 contacts and the sent
messages they answer (migrating the configured database first). Then, each in a child process
so its peak RSS is its own:

1. the ceiling: the IMAP transport alone (providers.imap.ImapReader: search + fetch every message
   in the same batches, no parsing, no database);
2. the first sync (``mailbox_sync``: fetch, parse, classify, store, timeline, suppressions);
3. a second sync with nothing new.

Prints messages/s and peak RSS, and the second sync's seconds, as a table and JSON (last line).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r'''
import json, os, resource, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
import django
django.setup()
from django.conf import settings
from outreach.models import Mailbox
mode, mailbox_id = sys.argv[1], int(sys.argv[2])
mailbox = Mailbox.objects.get(pk=mailbox_id)
settings.OUTREACH_INBOUND_MAX_MESSAGES_PER_RUN = 10**7
settings.OUTREACH_INBOUND_MAX_SECONDS_PER_RUN = 3600
started = time.perf_counter()
if mode == "transport":
    from providers.imap import ImapReader
    count = 0
    with ImapReader.from_mailbox(mailbox, max_message_bytes=settings.OUTREACH_INBOUND_MAX_MESSAGE_BYTES) as reader:
        reader.select("INBOX")
        uids = reader.new_uids(after_uid=0)
        for i in range(0, len(uids), settings.OUTREACH_INBOUND_BATCH_SIZE):
            count += len(reader.fetch(uids[i:i + settings.OUTREACH_INBOUND_BATCH_SIZE]))
    result = {"fetched": count}
else:
    from outreach.inbound.services import mailbox_sync
    result = mailbox_sync(mailbox=mailbox, honour_backoff=False).as_dict()
result["seconds"] = time.perf_counter() - started
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
'''


def fill_maildir(server, count: int, ours: list[tuple[str, str]], contacts: list[str], to: str) -> dict[str, int]:
    """Write ``count`` mixed messages into INBOX's maildir ``new/``; returns the intended mix."""
    from tests.inbound import mails as M

    inbox = server.directory / "mail" / server.username.split("@")[0]
    (inbox / "new").mkdir(parents=True, exist_ok=True)
    for sub in ("cur", "tmp"):
        (inbox / sub).mkdir(exist_ok=True)
    rng = random.Random(7)
    layouts = [M.dsn_rfc3464, M.office365_dsn, M.postfix_text, M.exim_text, M.exchange_legacy, M.gmail_text, M.yahoo_text]
    mix = {"reply": 0, "bounce": 0, "auto_reply": 0, "inbound": 0, "spam": 0}
    stamp = int(time.time())
    for i in range(count):
        roll = rng.random()
        message_id, email = ours[rng.randrange(len(ours))]
        if roll < 0.40:
            raw, kind = M.reply(to=to, sender=email, in_reply_to=message_id, references=message_id), "reply"
        elif roll < 0.55:
            raw, kind = layouts[i % len(layouts)](original_message_id=message_id, recipient=email), "bounce"
        elif roll < 0.65:
            raw, kind = M.auto_reply(in_reply_to=message_id, sender=email), "auto_reply"
        elif roll < 0.70:
            raw, kind = M.reply(to=to, sender=contacts[rng.randrange(len(contacts))], subject="A question", quoted="x"), "inbound"
        else:
            raw, kind = M.stranger_spam(to=to), "spam"
        mix[kind] += 1
        (inbox / "new" / f"{stamp}.B{i}.bench").write_bytes(raw)
    if os.geteuid() == 0:
        import shutil
        for path in [inbox, *inbox.rglob("*")]:
            shutil.chown(path, "nobody")
    return mix


def child(mode: str, mailbox_id: int, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(mailbox_id)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()

    from tests.servers import IMAPTestServer, find_dovecot, make_tls_files

    binary = find_dovecot()
    if binary is None:
        raise SystemExit("dovecot is not installed (apt-get install dovecot-imapd)")
    tls_dir = tempfile.mkdtemp(prefix="bench-tls-")
    os.chmod(tls_dir, 0o755)
    server = IMAPTestServer(make_tls_files(tls_dir), binary).start()
    env = dict(os.environ, OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS="true",
               OUTREACH_IMAP_PORTS=f"143,993,{server.port}", OUTREACH_MAIL_CA_FILE=server.ca_file, LOG_LEVEL="WARNING")
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from outreach.models import Contact, Mailbox, SentMessage, Team

        call_command("migrate", verbosity=0)
        team = Team.objects.create(name=f"Inbound bench {int(time.time())}")
        mailbox = Mailbox(team=team, provider="smtp", sender_name="Ann", sender_email="ann@example.com", provider_config={
            "smtp_host": "localhost", "smtp_port": 587, "smtp_security": "starttls", "imap_host": "localhost",
            "imap_port": server.port, "imap_login": server.username, "imap_security": "none", "imap_sent_folder": "Sent"})
        mailbox.set_secret("smtp_password", "unused")
        mailbox.set_secret("imap_password", server.password)
        mailbox.save()
        contacts = Contact.objects.bulk_create([Contact(team=team, email=f"c{i}@example.org") for i in range(1000)])
        sent = SentMessage.objects.bulk_create([
            SentMessage(team=team, mailbox=mailbox, contact=c, to=[c.email], subject="Intro", text_body="Hi",
                        message_id=f"<bench-{team.pk}-{i}@example.com>", provider="smtp", status="sent")
            for i, c in enumerate(contacts * 2)])
        mix = fill_maildir(server, args.messages, [(m.message_id, m.to[0]) for m in sent],
                           [c.email for c in contacts], mailbox.sender_email)

        transport = child("transport", mailbox.pk, env)
        first = child("sync", mailbox.pk, env)
        second = child("sync", mailbox.pk, env)
    finally:
        server.stop()

    rate = first["stored"] / first["seconds"] if first["seconds"] else 0
    ceiling = transport["fetched"] / transport["seconds"] if transport["seconds"] else 0
    print(f"{'':34} {'messages':>9} {'msg/s':>9} {'peak RSS':>10}")
    print(f"{'IMAP transport only (ceiling)':34} {transport['fetched']:>9} {ceiling:>9.0f} {transport['peak_rss_mb']:>8.0f} MB")
    print(f"{'first sync (parse+classify+store)':34} {first['stored']:>9} {rate:>9.0f} {first['peak_rss_mb']:>8.0f} MB")
    print(f"{'second sync, nothing new':34} {second['fetched']:>9} {'':>9} {second['peak_rss_mb']:>8.0f} MB"
          f"   {second['seconds']:.2f} s")
    print(f"mix written: {mix}; stored kinds: " + ", ".join(f"{k}={first[k]}" for k in
                                                            ("reply", "bounce", "auto_reply", "inbound", "unmatched", "unsubscribe")))
    print(json.dumps({"messages": args.messages, "mix": mix, "transport": transport, "first_sync": first,
                      "first_sync_msgs_per_s": round(rate, 1), "ceiling_msgs_per_s": round(ceiling, 1),
                      "second_sync_seconds": round(second["seconds"], 3)}))


if __name__ == "__main__":
    main()
