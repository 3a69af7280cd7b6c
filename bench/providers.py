"""Push N messages through each HTTP provider against its strict fake and report pacing.

    DEBUG=true PYTHONPATH=. .venv/bin/python bench/providers.py [-n 100] [--threads 8] [--only lemlist]

For each provider: achieved requests per second (as the fake saw them) against the documented
limit, the number of 429 answers, retries, and duplicates / lost messages (both must be 0).
Uses the real provider modules over HTTP on 127.0.0.1 and the shared rate limiter (Redis when
REDIS_URL is set, in-process otherwise). A RateLimited error is retried after its Retry-After.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
os.environ.setdefault("OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS", "true")

import django  # noqa: E402

django.setup()

from providers.base import Address, OutgoingMessage  # noqa: E402
from providers.errors import RateLimited  # noqa: E402
from providers.leadlex import LeadlexProvider  # noqa: E402
from providers.lemlist import LemlistConfig, LemlistProvider  # noqa: E402
from providers.openmail import OpenMailConfig, OpenMailProvider  # noqa: E402
from providers.unipile import UnipileConfig, UnipileProvider  # noqa: E402
from tests.fakes.leadlex import FakeLeadlex  # noqa: E402
from tests.fakes.lemlist import FakeLemlist  # noqa: E402
from tests.fakes.openmail import FakeOpenMail  # noqa: E402
from tests.fakes.unipile import FakeUnipile  # noqa: E402


def _lemlist():
    fake = FakeLemlist().start()
    user, email, mailbox = fake.add_send_user()
    contact, lead = fake.add_lead()
    provider = LemlistProvider(api_key=fake.api_key, base_url=fake.url + "/api", config=LemlistConfig(
        send_user_id=user, send_user_email=email, send_user_mailbox_id=mailbox))
    return fake, provider, {"lemlist_contact_id": contact, "lemlist_lead_id": lead}, "20 req / 2 s (10 req/s)"


def _leadlex():
    fake = FakeLeadlex().start()
    provider = LeadlexProvider(api_key=fake.api_key, base_url=fake.url + "/functions/v1/api-gateway")
    return fake, provider, {}, "not stated (fake: 10 req/s)"


def _openmail():
    fake = FakeOpenMail().start()
    provider = OpenMailProvider(api_key=fake.api_key, base_url=fake.url, config=OpenMailConfig(inbox_id=fake.add_inbox()))
    return fake, provider, {}, "not stated (fake: 10 req/s)"


def _unipile():
    fake = FakeUnipile().start()
    provider = UnipileProvider(api_key=fake.api_key, base_url=fake.url, config=UnipileConfig(account_id=fake.add_account()))
    return fake, provider, {}, "not stated (fake: 10 req/s)"


SETUPS = {"lemlist": _lemlist, "leadlex": _leadlex, "openmail": _openmail, "unipile": _unipile}


def run(name: str, n: int, threads: int) -> dict:
    fake, provider, vendor_ids, documented = SETUPS[name]()
    errors: list[str] = []
    retries = Counter()

    def work(numbers):
        for i in numbers:
            message = OutgoingMessage(sender=Address("john@example.com", "John"), to=(Address("jane@example.com", "Jane"),),
                                      subject=f"Bench {name} #{i}", html=f"<p>Message {i}</p>", text=f"Message {i}",
                                      idempotency_key=f"bench-{name}-{i}-{fake.api_key[-8:]}", vendor_ids=vendor_ids)
            for _ in range(5):
                try:
                    provider.send(message)
                    break
                except RateLimited as err:
                    retries[name] += 1
                    time.sleep(err.retry_after or 1.0)
                except Exception as err:  # reported below
                    errors.append(f"#{i}: {type(err).__name__}: {err}")
                    break

    started = time.monotonic()
    workers = [threading.Thread(target=work, args=(list(range(t, n, threads)),)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    fake.stop()
    times = sorted(r.at for r in fake.requests)
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    subjects = Counter(m["subject"] for m in fake.messages)
    return {
        "provider": name, "documented": documented, "pace": f"{provider.rate_limit.requests / provider.rate_limit.period:.1f}/s",
        "rate": rate, "elapsed": elapsed, "requests": len(fake.requests), "429": fake.rate_limited,
        "retries": retries[name], "delivered": len(subjects), "duplicates": sum(c - 1 for c in subjects.values()),
        "lost": n - len(subjects), "errors": errors[:3], "schema_violations": len(fake.schema_violations),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="messages per provider (default 100)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--only", choices=sorted(SETUPS), action="append")
    args = parser.parse_args(argv)
    from django.conf import settings

    print(f"limiter: {'redis ' + settings.REDIS_URL if settings.REDIS_URL else 'in-process'}; "
          f"margin {settings.OUTREACH_RATE_LIMIT_MARGIN:.0%}; {args.n} messages, {args.threads} threads per provider")
    print(f"{'provider':9} {'documented limit':28} {'our pace':>8} {'achieved':>9} {'time':>7} {'reqs':>5} "
          f"{'429':>4} {'retry':>5} {'dupes':>5} {'lost':>4}")
    ok = True
    for name in args.only or list(SETUPS):
        r = run(name, args.n, args.threads)
        print(f"{r['provider']:9} {r['documented']:28} {r['pace']:>8} {r['rate']:>6.2f}/s {r['elapsed']:>6.1f}s "
              f"{r['requests']:>5} {r['429']:>4} {r['retries']:>5} {r['duplicates']:>5} {r['lost']:>4}")
        for line in r["errors"]:
            print("   error:", line)
        ok = ok and r["duplicates"] == 0 and r["lost"] == 0 and r["429"] == 0 and not r["schema_violations"]
    print("OK" if ok else "FAILED: 429s, duplicates, lost messages or schema violations")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
