import django.db.models.functions.math
import django.db.models.functions.text
import django.db.models.lookups
import outreach.dbindexes
from django.db import migrations, models

from outreach.migration_operations import AddIndexConcurrently, PostgresSQL, RemoveIndexConcurrently

SHARDS = 8  # outreach.dbindexes.SEARCH_SHARDS when this migration was written


def _shard_index(shard):
    return AddIndexConcurrently(
        model_name='contact',
        index=outreach.dbindexes.TrigramIndex(django.db.models.functions.text.Concat(models.F('email'), models.Value(' '), models.F('first_name'), models.Value(' '), models.F('last_name'), models.Value(' '), models.F('company')), condition=models.Q(django.db.models.lookups.Exact(django.db.models.functions.math.Mod(models.F('team'), SHARDS), shard)), name=f'contact_search_trgm_{shard}'),
    )


class Migration(migrations.Migration):
    """The contacts' trigram index split into one partial index per team shard (``team_id % 8``),
    so a team's search reads its shard's posting lists only; built CONCURRENTLY before the old
    index goes (PostgreSQL only, hence not atomic). Every contact is in exactly one shard index.

    Two extended statistics objects keep the planner's estimates (the lists' totals and their
    choice between counting the matches and walking the sort index rely on them):

    - the shard follows from the team (functional dependency), so ``team_id = X AND MOD(team_id,
      8) = X % 8`` is estimated as ``team_id = X``;
    - the searched text itself: PostgreSQL keeps statistics of an expression index's expression,
      which estimated ``LIKE '%fragment%'`` from a sample of the texts, but ignores those of a
      partial index; without them a rare word's search was estimated at 4 % of the team (the
      default pattern selectivity) and read by walking the whole team's sort index. The object
      is made on the shard index's own expression (``pg_get_indexdef``), so it is exactly it.

    ANALYZE fills them now rather than at the next autovacuum."""

    atomic = False

    dependencies = [
        ('outreach', '0023_bulkjob_remove_enrolments'),
    ]

    operations = [
        *[_shard_index(shard) for shard in range(SHARDS)],
        PostgresSQL(
            sql=f'CREATE STATISTICS IF NOT EXISTS contact_team_search_shard (dependencies) ON team_id, (MOD(team_id, {SHARDS})) FROM outreach_contact',
            reverse_sql='DROP STATISTICS IF EXISTS contact_team_search_shard',
        ),
        PostgresSQL(
            sql="DO $$ BEGIN EXECUTE format('CREATE STATISTICS IF NOT EXISTS contact_search_text_stats ON (%s) FROM outreach_contact', pg_get_indexdef('contact_search_trgm_0'::regclass, 1, true)); END $$",
            reverse_sql='DROP STATISTICS IF EXISTS contact_search_text_stats',
        ),
        PostgresSQL(sql='ANALYZE outreach_contact', reverse_sql=migrations.RunSQL.noop),
        RemoveIndexConcurrently(model_name='contact', name='contact_search_trgm'),
    ]
