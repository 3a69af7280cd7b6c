"""Celery tasks of campaigns: thin wrappers around the scheduler service."""
from celery import shared_task

from .services import campaigns_advance


@shared_task(name="outreach.campaigns_advance", ignore_result=True)
def campaigns_advance_task() -> dict:
    """One scheduler run (Celery beat every OUTREACH_CAMPAIGN_TICK_SECONDS). Returns its counts."""
    return campaigns_advance().as_dict()
