"""What the benchmarks that run on ``bench/pages.py``'s seeded databases share: running a
measurement on a throw-away copy of a seeded database, setting Django up on it, and reading the
seed's description (the ``bench_info`` row: teams, their ids, the bench user).

``bench/pages.py --scales N --seed-only`` seeds ``<NAME>_<N>`` on the server of ``DATABASE_URL``
(``postgres://…/<NAME>``); the bulk-action benchmarks write into the rows, so they measure on a
copy (``CREATE DATABASE … TEMPLATE``) that is dropped afterwards.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def measure_on_seeded_copy(script: str, *, scale: int, suffix: str, runs: int) -> tuple[dict, float]:
    """Run ``script --measure-url <copy> --runs runs`` in a child process on a copy of the seeded
    database ``<NAME>_<scale>`` named ``<NAME>_<scale>_<suffix>``, with settings for the Django test
    client and a filesystem Celery broker in a temporary directory; drop the copy afterwards.

    Returns (the JSON object the child printed on its last line, seconds the copy took). Exits with
    a message when ``DATABASE_URL`` is not a PostgreSQL URL or the seeded database is missing;
    raises subprocess.CalledProcessError when the child fails.
    """
    import psycopg

    name = Path(script).name
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit(f"bench/{name} needs DATABASE_URL=postgres://… (the server bench/pages.py seeded)")
    parts = urlsplit(base)
    seeded = f"{parts.path.strip('/')}_{scale}"
    copy = f"{seeded}_{suffix}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        try:
            conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{seeded}" STRATEGY FILE_COPY')
        except psycopg.Error as err:
            sys.exit(f"no seeded database {seeded!r} ({err}); run bench/pages.py --scales {scale} --seed-only first")
        copy_s = time.perf_counter() - started
    try:
        with tempfile.TemporaryDirectory() as broker:
            env = {**os.environ, "DEBUG": "false", "SECRET_KEY": os.urandom(24).hex(), "ALLOWED_HOSTS": "testserver",
                   "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false",
                   "CSRF_COOKIE_SECURE": "false", "CELERY_BROKER_URL": "filesystem://",
                   "CELERY_FILESYSTEM_BROKER_DIR": broker}
            done = subprocess.run([sys.executable, script, "--measure-url", urlunsplit(parts._replace(path=f"/{copy}")),
                                   "--runs", str(runs)], check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        return json.loads(done.stdout.strip().splitlines()[-1]), copy_s
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


def django_on(url: str) -> None:
    """Point Django at the database ``url`` (local settings unless DJANGO_SETTINGS_MODULE is set) and
    set it up; call before importing models."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")
    import django

    django.setup()


def bench_info() -> dict:
    """The seed's description (``bench_info``, written by bench/pages.py) through Django's connection:
    ``{"teams": [{"team_id", "heavy_contact", …}, …], "user_id", …}``."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT info FROM bench_info")
        info = cur.fetchone()[0]
    return json.loads(info) if isinstance(info, str) else info
