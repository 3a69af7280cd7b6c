"""Mailboxes: connect (SMTP/IMAP), test a connection, update, and rotate stored credentials."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from providers.errors import ProviderError
from providers.netguard import check_mail_host
from providers.smtp import ServerSettings, test_connection

from ..crypto import rotate
from ..models import Mailbox, ProviderAccount, Team

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


@transaction.atomic
def mailbox_update(*, mailbox: Mailbox, data: dict[str, Any]) -> Mailbox:
    """Update a mailbox; a blank password keeps the stored one. Returns the Mailbox."""
    return _apply(mailbox, data)


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
