"""Migration 0012 moves the old Mailbox columns into provider_config and back, tokens untouched."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from outreach.crypto import encrypt

BEFORE, AFTER = [("outreach", "0011_timeline_kinds_merged")], [("outreach", "0012_mailbox_provider_config")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_columns_move_into_provider_config_and_back():
    apps = _migrate(BEFORE)
    Team, Mailbox, Account = (apps.get_model("outreach", n) for n in ("Team", "Mailbox", "ProviderAccount"))
    team = Team.objects.create(name="Migrated")
    token = encrypt("smtp-secret")
    smtp = Mailbox.objects.create(team=team, provider="smtp", sender_email="a@acme.com", smtp_host="smtp.acme.com",
                                  smtp_port=587, smtp_login="a", smtp_password_encrypted=token, smtp_security="starttls",
                                  imap_host="", imap_port=993, lemlist_email_account_id="umx_1")
    account = Account.objects.create(team=team, provider="lemlist", name="L")
    lemlist = Mailbox.objects.create(team=team, provider="lemlist", provider_account=account, sender_email="b@acme.com",
                                     lemlist_send_user_id="usr_1", lemlist_send_user_email="b@acme.com",
                                     lemlist_send_user_mailbox_id="usm_1")
    try:
        apps = _migrate(AFTER)
        Mailbox = apps.get_model("outreach", "Mailbox")
        config = Mailbox.objects.get(pk=smtp.pk).provider_config
        assert config["smtp_host"] == "smtp.acme.com" and config["smtp_port"] == 587
        assert config["smtp_password"] == token  # the Fernet token is copied, never decrypted
        assert (config["imap_host"], config["imap_port"], config["lemlist_email_account_id"]) == ("", None, "umx_1")
        assert Mailbox.objects.get(pk=lemlist.pk).provider_config == {
            "send_user_id": "usr_1", "send_user_email": "b@acme.com", "send_user_mailbox_id": "usm_1"}
        apps = _migrate(BEFORE)
        Mailbox = apps.get_model("outreach", "Mailbox")
        back = Mailbox.objects.get(pk=smtp.pk)
        assert (back.smtp_host, back.smtp_password_encrypted, back.lemlist_email_account_id) == ("smtp.acme.com", token, "umx_1")
        assert Mailbox.objects.get(pk=lemlist.pk).lemlist_send_user_mailbox_id == "usm_1"
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
