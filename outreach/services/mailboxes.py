"""Mailboxes: connect (SMTP/IMAP, or a sender at a provider account), test a connection, update,
and rotate stored credentials."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from providers.config import EMAIL, SECRET, MailboxConfig, Server
from providers.errors import ConfigurationError, ProviderError
from providers.netguard import check_mail_host
from providers.registry import PROVIDERS, get_provider_class, http_providers
from providers.smtp import ServerSettings, SmtpConfig, check_plaintext_login, test_connection

from ..crypto import decrypt, encrypt, rotate
from ..models import Mailbox, ProviderAccount, Team
from ..validation import normalize_email, sender_problems
from .common import model_update
from .sending_rules import mailbox_rules_clean


#: The sender columns the mailbox services write (the sending rules are sending_rules.RULE_FIELDS).
SENDER_FIELDS = ("sender_name", "sender_email")


def _normalized(name: str, value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return text.lower().rstrip(".") if name.endswith("host") else text


def provider_class_or_error(provider: str):
    """The registered Provider class named ``provider``; ValidationError({"provider": ...}) for an unknown one."""
    try:
        return get_provider_class(provider)
    except KeyError as err:
        raise ValidationError({"provider": f"Unknown provider {provider!r}: choose one of "
                                           f"{', '.join(PROVIDERS)}."}) from err


@dataclass
class CleanConfig:
    """The outcome of :func:`mailbox_config_clean`: ``values`` by setting name with secrets in
    plaintext (what a connection test uses), ``stored`` the JSON to save (secrets encrypted;
    a kept secret is its stored token), ``problems`` {form field: message}."""

    values: dict[str, Any]
    stored: dict[str, Any]
    problems: dict[str, str] = field(default_factory=dict)


def mailbox_config_clean(*, provider: str, data: Mapping[str, Any], existing: Mailbox | None = None,
                         check_hosts: bool = True) -> CleanConfig:
    """Check form-shaped ``data`` ({form field name: value}) against the config ``provider``
    declares, on top of ``existing``'s stored settings (a setting missing from ``data`` keeps its
    stored value; a blank secret keeps the stored one).

    The rules, one place for the UI, the admin, ``add_mailbox`` and the tasks: each setting's type;
    required settings; the provider's own cross-setting rules (SMTP: IMAP all-or-nothing); a stored
    password is only reused while the host, port, login and security it was saved with are
    unchanged (else "Enter the … password again"); every declared mail server passes the SSRF
    rules and refuses a plain-text login to a public host (``check_hosts``). Never raises for
    user input: the problems are in the result (:func:`mailbox_config_or_error` raises them).
    """
    provider_cls = provider_class_or_error(provider)
    config_class = provider_cls.config_class
    stored = dict(existing.provider_config or {}) if existing is not None else {}
    raw: dict[str, Any] = {}
    for name, spec in config_class.settings():
        form_name = config_class.form_name(name)
        if spec.kind == SECRET:
            raw[name] = data.get(form_name) or ""
        elif spec.editable and form_name in data:
            raw[name] = data[form_name]
        elif name in stored:
            raw[name] = stored[name]
    problems: dict[str, str] = {}
    for name, spec in config_class.settings():
        if spec.kind == EMAIL and isinstance(raw.get(name), str) and raw[name].strip():
            try:
                raw[name] = normalize_email(raw[name])  # email-validator's reasons, before the declared checks
            except ValidationError as err:
                problems[config_class.form_name(name)] = " ".join(err.messages)
                del raw[name]
    values, type_problems = config_class.coerce(raw)
    problems.update(type_problems)
    values = config_class.normalize(values)
    kept: dict[str, bool] = {}
    for name in config_class.secrets():
        spec = dict(config_class.settings())[name]
        if values.get(name) or not stored.get(name) or existing is None:
            continue
        if spec.bound_to and not values.get(spec.bound_to[0]):
            continue  # its server was removed: the stored secret goes with it
        changed = [bound.rpartition("_")[2] for bound in spec.bound_to
                   if _normalized(bound, values.get(bound)) != _normalized(bound, stored.get(bound))]
        if changed:
            problems.setdefault(config_class.form_name(name), (
                f"Enter the {spec.label} again: the {', '.join(changed)} changed, and the stored "
                "password is only ever sent to the server it was saved for."))
        else:
            kept[name] = True
    for form_name, message in config_class.problems(values, provider_label=provider_cls.label, present=kept).items():
        problems.setdefault(form_name, message)
    if check_hosts:
        # A server is checked when it is new or changed (a stored one passed when it was saved,
        # and every connection checks its address again).
        changed = [server for server in config_class.servers if existing is None or any(
            _normalized(name, values.get(name)) != _normalized(name, stored.get(name))
            for name in (server.host, server.port, server.login, server.security))]
        for form_name, message in mailbox_check_hosts(values, config_class=config_class, servers=changed).items():
            if form_name not in problems:
                problems[form_name] = message
    result = {name: value for name, value in values.items() if name not in config_class.secrets()}
    plain = dict(values)
    for name in config_class.secrets():
        if values.get(name):
            result[name] = encrypt(values[name])
        elif kept.get(name):
            result[name] = stored[name]
            plain[name] = decrypt(stored[name], what=f"{dict(config_class.settings())[name].label} of Mailbox {existing.pk}")
        else:
            result[name] = ""
    return CleanConfig(values=plain, stored=result, problems=problems)


def mailbox_config_or_error(**kwargs) -> CleanConfig:
    """:func:`mailbox_config_clean`, raising ValidationError({form field: message}) on any problem."""
    clean = mailbox_config_clean(**kwargs)
    if clean.problems:
        raise ValidationError(clean.problems)
    return clean


def mailbox_check_hosts(values: Mapping[str, Any], *, config_class: type[MailboxConfig] = SmtpConfig,
                        servers: Sequence[Server] | None = None) -> dict[str, str]:
    """Check each mail server ``config_class`` declares (or those of ``servers``: its host and
    port) against the SSRF rules, and refuse a login over an unencrypted connection (security
    "none") to a public host (``check_plaintext_login``). ``values`` by setting name. Returns
    {form field: message}."""
    problems: dict[str, str] = {}
    for server in config_class.servers if servers is None else servers:
        host, port = values.get(server.host), values.get(server.port)
        if not host or not port:
            continue
        try:
            resolved = check_mail_host(host, int(port), kind=server.protocol)
            check_plaintext_login(ServerSettings(host, int(port), values.get(server.login) or "", "",
                                                 values.get(server.security) or ""), resolved, label=server.protocol.upper())
        except ConfigurationError as err:  # HostNotAllowed, or a plaintext login to a public host
            fields = (server.host, server.port, server.security)
            name = err.field if err.field in fields else server.host
            problems[config_class.form_name(name)] = err.message
    return problems


def mailbox_test_connection(*, data: dict[str, Any], existing: Mailbox | None = None) -> tuple[bool, list[str]]:
    """Really log in to SMTP and IMAP with form-shaped ``data`` (blank passwords fall back to the
    ones stored on ``existing``). Returns (ok, lines for the user).

    Never raises for user input: a config the services would refuse (a changed server with a
    blank password, a private host…) is (False, its problems) before any connection is made, and
    a connection problem is the last line, in plain words.
    """
    clean = mailbox_config_clean(provider="smtp", data=data, existing=existing)
    if clean.problems:
        return False, [" ".join(clean.problems.values())]
    config = SmtpConfig(**clean.values)
    try:
        lines = test_connection(config.smtp_server(), config.imap_server())
    except (ProviderError, ConfigurationError) as err:
        ok, lines = False, [err.message]
    else:
        ok = True
    if existing is not None:
        Mailbox.objects.filter(pk=existing.pk).update(last_checked_at=timezone.now(), last_check_ok=ok)
    return ok, lines


def mailbox_connect(*, team: Team, data: dict[str, Any], register_at_lemlist: ProviderAccount | None = None,
                    lemlist_user_id: str = "") -> Mailbox:
    """Create an SMTP/IMAP mailbox of ``team`` from form-shaped ``data`` (sender, the SMTP config's
    settings with plaintext passwords — encrypted before saving —, sending rules).

    With ``register_at_lemlist`` (a lemlist ProviderAccount of the team) the mailbox is also
    connected there (lemlist "Connect Email Account") after it is saved; if lemlist refuses, the new mailbox is deleted
    again (nothing half-done) and the ValidationError is raised with ``provider_account`` renamed
    ``register_at_lemlist``. Returns the Mailbox. Raises ValidationError({field: message}).
    """
    with transaction.atomic():
        mailbox = _apply(Mailbox(team=team, provider="smtp"), data)
    if register_at_lemlist is not None:
        from .provider_accounts import mailbox_register_at_lemlist

        try:
            mailbox_register_at_lemlist(mailbox=mailbox, account=register_at_lemlist, user_id=lemlist_user_id)
        except ValidationError as err:
            mailbox.delete()  # nothing half-done: fix the form and connect again
            raise ValidationError({("register_at_lemlist" if name == "provider_account" else name): errors
                                   for name, errors in err.message_dict.items()}) from err
    return mailbox


@transaction.atomic
def mailbox_connect_provider(*, team: Team, account: ProviderAccount, data: dict[str, Any]) -> Mailbox:
    """Create a mailbox of ``team`` that sends through provider account ``account``.

    ``data`` holds ``sender_name``, ``sender_email``, the settings the account's provider declares
    (its ``config_class``, by form field name, e.g. ``lemlist_send_user_id``) and optional sending
    rules; other providers' settings are ignored. Returns the Mailbox. Raises ValidationError
    naming the field: an account of another team, a missing or malformed setting.
    """
    if account.team_id != team.pk or account.provider not in http_providers():
        raise ValidationError({"provider_account": "Choose one of your team's provider accounts."})
    mailbox = Mailbox(team=team, provider=account.provider, provider_account=account)
    return _apply(mailbox, data)


@transaction.atomic
def mailbox_update(*, mailbox: Mailbox, data: dict[str, Any]) -> Mailbox:
    """Update a mailbox from form-shaped ``data``: sender, its provider's settings (a missing one
    keeps its stored value; a blank password keeps the stored one) and sending rules. Returns the
    Mailbox. Raises ValidationError naming the field, e.g. when the host, port, login or security
    change without the password being entered again (:func:`mailbox_config_clean`)."""
    return _apply(mailbox, data)


def _apply(mailbox: Mailbox, data: Mapping[str, Any]) -> Mailbox:
    """Check everything, then save: sender, provider settings, sending rules. ValidationError lists
    every problem at once (nothing is saved or set on ``mailbox`` then). A new mailbox is saved
    whole; an existing one through :func:`model_update` (only the changed columns are written)."""
    existing = mailbox if mailbox.pk else None
    clean = mailbox_config_clean(provider=mailbox.provider, data=data, existing=existing)
    problems = dict(clean.problems)
    values: dict[str, Any] = {name: (data[name] or "").strip() if name in data else getattr(mailbox, name)
                              for name in SENDER_FIELDS}
    try:
        values["sender_email"] = normalize_email(values["sender_email"])
    except ValidationError as err:
        problems["sender_email"] = " ".join(err.messages)
    for name, message in sender_problems(name=values["sender_name"], email=values["sender_email"]).items():
        problems.setdefault(name, message)
    try:
        values.update(mailbox_rules_clean(mailbox=mailbox, data=data))  # sending rules (cap, interval, window), when given
    except ValidationError as err:
        for name, messages in err.message_dict.items():
            problems.setdefault(name, " ".join(messages))
    if problems:
        raise ValidationError(problems)
    values["provider_config"] = clean.stored
    if existing is not None:
        return model_update(mailbox, fields=list(values), data=values)[0]
    for name, value in values.items():
        setattr(mailbox, name, value)
    mailbox.save()
    return mailbox


def mailboxes_set_active(*, team: Team, ids, active: bool) -> int:
    """Activate/deactivate the team's mailboxes among ``ids`` (other teams' ids are ignored). Returns how many changed."""
    return Mailbox.objects.for_team(team).filter(pk__in=list(ids)).exclude(is_active=active).update(is_active=active)


def mailbox_delete_unused(*, mailbox: Mailbox) -> bool:
    """Delete ``mailbox`` unless it has sent messages (their history must stay). Returns whether it was deleted."""
    with transaction.atomic():
        if mailbox.sent_messages.exists():
            return False
        mailbox.delete()
    return True


def credentials_rotate(*, mailboxes=None, provider_accounts=None) -> dict[str, int]:
    """Re-encrypt stored secrets under the newest key of OUTREACH_ENCRYPTION_KEYS.

    ``mailboxes`` / ``provider_accounts``: querysets to rotate (None = every row; an admin action
    passes its selection). Returns {"mailboxes": n, "provider_accounts": n}. Raises
    CredentialDecryptionError (and changes nothing) if any secret cannot be decrypted.
    """
    counts = {"mailboxes": 0, "provider_accounts": 0}
    mailbox_ids = None if mailboxes is None else list(mailboxes.values_list("pk", flat=True))
    account_ids = None if provider_accounts is None else list(provider_accounts.values_list("pk", flat=True))
    with transaction.atomic():
        box_rows = Mailbox.objects.select_for_update().only("pk", "provider", "provider_config")
        if mailbox_ids is not None:
            box_rows = box_rows.filter(pk__in=mailbox_ids)
        for mailbox in box_rows:
            config = dict(mailbox.provider_config or {})
            for name in mailbox.config_class.secrets():
                if config.get(name):
                    config[name] = rotate(config[name], what=f"{dict(mailbox.config_class.settings())[name].label} of mailbox {mailbox.pk}")
            mailbox.provider_config = config
            mailbox.save(update_fields=["provider_config"])
            counts["mailboxes"] += 1
        account_rows = ProviderAccount.objects.select_for_update().only("pk", "api_key_encrypted")
        if account_ids is not None:
            account_rows = account_rows.filter(pk__in=account_ids)
        for account in account_rows:
            account.api_key_encrypted = rotate(account.api_key_encrypted, what=f"API key of provider account {account.pk}")
            account.save(update_fields=["api_key_encrypted"])
            counts["provider_accounts"] += 1
    return counts
