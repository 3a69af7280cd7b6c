from django.core.management.base import CommandError, CommandParser

from ...models import Contact
from ...validation import normalize_email
from ..base import JsonCommand, get_team, timeline_event_as_dict


class Command(JsonCommand):
    help = "Print a contact's timeline, newest first, as JSON."

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--team", required=True)
        parser.add_argument("email")
        parser.add_argument("--limit", type=int, default=200)

    def run(self, **o):
        team = get_team(o["team"])
        email = normalize_email(o["email"])
        try:
            contact = Contact.objects.for_team(team).get(email=email)
        except Contact.DoesNotExist as err:
            raise CommandError(f"Team {team.name} has no contact {email}.") from err
        from ...imports.selectors import contact_imported_event

        events = list(contact.timeline_events.order_by("-created_at", "-id")[: o["limit"]])
        imported = contact_imported_event(contact=contact)
        if imported is not None and len(events) < o["limit"]:
            events.append(imported)  # the oldest entry: the contact's creation
        return {"contact": contact.email, "events": [timeline_event_as_dict(e) for e in events]}
