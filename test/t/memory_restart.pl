# Clean restart and DROP/CREATE EXTENSION (API.md "More precise semantics"):
# after a restart shared memory is new (nothing cached) but every turn is still
# returned (durable table); DROP EXTENSION + CREATE EXTENSION starts from empty
# shared memory and an empty table.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentcacheTest;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentcache'
agentcache.session_memory = '8MB'
});
$node->start;

sub sql { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

sub mem
{
	my ($sessions, $used, $entries) = split /\|/, sql(
		q{SELECT h->'session_memory'->>'sessions', h->'session_memory'->>'used',
		         (SELECT entries FROM agentcache.stats() WHERE tier = 'session')
		  FROM agentcache.health() h}, $_[0]);
	return { sessions => $sessions, used => $used, entries => $entries };
}

my $setup = q{CREATE EXTENSION agentcache;} . expected_context_sql();
sql($setup);
$node->safe_psql('postgres', 'CREATE DATABASE other');
sql($setup, 'other');

my $empty = mem();
is($empty->{sessions}, '0', 'fresh server: nothing cached');
is($empty->{entries},  '0', 'fresh server: stats entries 0');
note "session_memory used when empty: $empty->{used}";

# 40 turns (more than agentcache.session_turns = 30) and 5 turns, all cached
sql(q{
DO $$ BEGIN
  FOR i IN 1..40 LOOP
    PERFORM agentcache.add_turn('r-long', CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END,
                                'long turn ' || i, CASE WHEN i % 4 = 0 THEN jsonb_build_object('i', i) END);
  END LOOP;
  FOR i IN 1..5 LOOP
    PERFORM agentcache.add_turn('r-short', 'user', 'short turn ' || i);
  END LOOP;
END $$;
SELECT agentcache.warm_session('r-long'), agentcache.warm_session('r-short');
});
sql(q{SELECT agentcache.add_turn('o-1', 'system', 'other db'); SELECT agentcache.warm_session('o-1')},
	'other');
my $full = mem();
is($full->{sessions}, '3', 'three sessions cached (two databases)');
cmp_ok($full->{used}, '>', $empty->{used}, 'session memory in use');

# ---------------------------------------------------------------- clean restart
$node->restart;
my $after = mem();
is($after->{sessions}, '0', 'after restart: nothing cached');
is($after->{entries},  '0', 'after restart: stats entries 0');
is($after->{used}, $empty->{used}, 'after restart: session memory used as when empty');

for my $pass ('loaded', 'cached')
{
	is(sql(q{SELECT agentcache.get_context('r-long') = expected_context('r-long', 30)
	           AND agentcache.get_context('r-short') = expected_context('r-short', 30)}),
		't', "after restart ($pass): get_context equals the table's newest turns");
}
is( sql(q{SELECT count(*), min(seq), max(seq), count(meta) FROM agentcache.get_turns('r-long', 1000)}),
	'40|1|40|10', 'after restart: get_turns returns every turn of r-long');
is(sql(q{SELECT agentcache.get_context('r-long', 3) = expected_context('r-long', 3)}), 't',
	'after restart: get_context(max_turns 3)');
is(sql(q{SELECT agentcache.get_context('o-1') = expected_context('o-1', 30)}, 'other'),
	't', 'after restart: other database session intact');
is(mem()->{sessions}, '3', 'sessions read after restart are cached again');
is(sql(q{SELECT agentcache.add_turn('r-short', 'assistant', 'after restart')}), '6',
	'after restart: add_turn continues the sequence');
is(sql(q{SELECT agentcache.get_context('r-short')->-1->>'content'}), 'after restart',
	'after restart: new turn reaches the cache');

# ---------------------------------------------------------------- DROP + CREATE EXTENSION
# A long-lived backend that used the functions (and their saved plans) before
# the extension is re-created.
my $bg = $node->background_psql('postgres');
is($bg->query_safe(q{SELECT jsonb_array_length(agentcache.get_context('r-long'))}), '30',
	'long-lived backend reads r-long before re-create');

# other database: drop its cached session, so the totals below are this database's
sql(q{SELECT agentcache.end_session('o-1')}, 'other');
cmp_ok(mem()->{sessions}, '>', 0, 'sessions cached before DROP EXTENSION');

sql(q{DROP EXTENSION agentcache});
sql(q{CREATE EXTENSION agentcache});
my $recreated = mem();
is($recreated->{sessions}, '0', 're-created: no old sessions in shared memory');
is($recreated->{entries},  '0', 're-created: stats entries 0');
is($recreated->{used}, $empty->{used}, 're-created: session memory used as when empty');
is(sql(q{SELECT agentcache.end_session('r-long')}), 'f', 're-created: old session not cached');
is(sql(q{SELECT count(*) FROM agentcache.turns}), '0', 're-created: agentcache.turns is empty');
is(sql(q{SELECT agentcache.get_context('r-long')::text}), '[]', 're-created: old session id gives []');
is(sql(q{SELECT count(*) FROM agentcache.get_turns('r-short')}), '0', 're-created: get_turns of old session is empty');

# the long-lived backend works against the new table
is($bg->query_safe(q{SELECT agentcache.get_context('r-long')::text}), '[]',
	'long-lived backend: old session gives [] after re-create');
is($bg->query_safe(q{SELECT agentcache.add_turn('r-long', 'user', 'new life')}), '1',
	'long-lived backend: add_turn starts again at seq 1');
is( $bg->query_safe(q{SELECT string_agg(seq || ':' || content, ',') FROM agentcache.get_turns('r-long')}),
	'1:new life', 'long-lived backend: get_turns sees the new turn');
is(sql(q{SELECT agentcache.get_context('r-long')->0->>'content'}), 'new life',
	'another backend sees the new turn');
$bg->quit;

# the other database was not affected
is(sql(q{SELECT agentcache.get_context('o-1')->0->>'content'}, 'other'), 'other db',
	'other database keeps its history');

$node->stop;
done_testing();
