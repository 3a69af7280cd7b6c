"""Credentials at rest: MultiFernet encryption, wrong keys, rotation."""
import pytest
from cryptography.fernet import Fernet

from outreach.crypto import CredentialDecryptionError, decrypt, encrypt, rotate
from outreach.models import Mailbox, Team
from outreach.services.mailboxes import credentials_rotate

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_round_trip_and_ciphertext_is_not_the_secret(settings):
    settings.OUTREACH_ENCRYPTION_KEYS = [NEW]
    token = encrypt("s3cret-pw")
    assert "s3cret" not in token
    assert decrypt(token) == "s3cret-pw"
    assert encrypt("") == "" and decrypt("") == ""


def test_wrong_key_raises_and_never_returns_ciphertext(settings):
    settings.OUTREACH_ENCRYPTION_KEYS = [OLD]
    token = encrypt("s3cret-pw")
    settings.OUTREACH_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(CredentialDecryptionError) as exc:
        decrypt(token, what="SMTP password of mailbox 7")
    assert "SMTP password of mailbox 7" in str(exc.value)
    assert token not in str(exc.value)


def test_malformed_key_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured
    settings.OUTREACH_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="malformed"):
        encrypt("x")


@pytest.mark.django_db
def test_rotation_reencrypts_under_newest_key(settings):
    settings.OUTREACH_ENCRYPTION_KEYS = [OLD]
    team = Team.objects.create(name="T")
    mailbox = Mailbox(team=team, sender_email="a@example.com", provider_config={"smtp_host": "smtp.example.com", "smtp_port": 587})
    mailbox.set_secret("smtp_password", "smtp-pw")
    mailbox.set_secret("imap_password", "imap-pw")
    mailbox.save()
    old_token = mailbox.provider_config["smtp_password"]

    settings.OUTREACH_ENCRYPTION_KEYS = [NEW, OLD]
    assert credentials_rotate() == {"mailboxes": 1, "provider_accounts": 0}
    mailbox.refresh_from_db()
    assert mailbox.provider_config["smtp_password"] != old_token

    settings.OUTREACH_ENCRYPTION_KEYS = [NEW]  # old key dropped: still readable
    assert mailbox.provider_settings["smtp_password"] == "smtp-pw"
    assert mailbox.provider_settings["imap_password"] == "imap-pw"


@pytest.mark.django_db
def test_rotation_with_missing_key_changes_nothing(settings):
    settings.OUTREACH_ENCRYPTION_KEYS = [OLD]
    team = Team.objects.create(name="T")
    mailbox = Mailbox(team=team, sender_email="a@example.com", provider_config={"smtp_host": "smtp.example.com", "smtp_port": 587})
    mailbox.set_secret("smtp_password", "smtp-pw")
    mailbox.save()
    before = mailbox.provider_config["smtp_password"]
    settings.OUTREACH_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(CredentialDecryptionError):
        credentials_rotate()
    mailbox.refresh_from_db()
    assert mailbox.provider_config["smtp_password"] == before
    with pytest.raises(CredentialDecryptionError):
        rotate(before)
