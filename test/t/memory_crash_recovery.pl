# Crash recovery of the conversation-memory tier (API.md section 1 and
# "More precise semantics": after a crash new turns' seq are greater than every
# existing one of their session).
#
# Several backends commit turns in a loop, each turn committed together with a
# row in a log table; one of them is killed with SIGKILL mid-traffic, so the
# postmaster reinitialises shared memory. Afterwards every committed turn (and
# nothing else) must be returned, the cache must start empty, and new turns
# must continue the sequence.
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
restart_after_crash = on
agentcache.session_memory = '8MB'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE EXTENSION agentcache;
CREATE TABLE turn_log (session_id text, seq bigint, PRIMARY KEY (session_id, seq));
-- one turn per transaction; the log row commits atomically with its turn
CREATE PROCEDURE traffic(sid text, n int) LANGUAGE plpgsql AS $$
DECLARE s bigint;
BEGIN
  FOR i IN 1..n LOOP
    s := agentcache.add_turn(sid, CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END,
                             format('%s turn %s %s', sid, i, repeat('x', i % 50)),
                             CASE WHEN i % 3 = 0 THEN jsonb_build_object('i', i) END);
    INSERT INTO turn_log VALUES (sid, s);
    COMMIT;
  END LOOP;
END $$;
});
sql(expected_context_sql());

my $used_empty = sql(q{SELECT agentcache.health()->'session_memory'->>'used'});

# an idle session, cached before the crash, and the two traffic sessions
# cached from their first turn on (commits are applied to cached copies)
sql(q{CALL traffic('crash-idle', 40)});
sql(q{CALL traffic('crash-a', 1)});
sql(q{CALL traffic('crash-b', 1)});
is(sql(q{SELECT agentcache.warm_session('crash-idle') || ',' || agentcache.warm_session('crash-a')
                || ',' || agentcache.warm_session('crash-b')}),
	'30,1,1', 'sessions cached before traffic');

# crash-a gets two concurrent writers, crash-b one
my @bg;
my @pids;
for my $sid ('crash-a', 'crash-b', 'crash-a')
{
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	push @pids, $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_until(qr/started/, "\\echo started\nCALL traffic('$sid', 100000000);\n");
	push @bg, $bg;
}

ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) FILTER (WHERE session_id = 'crash-a') >= 300
		                AND count(*) FILTER (WHERE session_id = 'crash-b') >= 150 FROM turn_log}),
	'traffic is committing turns');

my ($used_before) = sql(q{SELECT agentcache.health()->'session_memory'->>'used'});
cmp_ok($used_before, '>', 0, 'session memory in use before the crash');
is(sql(q{SELECT agentcache.get_context('crash-idle') = expected_context('crash-idle', 30)}),
	't', 'idle session: cache agrees with the table before the crash');
# crash-a is being written to: take its context first, then check (with a
# later snapshot) that it is 30 committed turns, strictly increasing
is( sql(q{CREATE TEMP TABLE c AS SELECT e, o FROM jsonb_array_elements(agentcache.get_context('crash-a'))
                                                 WITH ORDINALITY x(e, o);
          SELECT count(*) = 30
                 AND bool_and(EXISTS (SELECT FROM agentcache.turns t
                                      WHERE t.session_id = 'crash-a' AND t.seq = (c.e->>'seq')::bigint
                                        AND t.content = c.e->>'content' AND to_jsonb(t.created_at) = c.e->'at'))
                 AND array_agg((e->>'seq')::bigint ORDER BY o)
                     = array_agg((e->>'seq')::bigint ORDER BY (e->>'seq')::bigint)
                 AND count(DISTINCT e->>'seq') = 30
          FROM c}),
	't', 'busy session: cached context is 30 committed turns in seq order');

# kill the first traffic backend mid-loop
my $log_offset = -s $node->logfile;
ok(kill('KILL', $pids[0]), "SIGKILL to traffic backend $pids[0]");
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
ok($node->poll_query_until('postgres', 'SELECT true'), 'server accepts connections again');

for my $bg (@bg)
{
	$bg->{run}->pump_nb();
	eval { $bg->{run}->finish; };
}
like($bg[0]->{stderr}, qr/server closed the connection|terminat|connection to server was lost/,
	'traffic was still running when it was killed');

# shared memory was reinitialised: nothing cached yet
my ($sessions, $used_after) =
  split /\|/, sql(q{SELECT h->'session_memory'->>'sessions', h->'session_memory'->>'used'
                    FROM agentcache.health() h});
is($sessions, '0', 'no session cached after the crash');
note "session_memory used: empty $used_empty, before the crash $used_before, after $used_after";
is($used_after, $used_empty, 'session memory used is back to its empty size');
is(sql(q{SELECT entries FROM agentcache.stats() WHERE tier = 'session'}), '0', 'stats: 0 sessions');

# every committed turn is there, and nothing else (the log commits with its turn)
is( sql(q{SELECT count(*) FROM turn_log l FULL JOIN agentcache.turns t USING (session_id, seq)
          WHERE l.seq IS NULL OR t.seq IS NULL}),
	'0', 'agentcache.turns holds exactly the committed turns');
my ($na, $nb) = split /\|/, sql(q{SELECT count(*) FILTER (WHERE session_id = 'crash-a'),
                                        count(*) FILTER (WHERE session_id = 'crash-b') FROM turn_log});
note "committed turns before the crash: crash-a $na, crash-b $nb";

for my $sid ('crash-a', 'crash-b', 'crash-idle')
{
	is( sql(qq{SELECT (SELECT array_agg(seq ORDER BY o)
	                    FROM agentcache.get_turns('$sid', 1000000) WITH ORDINALITY g(seq, r, c, m, at, tk, o))
	               = (SELECT array_agg(seq ORDER BY seq) FROM turn_log WHERE session_id = '$sid')}),
		't', "$sid: get_turns returns every committed turn, oldest first");
	is(sql(qq{SELECT agentcache.get_context('$sid') = expected_context('$sid', 30)}),
		't', "$sid: get_context (loaded after the crash) equals the table's newest turns");
	is(sql(qq{SELECT agentcache.get_context('$sid') = expected_context('$sid', 30)}),
		't', "$sid: get_context (cached) equals the table's newest turns");
	is(sql(qq{SELECT agentcache.get_context('$sid', 7) = expected_context('$sid', 7)}),
		't', "$sid: get_context(max_turns 7) equals the table's newest 7");
	is( sql(qq{SELECT jsonb_agg(to_jsonb(g) - 'o' ORDER BY o)
	           = (SELECT jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content,
	                                                  'meta', meta, 'created_at', created_at,
	                                                  'tokens', agentcache.token_count(content)) ORDER BY seq)
	              FROM (SELECT * FROM agentcache.turns WHERE session_id = '$sid'
	                    ORDER BY seq DESC LIMIT 30) t)
	           FROM agentcache.get_turns('$sid') WITH ORDINALITY g(seq, role, content, meta, created_at, tokens, o)}),
		't', "$sid: get_turns (cached) equals the table's newest turns");
}

is(sql(q{SELECT agentcache.health()->'session_memory'->>'sessions'}),
	'3', 'only the sessions read after the crash are cached');

# new turns continue each session's sequence, and reach the cache
for my $sid ('crash-a', 'crash-b', 'crash-idle')
{
	my $max = sql(qq{SELECT max(seq) FROM agentcache.turns WHERE session_id = '$sid'});
	my $seq = sql(qq{SELECT agentcache.add_turn('$sid', 'user', 'after the crash')});
	cmp_ok($seq, '>', $max, "$sid: new seq $seq > every existing seq ($max)");
	is( sql(qq{SELECT (c->-1->>'seq') || ':' || (c->-1->>'content') || ':'
	                  || (c = expected_context('$sid', 30))::text
	           FROM agentcache.get_context('$sid') c}),
		"$seq:after the crash:true", "$sid: get_context shows the new turn");
}

$node->stop;
done_testing();
