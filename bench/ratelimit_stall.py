"""Where do the 429s of the in-process lemlist burst (tests/providers/test_ratelimit.py) come from?

    PYTHONPATH=. .venv/bin/python bench/ratelimit_stall.py [--runs 3] [--stall 0.3]

Sends the test's burst (100 lemlist sends, 8 threads, one API key, the in-process limiter) to
the strict fake (20 requests per 2 s moving window) and records per request: the limiter's slot
it used, when its caller woke from the limiter's sleep, when its HTTP call started, and the
fake's arrival stamp. Prints per run the 429s, the fake's rate, the most requests in any 2 s
window of each of those four clocks, and the worst delays between them. ``--stall S`` adds a
thread holding the GIL for S seconds every 1.3 s (one long C call), the effect of a gen-2 garbage
collection or any pause of the whole sending process.
"""
import argparse, os, sys, threading, time, collections, json
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.test")
import django
django.setup()
from django.conf import settings
settings.REDIS_URL = ""
settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
import requests
from providers import ratelimit
from tests.fakes.lemlist import FakeLemlist
import tests.providers.test_ratelimit as t

local = threading.local()
rec = collections.defaultdict(dict)
orig_reserve = ratelimit.LocalRateLimiter.reserve
def reserve(self, key, interval, max_wait):
    w = orig_reserve(self, key, interval, max_wait)
    local.slot = time.monotonic() + max(w, 0)
    return w
ratelimit.LocalRateLimiter.reserve = reserve
orig_acquire = ratelimit.RateLimiter.acquire
def acquire(self, **kw):
    w = orig_acquire(self, **kw)
    local.woke = time.monotonic()
    return w
ratelimit.RateLimiter.acquire = acquire
orig_request = requests.Session.request
def request(self, method, url, headers=None, **kw):
    body = kw.get("json") or {}
    key = body.get("subject") if isinstance(body, dict) else None
    key = key or f"{method} {url} {time.monotonic()}"
    rec[key].update(slot=getattr(local, "slot", None), woke=getattr(local, "woke", None), sent=time.monotonic())
    r = orig_request(self, method, url, headers=headers, **kw)
    rec[key]["status"] = r.status_code
    return r
requests.Session.request = request

def max_in_window(times, period=2.0):
    times = sorted(x for x in times if x is not None)
    best, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] >= period:
            j += 1
        best = max(best, i - j + 1)
    return best

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--stall", type=float, default=0.0, help="seconds the GIL is held, every 1.3 s")
args = parser.parse_args()
runs, STALL = args.runs, args.stall
N_STALL = 0
if STALL:
    t0 = time.monotonic(); sum(range(10**7)); per = (time.monotonic() - t0) / 10**7
    N_STALL = int(STALL / per)
    def staller():
        while True:
            time.sleep(1.3)
            sum(range(N_STALL))  # one C call: holds the GIL throughout
    threading.Thread(target=staller, daemon=True).start()
for run in range(runs):
    ratelimit._limiters.clear(); rec.clear()
    fake = FakeLemlist().start()
    fake.add_send_user(t.USER, t.EMAIL, t.MAILBOX); fake.add_lead(t.CONTACT, t.LEAD)
    errors = t._send_many(fake.api_key, fake.url + "/api", list(range(100)), threads=8)
    fake.stop()
    stamps = {}
    for r in fake.requests:
        try:
            stamps[r.json().get("subject")] = r.at
        except Exception:
            pass
    for k, v in rec.items():
        v["fake"] = stamps.get(k)
    rows = list(rec.values())
    col = lambda name: [r.get(name) for r in rows]
    late = sorted(((r["woke"] - r["slot"]) for r in rows if r.get("slot") is not None), reverse=True)[:5]
    gap = sorted(((r["fake"] - r["sent"]) for r in rows if r.get("fake") is not None), reverse=True)[:5]
    pre = sorted(((r["sent"] - r["woke"]) for r in rows if r.get("woke") is not None), reverse=True)[:5]
    times = sorted(r.at for r in fake.requests)
    print(json.dumps({"run": run, "load": open("/proc/loadavg").read().split()[:3], "requests": len(fake.requests),
                      "429": fake.rate_limited, "errors": len(errors),
                      "rate": round((len(times) - 1) / (times[-1] - times[0]), 2),
                      "max20_slot": max_in_window(col("slot")), "max20_woke": max_in_window(col("woke")),
                      "max20_sent": max_in_window(col("sent")), "max20_fake": max_in_window(col("fake")),
                      "worst_wake_late_ms": [round(x * 1000) for x in late],
                      "worst_woke_to_sent_ms": [round(x * 1000) for x in pre],
                      "worst_sent_to_fake_ms": [round(x * 1000) for x in gap]}))
