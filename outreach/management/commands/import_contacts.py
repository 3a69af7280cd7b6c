"""``manage.py import_contacts FILE --team NAME [--policy skip|update|fill] [--as-leads]
[--campaign ID_OR_NAME [--enrol-updated]] ...``

Imports a CSV in this process (same service as the web upload) and prints the counts as JSON:
``{"import_id", "status", "rows", "created", "updated", "unchanged", "rejected", "suppressed",
"leads_created", "encoding", "delimiter", "seconds", "rows_per_second", "error_report"}`` (the
report's name in Django's default storage, as ``ImportJob.error_report`` holds it, or null without
rejected rows: never a local path, so it works on S3 and from another host), plus
``"enrolment": {"campaign_id", "campaign", "enrolled", "already", "skipped": {reason: n},
"skipped_total"}`` with ``--campaign``. Exits non-zero with a message on stderr for an
unreadable file, a file without an email column, an unknown team/owner/campaign, a stopped or
completed campaign, or an import that failed.
"""
from __future__ import annotations

import json
import os
import time

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from ...models import ImportJob, Lead
from ...imports.mapping import TARGETS
from ...imports.services import contacts_import
from ._campaigns import get_campaign
from ..base import JsonCommand, get_team


class Command(JsonCommand):
    help = "Import contacts (optionally as leads) from a CSV file; prints the counts as JSON."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to the CSV file.")
        parser.add_argument("--team", required=True, help="Team name.")
        parser.add_argument("--policy", choices=ImportJob.Policy.values, default="skip",
                            help="Existing contacts (same email): skip (default), update, or fill only blank fields.")
        parser.add_argument("--as-leads", action="store_true", help="Also make every imported contact a lead.")
        parser.add_argument("--lead-status", choices=Lead.Status.values, default="new")
        parser.add_argument("--lead-owner", default="", help="Username of the leads' owner (a member of the team).")
        parser.add_argument("--mapping", default="",
                            help='JSON {"CSV header": "field"}; fields: ' + ", ".join(TARGETS) + ', custom, ignore '
                                 '(vendor ids as the providers declare them). Other columns keep their guessed mapping.')
        parser.add_argument("--name", default="", help="Import name (the contacts' source); defaults to the file name.")
        parser.add_argument("--campaign", default="",
                            help="Campaign id or name: enrol the contacts the import creates (skip rules of campaign_enroll).")
        parser.add_argument("--enrol-updated", action="store_true",
                            help="With --campaign: also enrol existing contacts the import updates.")

    def run(self, **options):
        path = options["file"]
        if not os.path.isfile(path):
            raise CommandError(f"No such file: {path}")
        team = get_team(options["team"])
        owner = None
        if options["lead_owner"]:
            owner = get_user_model().objects.filter(username=options["lead_owner"]).first()
            if owner is None:
                raise CommandError(f"No user named {options['lead_owner']!r}.")
        campaign = get_campaign(team, options["campaign"]) if options["campaign"] else None
        if options["enrol_updated"] and campaign is None:
            raise CommandError("--enrol-updated needs --campaign.")
        mapping = None
        if options["mapping"]:
            try:
                mapping = json.loads(options["mapping"])
            except json.JSONDecodeError as err:
                raise CommandError(f"--mapping is not valid JSON: {err}") from err
            if not isinstance(mapping, dict):
                raise CommandError('--mapping must be a JSON object: {"CSV header": "field"}.')
        started = time.perf_counter()
        with open(path, "rb") as fh:
            job = contacts_import(team=team, file=fh, policy=options["policy"], as_leads=options["as_leads"],
                                  lead_status=options["lead_status"], lead_owner=owner, mapping=mapping,
                                  name=options["name"], filename=os.path.basename(path), campaign=campaign,
                                  enrol_updated=options["enrol_updated"])
        seconds = time.perf_counter() - started
        if job.status != ImportJob.Status.DONE:
            raise CommandError(f"Import {job.pk} {job.status}: {job.error_message}")
        counts = job.counts()
        result = {"import_id": job.pk, "status": job.status, **counts, "encoding": job.encoding,
                  "delimiter": job.delimiter, "seconds": round(seconds, 3),
                  "rows_per_second": round(counts["rows"] / seconds) if seconds else None,
                  "error_report": job.error_report.name if job.rejected_count else None}
        if campaign is not None:
            result["enrolment"] = job.enrolment_counts()
        return result
