# Claim leases with fencing, across real backends (API.md 0.2.0, "Claim
# leases with fencing"): a holder that sleeps past its lease (a hung LLM
# call) while another backend takes the message over and completes it:
#  - the other backend acquires once the lease has run out (attempts 2),
#    although the sleeping holder still holds the claim's lock;
#  - its outbound completes the message with its reply;
#  - the holder, awake, is fenced: its outbound raises 55000 and adds no turn,
#    and its lock is given back then;
#  - the re-delivered webhook is a duplicate with the new holder's reply.
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
agentcache.claim_lease = '1s'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{CREATE EXTENSION agentcache});

# claims (locks in agentcache's claim space) held by backend $pid
sub claims_of
{
	return sql(qq{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = -21498
	              AND pid = $_[0] AND granted});
}

my $holder = $node->background_psql('postgres', on_error_stop => 0);
my $hpid = $holder->query_safe('SELECT pg_backend_pid()');
is($holder->query_safe(q{SELECT agentcache.inbound('wa', 'lease-1', 'ls', 'please book')->>'dedup'}),
	'acquired', 'holder: inbound acquires');
is(claims_of($hpid), '1', 'holder: holds the claim lock');
is(sql(q{SELECT agentcache.inbound('wa', 'lease-1', 'ls', 'please book')->>'dedup'}), 'in_progress',
	'another backend inside the lease: in_progress');

# the holder's LLM call hangs past its lease
$holder->query_until(qr/sleeping/, q{\echo sleeping
SELECT pg_sleep(3);
});
ok(defined wait_true($node, q{SELECT lease_expires_at < now() FROM agentcache.dedup_state('lease-1')}),
	'the lease runs out');
my $t = $node->background_psql('postgres', on_error_stop => 0);
is($t->query_safe(q{SELECT r->>'dedup' || ' ' || jsonb_array_length(r->'context')
                    FROM agentcache.inbound('wa', 'lease-1', 'ls', 'please book') r}),
	'acquired 1', 'taker: acquires after the lease, without adding the user turn again');
is(sql(q{SELECT attempts FROM agentcache.dedup_state('lease-1')}), '2', 'attempts 2');
is(claims_of($hpid), '1', 'the sleeping holder still holds the lock: it does not block the taker');
like($t->query_safe(q{SELECT agentcache.outbound('lease-1', 'ls', 'booked for Thursday')}), qr/^\d+$/,
	'taker: outbound completes the message');

# the holder wakes up and tries to answer
$holder->query_safe(q{SELECT 1});  # the pg_sleep finished
my ($out, $err) = ('', '');
$out = $holder->query(q{SELECT agentcache.outbound('lease-1', 'ls', 'late answer')});
like($holder->{stderr}, qr/no longer holds the claim/, 'holder: its outbound is fenced (55000)');
is(sql(q{SELECT string_agg(role || ':' || content, ' | ' ORDER BY seq) FROM agentcache.turns WHERE session_id = 'ls'}),
	'user:please book | assistant:booked for Thursday', 'the fenced outbound added no turn');
is(claims_of($hpid), '0', 'holder: its lock was given back when it touched the message');
is(sql(q{SELECT r->>'dedup' || ' ' || (r->'reply'->>'content')
         FROM agentcache.inbound('wa', 'lease-1', 'ls', 'please book') r}),
	'duplicate booked for Thursday', 'the re-delivered webhook is a duplicate with the taker\'s reply');
is(sql(q{SELECT state || ' ' || attempts FROM agentcache.dedup_state('lease-1')}), 'completed 2',
	'completed once, by the taker');

$holder->quit;
$t->quit;
$node->stop;
done_testing();
