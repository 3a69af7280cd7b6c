"""Provider accounts (a team's API key and base URL at lemlist, leadlex, OpenMail, Unipile) and
registering an SMTP/IMAP mailbox at lemlist (the lemlist API reference "Connect Email Account",
https://developer.lemlist.com, ``POST https://api.lemlist.com/api/user/email-accounts``).

Services take keyword-only arguments and raise ValidationError ({field: message}) for anything
a user can fix; the API key is encrypted at rest (ProviderAccount.api_key) and never returned.
"""
from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from providers import errors as perr
from providers.http import check_base_url
from providers.lemlist import LemlistProvider
from providers.registry import get_provider_class, http_providers
from providers.smtp import SSL

from ..crypto import encrypt
from ..models import Mailbox, ProviderAccount, Team
from .common import model_update


def _clean_base_url(provider: str, base_url: str) -> str:
    """'' (the document's server) or a checked URL; ValidationError on ``base_url`` otherwise."""
    base_url = (base_url or "").strip()
    if not base_url:
        return ""
    try:
        return check_base_url(base_url, provider=provider)
    except perr.ConfigurationError as err:
        raise ValidationError({"base_url": err.message}) from err


def provider_account_create(*, team: Team, provider: str, name: str, api_key: str, base_url: str = "") -> ProviderAccount:
    """Create a ProviderAccount for ``team``. ``provider`` is one of providers.registry.http_providers();
    ``api_key`` (plaintext) is encrypted before saving; ``base_url`` '' means the document's server
    (checked against private/loopback addresses unless OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS).

    Returns the saved ProviderAccount. Raises ValidationError naming the field.
    """
    problems = {}
    if provider not in http_providers():
        problems["provider"] = f"Unknown provider {provider!r}; choose one of {', '.join(http_providers())}."
    if not (name or "").strip():
        problems["name"] = "Enter a name for this account."
    if not (api_key or "").strip():
        problems["api_key"] = "Enter the API key."
    if problems:
        raise ValidationError(problems)
    account = ProviderAccount(team=team, provider=provider, name=name.strip(), base_url=_clean_base_url(provider, base_url))
    account.api_key = api_key.strip()
    account.save()
    return account


def provider_account_update(*, account: ProviderAccount, name: str | None = None, api_key: str | None = None,
                            base_url: str | None = None) -> ProviderAccount:
    """Update name / base URL (None leaves one alone); a blank or None ``api_key`` keeps the stored
    key (write-only in forms). Written through :func:`model_update` (only the changed columns).
    Returns the account. Raises ValidationError naming the field."""
    values: dict[str, str] = {}
    if name is not None:
        if not name.strip():
            raise ValidationError({"name": "Enter a name for this account."})
        values["name"] = name.strip()
    if base_url is not None:
        values["base_url"] = _clean_base_url(account.provider, base_url)
    if api_key and api_key.strip():
        values["api_key_encrypted"] = encrypt(api_key.strip())
    return model_update(account, fields=("name", "base_url", "api_key_encrypted"), data=values)[0]


def provider_account_delete(*, account: ProviderAccount) -> None:
    """Delete ``account`` and its stored key. Refused (ValidationError, non-field) while any mailbox
    uses it, naming them: those mailboxes would have nothing to send through."""
    with transaction.atomic():
        senders = list(Mailbox.objects.filter(provider_account=account).order_by("sender_email")
                       .values_list("sender_email", flat=True)[:6])
        if senders:
            total = Mailbox.objects.filter(provider_account=account).count()
            shown = ", ".join(senders[:5]) + (f" and {total - 5} more" if total > 5 else "")
            raise ValidationError(
                f"{account.name} cannot be deleted: {total} mailbox{'es' if total != 1 else ''} send{'' if total != 1 else 's'} "
                f"through it ({shown}). Delete those mailboxes first (a mailbox that has sent messages is kept "
                "for its history, and so is its account).")
        try:
            account.delete()
        except ProtectedError as err:  # a mailbox was bound to it meanwhile
            raise ValidationError(f"{account.name} cannot be deleted: mailboxes send through it.") from err


def provider_account_label(account: ProviderAccount) -> str:
    """"<name> (<provider label>)" for choices."""
    return f"{account.name} ({get_provider_class(account.provider).label})"


def lemlist_connect_payload(*, mailbox: Mailbox, user_id: str = "") -> dict:
    """The "Connect Email Account" body for an SMTP/IMAP ``mailbox`` (passwords decrypted).
    ``smtp_secure``/``imap_secure`` are true for implicit SSL/TLS (465/993), false for STARTTLS/plain."""
    config = mailbox.provider_settings
    payload = {
        "sender_name": mailbox.sender_name or mailbox.sender_email,
        "sender_email": mailbox.sender_email,
        "smtp_host": config.get("smtp_host", ""),
        "smtp_port": int(config.get("smtp_port") or 0),
        "smtp_login": config.get("smtp_login", ""),
        "smtp_password": config.get("smtp_password", ""),
        "smtp_secure": config.get("smtp_security") == SSL,
        "imap_host": config.get("imap_host", ""),
        "imap_port": int(config.get("imap_port") or 0),
        "imap_login": config.get("imap_login", ""),
        "imap_password": config.get("imap_password", ""),
        "imap_secure": config.get("imap_security") == SSL,
    }
    if user_id:
        payload["userId"] = user_id
    return payload


def mailbox_register_at_lemlist(*, mailbox: Mailbox, account: ProviderAccount, user_id: str = "") -> Mailbox:
    """Connect ``mailbox`` (SMTP + IMAP) to the lemlist team of ``account`` (POST /user/email-accounts,
    lemlist's "Connect Email Account") and store the returned id as the mailbox's
    ``lemlist_email_account_id`` setting.

    ``user_id`` (optional lemlist userId) assigns the account to that team member.
    Returns the Mailbox. Raises ValidationError mapped onto the connect form's fields:
    "Missing required fields" → non-field, "Invalid host" → smtp_host, "This SMTP mailbox already
    exists" → sender_email, 403 "User is not a member of this team" → lemlist_user_id, a refused API
    key → provider_account; lemlist unavailable / rate limited → non-field "try again" message.
    The HTTP call runs outside any transaction; only the id is saved.
    """
    if account.provider != "lemlist":
        raise ValidationError({"provider_account": f"{account} is not a lemlist account."})
    if account.team_id != mailbox.team_id:
        raise ValidationError({"provider_account": "The lemlist account must belong to your team."})
    if mailbox.provider != "smtp":
        raise ValidationError({NON_FIELD_ERRORS: "Only SMTP/IMAP mailboxes can be registered at lemlist."})
    missing = [f for f in ("smtp_host", "smtp_port", "smtp_login", "imap_host", "imap_port", "imap_login") if not mailbox.setting(f)]
    if missing:
        raise ValidationError({f: "lemlist needs this to connect the mailbox (SMTP and IMAP are both required)." for f in missing})
    try:
        connected = LemlistProvider.for_account(account).connect_account(lemlist_connect_payload(mailbox=mailbox, user_id=user_id))
    except perr.InvalidRequest as err:
        raise ValidationError({err.field or NON_FIELD_ERRORS: _connect_text(err)}) from err
    except perr.AuthenticationFailed as err:
        raise ValidationError({"provider_account": f"lemlist refused the API key of {account.name}."}) from err
    except perr.PermissionDenied as err:
        field = "lemlist_user_id" if err.status == 403 else "provider_account"
        raise ValidationError({field: f"lemlist: {err.provider_message or err.message}"}) from err
    except perr.TransientProviderError as err:
        raise ValidationError({NON_FIELD_ERRORS: f"lemlist is not available right now ({err.message}); try again in a moment."}) from err
    except (perr.ProviderError, perr.ConfigurationError) as err:  # e.g. the account's base URL (lemlist's 405)
        raise ValidationError({NON_FIELD_ERRORS: f"lemlist could not connect the mailbox: {err.message}"}) from err
    with transaction.atomic():
        locked = Mailbox.objects.select_for_update().only("provider_config").get(pk=mailbox.pk)
        mailbox.provider_config = {**locked.provider_config, "lemlist_email_account_id": connected.id}
        Mailbox.objects.filter(pk=mailbox.pk).update(provider_config=mailbox.provider_config)
    return mailbox


def _connect_text(err: perr.InvalidRequest) -> str:
    texts = {
        "Missing required fields": "lemlist says required fields are missing (sender, SMTP and IMAP settings).",
        "Invalid host": "lemlist refused the mail server host (banned, private or Gmail — connect Gmail with OAuth at lemlist).",
        "This SMTP mailbox already exists": "This mailbox is already connected at lemlist.",
    }
    return texts.get(err.provider_message, f"lemlist: {err.provider_message or err.message}")
