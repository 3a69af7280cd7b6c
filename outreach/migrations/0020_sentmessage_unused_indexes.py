from django.db import migrations, models

from outreach.migration_operations import DropFieldIndexConcurrently


class Migration(migrations.Migration):
    """Drop the sent messages' indexes that no query uses (issue 12), concurrently on PostgreSQL
    (hence not atomic):

    - ``status`` (and, on PostgreSQL, its ``status … varchar_pattern_ops`` twin): every status
      query is an equality or IN on status, served as cheaply by the composite indexes that
      start with it, ``sentmessage_outbox (status, due_at)`` and ``sentmessage_leases (status,
      lease_until)``; the messages list filters through ``sentmessage_team_status``. Checked
      with EXPLAIN of the outbox claim, the lease sweep, the pending count and the campaign
      outbox room on 200,000 messages: same plan cost without them.
    - the ``message_id … varchar_pattern_ops`` index PostgreSQL got for the unique field: it
      serves only ``LIKE 'prefix%'`` on the raw column, which no code runs (threading looks up
      exact ids through the unique index; the admin's search is ``UPPER(…) LIKE '%…%'``). The
      unique constraint stays.
    """

    atomic = False

    dependencies = [
        ('outreach', '0019_search_and_timeline_indexes'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='sentmessage',
                    name='status',
                    field=models.CharField(choices=[('scheduled', 'Scheduled'), ('queued', 'Queued'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed'), ('unknown', 'May have been delivered'), ('cancelled', 'Cancelled')], default='queued', max_length=10),
                ),
            ],
            database_operations=[DropFieldIndexConcurrently('sentmessage', 'status')],
        ),
        DropFieldIndexConcurrently('sentmessage', 'message_id'),
    ]
