from ...campaigns.services import campaign_pause
from ._campaigns import CampaignCommand


class Command(CampaignCommand):
    help = "Pause an active campaign (no new step messages until resumed); prints it as JSON."
    service = campaign_pause
