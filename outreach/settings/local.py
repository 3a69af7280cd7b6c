"""The embedded default, for development and ``manage.py runapp``: DEBUG on, SQLite (``db.sqlite3``)
and kombu's filesystem broker (``var/broker/``) unless ``DATABASE_URL`` / ``CELERY_BROKER_URL`` say
otherwise, and development-only keys so nothing needs configuring. Never for production: its
SECRET_KEY and encryption key are public."""
from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="dev-insecure-0f6c2b8e4d1a9f7c3b5e8d2a6c4f1e9b7d3a5c8e")
OUTREACH_ENCRYPTION_KEYS = env.list("OUTREACH_ENCRYPTION_KEYS",
                                    default=["ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="])  # dev only
OUTREACH_PUBLIC_BASE_URL = env("OUTREACH_PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
