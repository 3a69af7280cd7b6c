"""``manage.py runapp``: the whole app for local use in one command (see README, "Running it")."""
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from ...models import Team
from ...services.teams import team_create_with_owner

DEMO_TEAM, DEMO_USER = "Demo team", "demo"


def demo_user_ensure(*, reset_password: bool = False) -> tuple[object, str | None]:
    """Make sure the ``demo`` superuser (owner of "Demo team") exists. Returns (user, password):
    the password only when it was just created or reset (``reset_password``), else None — an
    existing password is kept, so a restart logs nobody out."""
    User = get_user_model()
    user = User.objects.filter(username=DEMO_USER).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(9)
        _, user = team_create_with_owner(team_name=DEMO_TEAM, username=DEMO_USER, email="demo@example.com", password=password)
    elif reset_password or not user.has_usable_password():
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save(update_fields=["password"])
    if not (user.is_staff and user.is_superuser):
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    return user, password


def worker_commands() -> list[list[str]]:
    """The Celery workers runapp starts (solo pool each), one per queue of ``CELERY_TASK_QUEUES``: the
    default queue's (sends) also runs beat (``-B``: the outbox dispatcher and the other periodic
    tasks); ``imports`` and ``inbound`` have their own, so a long import or a slow IMAP server never
    holds up a send. Creates the folder of beat's schedule file."""
    Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)
    common = [sys.executable, "-m", "celery", "-A", "outreach", "worker", "--pool=solo", "--loglevel=info",
              "--without-gossip", "--without-mingle", "--without-heartbeat"]
    default = settings.CELERY_TASK_DEFAULT_QUEUE
    return [
        [*common, "-Q", default, "-n", "outreach-default@%h", "-B", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME],
        *([*common, "-Q", queue.name, "-n", f"outreach-{queue.name}@%h"]
          for queue in settings.CELERY_TASK_QUEUES if queue.name != default),
    ]


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGHUP so the ``finally`` stopping the children runs."""


def _raise_stop(signum, frame):
    raise _Stop(signal.Signals(signum).name)


def stop_children(children: list[subprocess.Popen], *, timeout: float = 10.0) -> None:
    """SIGTERM every child process still running, wait up to ``timeout`` seconds each, then SIGKILL."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class Command(BaseCommand):
    help = ("Run the whole app for local use: migrate, make sure a demo login exists (its password is printed "
            "when it is created), then start a Celery worker per queue (sends with beat, imports, inbound sync) and the web server together; Ctrl-C or SIGTERM "
            "stops them all.")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true", help="Do not start the Celery workers.")
        parser.add_argument("--reset-demo-password", action="store_true",
                            help="Give the demo user a new password (printed); by default an existing one is kept.")

    def handle(self, *args, **o):
        call_command("migrate", verbosity=0)
        user, password = demo_user_ensure(reset_password=o["reset_demo_password"])
        team = Team.objects.get(memberships__user=user)
        login = (f"{DEMO_USER} / {password}" if password else
                 f"{DEMO_USER} (password unchanged; --reset-demo-password prints a new one)")
        self.stdout.write(self.style.SUCCESS(
            f"\n  Outreach is starting on http://{o['addrport']}/\n"
            f"  Log in as: {login}   (team: {team.name}; also a superuser for /admin/)\n"
            f"  Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, broker: {settings.CELERY_BROKER_URL.split(':')[0]}\n"))
        children: list[subprocess.Popen] = []
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            if not o["no_worker"]:
                children.extend(subprocess.Popen(command) for command in worker_commands())
            call_command("runserver", o["addrport"], use_reloader=False)
        except _Stop as stop:
            self.stdout.write(f"{stop.args[0]}: stopping.")
        finally:
            stop_children(children)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
