from django.core.management.base import CommandParser

from ..base import JsonCommand, get_team
from ._campaigns import campaign_as_dict, get_campaign


class Command(JsonCommand):
    help = "Print a campaign's state, enrolment counts and funnel per step as JSON."

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--team", required=True)
        parser.add_argument("--campaign", required=True, help="Campaign id or name.")

    def run(self, **o):
        return campaign_as_dict(get_campaign(get_team(o["team"]), o["campaign"]))
