# The background worker and prewarmed lookup maps (API.md section 4, "Maps",
# "Retention"): maps are loaded by the worker at start (no refresh_map call),
# the worker comes back within 10 s after pg_terminate_backend / SIGTERM /
# SIGKILL, refresh_trigger reloads on commit only, a map's query runs as its
# owner (a revoked privilege makes the refresh fail, recorded in last_error,
# old values keep serving), maps refresh on their interval, and
# agentcache.turn_retention deletes old turns.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentcacheTest;
use Time::HiRes qw(time sleep);

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentcache'
agentcache.sweep_interval = '500ms'
restart_after_crash = on
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }


sub worker_pid
{
	return sql(q{SELECT coalesce(agentcache.health()->'worker'->>'pid', '')});
}

sql(q{CREATE EXTENSION agentcache;} . instances_sql());
is(sql(q{SELECT agentcache.resolve_instance('inst-1')::text}),
	'{"clinic": "clinic 2", "tenant": "tenant-2", "channel": "whatsapp", "clinic_id": 2}',
	'define_map loads the map before returning');

# every instance resolves to what the join says
my $all_right = q{SELECT count(*) = 1000 FROM integrations i JOIN clinics c ON c.id = i.clinic_id
                  WHERE agentcache.resolve_instance(i.instance)
                        = jsonb_build_object('clinic_id', c.id, 'clinic', c.name, 'tenant', c.tenant,
                                             'channel', i.channel)};

# ---------------------------------------------------------------- a. clean restart
$node->restart;
my $t = wait_true($node, q{SELECT agentcache.resolve_instance('inst-1') IS NOT NULL});
ok(defined $t, 'after restart: resolve_instance answers without refresh_map');
note sprintf('map served %.2f s after the server accepted connections', $t // -1);
cmp_ok($t // 99, '<', 5, 'after restart: the worker loaded the map promptly');
is(sql($all_right), 't', 'after restart: all 1000 instances resolve correctly');
is(sql(q{SELECT h->'maps'->'instances'->>'entries' || ',' || (h->'worker'->>'alive')
         FROM agentcache.health() h}),
	'1000,true', 'after restart: health shows the map loaded and the worker alive');

# ---------------------------------------------------------------- b. worker termination
for my $how ('pg_terminate_backend', 'TERM', 'KILL')
{
	my $old = worker_pid();
	like($old, qr/^\d+$/, "$how: worker pid $old known");
	my $offset = -s $node->logfile;
	my $t0 = time;
	if ($how eq 'pg_terminate_backend')
	{
		is(sql("SELECT pg_terminate_backend($old)"), 't', 'pg_terminate_backend(worker)');
	}
	else
	{
		ok(kill($how, $old), "kill $how worker $old");
	}
	if ($how eq 'KILL')
	{
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
		pass('SIGKILL: cluster reinitialised through crash recovery');
	}
	my $el = wait_true($node, 
		qq{SELECT h->'worker'->>'pid' IS NOT NULL AND h->'worker'->>'pid' <> '$old'
		          AND (h->'worker'->>'alive')::bool
		          AND agentcache.resolve_instance('inst-5') IS NOT NULL
		   FROM agentcache.health() h}, $t0);
	ok(defined $el, "$how: worker back with a new pid and the map served");
	note sprintf('%s: worker back and map served after %.2f s', $how, $el // -1);
	cmp_ok($el // 99, '<', 10, "$how: back within 10 s");
	is(sql($all_right), 't', "$how: all instances resolve correctly");
}
like($node->safe_psql('postgres', q{SELECT 1 FROM pg_stat_activity WHERE backend_type = 'agentcache worker'}),
	qr/^1$/, 'exactly one agentcache worker runs');

# ---------------------------------------------------------------- c. refresh_trigger
sql(q{CREATE TRIGGER integrations_refresh AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON integrations
      FOR EACH STATEMENT EXECUTE FUNCTION agentcache.refresh_trigger('instances')});
sub map_refreshed_at
{
	return sql(qq{SELECT agentcache.health()->'maps'->'$_[0]'->>'last_refresh'});
}

my $t0 = time;
sql(q{UPDATE integrations SET channel = 'sms' WHERE instance = 'inst-7'});
$t = wait_true($node, q{SELECT agentcache.resolve_instance('inst-7')->>'channel' = 'sms'}, $t0);
ok(defined $t, 'refresh_trigger: committed UPDATE reaches the map');
note sprintf('refresh_trigger: new value served after %.2f s', $t // -1);
cmp_ok($t // 99, '<', 2, 'refresh_trigger: within 2 s');

$t0 = time;
sql(q{INSERT INTO integrations VALUES ('inst-new', 42, 'telegram')});
$t = wait_true($node, q{SELECT agentcache.resolve_instance('inst-new')->>'clinic' = 'clinic 42'}, $t0);
cmp_ok($t // 99, '<', 2, 'refresh_trigger: committed INSERT reaches the map within 2 s');

my $before = map_refreshed_at('instances');
ok($before, "last_refresh of instances: $before");
sql(q{BEGIN; UPDATE integrations SET channel = 'rolled-back' WHERE instance = 'inst-8'; ROLLBACK;});
sql(q{BEGIN; DELETE FROM integrations WHERE instance = 'inst-9'; SAVEPOINT s;
      UPDATE integrations SET channel = 'rolled-back' WHERE instance = 'inst-8'; ROLLBACK;});
sleep 1.5;
is(map_refreshed_at('instances'), $before, 'rolled-back changes: the map was not reloaded');
is(sql(q{SELECT agentcache.resolve_instance('inst-8')->>'channel'}), 'whatsapp',
	'rolled-back changes: old value served');

# ---------------------------------------------------------------- d. privilege safety
sql(q{
CREATE TABLE secrets (k text, v text);
INSERT INTO secrets VALUES ('a', 'one'), ('b', 'two');
CREATE ROLE owner_role;
GRANT SELECT ON secrets TO owner_role;
GRANT USAGE ON SCHEMA agentcache TO owner_role;
GRANT EXECUTE ON FUNCTION agentcache.define_map(text, text, interval) TO owner_role;
SET ROLE owner_role;
SELECT agentcache.define_map('secret', 'SELECT k, to_jsonb(v) FROM public.secrets', '1 second');
RESET ROLE;
});
is(sql(q{SELECT owner::text || ',' || entries FROM agentcache.maps WHERE name = 'secret'}),
	'owner_role,2', 'secret map defined by owner_role');
is(sql(q{SELECT agentcache.lookup('secret', 'a')::text}), '"one"', 'secret map serves');
my $wpid = worker_pid();

# the owner loses SELECT; the table changes (a superuser refresh would see it)
my $offset = -s $node->logfile;
sql(q{REVOKE SELECT ON secrets FROM owner_role; UPDATE secrets SET v = 'LEAKED'});
$t = wait_true($node, q{SELECT last_error ~ 'permission denied' FROM agentcache.maps WHERE name = 'secret'});
ok(defined $t, 'worker refresh as owner fails: agentcache.maps.last_error says permission denied');
note 'last_error: ' . sql(q{SELECT last_error FROM agentcache.maps WHERE name = 'secret'});
like(sql(q{SELECT agentcache.health()->'maps'->'secret'->>'last_error'}),
	qr/permission denied/, 'health() maps.secret.last_error says permission denied');
is(sql(q{SELECT agentcache.lookup('secret', 'a')::text || agentcache.lookup('secret', 'b')::text}),
	'"one""two"', 'lookup keeps serving the old values (nothing leaked)');
my ($out, $err) = ('', '');
$node->psql('postgres', q{SELECT agentcache.refresh_map('secret')}, stdout => \$out, stderr => \$err);
like($err, qr/permission denied/, 'refresh_map by a superuser also runs the query as the owner');
is(sql(q{SELECT agentcache.lookup('secret', 'a')::text}), '"one"', 'still the old values');
is(worker_pid(), $wpid, 'worker still alive with the same pid');

# the failing map is retried on its interval, not in a busy loop
sleep 2;
my $log = slurp_file($node->logfile, $offset);
my $failures = () = $log =~ /refreshing map "secret" failed/g;
note "failed refreshes of secret logged in ~2 s: $failures";
cmp_ok($failures, '<=', 10, 'a failing map is not retried in a busy loop');

# the worker still refreshes the other maps
$t0 = time;
sql(q{UPDATE integrations SET channel = 'after-failure' WHERE instance = 'inst-10'});
$t = wait_true($node, q{SELECT agentcache.resolve_instance('inst-10')->>'channel' = 'after-failure'}, $t0);
cmp_ok($t // 99, '<', 2, 'worker still refreshes other maps after the failure');
is(worker_pid(), $wpid, 'worker pid unchanged');

# granting again heals the map
sql(q{GRANT SELECT ON secrets TO owner_role});
$t = wait_true($node, q{SELECT agentcache.lookup('secret', 'a')::text = '"LEAKED"'
                 AND (SELECT last_error IS NULL FROM agentcache.maps WHERE name = 'secret')
                 AND agentcache.health()->'maps'->'secret'->>'last_error' IS NULL});
cmp_ok($t // 99, '<', 4, 'after GRANT the worker refreshes the map and clears last_error');
sql(q{SELECT agentcache.drop_map('secret')});

# ---------------------------------------------------------------- e. periodic refresh
sql(q{CREATE TABLE plain (k text PRIMARY KEY, v int);
      INSERT INTO plain SELECT 'k' || i, i FROM generate_series(1, 10) i;
      SELECT agentcache.define_map('periodic', 'SELECT k, to_jsonb(v) FROM plain', '1 second');});
is(sql(q{SELECT agentcache.lookup('periodic', 'k3')}), '3', 'periodic map loaded');
$t0 = time;
sql(q{UPDATE plain SET v = v * 100; INSERT INTO plain VALUES ('k11', 11)});
$t = wait_true($node, q{SELECT agentcache.lookup('periodic', 'k3') = '300' AND agentcache.lookup('periodic', 'k11') = '11'},
	$t0);
ok(defined $t, 'periodic refresh picks up the change without a trigger');
note sprintf('periodic refresh: %.2f s', $t // -1);
cmp_ok($t // 99, '<', 3, 'periodic refresh within 3 s');

# ---------------------------------------------------------------- f. turn retention
sql(q{
INSERT INTO agentcache.turns (session_id, seq, role, content, created_at)
SELECT 'ret', i, 'user', 'old ' || i, now() - interval '2 hours' FROM generate_series(1, 5) i;
INSERT INTO agentcache.turns (session_id, seq, role, content)
SELECT 'ret', i, 'assistant', 'new ' || i FROM generate_series(6, 8) i;
-- more than one cycle's worth of batches (20 x 1000)
INSERT INTO agentcache.turns (session_id, seq, role, content, created_at)
SELECT 'bulk-' || (i % 100), i, 'user', 'bulk', now() - interval '3 hours' FROM generate_series(1, 25000) i;
});
is(sql(q{SELECT jsonb_array_length(agentcache.get_context('ret'))}), '8', 'before retention: 8 turns');
sleep 1.2;
is(sql(q{SELECT count(*) FROM agentcache.turns}), '25008', 'turn_retention 0 (default) keeps every turn');

sql(q{ALTER SYSTEM SET agentcache.turn_retention = '1h'});
sql(q{SELECT pg_reload_conf()});
$t0 = time;
$t = wait_true($node, q{SELECT count(*) = 3 FROM agentcache.turns}, $t0);
ok(defined $t, 'old turns deleted by the worker');
note sprintf('retention removed 25005 turns in %.2f s', $t // -1);
cmp_ok($t // 99, '<', 6, 'within a few seconds');
is(sql(q{SELECT string_agg(seq::text, ',' ORDER BY seq) FROM agentcache.turns WHERE session_id = 'ret'}),
	'6,7,8', 'recent turns stay');
is(sql(q{SELECT string_agg(c->>'content', ',' ORDER BY o)
         FROM jsonb_array_elements(agentcache.get_context('ret')) WITH ORDINALITY x(c, o)}),
	'new 6,new 7,new 8', 'get_context reflects the deleted turns');
is(sql(q{SELECT count(*) FROM agentcache.get_turns('ret')}), '3', 'get_turns reflects the deleted turns');
my $sweep1 = sql(q{SELECT agentcache.health()->'worker'->>'last_sweep'});
$t = wait_true($node, qq{SELECT (agentcache.health()->'worker'->>'last_sweep')::timestamptz > '$sweep1'::timestamptz});
ok(defined $t, "health() worker.last_sweep advances with retention on (was $sweep1)");
is(worker_pid(), $wpid, 'the worker did not restart while sweeping old turns');

# back to keeping everything
sql(q{ALTER SYSTEM RESET agentcache.turn_retention});
sql(q{SELECT pg_reload_conf()});
sleep 0.5;
sql(q{INSERT INTO agentcache.turns (session_id, seq, role, content, created_at)
      VALUES ('ret', 100, 'user', 'old again', now() - interval '2 hours')});
sleep 1.2;
is(sql(q{SELECT count(*) FROM agentcache.turns WHERE session_id = 'ret' AND seq = 100}), '1',
	'after RESET the worker keeps old turns');

is(worker_pid(), $wpid, 'worker survived sections c-f with one pid');
my @bad = grep { /agentcache worker/ && /exited|terminated by signal/ } split /\n/, slurp_file($node->logfile, $offset);
is(scalar(@bad), 0, 'the worker did not exit since section d') or diag join "\n", @bad;

$node->stop;
done_testing();
