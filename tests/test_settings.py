"""Settings from the environment: production values pass `check --deploy`; no secret has a production default."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from outreach.crypto import encrypt

ROOT = Path(__file__).resolve().parent.parent
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "SECRET_KEY", "OUTREACH_", "DATABASE_URL",
                                                                 "CELERY_", "REDIS_URL", "ALLOWED_HOSTS",
                                                                 "DJANGO_ALLOW_ASYNC_UNSAFE"))}


def manage(*args, **env):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**CLEAN, **env},
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_values(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    DEBUG="false", SECRET_KEY="p" + Fernet.generate_key().decode() * 2,
                    OUTREACH_ENCRYPTION_KEYS=Fernet.generate_key().decode(), ALLOWED_HOSTS="outreach.example.com",
                    OUTREACH_PUBLIC_BASE_URL="https://outreach.example.com",
                    DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", CELERY_FILESYSTEM_BROKER_DIR=str(tmp_path / "broker"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("url, error", [("", "outreach.E101"), ("http://outreach.example.com", "outreach.E102")])
def test_production_needs_an_https_public_base_url(tmp_path, url, error):
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    DEBUG="false", SECRET_KEY="p" + Fernet.generate_key().decode() * 2,
                    OUTREACH_ENCRYPTION_KEYS=Fernet.generate_key().decode(), ALLOWED_HOSTS="outreach.example.com",
                    OUTREACH_PUBLIC_BASE_URL=url,
                    DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", CELERY_FILESYSTEM_BROKER_DIR=str(tmp_path / "broker"))
    assert result.returncode != 0
    assert error in result.stdout + result.stderr


def test_production_without_secret_key_is_flagged(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="false", ALLOWED_HOSTS="x.example.com",
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
                "inbound-sync-mailboxes": "outreach.inbound.sync_mailboxes", "imports-expire": "outreach.imports_expire"}
    assert {name: entry["task"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()} == expected
    celery_app.loader.import_default_modules()
    assert set(expected.values()) <= set(celery_app.tasks)
