"""Model-level guarantees that the database enforces, whatever code path writes."""
import pytest
from cryptography.fernet import Fernet
from django.db import IntegrityError, transaction

from outreach.crypto import CredentialDecryptionError
from outreach.models import Contact, Mailbox, SentMessage, Team

pytestmark = pytest.mark.django_db


def test_contact_email_unique_per_team_and_stored_lowercase():
    a, b = Team.objects.create(name="A"), Team.objects.create(name="B")
    Contact.objects.create(team=a, email="ann@example.com")
    Contact.objects.create(team=b, email="ann@example.com")  # same address, other team: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(team=a, email="ann@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(team=a, email="Bob@Example.com")  # not lower-cased: refused by the DB
    assert Contact.objects.for_team(a).count() == 1


def test_for_team_scopes_querysets():
    a, b = Team.objects.create(name="A"), Team.objects.create(name="B")
    ca = Contact.objects.create(team=a, email="x@example.com")
    Contact.objects.create(team=b, email="y@example.com")
    assert list(Contact.objects.for_team(a)) == [ca]


def test_encrypted_secret_descriptor_encrypts_and_refuses_wrong_key(settings):
    settings.OUTREACH_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    team = Team.objects.create(name="A")
    mailbox = Mailbox(team=team, sender_email="a@example.com")
    mailbox.set_secret("smtp_password", "p4ss")
    mailbox.save()
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert "p4ss" not in stored.provider_config["smtp_password"] and stored.provider_settings["smtp_password"] == "p4ss"
    settings.OUTREACH_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CredentialDecryptionError, match=f"SMTP password of Mailbox {mailbox.pk}"):
        stored.provider_settings["smtp_password"]


def test_sent_message_settled_states():
    assert SentMessage(status="sent").is_settled and SentMessage(status="failed").is_settled
    assert not SentMessage(status="queued").is_settled and not SentMessage(status="sending").is_settled
