"""Celery application: configured from Django settings (``CELERY_*``, including the beat schedule, the
queues and the time limits), tasks autodiscovered. The default profile is ``outreach.settings.local``,
as for ``manage.py``; production workers set ``DJANGO_SETTINGS_MODULE=outreach.settings.production``.

A worker runs the outbox dispatcher once as soon as it is ready, so messages left by a crash are
recovered without waiting for beat. The filesystem broker's folders are created here when a worker
starts and before a process's first publish, not when settings are imported (``runapp`` creates
``var/`` for beat's schedule file).
"""
import os
from pathlib import Path

from celery import Celery
from celery.signals import before_task_publish, worker_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.local")

app = Celery("outreach")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_FOLDER_OPTIONS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
_folders_ready = False


def broker_folders_ensure() -> list[Path]:
    """Create the filesystem broker's folders (``CELERY_BROKER_TRANSPORT_OPTIONS`` ``data_folder_*``,
    ``processed_folder``, ``control_folder``) if the broker is ``filesystem://``; kombu creates none
    of them but the control folder. Returns the folders (empty for any other broker). Idempotent."""
    global _folders_ready
    if not str(app.conf.broker_url or "").startswith("filesystem://"):
        return []
    options = app.conf.broker_transport_options or {}
    folders = [Path(options[name]) for name in _FOLDER_OPTIONS if options.get(name)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    _folders_ready = True
    return folders


@worker_init.connect
def _folders_at_worker_start(sender=None, **kwargs):
    broker_folders_ensure()


@before_task_publish.connect
def _folders_before_first_publish(sender=None, **kwargs):
    if not _folders_ready:
        broker_folders_ensure()


@worker_ready.connect
def _dispatch_at_worker_start(sender=None, **kwargs):
    """Publish one dispatcher run when a worker starts (a broker outage here is not fatal: beat follows)."""
    try:
        app.send_task("outreach.dispatch_due_messages", retry=False)
    except Exception:  # noqa: BLE001 - the worker must start even when the broker hiccups
        pass
