from ...campaigns.services import campaign_stop
from ._campaigns import CampaignCommand


class Command(CampaignCommand):
    help = "Stop a campaign for good (every active enrolment stops); prints it as JSON."
    service = campaign_stop
