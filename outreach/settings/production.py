"""Production: DEBUG off; PostgreSQL (``DATABASE_URL``) and Redis (``CELERY_BROKER_URL``, ``REDIS_URL``)
must come from the environment (ImproperlyConfigured names a missing one); HTTPS redirect, secure
cookies and HSTS on. ``SECRET_KEY``, ``OUTREACH_ENCRYPTION_KEYS`` and ``OUTREACH_PUBLIC_BASE_URL``
have no default: with them set, ``manage.py check --deploy`` is clean."""
from .base import *  # noqa: F403
from .base import celery_broker_settings, database_settings, env

DEBUG = False

DATABASES = {"default": database_settings(env("DATABASE_URL"))}
vars().update(celery_broker_settings(env("CELERY_BROKER_URL")))

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
