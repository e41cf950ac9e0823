# The worker's session belongs to agentcache, not to the database owner (API.md
# "Version 0.2.0 — Security corrections"): a non-superuser owner of the
# worker's database sets ALTER DATABASE … SET search_path to a schema with
# an `=` operator that tries to make its owner a superuser, and then
# statement/lock/idle timeouts and read-only transactions. The worker (a
# superuser) never calls the operator, and keeps sweeping and refreshing
# maps without a restart loop.
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
agentcache.database = 'appdb'
agentcache.sweep_interval = '200ms'
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE dbowner LOGIN;
CREATE DATABASE appdb OWNER dbowner;
});
# every session of ours overrides what part b makes the database's defaults
my $ours = q{SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;
SET default_transaction_read_only = off; };
sub sql { return $node->safe_psql('appdb', $ours . $_[0]); }
sub wait_appdb { return wait_true($node, $ours . $_[0], undef, 20, 'appdb'); }
sub as_owner { return $node->safe_psql('appdb', $_[0], extra_params => ['-U', 'dbowner']); }

sql(q{
CREATE EXTENSION agentcache;
CREATE TABLE src (k text PRIMARY KEY, v int);
INSERT INTO src VALUES ('a', 1);
SELECT agentcache.define_map('m', 'SELECT k, to_jsonb(v) FROM src', '1 second');
SELECT agentcache.put('ns-' || g, 'k', to_jsonb(g)) FROM generate_series(1, 3) g;
});

# the owner's trap: an = for text that reports who called it and tries to
# make the database owner a superuser
as_owner(q{
CREATE SCHEMA evil;
CREATE FUNCTION evil.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE WARNING 'evil operator called by %', current_user;
  BEGIN
    EXECUTE 'ALTER ROLE dbowner SUPERUSER';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eq);
ALTER DATABASE appdb SET search_path = evil, pg_catalog, public;
});

sub worker_status
{
	return sql(q{SELECT (h->'worker'->>'pid') || ',' || (h->'worker'->>'starts') FROM agentcache.health() h});
}

sub restart_worker
{
	my ($pid) = split /,/, worker_status();
	sql("SELECT pg_terminate_backend($pid)");
	return defined wait_appdb(
		qq{SELECT (h->'worker'->>'alive')::bool AND h->'worker'->>'pid' <> '$pid' FROM agentcache.health() h});
}

# the worker connects once appdb exists (it was created after the server started)
ok(defined wait_appdb(q{SELECT (agentcache.health()->'worker'->>'alive')::bool}), 'the worker serves appdb');

# ---------------------------------------------------------------- a. a search_path of the owner's
my $offset = -s $node->logfile;
ok(restart_worker(), 'the worker restarts and connects under the database settings');
# the TTL recount runs every sixth sweep: wait for a dozen sweeps
my $sweep0 = sql(q{SELECT agentcache.health()->'worker'->>'last_sweep'});
ok(defined wait_appdb(qq{SELECT (agentcache.health()->'worker'->>'last_sweep')::timestamptz
                          > '$sweep0'::timestamptz + interval '3 seconds'}),
	'the worker sweeps for three seconds');
my $log = slurp_file($node->logfile, $offset);
unlike($log, qr/evil operator called/, 'the worker never called the owner\'s = operator');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'dbowner'}), 'f',
	'the database owner did not become a superuser');
is($node->safe_psql('appdb', q{SELECT current_setting('search_path')}), 'evil, pg_catalog, public',
	'(ordinary sessions do get the owner\'s search_path)');

# ---------------------------------------------------------------- b. timeouts and read-only transactions
as_owner(q{
ALTER DATABASE appdb SET statement_timeout = '1ms';
ALTER DATABASE appdb SET lock_timeout = '1ms';
ALTER DATABASE appdb SET idle_in_transaction_session_timeout = '1ms';
ALTER DATABASE appdb SET default_transaction_read_only = on;
ALTER DATABASE appdb SET default_transaction_isolation = 'serializable';
});
ok(restart_worker(), 'the worker restarts under timeouts and read-only defaults');
$offset = -s $node->logfile;
my ($pid, $starts) = split /,/, worker_status();
# it sweeps: an expired dedup row goes, a refresh_trigger-free map refreshes on its interval
sql(q{
SELECT agentcache.dedup_begin('m1', NULL, NULL, '1 millisecond'), agentcache.dedup_complete('m1');
UPDATE src SET v = 2;
});
ok(defined wait_appdb(q{SELECT count(*) = 0 FROM agentcache.dedup}),
	'the worker swept the expired dedup row');
ok(defined wait_appdb(q{SELECT agentcache.lookup('m', 'a') = '2'}),
	'the worker refreshed the map on its interval');
sleep 2;
is(worker_status(), "$pid,$starts", 'no restart loop: same worker, same start count');
$log = slurp_file($node->logfile, $offset);
unlike($log, qr/agentcache worker.*(exited|terminated)|canceling statement due to (statement|lock) timeout|read-only transaction/,
	'no worker error in the log');
unlike($log, qr/evil operator called/, 'still no call of the owner\'s operator');

$node->stop;
done_testing();
