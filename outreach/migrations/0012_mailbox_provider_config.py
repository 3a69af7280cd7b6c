"""Provider data out of the Mailbox table: the SMTP/IMAP, lemlist, OpenMail and Unipile columns
move into ``Mailbox.provider_config`` (one JSON object keyed by the provider's declared setting
names, providers/<name>.py ``config_class``), then the columns are dropped.

Encrypted passwords move as they are (the Fernet tokens are copied, never decrypted), so the
migration needs no key. The mapping is written out here, not read from the providers, so later
changes to a provider's declaration cannot change what this migration did. Reversible.
"""
from django.db import migrations, models

SMTP = ("smtp_host", "smtp_port", "smtp_login", "smtp_security", "imap_host", "imap_port", "imap_login",
        "imap_security", "imap_sent_folder", "lemlist_email_account_id")
SMTP_SECRETS = {"smtp_password": "smtp_password_encrypted", "imap_password": "imap_password_encrypted"}
#: provider → {setting name: old column}
PROVIDER_COLUMNS = {
    "lemlist": {"send_user_id": "lemlist_send_user_id", "send_user_email": "lemlist_send_user_email",
                "send_user_mailbox_id": "lemlist_send_user_mailbox_id"},
    "openmail": {"inbox_id": "openmail_inbox_id"},
    "unipile": {"account_id": "unipile_account_id"},
    "leadlex": {},
}
OLD_COLUMNS = (*SMTP, *SMTP_SECRETS.values(), *(c for m in PROVIDER_COLUMNS.values() for c in m.values()))


def columns_to_config(apps, schema_editor):
    Mailbox = apps.get_model("outreach", "Mailbox")
    for mailbox in Mailbox.objects.all().iterator(chunk_size=500):
        if mailbox.provider == "smtp":
            config = {name: getattr(mailbox, name) for name in SMTP}
            config.update({name: getattr(mailbox, column) for name, column in SMTP_SECRETS.items()})
            if not config["imap_host"]:
                config.update(imap_host="", imap_port=None, imap_login="", imap_password="")
        else:
            config = {name: getattr(mailbox, column) for name, column in PROVIDER_COLUMNS.get(mailbox.provider, {}).items()}
        mailbox.provider_config = config
        mailbox.save(update_fields=["provider_config"])


def config_to_columns(apps, schema_editor):
    Mailbox = apps.get_model("outreach", "Mailbox")
    for mailbox in Mailbox.objects.all().iterator(chunk_size=500):
        config = mailbox.provider_config or {}
        if mailbox.provider == "smtp":
            for name in SMTP:
                if name in config:
                    setattr(mailbox, name, config[name] if config[name] is not None or name.endswith("_port") else "")
            for name, column in SMTP_SECRETS.items():
                setattr(mailbox, column, config.get(name) or "")
        else:
            for name, column in PROVIDER_COLUMNS.get(mailbox.provider, {}).items():
                setattr(mailbox, column, config.get(name) or "")
        mailbox.save(update_fields=list(OLD_COLUMNS))


class Migration(migrations.Migration):

    dependencies = [("outreach", "0011_timeline_kinds_merged")]

    operations = [
        migrations.AddField(
            model_name="mailbox", name="provider_config",
            field=models.JSONField(blank=True, default=dict, editable=False, verbose_name="provider settings",
                                   help_text="The settings the provider declares, by name; secrets encrypted (never shown)."),
        ),
        migrations.RunPython(columns_to_config, config_to_columns),
        *(migrations.RemoveField(model_name="mailbox", name=column) for column in OLD_COLUMNS),
    ]
