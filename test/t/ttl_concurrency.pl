# Production-like concurrency (API.md 0.2.0, "Concurrency and background
# activity"), each run with pgbench as the issue reproduced it on 0.1.0:
#  a. put/add_turn/get/inbound/outbound from 6 clients while another session
#     runs ANALYZE and GRANT on agentcache's tables every 50 ms — 0.1.0 aborted
#     clients with "XX000: could not open relation with OID 0";
#  b. 4 clients each putting the same 10 keys 200 times in one statement —
#     0.1.0 deadlocked in nearly every run (plain INSERT … ON CONFLICT: never);
#  c. autocommit puts under max_entries eviction — 0.1.0: ~10 deadlocks in 10 s;
#  d. clear and invalidate_tag beside puts of the same rows — 0.1.0 deadlocked;
#  e. the application's plain INSERT of a new key racing a put of that key:
#     the put never fails (0.1.0's direct insert raised 23505).
# Every client error fails the test; each part also checks the table after.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentcacheTest;

my $seconds = $ENV{AGENTCACHE_TAP_SECONDS} // 5;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentcache'
agentcache.database = 'postgres'
max_connections = 40
deadlock_timeout = '100ms'
log_lock_waits = on
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION agentcache;
CREATE ROLE inval_reader NOLOGIN;
});

# Runs the workload scripts and, beside them, the chaos scripts; returns
# (transactions, errors) of the workload and the chaos.
sub run_beside
{
	my ($work, $clients, $chaos) = @_;
	my $w = pgbench_start($node, 'postgres', clients => $clients, seconds => $seconds, scripts => $work);
	my $c = $chaos ? pgbench_start($node, 'postgres', clients => 1, seconds => $seconds, scripts => $chaos) : undef;
	my ($done, @errors) = pgbench_finish($w);
	my ($cdone, @cerrors) = $c ? pgbench_finish($c) : (0);
	return ($done, \@errors, $cdone, \@cerrors);
}

sub no_errors
{
	my ($errors, $name) = @_;
	is(scalar(@$errors), 0, $name) or diag(join("\n", @$errors[0 .. ($#$errors < 9 ? $#$errors : 9)]));
}

# ---------------------------------------------------------------- a. invalidations mid-call
{
	my ($done, $errors, $cdone, $cerrors) = run_beside(
		[
			[ 'a_turn', q{\set s random(1, 20)
SELECT agentcache.add_turn('inv-' || :s, 'user', 'hello ' || :s);
SELECT agentcache.get_context('inv-' || :s);
} ],
			[ 'a_put', q{\set k random(1, 50)
SELECT agentcache.put('inv', 'k' || :k, to_jsonb(:k));
SELECT agentcache.get('inv', 'k' || :k);
SELECT agentcache.fetch('inv', 'f' || :k, 'SELECT 1', '1 second');
} ],
			[ 'a_inbound', q{\set m random(1, 1000000000000000)
SELECT agentcache.inbound('none', 'inv-m-' || :m, 'inv-in-' || (:m % 10), 'hi');
SELECT agentcache.outbound('inv-m-' || :m, 'inv-in-' || (:m % 10), 'reply');
} ],
		],
		6,
		[
			[ 'a_chaos', q{ANALYZE agentcache.turns;
ANALYZE agentcache.entries;
GRANT SELECT ON agentcache.entries, agentcache.turns TO inval_reader;
REVOKE SELECT ON agentcache.entries, agentcache.turns FROM inval_reader;
ANALYZE agentcache.dedup;
SELECT pg_sleep(0.05);
} ],
		]);
	ok($done > 100, "a: workload ran ($done transactions beside $cdone rounds of ANALYZE/GRANT)");
	no_errors($errors, 'a: no call failed under ANALYZE/GRANT invalidations');
	no_errors($cerrors, 'a: the ANALYZE/GRANT session ran throughout');
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT session_id, seq, count(*) OVER (PARTITION BY session_id, seq) AS n
                        FROM agentcache.turns WHERE session_id LIKE 'inv-%') t WHERE n > 1}),
		'0', 'a: no duplicate seq');
}

# ---------------------------------------------------------------- b. same keys, same order
{
	my ($done, $errors) = run_beside(
		[ [ 'b_put', q{SELECT count(agentcache.put('same', 'k' || (g % 10), to_jsonb(g))) FROM generate_series(1, 200) g;
} ] ],
		4);
	ok($done > 4, "b: $done statements of 200 puts each");
	no_errors($errors, 'b: puts of the same keys in the same order never deadlock');
	is($node->safe_psql('postgres', q{SELECT count(*) FROM agentcache.entries WHERE namespace = 'same'}),
		'10', 'b: ten keys');
}

# ---------------------------------------------------------------- c. eviction
{
	$node->safe_psql('postgres', q{SELECT agentcache.configure_namespace('evict', '1 hour', 20)});
	my ($done, $errors) = run_beside(
		[ [ 'c_put', q{\set k random(1, 1000)
SELECT agentcache.put('evict', 'k' || :k, to_jsonb(:k));
} ] ],
		4);
	ok($done > 100, "c: $done autocommit puts under max_entries");
	no_errors($errors, 'c: eviction never deadlocks concurrent puts');
	# the worker trims what concurrent writers overshoot; right after, at most
	# one per writer beyond the limit
	cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM agentcache.entries WHERE namespace = 'evict'}),
		'<=', 24, 'c: the namespace stays near max_entries');
}

# ---------------------------------------------------------------- d. clear / invalidate_tag beside put
{
	my ($done, $errors) = run_beside(
		[
			[ 'd_put', q{\set k random(1, 40)
SELECT agentcache.put(CASE WHEN :k % 2 = 0 THEN 'da' ELSE 'db' END, 'k' || :k, to_jsonb(:k), NULL,
                      ARRAY['t' || (:k % 3), 'all']);
}, 4 ],
			[ 'd_clear', q{\set n random(0, 1)
SELECT agentcache.clear(CASE WHEN :n = 0 THEN 'da' ELSE 'db' END);
} ],
			[ 'd_tag', q{\set t random(0, 3)
SELECT agentcache.invalidate_tag(CASE WHEN :t = 3 THEN 'all' ELSE 't' || :t END);
} ],
		],
		4);
	ok($done > 100, "d: $done puts, clears and tag invalidations");
	no_errors($errors, 'd: clear, invalidate_tag and put never deadlock');
}

# ---------------------------------------------------------------- e. plain INSERT racing put
{
	my ($done, $errors) = run_beside(
		[
			[ 'e_put', q{\set k random(1, 100000)
SELECT agentcache.put('race', 'k' || :k, to_jsonb(:k));
} ],
			[ 'e_insert', q{\set k random(1, 100000)
DO $$ BEGIN
  INSERT INTO agentcache.entries (namespace, key, value) VALUES ('race', 'k' || :k, '"app"');
EXCEPTION WHEN unique_violation THEN NULL;
END $$;
} ],
		],
		6);
	ok($done > 100, "e: $done puts and plain INSERTs of the same new keys");
	no_errors($errors, 'e: a put racing a plain INSERT of its key never fails');
}

ok($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'agentcache worker'}) eq '1',
	'the worker is still running');
my $log = slurp_file($node->logfile);
my @bad = grep { /deadlock detected|XX000|could not open relation|PANIC|server process .* was terminated/ } split /\n/, $log;
is(scalar(@bad), 0, 'the server log has no deadlock, XX000 or crash') or diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));

$node->stop;
done_testing();
