"""The test profile (pytest.ini, ``tests/run.sh``, the Celery workers the fixtures start): DEBUG off as
in production, but plain HTTP (no HTTPS redirect), fast password hashing, connections closed after
each request or task (the test database is dropped at the end), mail servers on 127.0.0.1 allowed.
``tests/run.sh`` supplies PostgreSQL, Redis and fresh keys through the environment; without it the
defaults are in-memory SQLite and an in-memory broker (tests needing the real servers then skip)."""
from .base import *  # noqa: F403
from .base import celery_broker_settings, database_settings, env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="test-insecure-7d1e4a9c2b6f8e3d5a1c7b9e2d4f6a8c0e3b5d7f9a1c")
OUTREACH_ENCRYPTION_KEYS = env.list("OUTREACH_ENCRYPTION_KEYS",
                                    default=["dGVzdC1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q="])  # tests only
OUTREACH_PUBLIC_BASE_URL = env("OUTREACH_PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = env.bool("OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS", default=True)

DATABASES = {"default": {**database_settings(env("DATABASE_URL", default="sqlite://:memory:")), "CONN_MAX_AGE": 0}}
vars().update(celery_broker_settings(env("CELERY_BROKER_URL", default="memory://")))

# Hashing is not under test; PBKDF2's 1M iterations took 1.7 s per created user or login here (load 10).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
