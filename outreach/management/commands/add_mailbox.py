from datetime import time

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from providers.registry import HTTP_PROVIDERS, MAILBOX_SENDER_ID_FIELDS, get_provider_class

from ...models import Mailbox, ProviderAccount
from ...services.mailboxes import (mailbox_check_hosts, mailbox_connect, mailbox_connect_provider,
                                   mailbox_test_connection)
from ..base import JsonCommand, get_team, read_secret

#: One flag per sender id some provider requires (``--lemlist-send-user-id`` …), from the registry.
PROVIDER_ID_FLAGS = MAILBOX_SENDER_ID_FIELDS


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class Command(JsonCommand):
    help = ("Add a mailbox to a team: an SMTP/IMAP account (passwords from OUTREACH_SMTP_PASSWORD / "
            "OUTREACH_IMAP_PASSWORD or stdin: first line SMTP, second line IMAP), or a sender at a provider "
            "account (--provider NAME --provider-account ID and that provider's sender ids). Prints the mailbox as JSON.")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--team", required=True)
        parser.add_argument("--sender-name", default="")
        parser.add_argument("--sender-email", required=True)
        parser.add_argument("--smtp-host", default="")
        parser.add_argument("--smtp-port", type=int)
        parser.add_argument("--smtp-login", default="")
        parser.add_argument("--smtp-security", choices=["ssl", "starttls", "none"], default="starttls")
        parser.add_argument("--imap-host", default="")
        parser.add_argument("--imap-port", type=int)
        parser.add_argument("--imap-login", default="")
        parser.add_argument("--imap-security", choices=["ssl", "starttls", "none"], default="ssl")
        parser.add_argument("--imap-sent-folder", default="Sent")
        parser.add_argument("--password-stdin", action="store_true")
        parser.add_argument("--test", action="store_true", help="Log in to SMTP/IMAP first; refuse to save on failure.")
        parser.add_argument("--provider", default="smtp", help="'smtp' (default) or an HTTP provider name.")
        rules = parser.add_argument_group("sending rules (defaults suit a cold mailbox: 50/day, 90 s + up to 60 s, Mon-Fri 08:00-18:00 UTC)")
        rules.add_argument("--daily-cap", type=int, help="Messages per local day (0 = no cap).")
        rules.add_argument("--min-interval", type=int, dest="min_interval_seconds", help="Seconds between sends (0 = none).")
        rules.add_argument("--interval-jitter", type=int, dest="interval_jitter_seconds", help="Random extra seconds, up to.")
        rules.add_argument("--send-days", help="Comma-separated 0 (Mon) … 6 (Sun); 'all' = every day.")
        rules.add_argument("--window", help="Local hours HH:MM-HH:MM (00:00-00:00 = all day).")
        rules.add_argument("--time-zone", help="IANA time zone of the window and the day, e.g. Europe/Paris.")
        parser.add_argument("--provider-account", type=int, help="ProviderAccount id for a provider-bound mailbox.")
        for name in PROVIDER_ID_FLAGS:
            needed_by = [cls.label for cls in map(get_provider_class, HTTP_PROVIDERS) if name in cls.required_mailbox_fields]
            parser.add_argument(_flag(name), default="", metavar="ID", help=f"Required for {', '.join(needed_by)} mailboxes.")

    def run(self, **o):
        team = get_team(o["team"])
        o.update(_rules(o))
        if o["provider"] != "smtp":
            return self._provider_mailbox(team, o)
        if not o["smtp_host"] or not o["smtp_port"]:
            raise CommandError("An SMTP mailbox needs --smtp-host and --smtp-port.")
        if o["imap_host"] and not o["imap_port"]:
            raise CommandError("--imap-host needs --imap-port.")
        if o["password_stdin"]:
            smtp_password = read_secret(env_var="", from_stdin=True, what="SMTP password")
            imap_password = read_secret(env_var="", from_stdin=True, what="IMAP password", required=False) or smtp_password
        else:
            smtp_password = read_secret(env_var="OUTREACH_SMTP_PASSWORD", from_stdin=False, what="SMTP password",
                                        required=bool(o["smtp_login"]))
            imap_password = read_secret(env_var="OUTREACH_IMAP_PASSWORD", from_stdin=False, what="IMAP password",
                                        required=False) or smtp_password
        data = {
            "sender_name": o["sender_name"], "sender_email": o["sender_email"],
            "smtp_host": o["smtp_host"], "smtp_port": o["smtp_port"], "smtp_login": o["smtp_login"],
            "smtp_password": smtp_password, "smtp_security": o["smtp_security"],
            "imap_host": o["imap_host"], "imap_port": o["imap_port"], "imap_login": o["imap_login"] or o["smtp_login"],
            "imap_password": imap_password if o["imap_host"] else "", "imap_security": o["imap_security"],
            "imap_sent_folder": o["imap_sent_folder"], **_rules(o),
        }
        problems = mailbox_check_hosts(data)
        if problems:
            raise ValidationError(problems)
        checked = None
        if o["test"]:
            ok, lines = mailbox_test_connection(data=data)
            if not ok:
                raise CommandError("Connection test failed: " + " ".join(lines))
            checked = lines
        mailbox = mailbox_connect(team=team, data=data)
        return {**_mailbox_dict(mailbox), "connection_test": checked}

    def _provider_mailbox(self, team, o):
        if o["provider"] not in HTTP_PROVIDERS:
            raise CommandError(f"Unknown provider {o['provider']!r}; use smtp or one of {', '.join(HTTP_PROVIDERS)}.")
        provider_cls = get_provider_class(o["provider"])
        missing = provider_cls.missing_mailbox_fields(o)
        if missing:
            raise CommandError(f"A {provider_cls.label} mailbox needs {', '.join(map(_flag, missing))} "
                               "(the sender ids its API requires).")
        stray = [n for n in PROVIDER_ID_FLAGS if o[n] and n not in provider_cls.required_mailbox_fields]
        if stray:
            raise CommandError(f"{', '.join(_flag(n) for n in stray)} do{'es' if len(stray) == 1 else ''} not apply "
                               f"to {provider_cls.label} mailboxes.")
        if not o["provider_account"]:
            raise CommandError(f"A {provider_cls.label} mailbox needs --provider-account ID.")
        try:
            account = ProviderAccount.objects.for_team(team).get(pk=o["provider_account"])
        except ProviderAccount.DoesNotExist:
            raise CommandError(f"Team {team.name} has no provider account {o['provider_account']}.") from None
        if account.provider != o["provider"]:
            raise CommandError(f"Provider account {account.pk} is a {account.provider} account, not {o['provider']}.")
        mailbox = mailbox_connect_provider(team=team, account=account, data=o)
        return _mailbox_dict(mailbox)


def _rules(o: dict) -> dict:
    """The sending-rule flags given, as Mailbox fields (missing ones keep the defaults)."""
    rules = {k: o[k] for k in ("daily_cap", "min_interval_seconds", "interval_jitter_seconds", "time_zone") if o.get(k) is not None}
    if o.get("send_days") is not None:
        rules["send_days"] = "" if o["send_days"].strip().lower() == "all" else o["send_days"]
    if o.get("window"):
        try:
            start, end = (time.fromisoformat(part.strip()) for part in o["window"].split("-"))
        except ValueError:
            raise CommandError(f"--window {o['window']!r}: use HH:MM-HH:MM, e.g. 08:00-18:00.") from None
        rules.update(send_window_start=start, send_window_end=end)
    return rules


def _mailbox_dict(mailbox: Mailbox) -> dict:
    return {"id": mailbox.pk, "team": mailbox.team.name, "provider": mailbox.provider, "sender_name": mailbox.sender_name,
            "sender_email": mailbox.sender_email, "smtp_host": mailbox.smtp_host, "smtp_port": mailbox.smtp_port,
            "smtp_security": mailbox.smtp_security, "imap_host": mailbox.imap_host, "imap_port": mailbox.imap_port,
            "provider_account": mailbox.provider_account_id, "daily_cap": mailbox.daily_cap,
            "min_interval_seconds": mailbox.min_interval_seconds, "send_days": mailbox.send_days,
            "send_window": f"{mailbox.send_window_start:%H:%M}-{mailbox.send_window_end:%H:%M}", "time_zone": mailbox.time_zone}
