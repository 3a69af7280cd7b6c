"""Mailboxes: connect (SMTP/IMAP, or a sender at a provider account), test a connection, update,
and rotate stored credentials."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from providers.errors import ConfigurationError, ProviderError
from providers.netguard import check_mail_host
from providers.registry import HTTP_PROVIDERS, PROVIDERS, get_provider_class
from providers.smtp import ServerSettings, check_plaintext_login, test_connection

from ..crypto import rotate
from ..models import Mailbox, ProviderAccount, Team
from ..validation import normalize_email, sender_problems, validate_header_value
from .sending_rules import mailbox_rules_apply

SMTP_FIELDS = ("sender_name", "sender_email", "smtp_host", "smtp_port", "smtp_login", "smtp_security",
               "imap_host", "imap_port", "imap_login", "imap_security", "imap_sent_folder")


#: The connection fields a stored password is bound to: change one and the password must be entered again.
CREDENTIAL_BOUND_FIELDS = ("host", "port", "login", "security")


def _normalized(kind: str, name: str, value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return text.lower().rstrip(".") if name == "host" else text


def mailbox_credential_problems(*, existing: Mailbox | None, data: dict[str, Any]) -> dict[str, str]:
    """Where ``data`` would send a password stored on ``existing`` to a different server.

    A stored SMTP or IMAP password is bound to the host, port, login and security it was saved
    with: when ``data`` changes any of them (for that protocol) and leaves the password blank,
    the stored one must not be reused (else anyone who may edit the mailbox could point it at a
    server they control and read the password). Returns {"smtp_password"|"imap_password": message};
    empty when nothing is wrong (or ``existing`` is None: a new mailbox has no stored password).
    """
    problems: dict[str, str] = {}
    if existing is None:
        return problems
    for kind in ("smtp", "imap"):
        if data.get(f"{kind}_password") or not getattr(existing, f"{kind}_password_encrypted"):
            continue
        if kind == "imap" and not data.get("imap_host", existing.imap_host):
            continue  # IMAP removed: no password will be used
        changed = [name for name in CREDENTIAL_BOUND_FIELDS if f"{kind}_{name}" in data
                   and _normalized(kind, name, data[f"{kind}_{name}"]) != _normalized(kind, name, getattr(existing, f"{kind}_{name}"))]
        if changed:
            problems[f"{kind}_password"] = (
                f"Enter the {kind.upper()} password again: the {', '.join(changed)} changed, and the stored "
                "password is only ever sent to the server it was saved for.")
    return problems


def server_settings_from_data(data: dict[str, Any], *, existing: Mailbox | None = None) -> tuple[ServerSettings, ServerSettings | None]:
    """Build (smtp, imap-or-None) ServerSettings from form-shaped ``data``.

    A blank password falls back to the one stored on ``existing`` (passwords are write-only in
    forms), but only while host, port, login and security are unchanged: otherwise raises
    ValidationError({"smtp_password"|"imap_password": ...}) (:func:`mailbox_credential_problems`).
    """
    problems = mailbox_credential_problems(existing=existing, data=data)
    if problems:
        raise ValidationError(problems)
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
    """Check SMTP/IMAP host and port against the SSRF rules, and refuse a login over an
    unencrypted connection (security "none") to a public host (``check_plaintext_login``).
    Returns {field: message} for problems."""
    problems: dict[str, str] = {}
    for kind in ("smtp", "imap"):
        host, port = data.get(f"{kind}_host"), data.get(f"{kind}_port")
        if not host or not port:
            continue
        try:
            resolved = check_mail_host(host, int(port), kind=kind)
            check_plaintext_login(ServerSettings(host, int(port), data.get(f"{kind}_login") or "", "",
                                                 data.get(f"{kind}_security") or ""), resolved, label=kind.upper())
        except ConfigurationError as err:  # HostNotAllowed, or a plaintext login to a public host
            fields = (f"{kind}_host", f"{kind}_port", f"{kind}_security")
            problems[err.field if err.field in fields else f"{kind}_host"] = err.message
    return problems


def mailbox_test_connection(*, data: dict[str, Any], existing: Mailbox | None = None) -> tuple[bool, list[str]]:
    """Really log in to SMTP and IMAP with ``data``. Returns (ok, lines for the user).

    Never raises for connection problems: the failure is the last line, in plain words. A
    changed server with a blank password (:func:`mailbox_credential_problems`) is refused before
    any connection is made.
    """
    try:
        smtp, imap = server_settings_from_data(data, existing=existing)
    except ValidationError as err:
        return False, err.messages
    try:
        lines = test_connection(smtp, imap)
    except (ProviderError, ConfigurationError) as err:
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
    in form-shaped ``data``. Returns {field: message} for each missing or malformed one (an
    unknown ``provider`` is {"provider": message})."""
    try:
        provider_cls = get_provider_class(provider)
    except KeyError:
        return {"provider": f"Unknown provider {provider!r}."}
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
    Returns the Mailbox. Raises ValidationError when the host, port, login or security change
    without the password being entered again (:func:`mailbox_credential_problems`)."""
    provider_class_or_error(mailbox.provider)
    problems = mailbox_credential_problems(existing=mailbox, data=data) if mailbox.provider == "smtp" else {}
    if problems:
        raise ValidationError(problems)
    if mailbox.provider != "smtp":
        problems = mailbox_sender_id_problems(provider=mailbox.provider, data={
            **{name: getattr(mailbox, name) for name in get_provider_class(mailbox.provider).required_mailbox_fields},
            **data})
        if problems:
            raise ValidationError(problems)
        _apply_sender_ids(mailbox, data)
    return _apply(mailbox, data)


def provider_class_or_error(provider: str):
    """The registered Provider class named ``provider``; ValidationError({"provider": ...}) for an unknown one."""
    try:
        return get_provider_class(provider)
    except KeyError:
        raise ValidationError({"provider": f"Unknown provider {provider!r}: choose one of "
                                           f"{', '.join(PROVIDERS)}."}) from None


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
        box_rows = Mailbox.objects.select_for_update().only("pk", "smtp_password_encrypted", "imap_password_encrypted")
        if mailbox_ids is not None:
            box_rows = box_rows.filter(pk__in=mailbox_ids)
        for mailbox in box_rows:
            mailbox.smtp_password_encrypted = rotate(mailbox.smtp_password_encrypted, what=f"SMTP password of mailbox {mailbox.pk}")
            mailbox.imap_password_encrypted = rotate(mailbox.imap_password_encrypted, what=f"IMAP password of mailbox {mailbox.pk}")
            mailbox.save(update_fields=["smtp_password_encrypted", "imap_password_encrypted"])
            counts["mailboxes"] += 1
        account_rows = ProviderAccount.objects.select_for_update().only("pk", "api_key_encrypted")
        if account_ids is not None:
            account_rows = account_rows.filter(pk__in=account_ids)
        for account in account_rows:
            account.api_key_encrypted = rotate(account.api_key_encrypted, what=f"API key of provider account {account.pk}")
            account.save(update_fields=["api_key_encrypted"])
            counts["provider_accounts"] += 1
    return counts
