# A standby promoted to primary (API.md 0.2.0, "Concurrency and background
# activity"): sessions it cached while in recovery are served consistently
# with the table afterwards — no lost turn, no seq gap caused by the cache.
# 0.1.0: warm_session on the standby, a third turn replayed, promote → 2
# turns served where the table had 3, and a seq gap after the next add_turn.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentcacheTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'agentcache'
});
$primary->start;
sub p { return $primary->safe_psql('postgres', $_[0]); }
p(q{CREATE EXTENSION agentcache;} . expected_context_sql() . q{
SELECT agentcache.add_turn('promo', 'user', 'one');
SELECT agentcache.add_turn('promo', 'assistant', 'two');
SELECT agentcache.add_turn('promo-b', 'user', 'b one');
});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
sub sby { return $standby->safe_psql('postgres', $_[0]); }
$primary->wait_for_catchup($standby);

# the standby caches both sessions while in recovery
is(sby(q{SELECT agentcache.warm_session('promo')}), '2', 'standby: warm_session caches 2 turns');
is(sby(q{SELECT jsonb_array_length(agentcache.get_context('promo-b'))}), '1', 'standby: promo-b read (and cached)');

# a third turn reaches the standby by replay, then the standby is promoted
p(q{SELECT agentcache.add_turn('promo', 'user', 'three')});
$primary->wait_for_catchup($standby);
$primary->stop;
$standby->promote;
is(sby(q{SELECT pg_is_in_recovery()}), 'f', 'promoted');

is(sby(q{SELECT count(*) FROM agentcache.turns WHERE session_id = 'promo'}), '3', 'the table has 3 turns');
is(sby(q{SELECT agentcache.get_context('promo') = expected_context('promo', 30)}), 't',
	'get_context after promotion serves all 3 turns (as the table)');
is(sby(q{SELECT jsonb_array_length(agentcache.get_context('promo'))}), '3', '3 turns served');

# the next turns continue the table's seq: no gap, no duplicate
sby(q{SELECT agentcache.add_turn('promo', 'assistant', 'four')});
sby(q{SELECT agentcache.add_turn('promo-b', 'assistant', 'b two')});
is(sby(q{SELECT string_agg(seq::text, ',' ORDER BY seq) FROM agentcache.turns WHERE session_id = 'promo'}),
	'1,2,3,4', 'seq continues 1,2,3,4');
is(sby(q{SELECT string_agg(seq::text, ',' ORDER BY seq) FROM agentcache.turns WHERE session_id = 'promo-b'}),
	'1,2', 'the other cached session continues 1,2');
is(sby(q{SELECT agentcache.get_context('promo') = expected_context('promo', 30)
            AND agentcache.get_context('promo-b') = expected_context('promo-b', 30)}), 't',
	'both sessions served as the table after the next add_turn');

$standby->stop;
done_testing();
