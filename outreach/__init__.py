"""Outreach: project settings and the core app (teams, contacts, leads, mailboxes, messages, timeline)."""
from .celery import app as celery_app

__all__ = ("celery_app",)
