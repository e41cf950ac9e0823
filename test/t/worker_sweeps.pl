# The worker's sweeps (API.md 0.2.0, "Concurrency and background activity",
# and the issue's item on other databases):
#  a. a lowered agentcache.sweep_interval takes effect at the reload: the next
#     sweep is due one new interval after the last one (0.1.0 waited for the
#     old interval, five minutes here, to run out);
#  b. databases other than agentcache.database are swept too (0.1.0 never
#     swept them): expired dedup rows and TTL entries go, and the TTL
#     estimates are re-counted there.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentcacheTest;
use Time::HiRes qw(time sleep);

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'agentcache'
agentcache.database = 'postgres'
agentcache.sweep_interval = '5min'
agentcache.stale_retention = 0
});
$node->start;
sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

sql('postgres', q{CREATE EXTENSION agentcache; CREATE DATABASE otherdb; CREATE DATABASE plaindb;});
sql('otherdb', q{CREATE EXTENSION agentcache;});

# the worker's first sweep ran at its start; from now on the next is 5 min away
ok(defined wait_true($node, q{SELECT (agentcache.health()->'worker'->>'last_sweep') IS NOT NULL}),
	'the worker swept once at start');
my $expired = q{
INSERT INTO agentcache.dedup (message_id, state, expires_at) VALUES ('old', 'completed', now() - interval '1 hour');
SELECT agentcache.put('ns', 'gone', '1', '1 millisecond');
SELECT agentcache.put('ns', 'stays', '2', '1 hour');
};
sql('postgres', $expired);
sql('otherdb', $expired);
sleep 1.5;
is(sql('postgres', q{SELECT count(*) FROM agentcache.dedup WHERE message_id = 'old'}), '1',
	'a: with a 5 min interval the expired row waits');

# ---------------------------------------------------------------- a. the interval lowered
my $t0 = time;
sql('postgres', q{ALTER SYSTEM SET agentcache.sweep_interval = '1s'; SELECT pg_reload_conf();});
my $t = wait_true($node, q{SELECT count(*) = 0 FROM agentcache.dedup WHERE message_id = 'old'}, $t0, 20);
ok(defined $t, 'a: after the reload the next sweep comes within the new interval');
note sprintf('a: swept %.1f s after the reload', $t // -1);
ok(defined wait_true($node, q{SELECT count(*) = 0 FROM agentcache.entries WHERE key = 'gone'}, $t0, 20),
	'a: the expired TTL entry is swept too');

# ---------------------------------------------------------------- b. other databases
$t = wait_true($node, q{SELECT count(*) = 0 FROM agentcache.dedup WHERE message_id = 'old'}, $t0, 30, 'otherdb');
ok(defined $t, 'b: an expired dedup row in another database is swept');
note sprintf('b: otherdb swept %.1f s after the reload', $t // -1);
ok(defined wait_true($node, q{SELECT count(*) = 0 FROM agentcache.entries WHERE key = 'gone'}, $t0, 30, 'otherdb'),
	'b: an expired TTL entry in another database is swept');
is(sql('otherdb', q{SELECT count(*) FROM agentcache.entries WHERE key = 'stays'}), '1', 'b: live entries stay');
# the estimate is re-counted in that database: rows written behind the
# counters' back (plain SQL) are counted after a sweep or two
sql('otherdb', q{INSERT INTO agentcache.entries (namespace, key, value) SELECT 'ns', 'bulk' || g, '1' FROM generate_series(1, 50) g});
ok(defined wait_true($node, q{SELECT entries = 51 FROM agentcache.stats() WHERE tier = 'ttl' AND name = 'ns'}, undef, 30,
		'otherdb'),
	'b: the TTL estimate is re-counted in the other database');

# a database without the extension costs nothing but a sweeper's visit
is(sql('plaindb', q{SELECT count(*) FROM pg_namespace WHERE nspname = 'agentcache'}), '0', 'plaindb has no agentcache');
my $log = slurp_file($node->logfile);
my @bad = grep { /ERROR|PANIC|terminated by signal/ } split /\n/, $log;
is(scalar(@bad), 0, 'no error in the server log') or diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
ok(defined wait_true($node, q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'agentcache sweeper'}, undef, 10),
	'sweepers exit when done');

$node->stop;
done_testing();
