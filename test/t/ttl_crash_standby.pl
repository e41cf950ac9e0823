# TTL cache (API.md section 2, "Replicas", "Precise semantics" TTL):
#  a. after a crash the UNLOGGED entries are gone: get is a miss (no error),
#     fetch runs its query and stores again, stats() works; a clean restart
#     keeps the entries;
#  b. on a hot standby get/get_stale are misses (counted in stats), fetch
#     runs its query every time without storing, every write raises 25006;
#     in a READ ONLY transaction on the primary a fetch miss is not stored;
#  c. the worker's sweep removes expired rows after stale_retention (counted
#     as expirations) and brings a namespace overshot by direct INSERTs back
#     to max_entries (nearest to expiry first, no-expiry rows last);
#  d. a fetch leader whose backend dies (pg_terminate_backend) hands over to
#     the waiter at once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentcacheTest;
use Time::HiRes qw(time sleep);

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentcache'
restart_after_crash = on
agentcache.sweep_interval = '500ms'
agentcache.stale_retention = '1s'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }



# hits|misses|stale_hits|evictions|expirations|entries of a namespace ('' if no row)
sub ttl_stats
{
	my ($n, $ns) = @_;
	return $n->safe_psql('postgres',
		qq{SELECT hits || '|' || misses || '|' || stale_hits || '|' || evictions || '|' || expirations
		          || '|' || entries
		   FROM agentcache.stats() WHERE tier = 'ttl' AND name = '$ns'});
}

sql(q{
CREATE EXTENSION agentcache;
-- counts the runs of fetch queries that must not leave a trace in a table
-- (after a crash the sequence is recovered, so runs stay countable)
CREATE SEQUENCE runs;
SELECT agentcache.put('crash', 'k1', '1');
SELECT agentcache.put('crash', 'k2', '{"a": 2}', '1 hour', '{t}');
SELECT agentcache.fetch('crash', 'f', 'SELECT 42');
});
is(sql(q{SELECT agentcache.get('crash', 'k1')::text || ',' || agentcache.get('crash', 'k2')::text
        || ',' || agentcache.get('crash', 'f')::text}),
	'1,{"a": 2},42', 'before the crash: entries stored');

# ---------------------------------------------------------------- a. crash
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
my $offset = -s $node->logfile;
ok(kill('KILL', $pid), "SIGKILL to backend $pid");
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
ok($node->poll_query_until('postgres', 'SELECT true'), 'server accepts connections after the crash');
eval { $bg->{run}->finish; };

is(sql(q{SELECT count(*) FROM agentcache.entries}), '0', 'after the crash: agentcache.entries is empty');
my ($out, $err) = ('', '');
$node->psql('postgres', q{SELECT agentcache.get('crash', 'k1') IS NULL, agentcache.get('crash', 'k2') IS NULL,
                                 agentcache.get_stale('crash', 'k1', '1 day') IS NULL},
	stdout => \$out, stderr => \$err);
is($out, 't|t|t', 'after the crash: get/get_stale are misses');
is($err, '', 'after the crash: no error or warning');
is(sql(q{SELECT agentcache.fetch('crash', 'f', 'SELECT 100 + nextval(''runs'')')}), '101',
	'after the crash: fetch runs its query');
is(sql(q{SELECT agentcache.fetch('crash', 'f', 'SELECT 100 + nextval(''runs'')')}), '101',
	'after the crash: the fetched value was stored (second fetch is a hit)');
is(sql(q{SELECT last_value FROM runs}), '1', 'after the crash: the query ran once');
is(sql(q{SELECT agentcache.get('crash', 'f')}), '101', 'after the crash: get returns the fetched value');
is(ttl_stats($node, 'crash'), '2|4|0|0|0|1',
	'after the crash: stats() counts from zero (hits 2, misses 4, entries 1)');
is(sql(q{SELECT agentcache.invalidate_tag('t')}), '0', 'after the crash: invalidate_tag finds nothing');
sql(q{SELECT agentcache.put('crash', 'k3', '"kept"', NULL, '{t3}')});

# ---------------------------------------------------------------- a. clean restart keeps entries
$node->restart;
is(sql(q{SELECT agentcache.get('crash', 'k3')::text || ',' || agentcache.get('crash', 'f')::text}),
	'"kept",101', 'after a clean restart: UNLOGGED entries are still there');
is(sql(q{SELECT tags::text FROM agentcache.entries WHERE namespace = 'crash' AND key = 'k3'}), '{t3}',
	'after a clean restart: tags kept');

# ---------------------------------------------------------------- b. READ ONLY transaction on the primary
is(sql(q{BEGIN READ ONLY; SELECT agentcache.fetch('ro', 'k', 'SELECT 7'); COMMIT}), '7',
	'READ ONLY: a fetch miss returns the value');
is(sql(q{SELECT count(*) FROM agentcache.entries WHERE namespace = 'ro'}), '0', 'READ ONLY: nothing stored');
is(sql(q{BEGIN READ ONLY; SELECT agentcache.get('crash', 'k3'); COMMIT}), '"kept"', 'READ ONLY: get works');
is(sql(q{BEGIN READ ONLY; SELECT agentcache.fetch('crash', 'k3', 'SELECT 0'); COMMIT}), '"kept"',
	'READ ONLY: a fetch hit works');
for my $w (q{agentcache.put('ro', 'k', '1')}, q{agentcache.invalidate('crash', 'k3')},
	q{agentcache.invalidate_tag('t3')}, q{agentcache.clear('crash')})
{
	is(sqlstate($node, "BEGIN READ ONLY; SELECT $w;"), '25006', "READ ONLY: $w raises 25006");
}
is(sql(q{SELECT agentcache.get('crash', 'k3')}), '"kept"', 'READ ONLY: the failed writes left nothing behind');

# ---------------------------------------------------------------- b. standby
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;
sql(q{SELECT agentcache.put('crash', 'k4', '"after backup"')});
$node->wait_for_catchup($standby);
sub sby { return $standby->safe_psql('postgres', $_[0]); }

is(sby(q{SELECT pg_is_in_recovery()}), 't', 'standby is in recovery');
is(sby(q{SELECT count(*) FROM agentcache.namespaces WHERE namespace = 'crash'}), '1',
	'standby: namespaces replicated');
my $before = ttl_stats($standby, 'crash');
my ($h0, $m0) = $before eq '' ? (0, 0) : (split /\|/, $before)[0, 1];
($out, $err) = ('', '');
$standby->psql('postgres', q{SELECT agentcache.get('crash', 'k3') IS NULL, agentcache.get('crash', 'k4') IS NULL,
                                    agentcache.get_stale('crash', 'k3', '1 day') IS NULL},
	stdout => \$out, stderr => \$err);
is($out, 't|t|t', 'standby: get/get_stale of entries present on the primary are misses');
is($err, '', 'standby: no error (no "unlogged relations during recovery")');
my ($h1, $m1) = (split /\|/, ttl_stats($standby, 'crash'))[0, 1];
is($h1 - $h0, 0, 'standby: no hits counted');
is($m1 - $m0, 3, 'standby: the 3 misses are counted in stats()');

my $q = q{'SELECT ''run '' || (extract(epoch FROM clock_timestamp()) * 1000000)::bigint'};
my $v1 = sby(qq{SELECT agentcache.fetch('sb', 'k', $q)});
sleep 0.01;
my $v2 = sby(qq{SELECT agentcache.fetch('sb', 'k', $q)});
like($v1, qr/^"run \d+"$/, "standby: fetch returns its query's value ($v1)");
isnt($v2, $v1, "standby: a second fetch runs the query again ($v2), nothing was stored");
is(sby(q{SELECT agentcache.get('sb', 'k') IS NULL}), 't', 'standby: get after fetch is a miss');
is(sby(q{SELECT agentcache.fetch('crash', 'k3', 'SELECT ''computed on the standby''')}),
	'"computed on the standby"', 'standby: fetch of a key cached on the primary runs the query');
is(sby(q{SELECT agentcache.fetch('sb', 'none', 'SELECT 1 WHERE false') IS NULL}), 't',
	'standby: fetch with zero rows returns NULL');
like(sqlstate($standby, q{SELECT agentcache.fetch('sb', 'err', 'SELECT 1/0', NULL, '1 day')}), qr/^22012$/,
	'standby: a failing fetch query propagates its error (nothing stale to serve)');

for my $w (
	q{agentcache.put('sb', 'k', '1')},
	q{agentcache.put('crash', 'k3', '1', '1 hour', '{x}')},
	q{agentcache.invalidate('crash', 'k3')},
	q{agentcache.invalidate('sb', 'nothing')},
	q{agentcache.invalidate_tag('t3')},
	q{agentcache.clear('crash')},
	q{agentcache.clear_all()},
	q{agentcache.configure_namespace('sb', '1 hour', 10)},
	q{agentcache.configure_namespace('crash', NULL)})
{
	is(sqlstate($standby, "SELECT $w"), '25006', "standby: $w raises 25006");
}
is(sqlstate($standby, q{SELECT agentcache.put(NULL, 'k', '1')}), '22004', 'standby: NULL argument still 22004 first');
is(sqlstate($standby, q{SELECT agentcache.put('sb', 'k', '1', '-1 s')}), '22023', 'standby: bad ttl still 22023 first');
$node->wait_for_catchup($standby);
is(sql(q{SELECT agentcache.get('crash', 'k3')}), '"kept"', 'primary: entries untouched by the standby');
$standby->stop;

# ---------------------------------------------------------------- c. sweep of expired rows
my $exp0 = (split /\|/, (ttl_stats($node, 'sweep') || '0|0|0|0|0|0'))[4];
my $t_put = time;
sql(q{SELECT agentcache.put('sweep', 'short', '1', '1 second'), agentcache.put('sweep', 'long', '2', '1 hour')});
is(sql(q{SELECT agentcache.get('sweep', 'short')}), '1', 'sweep: short-lived entry readable at first');
sleep(1.1 - (time - $t_put)) if time - $t_put < 1.1;
my ($g, $gs) = split /\|/, sql(q{SELECT agentcache.get('sweep', 'short') IS NULL,
                                        agentcache.get_stale('sweep', 'short', '1 hour')});
my $el = time - $t_put;
is($g, 't', 'sweep: get never returns an expired entry');
if ($el < 1.8)
{
	is($gs, '1', sprintf('sweep: get_stale serves it within stale_retention (%.2f s after put)', $el));
}
else
{
	note sprintf('get_stale check skipped: %.2f s after put, the sweep may have run', $el);
}
my $t = wait_true($node, q{SELECT NOT EXISTS (SELECT FROM agentcache.entries WHERE namespace = 'sweep' AND key = 'short')},
	$t_put);
ok(defined $t, 'sweep: the expired entry left agentcache.entries');
note sprintf('sweep: expired entry gone %.2f s after put (ttl 1 s, stale_retention 1 s, sweep 500 ms)', $t // -1);
cmp_ok($t // 99, '<', 5, 'sweep: within a few seconds');
is(sql(q{SELECT agentcache.get('sweep', 'long')}), '2', 'sweep: the unexpired entry stays');
my $exp1 = (split /\|/, ttl_stats($node, 'sweep'))[4];
cmp_ok($exp1, '>=', $exp0 + 1, "sweep: stats expirations grew ($exp0 -> $exp1)");

# the sweep walks the table in block ranges (no index on expires_at): a table of
# several ranges (256 blocks each) loses every expired row, in its first and in
# its last blocks, and keeps every live one in between
sql(q{SELECT agentcache.configure_namespace('walk', '1 hour')});
sql(q{INSERT INTO agentcache.entries (namespace, key, value, expires_at)
      SELECT 'walk', 'k' || i, to_jsonb(repeat('x', 1000)),
             clock_timestamp() + CASE WHEN i % 10 = 0 THEN interval '1 hour' ELSE interval '1 second' END
      FROM generate_series(1, 6000) i});
my $blocks = sql(q{SELECT pg_relation_size('agentcache.entries') / current_setting('block_size')::int});
cmp_ok($blocks, '>', 600, "walk: agentcache.entries spans several block ranges ($blocks blocks)");
my $t_walk = time;
$t = wait_true($node, q{SELECT count(*) = 600 FROM agentcache.entries WHERE namespace = 'walk'}, $t_walk);
ok(defined $t, 'walk: every expired row left the table');
is(sql(q{SELECT count(*) || ' ' || min(key::int8 % 10) || ' ' || max(key::int8 % 10)
         FROM (SELECT substr(key, 2) AS key FROM agentcache.entries WHERE namespace = 'walk') k}),
	'600 0 0', 'walk: the 600 unexpired rows stayed');
is(sql(q{SELECT agentcache.get('walk', 'k6000') IS NOT NULL AND agentcache.get('walk', 'k10') IS NOT NULL}),
	't', 'walk: live rows of the first and the last blocks readable');
my $exp2 = (split /\|/, ttl_stats($node, 'walk'))[4];
is($exp2, 5400, 'walk: stats count 5400 expirations (rows inserted directly, not through put)');
sql(q{SELECT agentcache.clear('walk')});

# ---------------------------------------------------------------- c. sweep of a max_entries overshoot
sql(q{SELECT agentcache.configure_namespace('cap', '1 hour', 5)});
my $ev0 = (split /\|/, ttl_stats($node, 'cap'))[3];
# 3 rows without expiry, 7 expiring in 10..70 minutes, bypassing put()
sql(q{INSERT INTO agentcache.entries (namespace, key, value, expires_at)
      SELECT 'cap', 'n' || i, to_jsonb(i), NULL FROM generate_series(1, 3) i
      UNION ALL
      SELECT 'cap', 'e' || i, to_jsonb(i), now() + i * interval '10 min' FROM generate_series(1, 7) i});
is(sql(q{SELECT count(*) FROM agentcache.entries WHERE namespace = 'cap'}), '10', 'max_entries: overshot to 10');
$t = wait_true($node, q{SELECT count(*) <= 5 FROM agentcache.entries WHERE namespace = 'cap'});
ok(defined $t, 'max_entries: the sweep brings the namespace back under the limit');
note sprintf('max_entries: back under the limit after %.2f s', $t // -1);
is(sql(q{SELECT string_agg(key, ',' ORDER BY key) FROM agentcache.entries WHERE namespace = 'cap'}),
	'e6,e7,n1,n2,n3', 'max_entries: nearest to expiry evicted first, entries without expiry last');
my $ev1 = (split /\|/, ttl_stats($node, 'cap'))[3];
is($ev1 - $ev0, 5, 'max_entries: 5 evictions counted');

# ---------------------------------------------------------------- d. a fetch leader that dies
sql(q{CREATE FUNCTION slow_value() RETURNS text LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(120); RETURN 'leader'; END $$});
my $leader = $node->background_psql('postgres', on_error_stop => 0);
my $lpid = $leader->query_safe('SELECT pg_backend_pid()');
$leader->query_until(qr/started/,
	"BEGIN;\n\\echo started\nSELECT agentcache.fetch('die', 'k', 'SELECT slow_value()');\n");
ok(defined wait_true($node, qq{SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $lpid}),
	'leader is running its query');
my $waiter = $node->background_psql('postgres', on_error_stop => 0);
my $wpid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/started/,
	"\\echo started\nSELECT agentcache.fetch('die', 'k', 'SELECT ''waiter''::text') AS got;\n");
ok(defined wait_true($node, qq{SELECT EXISTS (SELECT FROM pg_locks WHERE pid = $wpid AND NOT granted)}),
	'waiter waits for the leader');
sleep 0.3;
is(sql(qq{SELECT EXISTS (SELECT FROM pg_locks WHERE pid = $wpid AND NOT granted)}), 't', 'waiter still waiting');
my $t0 = time;
is(sql("SELECT pg_terminate_backend($lpid)"), 't', 'leader terminated');
my $res = $waiter->query_until(qr/"waiter"/, '');
like($res, qr/"waiter"/, 'the waiter took over and returned its own query\'s value');
note sprintf('waiter answered %.2f s after the leader was terminated', time - $t0);
cmp_ok(time - $t0, '<', 10, 'the waiter did not wait for the dead leader\'s query');
is(sql(q{SELECT agentcache.get('die', 'k')}), '"waiter"', 'the waiter stored its value');
$waiter->quit;
eval { $leader->{run}->finish; };

$node->stop;
done_testing();
