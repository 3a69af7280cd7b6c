import django.db.models.deletion
import django.db.models.functions.comparison
import django.db.models.functions.text
import outreach.dbindexes
from django.conf import settings
from django.db import migrations, models

from outreach.migration_operations import AddIndexConcurrently, DropFieldIndexConcurrently


def _unindexed_link(name, field):
    """The FK ``name`` of TimelineEvent without its full index (replaced by a partial one above):
    the state changes as with AlterField; the index is dropped concurrently on PostgreSQL."""
    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AlterField(model_name="timelineevent", name=name, field=field)],
        database_operations=[DropFieldIndexConcurrently("timelineevent", name)],
    )


class Migration(migrations.Migration):
    """The company autocomplete's prefix index (PostgreSQL only), and the timeline's optional
    links indexed only where set, plus a small index of the campaign stop events. New indexes
    are built CONCURRENTLY on PostgreSQL (hence not atomic) before the old ones go."""

    atomic = False

    dependencies = [
        ('outreach', '0018_address_fields'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='contact',
            index=outreach.dbindexes.PostgresIndex(models.F('team'), django.db.models.functions.comparison.Collate(django.db.models.functions.text.Upper('company'), 'C'), django.db.models.functions.comparison.Collate(models.F('company'), 'C'), name='contact_company_prefix'),
        ),
        AddIndexConcurrently(
            model_name='timelineevent',
            index=models.Index(condition=models.Q(('sent_message__isnull', False)), fields=['sent_message'], name='timeline_sent_message'),
        ),
        AddIndexConcurrently(
            model_name='timelineevent',
            index=models.Index(condition=models.Q(('inbound_message__isnull', False)), fields=['inbound_message'], name='timeline_inbound_message'),
        ),
        AddIndexConcurrently(
            model_name='timelineevent',
            index=models.Index(condition=models.Q(('actor__isnull', False)), fields=['actor'], name='timeline_actor'),
        ),
        AddIndexConcurrently(
            model_name='timelineevent',
            index=models.Index(condition=models.Q(('kind__in', ['auto_reply', 'message_bounced', 'reply_received', 'unsubscribed'])), fields=['created_at'], name='timeline_stop_events'),
        ),
        _unindexed_link('actor', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
        _unindexed_link('inbound_message', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='timeline_events', to='outreach.inboundmessage')),
        _unindexed_link('sent_message', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='timeline_events', to='outreach.sentmessage')),
    ]
