from django.core.management.base import CommandError, CommandParser

from providers.registry import http_providers

from ...services.provider_accounts import provider_account_create
from ..base import JsonCommand, get_team, read_secret


class Command(JsonCommand):
    help = ("Add an HTTP provider account (lemlist, leadlex, OpenMail, Unipile) to a team. The API key comes "
            "from OUTREACH_API_KEY or the first line of stdin (--key-stdin), never from argv. Prints the account "
            "as JSON (without the key).")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--team", required=True)
        parser.add_argument("--provider", required=True, choices=http_providers())
        parser.add_argument("--name", required=True)
        parser.add_argument("--base-url", default="", help="Override the document's server (self-hosted gateways, tests).")
        parser.add_argument("--key-stdin", action="store_true", help="Read the API key from the first line of stdin.")

    def run(self, **o):
        team = get_team(o["team"])
        api_key = read_secret(env_var="OUTREACH_API_KEY", from_stdin=o["key_stdin"], what="API key", required=False)
        if not api_key:
            raise CommandError("No API key: set the OUTREACH_API_KEY environment variable or pass it on stdin with --key-stdin.")
        account = provider_account_create(team=team, provider=o["provider"], name=o["name"], api_key=api_key,
                                          base_url=o["base_url"])
        return {"id": account.pk, "team": team.name, "provider": account.provider, "name": account.name,
                "base_url": account.base_url, "api_key_set": True}
