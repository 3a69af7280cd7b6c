"""Celery application: configured from Django settings (``CELERY_*``, including the beat schedule),
tasks autodiscovered. A worker runs the outbox dispatcher once as soon as it is ready, so messages
left by a crash are recovered without waiting for beat."""
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings")

app = Celery("outreach")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _dispatch_at_worker_start(sender=None, **kwargs):
    """Publish one dispatcher run when a worker starts (a broker outage here is not fatal: beat follows)."""
    try:
        app.send_task("outreach.dispatch_due_messages", retry=False)
    except Exception:  # noqa: BLE001 - the worker must start even when the broker hiccups
        pass
