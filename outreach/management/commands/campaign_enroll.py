"""``manage.py campaign_enroll``: enrol contacts in a campaign, by ``--email`` or every contact
matching ``--search/--lead/--company`` (``--all``: the whole team).

A selection by search or ``--all`` runs as a BulkJob (``outreach.services.bulk_jobs``), so it
is batched and crash-safe instead of one unbounded transaction: by default in this process
(:func:`bulk_job_run`, a progress line on stderr after each batch, the counts as JSON on stdout
when it is done — what a script calling the command waits for); ``--background`` queues it for
the Celery workers instead and prints the job's id and progress page at once. A run killed
mid-way (SIGKILL, a lost machine) leaves its committed batches enrolled and its lease expiring:
the beat sweep then hands the job to a worker, which resumes after the last committed batch.
Ctrl-C cancels the job (committed batches stay). Running the command again is harmless:
contacts already in the campaign are counted as ``already``, never enrolled twice.
"""
from __future__ import annotations

import sys

from django.core.management.base import CommandError, CommandParser
from django.urls import reverse

from ...campaigns.services import campaign_enrol
from ...models import BulkJob, Contact
from ...selectors import ListQuery, Selection
from ...services.bulk_jobs import bulk_job_create, bulk_job_publish, bulk_job_run
from ...validation import normalize_email
from ..base import JsonCommand, get_team
from ._campaigns import get_campaign


def enrol_counts(job: BulkJob) -> dict:
    """An enrol job's counters in the shape of ``EnrolResult.as_dict()`` (enrolled, already,
    skipped by reason, skipped_total) plus the job's id, status and message."""
    details = job.details or {}
    skipped = {key.split(":", 1)[1]: n for key, n in details.items() if key.startswith("skipped:") and n}
    return {"enrolled": job.changed, "already": details.get("already", 0), "skipped": skipped,
            "skipped_total": sum(skipped.values()), "bulk_job": job.pk, "status": job.status, "message": job.message}


class Command(JsonCommand):
    help = ("Enrol contacts in a campaign: by --email, or every contact matching --search/--lead/--company "
            "(--all for the whole team), batch by batch as a bulk job, with a progress line per batch on stderr "
            "(--background: queue it for the workers and return at once). Prints enrolled/already/skipped "
            "counts as JSON.")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--team", required=True)
        parser.add_argument("--campaign", required=True, help="Campaign id or name.")
        parser.add_argument("--email", action="append", default=[])
        parser.add_argument("--search", default="", help="As the contacts list's search box.")
        parser.add_argument("--lead", default="", help="yes, no, or a lead status.")
        parser.add_argument("--company", default="")
        parser.add_argument("--all", action="store_true", help="Every contact of the team.")
        parser.add_argument("--background", action="store_true",
                            help="With --search/--lead/--company/--all: queue the job for the Celery workers and "
                                 "print its id and progress page instead of running it here.")
        parser.add_argument("--batch-size", type=int, default=None,
                            help="Contacts per batch (default OUTREACH_BULK_JOB_BATCH).")

    def run(self, **o):
        team = get_team(o["team"])
        campaign = get_campaign(team, o["campaign"])
        filtering = bool(o["search"] or o["lead"] or o["company"] or o["all"])
        if bool(o["email"]) == filtering:
            raise CommandError("Give either --email (repeatable) or --search/--lead/--company/--all.")
        if o["email"]:
            if o["background"]:
                raise CommandError("--background is for --search/--lead/--company/--all.")
            emails = [normalize_email(e) for e in o["email"]]
            ids = list(Contact.objects.for_team(team).filter(email__in=emails).values_list("pk", flat=True))
            missing = sorted(set(emails) - set(Contact.objects.for_team(team).filter(pk__in=ids).values_list("email", flat=True)))
            result = campaign_enrol(campaign=campaign, selection=Selection.of_ids(ids))
            return {**result.as_dict(), "unknown_emails": missing}
        if o["batch_size"] is not None and o["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        query = ListQuery(q=o["search"], filters={"lead": o["lead"], "company": o["company"]})
        job = bulk_job_create(team=team, kind=BulkJob.Kind.ENROL, query=query, value=str(campaign.pk),
                              publish=False)
        if o["background"]:
            bulk_job_publish(job.pk)
            return {"bulk_job": job.pk, "status": job.status, "progress": reverse("bulk_job_detail", args=[job.pk])}
        try:
            job = bulk_job_run(bulk_job_id=job.pk, batch_size=o["batch_size"], on_batch=self._progress)
        except KeyboardInterrupt:
            job = BulkJob.objects.get(pk=job.pk)
            raise CommandError(job.message or f"Interrupted; bulk job {job.pk} is {job.status}.") from None
        if job.status != BulkJob.Status.DONE:
            raise CommandError(f"Bulk job {job.pk} {job.status}: {job.message}")
        return enrol_counts(job)

    def _progress(self, job: BulkJob) -> None:
        """One progress line on stderr after each committed batch."""
        total = job.total or 0
        percent = f" ({job.done * 100 // total} %)" if total else ""
        self.stderr.write(f"bulk job {job.pk}: {job.done:,} of {total:,} contacts{percent}, "
                          f"{job.changed:,} enrolled")
        sys.stderr.flush()
