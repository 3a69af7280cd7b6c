from django.core.management.base import CommandParser

from ...campaigns.services import campaign_pause
from ..base import JsonCommand, get_team
from ._campaigns import campaign_as_dict, get_campaign


class Command(JsonCommand):
    help = "Pause an active campaign (no new step messages until resumed); prints it as JSON."

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--team", required=True)
        parser.add_argument("--campaign", required=True, help="Campaign id or name.")

    def run(self, **o):
        campaign = get_campaign(get_team(o["team"]), o["campaign"])
        return campaign_as_dict(campaign_pause(campaign=campaign))
