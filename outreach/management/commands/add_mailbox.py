from datetime import time

from django.core.management.base import CommandError, CommandParser

from providers.config import BOOL, CHOICE, INT, SECRET
from providers.registry import PROVIDERS, get_provider_class

from ...models import Mailbox, ProviderAccount
from ...services.mailboxes import mailbox_config_or_error, mailbox_connect, mailbox_connect_provider, mailbox_test_connection
from ..base import JsonCommand, get_team, read_secret


def _flag(form_name: str) -> str:
    return "--" + form_name.replace("_", "-")


def setting_options() -> dict[str, list[tuple[str, str]]]:
    """{form field name: [(provider, setting name)]} of every editable, non-secret setting some
    provider declares: one option each (``--smtp-host``, ``--lemlist-send-user-id`` …), from the registry."""
    options: dict[str, list[tuple[str, str]]] = {}
    for provider, cls in PROVIDERS.items():
        for name, spec in cls.config_class.settings():
            if spec.editable and spec.kind != SECRET:
                options.setdefault(cls.config_class.form_name(name), []).append((provider, name))
    return options


class Command(JsonCommand):
    help = ("Add a mailbox to a team: an SMTP/IMAP account (passwords from OUTREACH_SMTP_PASSWORD / "
            "OUTREACH_IMAP_PASSWORD or stdin: first line SMTP, second line IMAP), or a sender at a provider "
            "account (--provider NAME --provider-account ID and that provider's settings). Each provider's "
            "settings are options (from its declared config). Prints the mailbox as JSON.")

    def add_arguments(self, parser: CommandParser):
        parser.add_argument("--team", required=True)
        parser.add_argument("--sender-name", default="")
        parser.add_argument("--sender-email", required=True)
        parser.add_argument("--password-stdin", action="store_true",
                            help="Read the provider's secrets from stdin, one a line, in declared order.")
        parser.add_argument("--test", action="store_true", help="Log in to SMTP/IMAP first; refuse to save on failure.")
        parser.add_argument("--provider", default="smtp", help=f"One of {', '.join(PROVIDERS)} (default smtp).")
        parser.add_argument("--provider-account", type=int, help="ProviderAccount id for a provider-bound mailbox.")
        rules = parser.add_argument_group("sending rules (defaults suit a cold mailbox: 50/day, 90 s + up to 60 s, Mon-Fri 08:00-18:00 UTC)")
        rules.add_argument("--daily-cap", type=int, help="Messages per local day (0 = no cap).")
        rules.add_argument("--min-interval", type=int, dest="min_interval_seconds", help="Seconds between sends (0 = none).")
        rules.add_argument("--interval-jitter", type=int, dest="interval_jitter_seconds", help="Random extra seconds, up to.")
        rules.add_argument("--send-days", help="Comma-separated 0 (Mon) … 6 (Sun); 'all' = every day.")
        rules.add_argument("--window", help="Local hours HH:MM-HH:MM (00:00-00:00 = all day).")
        rules.add_argument("--time-zone", help="IANA time zone of the window and the day, e.g. Europe/Paris.")
        settings = parser.add_argument_group("provider settings (each provider's declared config)")
        for form_name, owners in setting_options().items():
            provider, name = owners[0]
            config_class = PROVIDERS[provider].config_class
            spec = dict(config_class.settings())[name]
            labels = ", ".join(PROVIDERS[p].label for p, _ in owners)
            text = f"{spec.label} ({labels}{', required' if spec.required else ''}). {spec.help}".strip()
            kwargs: dict = {"dest": form_name, "default": None, "help": text}
            if spec.kind == BOOL:
                kwargs["action"] = "store_true"
            elif spec.kind == INT:
                kwargs["type"] = int
            elif spec.kind == CHOICE:
                kwargs["choices"] = [value for value, _ in spec.choices]
            settings.add_argument(_flag(form_name), **kwargs)

    def run(self, **o):
        team = get_team(o["team"])
        provider = o["provider"]
        if provider not in PROVIDERS:
            raise CommandError(f"Unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}.")
        provider_cls = get_provider_class(provider)
        config_class = provider_cls.config_class
        mine = {config_class.form_name(name) for name, _ in config_class.settings()}
        stray = [form_name for form_name in setting_options() if o.get(form_name) not in (None, False) and form_name not in mine]
        if stray:
            raise CommandError(f"{', '.join(map(_flag, stray))} do{'es' if len(stray) == 1 else ''} not apply "
                               f"to {provider_cls.label} mailboxes.")
        data = {"sender_name": o["sender_name"], "sender_email": o["sender_email"], **_rules(o)}
        data.update({name: o[name] for name in mine if o.get(name) is not None})
        if provider == "smtp":
            return self._smtp_mailbox(team, o, data)
        missing = [config_class.form_name(name) for name, spec in config_class.settings()
                   if spec.required and spec.editable and spec.kind != SECRET and not data.get(config_class.form_name(name))]
        if missing:
            raise CommandError(f"A {provider_cls.label} mailbox needs {', '.join(map(_flag, missing))} "
                               "(the sender ids its API requires).")
        if not o["provider_account"]:
            raise CommandError(f"A {provider_cls.label} mailbox needs --provider-account ID.")
        try:
            account = ProviderAccount.objects.for_team(team).get(pk=o["provider_account"])
        except ProviderAccount.DoesNotExist as err:
            raise CommandError(f"Team {team.name} has no provider account {o['provider_account']}.") from err
        if account.provider != provider:
            raise CommandError(f"Provider account {account.pk} is a {account.provider} account, not {provider}.")
        mailbox = mailbox_connect_provider(team=team, account=account, data=data)
        return _mailbox_dict(mailbox)

    def _smtp_mailbox(self, team, o, data):
        """SMTP: passwords from the environment or stdin (the IMAP ones default to the SMTP ones, and
        the IMAP login to the SMTP login); optionally test the login before saving."""
        if o["password_stdin"]:
            smtp_password = read_secret(env_var="", from_stdin=True, what="SMTP password")
            imap_password = read_secret(env_var="", from_stdin=True, what="IMAP password", required=False) or smtp_password
        else:
            smtp_password = read_secret(env_var="OUTREACH_SMTP_PASSWORD", from_stdin=False, what="SMTP password",
                                        required=bool(o.get("smtp_login")))
            imap_password = read_secret(env_var="OUTREACH_IMAP_PASSWORD", from_stdin=False, what="IMAP password",
                                        required=False) or smtp_password
        data["smtp_password"] = smtp_password
        if data.get("imap_host"):
            data.setdefault("imap_login", data.get("smtp_login", ""))
            data["imap_password"] = imap_password
        mailbox_config_or_error(provider="smtp", data=data)  # every check before any connection
        checked = None
        if o["test"]:
            ok, lines = mailbox_test_connection(data=data)
            if not ok:
                raise CommandError("Connection test failed: " + " ".join(lines))
            checked = lines
        mailbox = mailbox_connect(team=team, data=data)
        return {**_mailbox_dict(mailbox), "connection_test": checked}


def _rules(o: dict) -> dict:
    """The sending-rule flags given, as Mailbox fields (missing ones keep the defaults)."""
    rules = {k: o[k] for k in ("daily_cap", "min_interval_seconds", "interval_jitter_seconds", "time_zone") if o.get(k) is not None}
    if o.get("send_days") is not None:
        rules["send_days"] = "" if o["send_days"].strip().lower() == "all" else o["send_days"]
    if o.get("window"):
        try:
            start, end = (time.fromisoformat(part.strip()) for part in o["window"].split("-"))
        except ValueError as err:
            raise CommandError(f"--window {o['window']!r}: use HH:MM-HH:MM, e.g. 08:00-18:00.") from err
        rules.update(send_window_start=start, send_window_end=end)
    return rules


def _mailbox_dict(mailbox: Mailbox) -> dict:
    """The mailbox as JSON: its columns and its non-secret provider settings (never a secret)."""
    config_class = mailbox.config_class
    settings = {config_class.form_name(name): mailbox.setting(name) for name, spec in config_class.settings() if spec.kind != SECRET}
    return {"id": mailbox.pk, "team": mailbox.team.name, "provider": mailbox.provider, "sender_name": mailbox.sender_name,
            "sender_email": mailbox.sender_email, **settings,
            "provider_account": mailbox.provider_account_id, "daily_cap": mailbox.daily_cap,
            "min_interval_seconds": mailbox.min_interval_seconds, "send_days": mailbox.send_days,
            "send_window": f"{mailbox.send_window_start:%H:%M}-{mailbox.send_window_end:%H:%M}", "time_zone": mailbox.time_zone}
