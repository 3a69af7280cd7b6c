import json
from datetime import time

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from ...campaigns.services import VariantData, campaign_create, campaign_step_save
from ...models import Mailbox
from ..base import JsonCommand, get_team, validation_text
from ._campaigns import campaign_as_dict

STEPS_HELP = """JSON file: a list of steps, each {"delay": 2, "unit": "days"|"hours", "business_days": false,
"new_thread": false, "subject": "...", "html": "...", "variants": [{"label": "B", "subject": "...",
"html": "...", "weight": 50}]} (variants optional; the first step's delay is ignored)."""


def _time(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError as err:
        raise CommandError(f"Times are HH:MM, got {value!r}.") from err


class Command(JsonCommand):
    help = "Create a draft campaign with its steps; prints it as JSON. " + STEPS_HELP

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--team", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--mailbox", type=int, action="append", default=[], help="Mailbox id (repeat to rotate).")
        parser.add_argument("--steps", required=True, help=STEPS_HELP)
        parser.add_argument("--time-zone", default="UTC")
        parser.add_argument("--days", default="0,1,2,3,4", help="Send days, 0 = Monday (blank = every day).")
        parser.add_argument("--window", default="09:00-17:00", help="HH:MM-HH:MM in the recipient's zone.")
        parser.add_argument("--stop-on-auto-reply", action="store_true")
        parser.add_argument("--stop-company-on-reply", action="store_true")
        parser.add_argument("--include-active-elsewhere", action="store_true",
                            help="Do not skip contacts active in another campaign.")

    def run(self, **o):
        team = get_team(o["team"])
        mailboxes = list(Mailbox.objects.for_team(team).filter(pk__in=o["mailbox"]))
        if len(mailboxes) != len(set(o["mailbox"])):
            raise CommandError("Unknown mailbox id for this team: "
                               + ", ".join(str(i) for i in set(o["mailbox"]) - {m.pk for m in mailboxes}))
        try:
            with open(o["steps"], encoding="utf-8") as handle:
                steps = json.load(handle)
        except (OSError, ValueError) as err:
            raise CommandError(f"Cannot read the steps file {o['steps']}: {err}") from err
        if not isinstance(steps, list) or not steps or not all(isinstance(s, dict) for s in steps):
            raise CommandError("The steps file must hold a non-empty JSON list of step objects.")
        start, _, end = o["window"].partition("-")
        with transaction.atomic():
            campaign = campaign_create(team=team, data={
                "name": o["name"], "mailboxes": mailboxes, "time_zone": o["time_zone"], "send_days": o["days"],
                "window_start": _time(start), "window_end": _time(end or start),
                "stop_on_auto_reply": o["stop_on_auto_reply"], "stop_company_on_reply": o["stop_company_on_reply"],
                "skip_active_elsewhere": not o["include_active_elsewhere"]})
            for number, step in enumerate(steps, start=1):
                variants = [VariantData("A", str(step.get("subject", "")), str(step.get("html", "")),
                                        int(step.get("weight", 100)))]
                variants += [VariantData(str(v.get("label", "")), str(v.get("subject", "")), str(v.get("html", "")),
                                         int(v.get("weight", 100))) for v in step.get("variants", [])]
                try:
                    campaign_step_save(campaign=campaign, variants=variants, data={
                        "delay_amount": int(step.get("delay", 0)), "delay_unit": step.get("unit", "days"),
                        "business_days_only": bool(step.get("business_days", False)),
                        "new_thread": bool(step.get("new_thread", False))})
                except ValidationError as err:
                    raise CommandError(f"Step {number}: {validation_text(err)}") from err
        return campaign_as_dict(campaign)
