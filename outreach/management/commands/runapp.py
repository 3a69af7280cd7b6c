import secrets
import subprocess
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from ...models import Team
from ...services.teams import team_create_with_owner

DEMO_TEAM, DEMO_USER = "Demo team", "demo"


class Command(BaseCommand):
    help = ("Run the whole app for local use: migrate, make sure a demo login exists (printed), then start "
            "a Celery worker (with beat: the outbox dispatcher) and the web server together; Ctrl-C stops both.")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true", help="Do not start a Celery worker.")

    def handle(self, *args, **o):
        call_command("migrate", verbosity=0)
        password = secrets.token_urlsafe(9)
        User = get_user_model()
        user = User.objects.filter(username=DEMO_USER).first()
        if user is None:
            _, user = team_create_with_owner(team_name=DEMO_TEAM, username=DEMO_USER, email="demo@example.com", password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
        team = Team.objects.get(memberships__user=user)
        self.stdout.write(self.style.SUCCESS(
            f"\n  Outreach is starting on http://{o['addrport']}/\n"
            f"  Log in as: {DEMO_USER} / {password}   (team: {team.name}; also a superuser for /admin/)\n"
            f"  Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, broker: {settings.CELERY_BROKER_URL.split(':')[0]}\n"))
        worker = None
        if not o["no_worker"]:
            # -B: the worker also runs beat, whose schedule includes the outbox dispatcher.
            worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "outreach", "worker", "--pool=solo",
                                       "--loglevel=info", "--without-gossip", "--without-mingle", "--without-heartbeat",
                                       "-B", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME])
        try:
            call_command("runserver", o["addrport"], use_reloader=False)
        finally:
            if worker is not None:
                worker.terminate()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
