from django.core.management.base import CommandError, CommandParser

from ...campaigns.services import campaign_enrol
from ...models import Contact
from ...selectors import ListQuery, Selection
from ...validation import normalize_email
from ..base import JsonCommand, get_team
from ._campaigns import get_campaign


class Command(JsonCommand):
    help = ("Enrol contacts in a campaign: by --email, or every contact matching --search/--lead/--company "
            "(--all for the whole team). Prints enrolled/already/skipped counts as JSON.")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--team", required=True)
        parser.add_argument("--campaign", required=True, help="Campaign id or name.")
        parser.add_argument("--email", action="append", default=[])
        parser.add_argument("--search", default="", help="As the contacts list's search box.")
        parser.add_argument("--lead", default="", help="yes, no, or a lead status.")
        parser.add_argument("--company", default="")
        parser.add_argument("--all", action="store_true", help="Every contact of the team.")

    def run(self, **o):
        team = get_team(o["team"])
        campaign = get_campaign(team, o["campaign"])
        filtering = bool(o["search"] or o["lead"] or o["company"] or o["all"])
        if bool(o["email"]) == filtering:
            raise CommandError("Give either --email (repeatable) or --search/--lead/--company/--all.")
        if o["email"]:
            emails = [normalize_email(e) for e in o["email"]]
            ids = list(Contact.objects.for_team(team).filter(email__in=emails).values_list("pk", flat=True))
            missing = sorted(set(emails) - set(Contact.objects.for_team(team).filter(pk__in=ids).values_list("email", flat=True)))
            result = campaign_enrol(campaign=campaign, selection=Selection.of_ids(ids))
            return {**result.as_dict(), "unknown_emails": missing}
        query = ListQuery(q=o["search"], filters={"lead": o["lead"], "company": o["company"]})
        return campaign_enrol(campaign=campaign, selection=Selection(query=query)).as_dict()
