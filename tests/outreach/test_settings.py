"""Settings profiles (outreach/settings/: base, local, production, test) from the environment: production
values pass `check --deploy`; no secret has a production default; importing settings creates no folder;
Celery's queues, routes and time limits; every worker runapp starts consumes what it needs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from outreach.crypto import encrypt

ROOT = Path(__file__).resolve().parents[2]
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "SECRET_KEY", "OUTREACH_", "DATABASE_URL",
                                                                 "CELERY_", "REDIS_URL", "ALLOWED_HOSTS",
                                                                 "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE"))}
PRODUCTION = {"DJANGO_SETTINGS_MODULE": "outreach.settings.production", "CELERY_BROKER_URL": "redis://127.0.0.1:9/0"}


def manage(*args, **env):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**CLEAN, **env},
                          capture_output=True, text=True, timeout=120)


def python(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` after ``django.setup()`` in a fresh interpreter with a clean environment plus ``env``."""
    return subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + code], cwd=ROOT,
                          env={**CLEAN, **env}, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_values(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION,
                    SECRET_KEY="p" + Fernet.generate_key().decode() * 2,
                    OUTREACH_ENCRYPTION_KEYS=Fernet.generate_key().decode(), ALLOWED_HOSTS="outreach.example.com",
                    OUTREACH_PUBLIC_BASE_URL="https://outreach.example.com",
                    DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", CELERY_FILESYSTEM_BROKER_DIR=str(tmp_path / "broker"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("url, error", [("", "outreach.E101"), ("http://outreach.example.com", "outreach.E102")])
def test_production_needs_an_https_public_base_url(tmp_path, url, error):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION,
                    SECRET_KEY="p" + Fernet.generate_key().decode() * 2,
                    OUTREACH_ENCRYPTION_KEYS=Fernet.generate_key().decode(), ALLOWED_HOSTS="outreach.example.com",
                    OUTREACH_PUBLIC_BASE_URL=url,
                    DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", CELERY_FILESYSTEM_BROKER_DIR=str(tmp_path / "broker"))
    assert result.returncode != 0
    assert error in result.stdout + result.stderr


def test_production_without_secret_key_is_flagged(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, ALLOWED_HOSTS="x.example.com",
                    DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", CELERY_FILESYSTEM_BROKER_DIR=str(tmp_path / "broker"))
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stdout + result.stderr


def test_no_encryption_key_means_no_credentials(settings):
    settings.OUTREACH_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="OUTREACH_ENCRYPTION_KEYS is not set"):
        encrypt("secret")


def test_beat_schedule_lists_every_periodic_task():
    """One schedule holds every feature's periodic task (a second assignment once dropped the dispatcher)."""
    from django.conf import settings

    from outreach import celery_app

    expected = {"outbox-dispatch": "outreach.dispatch_due_messages", "campaigns-advance": "outreach.campaigns_advance",
                "inbound-sync-mailboxes": "outreach.inbound.sync_mailboxes", "imports-expire": "outreach.imports_expire",
                "bulk-jobs-sweep": "outreach.bulk_jobs_sweep"}
    assert {name: entry["task"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()} == expected
    celery_app.loader.import_default_modules()
    assert set(expected.values()) <= set(celery_app.tasks)


@pytest.mark.parametrize("missing", ["DATABASE_URL", "CELERY_BROKER_URL"])
def test_production_needs_its_database_and_broker_from_the_environment(tmp_path, missing):
    env = {**PRODUCTION, "DATABASE_URL": "postgres://outreach@127.0.0.1:9/outreach"}
    del env[missing]
    result = manage("check", **env)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_production_keeps_connections_and_secures_cookies():
    result = python("from django.conf import settings as s; import json; d = s.DATABASES['default']; "
                    "print(json.dumps([d['ENGINE'], d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], s.SESSION_COOKIE_SECURE, "
                    "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.DEBUG, s.REDIS_URL]))",
                    **PRODUCTION, DATABASE_URL="postgres://outreach@127.0.0.1:9/outreach")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["django.db.backends.postgresql", 60, True, True, True, True, False,
                                         "redis://127.0.0.1:9/0"]


@pytest.mark.parametrize("value,expected", [(None, 1), ("FULL", 2)])
def test_sqlite_commits_survive_process_deaths_and_full_also_power_cuts(tmp_path, value, expected):
    """The embedded default's pragmas as the connection reports them: WAL, synchronous NORMAL (1) unless
    SQLITE_SYNCHRONOUS=FULL (2); an unknown value is refused."""
    env = {"DJANGO_SETTINGS_MODULE": "outreach.settings.local", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           **({"SQLITE_SYNCHRONOUS": value} if value else {})}
    result = python("from django.db import connection; c = connection.cursor(); c.execute('PRAGMA journal_mode'); "
                    "print(c.fetchone()[0]); c.execute('PRAGMA synchronous'); print(c.fetchone()[0])", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", str(expected)]
    refused = python("", **{**env, "SQLITE_SYNCHRONOUS": "OFF"})
    assert refused.returncode != 0 and "SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA" in refused.stderr


def test_the_package_itself_is_not_a_settings_module():
    result = manage("check", DJANGO_SETTINGS_MODULE="outreach.settings")
    assert result.returncode != 0
    assert "outreach.settings.local" in result.stderr


def test_tests_run_on_the_test_profile(settings):
    assert settings.SETTINGS_MODULE == "outreach.settings.test"
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    assert settings.SECURE_SSL_REDIRECT is False


def test_importing_settings_creates_no_folder_and_the_first_publish_does(tmp_path):
    """The embedded default (local profile, filesystem broker): loading Django creates nothing; the first
    publish creates the broker's folders and routes an import task to the imports queue, a mailbox
    sync to the inbound queue."""
    broker = tmp_path / "broker"
    result = python(
        "from pathlib import Path; import sys\n"
        "from django.conf import settings\n"
        f"assert not Path({str(tmp_path)!r}, 'broker').exists(), 'created at import time'\n"
        "from outreach import celery_app\n"
        "celery_app.send_task('outreach.imports_expire')\n"
        "celery_app.send_task('outreach.dispatch_due_messages')\n"
        "from outreach.inbound.tasks import sync_mailbox\n"
        "sync_mailbox.delay(1)\n",
        DJANGO_SETTINGS_MODULE="outreach.settings.local", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL="filesystem://", CELERY_FILESYSTEM_BROKER_DIR=str(broker), MEDIA_ROOT=str(tmp_path / "media"))
    assert result.returncode == 0, result.stderr
    queued = sorted(path.name.rsplit(".", 2)[1] for path in (broker / "queue").iterdir())
    assert queued == ["celery", "imports", "inbound"]
    assert not (tmp_path / "media").exists()


def test_imports_and_the_inbound_sync_have_their_own_queues_and_every_task_kind_a_time_limit():
    from outreach import celery_app

    celery_app.loader.import_default_modules()
    router = celery_app.amqp.router
    queue = {name: router.route({}, name)["queue"].name for name in celery_app.tasks if name.startswith("outreach.")}
    assert queue["outreach.import_contacts"] == queue["outreach.imports_expire"] == "imports"
    assert queue["outreach.inbound.sync_mailboxes"] == queue["outreach.inbound.sync_mailbox"] == "inbound"
    assert {queue[name] for name in ("outreach.send_messages", "outreach.send_message", "outreach.dispatch_due_messages",
                                     "outreach.campaigns_advance")} == {"celery"}
    assert set(queue.values()) == {q.name for q in celery_app.conf.task_queues}
    for name in queue:
        task = celery_app.tasks[name]
        soft = task.soft_time_limit or celery_app.conf.task_soft_time_limit
        hard = task.time_limit or celery_app.conf.task_time_limit
        assert 0 < soft < hard, name
    assert celery_app.tasks["outreach.import_contacts"].soft_time_limit > celery_app.tasks["outreach.send_messages"].soft_time_limit


def test_runapp_starts_a_worker_for_each_queue_and_one_beat(settings, tmp_path):
    from outreach.management.commands.runapp import worker_commands

    settings.CELERY_BEAT_SCHEDULE_FILENAME = str(tmp_path / "var" / "celerybeat-schedule")
    commands = worker_commands()
    consumed = [set(command[command.index("-Q") + 1].split(",")) for command in commands]
    assert set().union(*consumed) == {q.name for q in settings.CELERY_TASK_QUEUES}
    assert not set.intersection(*consumed)  # an import never waits behind sends, nor sends behind an import
    assert sum("-B" in command for command in commands) == 1
    assert (tmp_path / "var").is_dir()
