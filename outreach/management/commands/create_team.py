from django.core.management.base import CommandParser

from ...services.teams import team_create_with_owner
from ..base import JsonCommand, read_secret


class Command(JsonCommand):
    help = ("Create a team with its first user (owner). The password comes from OUTREACH_USER_PASSWORD "
            "or stdin (--password-stdin). Prints the team and user as JSON.")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--name", required=True, help="Team name (unique).")
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--password-stdin", action="store_true", help="Read the password from the first line of stdin.")
        parser.add_argument("--staff", action="store_true", help="Let the user into Django admin (team-scoped).")

    def run(self, **o):
        password = read_secret(env_var="OUTREACH_USER_PASSWORD", from_stdin=o["password_stdin"], what="password")
        team, user = team_create_with_owner(team_name=o["name"], username=o["username"], email=o["email"], password=password)
        if o["staff"]:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        return {"team": {"id": team.pk, "name": team.name}, "user": {"id": user.pk, "username": user.username}}
