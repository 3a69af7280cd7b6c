"""Shared pytest fixtures: real SMTP/IMAP servers, a real Celery worker, and mail settings for them.

Server fixtures are session-scoped (one set per test session, or per xdist worker). They skip
when a server cannot be started, unless ``OUTREACH_TEST_SERVERS=required`` (``tests/run.sh``
sets it), in which case they fail.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

from tests.servers import (
    IMAPTestServer,
    SMTPTestServer,
    TLSFiles,
    find_dovecot,
    make_tls_files,
    unavailable,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- xdist: one Redis database pair per worker -------------------------------------------


def redis_db_url(url: str, db: int) -> str:
    """``url`` (redis://host:port/n) pointed at database ``db``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def pytest_configure(config):
    """Under pytest-xdist, give each worker its own Redis databases (broker and REDIS_URL).

    Otherwise a Celery worker started by one xdist worker would consume tasks queued by another,
    whose test database is different. Worker ``gwN`` uses databases ``2+2N`` (broker) and
    ``3+2N`` (REDIS_URL); ``tests/run.sh`` starts Redis with enough databases.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    n = int(worker[2:])
    overrides = {}
    for name, db in (("CELERY_BROKER_URL", 2 + 2 * n), ("REDIS_URL", 3 + 2 * n)):
        url = os.environ.get(name, "")
        if url.startswith(("redis://", "rediss://")):
            overrides[name] = redis_db_url(url, db)
    if not overrides:
        return
    os.environ.update(overrides)
    try:
        from django.conf import settings

        if settings.configured:
            for name, url in overrides.items():
                setattr(settings, name, url)
            if "CELERY_BROKER_URL" in overrides:
                from outreach import celery_app

                celery_app.conf.broker_url = overrides["CELERY_BROKER_URL"]
    except ImportError:  # running with -p no:django, or the app is not importable yet
        pass


# --- TLS and mail servers ------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_files():
    """Return :class:`tests.servers.TLSFiles`: a throwaway CA (``.ca_file``) and a server cert/key for localhost/127.0.0.1."""
    directory = tempfile.mkdtemp(prefix="outreach-tls-")
    os.chmod(directory, 0o755)  # dovecot's processes read the key through the config process
    try:
        yield make_tls_files(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _smtp(tls_files: TLSFiles, implicit_tls: bool):
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        unavailable("aiosmtpd is not installed")
    server = SMTPTestServer(tls_files, implicit_tls=implicit_tls)
    try:
        server.start()
    except Exception as exc:
        unavailable(f"cannot start the SMTP test server: {exc}")
    return server


@pytest.fixture(scope="session")
def smtp_server(tls_files):
    """Return a running :class:`tests.servers.SMTPTestServer` (STARTTLS required, AUTH required).

    Attributes: ``host``, ``port``, ``username``, ``password``, ``ca_file``, ``messages`` (list of
    :class:`tests.servers.ReceivedMessage`: ``mail_from``, ``rcpt_tos``, ``data``, ``login``, ``tls``);
    methods ``clear()``, ``wait_for_messages(n)``, ``fail_next_data(reply)``. Recipients whose
    local part starts with ``refuse`` get ``550 5.1.1 User unknown``.
    """
    server = _smtp(tls_files, implicit_tls=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_ssl_server(tls_files):
    """Return a running :class:`tests.servers.SMTPTestServer` with implicit TLS (SMTPS), same API as ``smtp_server``."""
    server = _smtp(tls_files, implicit_tls=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def imap_server(tls_files):
    """Return a running :class:`tests.servers.IMAPTestServer` (dovecot).

    Attributes: ``host``, ``port`` (plain IMAP, STARTTLS offered, plaintext login allowed),
    ``ssl_port`` (implicit TLS), ``username``, ``password``, ``ca_file``; methods
    ``fetch_all(folder="Sent") -> list[bytes]``, ``append(folder, raw)``, ``clear()``,
    ``connect(tls=False)``, ``logs()``.
    """
    binary = find_dovecot()
    if binary is None:
        unavailable("dovecot is not installed (apt-get install dovecot-imapd)")
    server = IMAPTestServer(tls_files, binary)
    try:
        server.start()
    except Exception as exc:
        unavailable(f"cannot start dovecot: {exc}")
    yield server
    server.stop()


@dataclass
class MailServers:
    """What ``mail_settings`` returns: the running servers and the (overridden) Django settings."""

    smtp: SMTPTestServer
    smtp_ssl: SMTPTestServer
    imap: IMAPTestServer
    settings: object


def _mail_ports(base, *servers_ports):
    return sorted({int(p) for p in base} | {int(p) for p in servers_ports})


@pytest.fixture
def mail_settings(settings, smtp_server, smtp_ssl_server, imap_server):
    """Point the Django settings at the test mail servers; return :class:`MailServers`.

    Adds the test ports to ``OUTREACH_SMTP_PORTS`` / ``OUTREACH_IMAP_PORTS``, sets
    ``OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS=True`` and ``OUTREACH_MAIL_CA_FILE`` to the test CA, and
    empties the servers (received SMTP messages, every IMAP mailbox) so each test starts clean.
    """
    settings.OUTREACH_SMTP_PORTS = _mail_ports(settings.OUTREACH_SMTP_PORTS, smtp_server.port, smtp_ssl_server.port)
    settings.OUTREACH_IMAP_PORTS = _mail_ports(settings.OUTREACH_IMAP_PORTS, imap_server.port, imap_server.ssl_port)
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    settings.OUTREACH_MAIL_CA_FILE = smtp_server.ca_file
    smtp_server.clear()
    smtp_ssl_server.clear()
    imap_server.clear()
    return MailServers(smtp=smtp_server, smtp_ssl=smtp_ssl_server, imap=imap_server, settings=settings)


# --- Celery worker ----------------------------------------------------------------------------


class CeleryWorkerProcess:
    """A real ``celery -A outreach worker`` subprocess using the test database and the test broker."""

    def __init__(self, env: dict[str, str], log_path: Path, nodename: str, args: tuple[str, ...] = ("--pool=solo", "--concurrency=1")):
        self.env = env  #: the environment the worker runs with
        self.log_path = log_path  #: the worker's combined stdout/stderr
        self.nodename = nodename  #: the ``-n`` argument (``%h`` is expanded by Celery)
        self.args = args  #: pool options (default: solo); e.g. ("--pool=prefork", "--concurrency=2")
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "CeleryWorkerProcess":
        """Start the worker (consuming every queue: sends and imports) and wait until it logs ``ready``;
        return ``self``."""
        from django.conf import settings

        cmd = [
            sys.executable, "-m", "celery", "-A", "outreach", "worker",
            *self.args, "-l", "info", "-Q", ",".join(q.name for q in settings.CELERY_TASK_QUEUES),
            "--without-heartbeat", "--without-gossip", "--without-mingle",
            "-n", self.nodename,
        ]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0  # restarts append to the log
        self.process = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=open(self.log_path, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {self.process.returncode}:\n{self.logs()}")
            if " ready." in self.log_path.read_bytes()[offset:].decode(errors="replace"):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the Celery worker was not ready within {timeout}s:\n{self.logs()}")

    def logs(self, tail: int = 8000) -> str:
        """Return the last ``tail`` characters of the worker's log."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def is_alive(self) -> bool:
        """Return True while the worker process runs."""
        return self.process is not None and self.process.poll() is None

    def wait_for(self, condition, timeout: float = 20.0, interval: float = 0.1, message: str = ""):
        """Poll ``condition()`` until it returns a truthy value and return that value.

        Fails the test (with the worker's log) on timeout or when the worker died.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if not self.is_alive():
                pytest.fail(f"the Celery worker died. {message}\n{self.logs()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s. {message}\n--- worker log ---\n{self.logs()}", pytrace=False)
            time.sleep(interval)

    def stop(self) -> None:
        """Stop the worker (warm shutdown, then SIGKILL after 15 s); idempotent."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


def _test_database_url(database_url: str, name: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


@pytest.fixture(scope="session")
def celery_worker_env(django_db_setup, smtp_server, smtp_ssl_server, imap_server) -> dict[str, str]:
    """The environment for real Celery processes (workers, beat) on the test database: this process's
    environment plus ``DATABASE_URL`` of pytest-django's test database, the (per-xdist-worker)
    ``CELERY_BROKER_URL``/``REDIS_URL``, and the mail settings for the test servers
    (``OUTREACH_SMTP_PORTS``, ``OUTREACH_IMAP_PORTS``, ``OUTREACH_MAIL_CA_FILE``,
    ``OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS=true``). Needs PostgreSQL and a Redis broker (else skips or
    fails, see :func:`tests.servers.unavailable`); the requesting test must be ``django_db``-marked.
    """
    from django.conf import settings
    from django.db import connections

    broker = settings.CELERY_BROKER_URL
    if not broker.startswith(("redis://", "rediss://")):
        unavailable(f"the Celery worker fixture needs a Redis broker (CELERY_BROKER_URL={broker!r})")
    db = connections["default"].settings_dict
    database_url = os.environ.get("DATABASE_URL", "")
    if "postgresql" not in db["ENGINE"] or not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        unavailable("the Celery worker fixture needs PostgreSQL via DATABASE_URL (the test DB must be shared)")

    configured_name = urlsplit(database_url).path.lstrip("/")
    if db["NAME"] == unquote(configured_name):
        # pytest-django only creates the test database when a collected test is marked django_db.
        pytest.fail(
            "celery_worker_process found no test database: mark the test "
            "@pytest.mark.django_db(transaction=True) (the worker must never use the real database)",
            pytrace=False,
        )

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "outreach.settings.test"),
        DATABASE_URL=_test_database_url(database_url, db["NAME"]),
        CELERY_BROKER_URL=broker,
        REDIS_URL=settings.REDIS_URL or "",
        OUTREACH_SMTP_PORTS=",".join(map(str, _mail_ports(settings.OUTREACH_SMTP_PORTS, smtp_server.port, smtp_ssl_server.port))),
        OUTREACH_IMAP_PORTS=",".join(map(str, _mail_ports(settings.OUTREACH_IMAP_PORTS, imap_server.port, imap_server.ssl_port))),
        OUTREACH_MAIL_CA_FILE=smtp_server.ca_file,
        OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS="true",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def celery_worker_process(celery_worker_env, tmp_path_factory):
    """Start a real Celery worker (solo pool) on the test database; return :class:`CeleryWorkerProcess`.

    Its environment is :func:`celery_worker_env`. Tests using it must be
    ``@pytest.mark.django_db(transaction=True)`` so that the worker sees committed rows. It runs no
    beat (tests drive the dispatcher themselves) and is stopped before the test database is dropped.
    """
    worker_id = os.environ.get("PYTEST_XDIST_WORKER", "main")
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    worker = CeleryWorkerProcess(celery_worker_env, log_path, nodename=f"outreach-test-{worker_id}@%h")
    try:
        worker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield worker
    worker.stop()


# --- Browser ------------------------------------------------------------------------------------


@pytest.fixture
def browser_page(django_db_setup, live_server):
    """A Playwright page in Debian's headless Chromium, with ``base_url`` = the live server.

    Depends on ``django_db_setup`` before ``live_server`` so the live server (and any request
    thread it holds) is shut down before the test database is dropped. Downloads are accepted.
    """
    from playwright.sync_api import sync_playwright

    from tests.browser import launch_chromium

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900},
                                      accept_downloads=True)
        context.set_default_timeout(15_000)
        yield context.new_page()
        # The test body's ORM queries ran inside Playwright's greenlet context, whose database
        # connection is only reachable from here: close it, or the test database cannot be dropped.
        from django.db import connections

        connections.close_all()
        context.close()
        browser.close()


# --- Signed-in team user ---------------------------------------------------------------------


@pytest.fixture
def team_user(db):
    """(team, user): a fresh team and its owner (tests.factories.make_team_user)."""
    from outreach.models import Membership
    from tests.factories import make_team_user

    return make_team_user(role=Membership.Role.OWNER)


@pytest.fixture
def team(team_user):
    """The team of :func:`team_user` (tests/imports defines its own, with a signed-in owner)."""
    return team_user[0]


@pytest.fixture
def user_client(client, team_user):
    """Django's test client, logged in as the :func:`team_user` user."""
    client.force_login(team_user[1])
    return client
