"""Mailboxes: connect (SMTP/IMAP, or a sender at a provider account), test a connection, update,
and rotate stored credentials."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from providers.errors import ProviderError
from providers.netguard import check_mail_host
from providers.registry import HTTP_PROVIDERS, get_provider_class
from providers.smtp import ServerSettings, test_connection

from ..crypto import rotate
from ..models import Mailbox, ProviderAccount, Team
from ..validation import normalize_email, sender_problems, validate_header_value
from .sending_rules import mailbox_rules_apply

SMTP_FIELDS = ("sender_name", "sender_email", "smtp_host", "smtp_port", "smtp_login", "smtp_security",
               "imap_host", "imap_port", "imap_login", "imap_security", "imap_sent_folder")


def server_settings_from_data(data: dict[str, Any], *, existing: Mailbox | None = None) -> tuple[ServerSettings, ServerSettings | None]:
    """Build (smtp, imap-or-None) ServerSettings from form-shaped ``data``.

    A blank password falls back to the one stored on ``existing`` (passwords are write-only in forms).
    """
    smtp_password = data.get("smtp_password") or (existing.smtp_password if existing else "")
    smtp = ServerSettings(data["smtp_host"], int(data["smtp_port"]), data.get("smtp_login", ""),
                          smtp_password, data.get("smtp_security", "starttls"))
    imap = None
    if data.get("imap_host"):
        imap_password = data.get("imap_password") or (existing.imap_password if existing else "")
        imap = ServerSettings(data["imap_host"], int(data["imap_port"]), data.get("imap_login", ""),
                              imap_password, data.get("imap_security", "ssl"))
    return smtp, imap


def mailbox_check_hosts(data: dict[str, Any]) -> dict[str, str]:
    """Check SMTP/IMAP host and port against the SSRF rules. Returns {field: message} for problems."""
    problems: dict[str, str] = {}
    for kind in ("smtp", "imap"):
        host, port = data.get(f"{kind}_host"), data.get(f"{kind}_port")
        if not host or not port:
            continue
        try:
            check_mail_host(host, int(port), kind=kind)
        except ProviderError as err:
            problems[err.provider_code if err.provider_code in (f"{kind}_host", f"{kind}_port") else f"{kind}_host"] = err.message
    return problems


def mailbox_test_connection(*, data: dict[str, Any], existing: Mailbox | None = None) -> tuple[bool, list[str]]:
    """Really log in to SMTP and IMAP with ``data``. Returns (ok, lines for the user).

    Never raises for connection problems: the failure is the last line, in plain words.
    """
    smtp, imap = server_settings_from_data(data, existing=existing)
    try:
        lines = test_connection(smtp, imap)
    except ProviderError as err:
        ok, lines = False, [err.message]
    else:
        ok = True
    if existing is not None:
        Mailbox.objects.filter(pk=existing.pk).update(last_checked_at=timezone.now(), last_check_ok=ok)
    return ok, lines


@transaction.atomic
def mailbox_connect(*, team: Team, data: dict[str, Any]) -> Mailbox:
    """Create an SMTP/IMAP mailbox from validated form data (passwords plaintext in ``data``;
    they are encrypted before saving). Returns the Mailbox."""
    mailbox = Mailbox(team=team, provider="smtp")
    return _apply(mailbox, data)


def sender_id_missing_text(*, provider: str, name: str) -> str:
    """The message for a missing sender id ``name`` of a ``provider`` mailbox."""
    return f"Enter the {_label(name)}: {get_provider_class(provider).label} cannot send from this mailbox without it."


def mailbox_sender_id_problems(*, provider: str, data: dict[str, Any]) -> dict[str, str]:
    """Check the sender identifiers ``provider`` requires (its class' ``required_mailbox_fields``)
    in form-shaped ``data``. Returns {field: message} for each missing or malformed one."""
    provider_cls = get_provider_class(provider)
    problems = {name: sender_id_missing_text(provider=provider, name=name) for name in provider_cls.missing_mailbox_fields(data)}
    for name in provider_cls.required_mailbox_fields:
        if name in problems:
            continue
        try:
            _clean_sender_id(name, data[name])
        except ValidationError as err:
            problems[name] = " ".join(err.messages)
    return problems


@transaction.atomic
def mailbox_connect_provider(*, team: Team, account: ProviderAccount, data: dict[str, Any]) -> Mailbox:
    """Create a mailbox of ``team`` that sends through provider account ``account``.

    ``data`` holds ``sender_name``, ``sender_email`` and the sender ids the account's provider
    requires (``required_mailbox_fields``, e.g. lemlist's sendUserId, sendUserEmail and
    sendUserMailboxId); ids of other providers are ignored. Returns the Mailbox. Raises
    ValidationError naming the field: an account of another team, a missing or malformed id.
    """
    if account.team_id != team.pk or account.provider not in HTTP_PROVIDERS:
        raise ValidationError({"provider_account": "Choose one of your team's provider accounts."})
    problems = mailbox_sender_id_problems(provider=account.provider, data=data)
    try:
        sender_email = normalize_email(data.get("sender_email", ""))
    except ValidationError as err:
        problems["sender_email"] = " ".join(err.messages)
    sender_name = (data.get("sender_name") or "").strip()
    try:
        validate_header_value(sender_name)
    except ValidationError as err:
        problems["sender_name"] = " ".join(err.messages)
    if problems:
        raise ValidationError(problems)
    mailbox = Mailbox(team=team, provider=account.provider, provider_account=account,
                      sender_name=sender_name, sender_email=sender_email)
    _apply_sender_ids(mailbox, data)
    mailbox_rules_apply(mailbox=mailbox, data=data)
    mailbox.save()
    return mailbox


@transaction.atomic
def mailbox_update(*, mailbox: Mailbox, data: dict[str, Any]) -> Mailbox:
    """Update a mailbox; a blank password keeps the stored one. For a provider-bound mailbox the
    sender ids its provider requires are updated too (ValidationError naming a missing one).
    Returns the Mailbox."""
    if mailbox.provider != "smtp":
        problems = mailbox_sender_id_problems(provider=mailbox.provider, data={
            **{name: getattr(mailbox, name) for name in get_provider_class(mailbox.provider).required_mailbox_fields},
            **data})
        if problems:
            raise ValidationError(problems)
        _apply_sender_ids(mailbox, data)
    return _apply(mailbox, data)


def _label(name: str) -> str:
    return str(Mailbox._meta.get_field(name).verbose_name)


def _clean_sender_id(name: str, value: Any) -> str:
    """A sender id stripped; an email-typed one (lemlist sendUserEmail) normalized. Raises ValidationError."""
    value = str(value or "").strip()
    validate_header_value(value)
    if isinstance(Mailbox._meta.get_field(name), models.EmailField):
        return normalize_email(value)
    return value


def _apply_sender_ids(mailbox: Mailbox, data: dict[str, Any]) -> None:
    """Set the sender ids the mailbox's provider requires from ``data`` (when given)."""
    for name in get_provider_class(mailbox.provider).required_mailbox_fields:
        if name in data:
            setattr(mailbox, name, _clean_sender_id(name, data[name]))


def _apply(mailbox: Mailbox, data: dict[str, Any]) -> Mailbox:
    for key in SMTP_FIELDS:
        if key in data:
            value = data[key]
            setattr(mailbox, key, value if value is not None else "")
    mailbox.sender_email = (mailbox.sender_email or "").lower()
    if not mailbox.imap_port:
        mailbox.imap_port = None
    for secret in ("smtp_password", "imap_password"):
        if data.get(secret):
            setattr(mailbox, secret, data[secret])
    if not mailbox.imap_host:
        mailbox.imap_password = ""
    problems = sender_problems(name=mailbox.sender_name, email=mailbox.sender_email)  # add_mailbox skips the form
    if problems:
        raise ValidationError(problems)
    mailbox_rules_apply(mailbox=mailbox, data=data)  # sending rules (cap, interval, window), when given
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


def credentials_rotate() -> dict[str, int]:
    """Re-encrypt every stored secret under the newest key of OUTREACH_ENCRYPTION_KEYS.

    Returns {"mailboxes": n, "provider_accounts": n}. Raises CredentialDecryptionError (and
    changes nothing) if any secret cannot be decrypted with the configured keys.
    """
    counts = {"mailboxes": 0, "provider_accounts": 0}
    with transaction.atomic():
        for mailbox in Mailbox.objects.select_for_update().only("pk", "smtp_password_encrypted", "imap_password_encrypted"):
            mailbox.smtp_password_encrypted = rotate(mailbox.smtp_password_encrypted, what=f"SMTP password of mailbox {mailbox.pk}")
            mailbox.imap_password_encrypted = rotate(mailbox.imap_password_encrypted, what=f"IMAP password of mailbox {mailbox.pk}")
            mailbox.save(update_fields=["smtp_password_encrypted", "imap_password_encrypted"])
            counts["mailboxes"] += 1
        for account in ProviderAccount.objects.select_for_update().only("pk", "api_key_encrypted"):
            account.api_key_encrypted = rotate(account.api_key_encrypted, what=f"API key of provider account {account.pk}")
            account.save(update_fields=["api_key_encrypted"])
            counts["provider_accounts"] += 1
    return counts
