"""Address columns validate like the services (outreach.validation.AddressField).

State only: the column stays varchar(254) and only the validator changes, so no SQL runs (an
AlterField would make SQLite copy the whole contacts table for nothing)."""

import outreach.validation
from django.db import migrations

_FIELDS = [
    ("contact", "email", {}),
    ("mailbox", "sender_email", {}),
    ("suppression", "email", {"help_text": "Stored lower-cased."}),
    ("unsubscribekey", "email", {}),
]


class Migration(migrations.Migration):

    dependencies = [
        ("outreach", "0017_mailbox_sender_name_optional"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name=model, name=name,
                    field=outreach.validation.AddressField(max_length=254, **extra),
                )
                for model, name, extra in _FIELDS
            ],
        ),
    ]
