from ...campaigns.services import campaign_start
from ._campaigns import CampaignCommand


class Command(CampaignCommand):
    help = "Start a draft campaign or resume a paused one; prints it as JSON."
    service = campaign_start
