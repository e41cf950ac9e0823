# Message deduplication across backend death, crashes, restarts and sweeps
# (API.md section 3, "Precise semantics" Dedup, "More precise semantics"):
#  a. a holder terminated with pg_terminate_backend frees its claim at once:
#     the next dedup_begin elsewhere is 'acquired' with attempts 2 (we poll
#     only for the backend to be gone, never for a TTL);
#  b. a holder killed with SIGKILL (the whole cluster reinitialises): the row
#     still shows 'processing' with the dead holder's pid, and the next
#     dedup_begin acquires with attempts 2;
#  c. a crash right after an outbound COMMIT returned: the message stays a
#     duplicate and the assistant turn is in get_context (logged tables); the
#     re-delivered webhook's inbound returns the stored reply until
#     reply_sent marks it sent (API.md 0.2.0, "Replies delivered once");
#  d. a clean restart keeps completed rows as duplicates;
#  e. the worker deletes rows past their window (sweep_interval 500ms,
#     within '1 second'); dedup_state shows nothing once the window passed;
#     stats() dedup expirations grows; a swept message starts at attempts 1;
#  f. an application holding pg_advisory_lock on thousands of bigint keys
#     and int pairs -- including the exact key values of the claims' lock
#     tags -- changes no dedup_begin result, and its locks are not blocked by
#     the claims.
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
restart_after_crash = on
agentcache.sweep_interval = '500ms'
max_locks_per_transaction = 1024
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }


# "state|holder_pid|attempts" of a message ('' when dedup_state has no row)
sub dstate
{
	return sql(qq{SELECT state || '|' || coalesce(holder_pid::text, '') || '|' || attempts
	              FROM agentcache.dedup_state('$_[0]')});
}

# hits|misses|stale_hits|expirations|entries of the dedup tier
sub dstats
{
	return sql(q{SELECT hits || '|' || misses || '|' || stale_hits || '|' || expirations || '|' || entries
	             FROM agentcache.stats() WHERE tier = 'dedup'});
}

# kills backend $pid with SIGKILL and waits until the cluster accepts
# connections again
sub crash
{
	my ($pid, $what) = @_;
	my $offset = -s $node->logfile;
	ok(kill('KILL', $pid), "$what: SIGKILL to backend $pid");
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	ok($node->poll_query_until('postgres', 'SELECT true'), "$what: server accepts connections after the crash");
}

sql(q{CREATE EXTENSION agentcache});

# ---------------------------------------------------------------- a. pg_terminate_backend
{
	my $holder = $node->background_psql('postgres', on_error_stop => 0);
	my $hpid = $holder->query_safe('SELECT pg_backend_pid()');
	is($holder->query_safe(q{SELECT agentcache.dedup_begin('term-a')}), 'acquired', 'a: holder acquires');
	is(sql(q{SELECT agentcache.dedup_begin('term-a')}), 'in_progress', 'a: another session gets in_progress');
	is(dstate('term-a'), "processing|$hpid|1", 'a: processing, holder pid, attempts 1');
	is(sql("SELECT pg_terminate_backend($hpid)"), 't', 'a: holder terminated');
	ok(defined wait_true($node, "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $hpid)"),
		'a: the holder backend is gone');
	eval { $holder->{run}->finish; };
	is(dstate('term-a'), "processing|$hpid|1", 'a: the row shows processing with the dead pid until reclaimed');
	my $t0 = time;
	is(sql(q{SELECT agentcache.dedup_begin('term-a')}), 'acquired', 'a: next dedup_begin acquires at once');
	my $dt = time - $t0;
	note sprintf('a: acquired %.3f s after the backend was gone', $dt);
	cmp_ok($dt, '<', 2, 'a: no waiting for any timeout');
	like(dstate('term-a'), qr/^processing\|\d+\|2$/, 'a: attempts 2');
	isnt((split /\|/, dstate('term-a'))[1], $hpid, 'a: holder_pid is no longer the dead backend');

	# inbound: a retry after a dead holder does not add the body again
	my $h2 = $node->background_psql('postgres', on_error_stop => 0);
	my $pid2 = $h2->query_safe('SELECT pg_backend_pid()');
	is($h2->query_safe(q{SELECT agentcache.inbound('wa', 'term-in', 'sa', 'hello')->>'dedup'}), 'acquired',
		'a: inbound acquires (user turn added)');
	sql("SELECT pg_terminate_backend($pid2)");
	ok(defined wait_true($node, "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid2)"),
		'a: inbound holder gone');
	eval { $h2->{run}->finish; };
	is(sql(q{SELECT r->>'dedup' || ' ' || jsonb_array_length(r->'context')
	         FROM agentcache.inbound('wa', 'term-in', 'sa', 'hello') r}),
		'acquired 1', 'a: inbound retry after the dead holder acquires and does not add the body again');
	like(dstate('term-in'), qr/^processing\|\d+\|2$/, 'a: inbound retry has attempts 2');
}

# ---------------------------------------------------------------- b. SIGKILL of the holder
{
	my $holder = $node->background_psql('postgres', on_error_stop => 0);
	my $hpid = $holder->query_safe('SELECT pg_backend_pid()');
	is($holder->query_safe(q{SELECT agentcache.dedup_begin('kill-b')}), 'acquired', 'b: holder acquires');
	is(dstate('kill-b'), "processing|$hpid|1", 'b: processing with the holder pid before the crash');
	crash($hpid, 'b');
	eval { $holder->{run}->finish; };
	is(dstate('kill-b'), "processing|$hpid|1", 'b: after recovery dedup_state still shows the dead holder');
	is(sql(q{SELECT agentcache.dedup_begin('kill-b')}), 'acquired', 'b: after recovery dedup_begin acquires');
	like(dstate('kill-b'), qr/^processing\|\d+\|2$/, 'b: attempts 2');
}

# ---------------------------------------------------------------- c. crash right after an outbound COMMIT
{
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	is($s->query_safe(q{SELECT agentcache.inbound('wa', 'crash-c', 'sc', 'question')->>'dedup'}), 'acquired',
		'c: inbound acquires');
	$s->query_safe(q{BEGIN});
	like($s->query_safe(q{SELECT agentcache.outbound('crash-c', 'sc', 'answer', '{"m": 1}')}), qr/^\d+$/,
		'c: outbound');
	$s->query_safe(q{COMMIT});
	crash($pid, 'c');
	eval { $s->{run}->finish; };
	is(sql(q{SELECT agentcache.dedup_begin('crash-c')}), 'duplicate', 'c: after the crash the message is a duplicate');
	is(sql(q{SELECT agentcache.inbound('wa', 'crash-c', 'sc', 'question')->>'dedup'}), 'duplicate',
		'c: inbound of it too');
	is(sql(q{SELECT string_agg(e->>'role' || ':' || (e->>'content'), ' ' ORDER BY n)
	         FROM jsonb_array_elements(agentcache.get_context('sc')) WITH ORDINALITY x(e, n)}),
		'user:question assistant:answer', 'c: get_context ends with the assistant turn');
	is(sql(q{SELECT agentcache.get_context('sc')->-1->>'meta'}), '{"m": 1}', 'c: with its meta');
	is(dstate('crash-c'), 'completed||1', 'c: dedup_state completed, no holder, attempts 1');
	# the reply outbox survived the crash: the re-delivered webhook gets the
	# stored reply to send, until it is marked sent
	is(sql(q{SELECT r->'reply'->>'role' || ':' || (r->'reply'->>'content') || ' ' || (r->'reply'->>'meta')
	         FROM agentcache.inbound('wa', 'crash-c', 'sc', 'question') r}),
		'assistant:answer {"m": 1}', 'c: the re-delivered inbound returns the unsent reply');
	is(sql(q{SELECT reply_seq IS NOT NULL AND NOT reply_sent FROM agentcache.dedup_state('crash-c')}), 't',
		'c: dedup_state shows the reply pending');
	is(sql(q{SELECT message_id FROM agentcache.pending_replies('0 s')}), 'crash-c', 'c: pending_replies lists it');
	is(sql(q{SELECT agentcache.reply_sent('crash-c')}), 't', 'c: reply_sent');
	is(sql(q{SELECT (r ? 'reply') || ' ' || coalesce(r->>'reply', 'null')
	         FROM agentcache.inbound('wa', 'crash-c', 'sc', 'question') r}),
		'true null', 'c: after reply_sent the next duplicate has "reply": null');
	is(sql(q{SELECT count(*) FROM agentcache.pending_replies('0 s')}), '0', 'c: nothing pending');
}

# ---------------------------------------------------------------- d. clean restart
{
	sql(q{SELECT agentcache.dedup_begin('restart-d'); SELECT agentcache.dedup_complete('restart-d')});
	sql(q{SELECT agentcache.dedup_begin('restart-fp1', 'conv', 'body');
	      SELECT agentcache.dedup_complete('restart-fp1')});
	$node->restart;
	is(sql(q{SELECT agentcache.dedup_begin('restart-d')}), 'duplicate', 'd: completed row is a duplicate after a restart');
	is(sql(q{SELECT agentcache.dedup_begin('restart-fp2', 'conv', 'body')}), 'duplicate',
		'd: fingerprint duplicate after a restart');
	is(sql(q{SELECT agentcache.dedup_begin('crash-c')}), 'duplicate', 'd: the crash-c message still a duplicate');
	is(dstate('restart-d'), 'completed||1', 'd: dedup_state completed');
	is(sql(q{SELECT count(*) FROM agentcache.dedup WHERE message_id = 'restart-fp2'}), '0',
		'd: the fingerprint duplicate created no row');
}

# ---------------------------------------------------------------- e. sweep past the window
{
	my $exp0 = (split /\|/, dstats())[3];
	my $t0 = time;
	like(sql(q{SELECT agentcache.dedup_begin('sweep-e', NULL, NULL, '1 second');
	         SELECT agentcache.dedup_complete('sweep-e')}), qr/^acquired\s*$/, 'e: acquired and completed');
	my $tc = time;
	my $st = dstate('sweep-e');
	my $el = time - $tc;
	if ($el < 0.9) { is($st, 'completed||1', 'e: completed inside its window'); }
	else { note sprintf('e: inside-window check skipped (%.2f s)', $el); }
	# the window has passed: dedup_state shows nothing whether or not the sweep ran
	sleep(1.05 - (time - $tc)) if time - $tc < 1.05;
	is(dstate('sweep-e'), '', 'e: dedup_state shows nothing once the window has passed');
	my $t = wait_true($node, q{SELECT NOT EXISTS (SELECT FROM agentcache.dedup WHERE message_id = 'sweep-e')}, $tc);
	ok(defined $t, 'e: the row left agentcache.dedup');
	note sprintf('e: row gone %.2f s after completion (window 1 s, sweep 500 ms)', $t // -1);
	cmp_ok($t // 99, '<', 5, 'e: within a few seconds');
	my $exp1 = (split /\|/, dstats())[3];
	cmp_ok($exp1, '>=', $exp0 + 1, "e: stats dedup expirations grew ($exp0 -> $exp1)");
	is(sql(q{SELECT agentcache.dedup_begin('sweep-e')}), 'acquired', 'e: after the sweep the message acquires again');
	like(dstate('sweep-e'), qr/^processing\|\d+\|1$/, 'e: a swept message starts again at attempts 1');
	is(dstate('restart-d'), 'completed||1', 'e: rows inside their window (10min GUC) are kept');
}

# ---------------------------------------------------------------- f. application advisory locks
{
	my @ids = map { "adv-$_" } 1 .. 40;
	my $idlist = join(',', map { "'$_'" } @ids);

	# scenario: A acquires every id, B gets in_progress, A completes, B gets
	# duplicate; returns the concatenated answers
	my $run = sub {
		my ($tag) = @_;
		my $sa = $node->background_psql('postgres', on_error_stop => 0);
		my $sb = $node->background_psql('postgres', on_error_stop => 0);
		my @r;
		push @r, $sa->query_safe(qq{SELECT string_agg(agentcache.dedup_begin(id || '$tag'), ',' ORDER BY o)
		                           FROM unnest(ARRAY[$idlist]) WITH ORDINALITY u(id, o)});
		push @r, $sb->query_safe(qq{SELECT string_agg(agentcache.dedup_begin(id || '$tag'), ',' ORDER BY o)
		                           FROM unnest(ARRAY[$idlist]) WITH ORDINALITY u(id, o)});
		push @r, $sa->query_safe(qq{SELECT string_agg(agentcache.dedup_begin(id || '$tag'), ',' ORDER BY o)
		                           FROM unnest(ARRAY[$idlist]) WITH ORDINALITY u(id, o)});
		$sa->query_safe(qq{SELECT agentcache.dedup_complete(id || '$tag') FROM unnest(ARRAY[$idlist]) id});
		push @r, $sb->query_safe(qq{SELECT string_agg(agentcache.dedup_begin(id || '$tag'), ',' ORDER BY o)
		                           FROM unnest(ARRAY[$idlist]) WITH ORDINALITY u(id, o)});
		$sa->quit;
		$sb->quit;
		return join(' / ', map { my %c; $c{$_}++ for split /,/; join(',', map { "$_=$c{$_}" } sort keys %c) } @r);
	};

	my $without = $run->('-x');
	is($without, 'acquired=40 / in_progress=40 / acquired=40 / duplicate=40', 'f: results without app locks');

	# the claims' lock tags of the ids (objsubid is the int2 view of 0xAC06)
	my $probe = $node->background_psql('postgres', on_error_stop => 0);
	my $ppid = $probe->query_safe('SELECT pg_backend_pid()');
	$probe->query_safe(qq{SELECT agentcache.dedup_begin(id || '-y') FROM unnest(ARRAY[$idlist]) id});
	my $tags = sql(qq{SELECT string_agg(classid::bigint || ':' || objid::bigint, ',')
	                  FROM pg_locks WHERE pid = $ppid AND locktype = 'advisory' AND objsubid = -21498});
	my @tags = map { [ split /:/ ] } split /,/, $tags;
	is(scalar(@tags), 40, 'f: 40 claim lock tags seen in pg_locks');
	$probe->quit;
	ok(defined wait_true($node, "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $ppid)"), 'f: probe gone');
	sql(qq{SELECT agentcache.dedup_release(id || '-y') FROM unnest(ARRAY[$idlist]) id});

	# the application: 3000 bigint keys and 3000 int pairs, including the exact
	# (classid, objid) of every claim tag as a bigint key and as an int pair
	my $app = $node->background_psql('postgres', on_error_stop => 0);
	my $apid = $app->query_safe('SELECT pg_backend_pid()');
	# (classid, objid) are oids; as a bigint key: high 32 bits = classid,
	# low = objid; as an int pair: both as signed int4
	my $vals = join(',', map { "($_->[0], $_->[1])" } @tags);
	sql(qq{CREATE TABLE claim_keys AS
	       SELECT x, y, ((CASE WHEN x >= 2147483648 THEN x - 4294967296 ELSE x END) << 32) | y AS k,
	              (CASE WHEN x >= 2147483648 THEN x - 4294967296 ELSE x END)::int AS a,
	              (CASE WHEN y >= 2147483648 THEN y - 4294967296 ELSE y END)::int AS b
	       FROM (VALUES $vals) v(x, y)});
	is($app->query_safe(q{
		SELECT count(*) FILTER (WHERE pg_try_advisory_lock(k))
		FROM (SELECT k FROM claim_keys UNION SELECT g FROM generate_series(1, 3000 - 40) g) s}), '3000',
		'f: app holds 3000 bigint advisory locks (the claims\' key values among them)');
	is($app->query_safe(q{
		SELECT count(*) FILTER (WHERE pg_try_advisory_lock(a, b))
		FROM (SELECT a, b FROM claim_keys UNION SELECT g, -g FROM generate_series(1, 3000 - 40) g) s}), '3000',
		'f: app holds 3000 int-pair advisory locks (the claims\' tag values among them)');
	is(sql(qq{SELECT count(*) FROM pg_locks WHERE pid = $apid AND locktype = 'advisory' AND granted}), '6000',
		'f: 6000 application advisory locks granted');
	is(sql(q{SELECT count(*) FROM pg_locks l JOIN claim_keys c
	           ON l.classid::bigint = c.x AND l.objid::bigint = c.y
	         WHERE l.locktype = 'advisory' AND l.objsubid IN (1, 2)}), '80',
		'f: the app locks cover every claim tag value, as bigint and as int pair');

	my $with = $run->('-y');
	is($with, $without, 'f: the same dedup_begin results with the app locks held');

	# and the other way: a claim held on each id does not block the app's locks
	my $h = $node->background_psql('postgres', on_error_stop => 0);
	$h->query_safe(qq{SELECT agentcache.dedup_begin(id || '-z') FROM unnest(ARRAY[$idlist]) id});
	is($app->query_safe(q{SELECT pg_advisory_unlock_all()}), '', 'f: app releases its locks');
	is($app->query_safe(q{SELECT count(*) FILTER (WHERE pg_try_advisory_lock(k)) FROM claim_keys}), '40',
		'f: app locks the claims\' key values (bigint) while the claims are held');
	is($app->query_safe(q{SELECT count(*) FILTER (WHERE pg_try_advisory_lock(a, b)) FROM claim_keys}), '40',
		'f: and as int pairs');
	is(sql(qq{SELECT string_agg(DISTINCT agentcache.dedup_begin(id || '-z'), ',') FROM unnest(ARRAY[$idlist]) id}),
		'in_progress', 'f: the claims still answer in_progress');
	$h->quit;
	$app->quit;
}

$node->stop;
done_testing();
