from ._campaigns import CampaignCommand


class Command(CampaignCommand):
    help = "Print a campaign's state, enrolment counts and funnel per step as JSON."
