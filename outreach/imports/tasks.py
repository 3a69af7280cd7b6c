"""Celery tasks of the CSV import: thin wrappers that load by id and call a service.

Registered with the worker through ``outreach/tasks.py`` (Celery's autodiscovery imports that
module); the task names are stable, so queued tasks survive a deploy.
"""
from celery import shared_task


@shared_task(name="outreach.import_contacts", acks_late=True)
def import_contacts_run(import_job_id: int) -> str:
    """Run ImportJob ``import_job_id`` (a CSV import) to the end; a re-delivered task resumes
    after the last committed batch. Returns the job's final status ("done", "failed", "cancelled")."""
    from .services import import_job_run

    return import_job_run(import_job_id=import_job_id).status


@shared_task(name="outreach.imports_expire")
def imports_expire() -> dict:
    """Periodic (settings.CELERY_BEAT_SCHEDULE): expire abandoned uploads and remove old import
    files. Returns {"expired": n, "files_removed": n}."""
    from .services import import_jobs_expire

    return import_jobs_expire()
