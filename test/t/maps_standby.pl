# Hot standby (API.md "Replicas", "Maps", "Last clarifications"): a standby
# started from a backup, with agentcache preloaded, runs its own worker that
# loads the maps from the replicated catalog, picks up maps defined (and
# dropped) on the primary, reloads maps on their interval; get_context /
# get_turns follow replay; every table write raises 25006, while refresh_map,
# warm_session and end_session work; lookup misses count in stats().
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentcacheTest;
use Time::HiRes qw(time sleep);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentcache'
agentcache.sweep_interval = '500ms'
});
$primary->start;

sub p { return $primary->safe_psql('postgres', $_[0]); }

p(q{CREATE EXTENSION agentcache;} . instances_sql('1 second') . q{
CREATE TRIGGER integrations_refresh AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON integrations
  FOR EACH STATEMENT EXECUTE FUNCTION agentcache.refresh_trigger('instances');
SELECT agentcache.add_turn('s1', 'user', 'hello from the primary');
SELECT agentcache.add_turn('s1', 'assistant', 'hi', '{"model": "m"}');
});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
my $t_started = time;

sub sby { return $standby->safe_psql('postgres', $_[0]); }
sub catchup { $primary->wait_for_catchup($standby); }



is(sby(q{SELECT pg_is_in_recovery()}), 't', 'standby is in recovery');

# ---------------------------------------------------------------- maps loaded by the standby's worker
my $t = wait_true($standby, q{SELECT agentcache.resolve_instance('inst-1')->>'clinic' = 'clinic 2'}, $t_started);
ok(defined $t, 'standby: resolve_instance answers (map loaded by the standby worker)');
note sprintf('standby: map served %.2f s after start', $t // -1);
is( sby(q{SELECT count(*) FROM integrations i JOIN clinics c ON c.id = i.clinic_id
         WHERE agentcache.resolve_instance(i.instance)
               = jsonb_build_object('clinic_id', c.id, 'clinic', c.name, 'tenant', c.tenant, 'channel', i.channel)}),
	'1000', 'standby: all 1000 instances resolve correctly');
is( sby(q{SELECT (h->>'preloaded') || ',' || (h->'worker'->>'alive') || ',' || (h->'worker'->>'pid' IS NOT NULL)
        FROM agentcache.health() h}),
	'true,true,true', 'standby: health() preloaded, worker alive');
my $wpid = sby(q{SELECT agentcache.health()->'worker'->>'pid'});
is(sby(qq{SELECT backend_type FROM pg_stat_activity WHERE pid = $wpid}), 'agentcache worker',
	"standby: pid $wpid is the agentcache worker");

# ---------------------------------------------------------------- a map defined on the primary later
p(q{CREATE TABLE late_src (k text, v int); INSERT INTO late_src VALUES ('x', 1), ('y', 2);
    SELECT agentcache.define_map('late', 'SELECT k, to_jsonb(v) FROM late_src')});
my $t0 = time;
catchup();
$t = wait_true($standby, q{SELECT agentcache.lookup('late', 'y') = '2'}, $t0);
ok(defined $t, 'standby: map defined on the primary after the standby started is served');
note sprintf('standby: new map served %.2f s after define_map on the primary', $t // -1);
cmp_ok($t // 99, '<', 5, 'standby: new map within a few seconds');

# ---------------------------------------------------------------- refreshes reach the standby
$t0 = time;
p(q{UPDATE integrations SET channel = 'sms' WHERE instance = 'inst-7'});
is(wait_true($primary, q{SELECT agentcache.resolve_instance('inst-7')->>'channel' = 'sms'}, $t0, 5) ? 't' : 'f',
	't', 'primary: refresh_trigger reloaded the map');
catchup();
$t = wait_true($standby, q{SELECT agentcache.resolve_instance('inst-7')->>'channel' = 'sms'}, $t0);
ok(defined $t, 'standby: the change reaches the standby map');
note sprintf('standby: changed value served %.2f s after the UPDATE on the primary', $t // -1);
cmp_ok($t // 99, '<', 5, 'standby: within its refresh interval plus a sweep');

# ---------------------------------------------------------------- a map dropped on the primary
p(q{SELECT agentcache.drop_map('late')});
catchup();
$t0 = time;
my $gone;
while (time - $t0 < 10)
{
	if (sqlstate($standby, q{SELECT agentcache.lookup('late', 'y')}) eq '42704') { $gone = time - $t0; last; }
	sleep 0.1;
}
ok(defined $gone, 'standby: map dropped on the primary is dropped on the standby (42704)');
note sprintf('standby: dropped map gone after %.2f s', $gone // -1);

# ---------------------------------------------------------------- turns follow replay
catchup();
is(sby(q{SELECT string_agg(c->>'role' || ':' || (c->>'content'), '|' ORDER BY o)
       FROM jsonb_array_elements(agentcache.get_context('s1')) WITH ORDINALITY x(c, o)}),
	'user:hello from the primary|assistant:hi', 'standby: get_context returns the primary\'s turns');
is(sby(q{SELECT agentcache.get_context('s1')->1->'meta'->>'model'}), 'm', 'standby: meta replicated');
is(sby(q{SELECT agentcache.warm_session('s1')}), '2', 'standby: warm_session works');
p(q{SELECT agentcache.add_turn('s1', 'user', 'second question'); SELECT agentcache.add_turn('s1', 'tool', 'result')});
catchup();
is(sby(q{SELECT string_agg(c->>'content', '|' ORDER BY o)
       FROM jsonb_array_elements(agentcache.get_context('s1')) WITH ORDINALITY x(c, o)}),
	'hello from the primary|hi|second question|result',
	'standby: get_context after warm_session shows turns added on the primary');
is(sby(q{SELECT string_agg(seq || ':' || role, ',' ORDER BY seq) FROM agentcache.get_turns('s1')}),
	'1:user,2:assistant,3:user,4:tool', 'standby: get_turns shows turns added on the primary');
is( sby(q{SELECT agentcache.get_context('s1') = (SELECT jsonb_agg(jsonb_build_object('seq', seq, 'role', role,
                 'content', content, 'at', to_jsonb(created_at))
                 || CASE WHEN meta IS NULL THEN '{}' ELSE jsonb_build_object('meta', meta) END ORDER BY seq)
               FROM agentcache.turns WHERE session_id = 's1')}),
	't', 'standby: get_context equals the replicated table');
p(q{DELETE FROM agentcache.turns WHERE session_id = 's1' AND seq = 2});
p(q{SELECT agentcache.add_turn('s2', 'user', 'other session')});
catchup();
is(sby(q{SELECT string_agg(seq::text, ',' ORDER BY seq) FROM agentcache.get_turns('s1')}),
	'1,3,4', 'standby: a DELETE on the primary is reflected');
is(sby(q{SELECT agentcache.get_context('s2')->0->>'content'}), 'other session', 'standby: new session visible');
is(sby(q{SELECT agentcache.end_session('s1')}), 't', 'standby: end_session works (session was cached)');
is(sby(q{SELECT jsonb_array_length(agentcache.get_context('s1'))}), '3', 'standby: get_context after end_session');

# ---------------------------------------------------------------- refresh_map and stats on the standby
is(sby(q{SELECT agentcache.refresh_map('instances')}), '1000', 'standby: refresh_map works');
my $misses = sby(q{SELECT misses FROM agentcache.stats() WHERE tier = 'map' AND name = 'instances'});
like($misses, qr/^\d+$/, "standby: stats() has a row for map instances (misses $misses)");
is(sby(q{SELECT count(*) FROM generate_series(1, 3) i WHERE agentcache.resolve_instance('no-such-' || i) IS NULL}),
	'3', 'standby: unknown instances give NULL');
is(sby(q{SELECT misses FROM agentcache.stats() WHERE tier = 'map' AND name = 'instances'}), $misses + 3,
	'standby: lookup misses count in stats()');

# ---------------------------------------------------------------- the standby worker logs no errors
is(sby(q{SELECT agentcache.health()->'worker'->>'pid'}), $wpid, 'standby: worker never restarted (same pid)');
my @bad = grep { /\b(ERROR|WARNING|FATAL|PANIC):/ && !/maps_standby\.pl/ && !/database system is (starting up|not yet accepting)/ }
  split /\n/, slurp_file($standby->logfile);
is(scalar(@bad), 0, 'standby log: no ERROR/WARNING from the worker') or diag join "\n", @bad;
my @exits = grep { /agentcache worker.*(exited|terminated)/ } split /\n/, slurp_file($standby->logfile);
is(scalar(@exits), 0, 'standby log: the worker never exited') or diag join "\n", @exits;

# ---------------------------------------------------------------- writes raise 25006
is(sqlstate($standby, q{SELECT agentcache.add_turn('s1', 'user', 'x')}), '25006', 'standby: add_turn raises 25006');
is(sqlstate($standby, q{SELECT agentcache.define_map('m2', 'SELECT ''a''::text, ''1''::jsonb')}), '25006',
	'standby: define_map raises 25006');
is(sqlstate($standby, q{SELECT agentcache.drop_map('instances')}), '25006', 'standby: drop_map raises 25006');
is(sqlstate($standby, q{SELECT agentcache.forget_session('s1')}), '25006', 'standby: forget_session raises 25006');
is(sqlstate($standby, q{SELECT agentcache.drop_map('no-such-map')}), '25006', 'standby: drop_map of an unknown map: 25006');
is(sby(q{SELECT agentcache.resolve_instance('inst-1')->>'clinic'}), 'clinic 2', 'standby: maps intact after the failed writes');
is(sby(q{SELECT count(*) FROM agentcache.get_turns('s1')}), '3', 'standby: turns intact after the failed writes');

$standby->stop;
$primary->stop;
done_testing();
