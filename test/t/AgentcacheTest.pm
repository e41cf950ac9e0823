# Helpers shared by agentcache's TAP tests (test/t is on prove's include path).
package AgentcacheTest;

use strict;
use warnings;
use Exporter 'import';
use Time::HiRes qw(time sleep);
use IPC::Run;

our @EXPORT = qw(wait_true sqlstate expected_context_sql instances_sql pgbench_start pgbench_finish);

# Polls $node (every 0.1 s, errors ignored) until $query returns t, for at most
# $limit seconds (default 15), in database $db (default postgres); returns the
# seconds since $t0 (default: now), undef on timeout.
sub wait_true
{
	my ($node, $query, $t0, $limit, $db) = @_;
	$t0 //= time;
	$limit //= 15;
	$db //= 'postgres';
	while (time - $t0 < $limit)
	{
		my ($out, $err) = ('', '');
		my $ret = $node->psql($db, $query, stdout => \$out, stderr => \$err);
		return time - $t0 if $ret == 0 && $out eq 't';
		sleep 0.1;
	}
	return undef;
}

# The SQLSTATE $query raises on $node ('' when it succeeds).
sub sqlstate
{
	my ($node, $query) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', "\\set VERBOSITY verbose\n$query", stdout => \$out, stderr => \$err);
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : '';
}

# SQL creating expected_context(sid, n): what get_context(sid, n) must return,
# built from agentcache.turns.
sub expected_context_sql
{
	return q{
CREATE FUNCTION expected_context(sid text, n int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content,
                                               'at', to_jsonb(created_at))
                            || CASE WHEN meta IS NULL THEN '{}'::jsonb
                                    ELSE jsonb_build_object('meta', meta) END
                            ORDER BY seq), '[]')
  FROM (SELECT * FROM agentcache.turns WHERE session_id = sid ORDER BY seq DESC LIMIT n) t
$$;
};
}

# SQL creating 100 clinics and 1,000 integrations and the 'instances' map over
# their join; $refresh: the map's refresh interval (the default if omitted).
sub instances_sql
{
	my ($refresh) = @_;
	my $arg = defined $refresh ? ", '$refresh'" : '';
	return q{
CREATE TABLE clinics (id int PRIMARY KEY, name text NOT NULL, tenant text NOT NULL);
CREATE TABLE integrations (instance text PRIMARY KEY, clinic_id int NOT NULL REFERENCES clinics,
                           channel text NOT NULL);
INSERT INTO clinics SELECT i, 'clinic ' || i, 'tenant-' || (i % 10) FROM generate_series(1, 100) i;
INSERT INTO integrations SELECT 'inst-' || i, i % 100 + 1, 'whatsapp' FROM generate_series(1, 1000) i;
SELECT agentcache.define_map('instances',
  $$SELECT i.instance, jsonb_build_object('clinic_id', c.id, 'clinic', c.name, 'tenant', c.tenant,
                                          'channel', i.channel)
    FROM integrations i JOIN clinics c ON c.id = i.clinic_id$$} . $arg . q{);
};
}

# Starts pgbench against $node's database $db in the background: %opts has
# clients, seconds, and scripts (a list of [name, sql, weight]); the script
# files go to the node's base directory. Returns a handle for pgbench_finish.
sub pgbench_start
{
	my ($node, $db, %opts) = @_;
	my @files;
	for my $s (@{ $opts{scripts} })
	{
		my ($name, $sql, $weight) = @$s;
		my $file = $node->basedir . "/pgbench_$name.sql";
		open my $fh, '>', $file or die "cannot write $file: $!";
		print $fh $sql;
		close $fh;
		push @files, '-f', "$file\@" . ($weight // 1);
	}
	my ($out, $err) = ('', '');
	my @cmd = ('pgbench', '-n', '--failures-detailed', '-h', $node->host, '-p', $node->port, '-c', $opts{clients} // 1,
		'-j', $opts{clients} // 1, '-T', $opts{seconds} // 5, @files, $db);
	my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

# Waits for a pgbench started by pgbench_start; returns (transactions done,
# the ERROR lines of aborted clients).
sub pgbench_finish
{
	my ($run) = @_;
	$run->{h}->finish;
	my $out = ${ $run->{out} };
	my $err = ${ $run->{err} };
	my ($done) = $out =~ /number of transactions actually processed: (\d+)/;
	my @errors = grep { /ERROR|aborted|FATAL|server closed/ } split /\n/, $err;
	# pgbench (15+) does not abort a client on a deadlock or serialization
	# failure: it counts the transaction as failed
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	push @errors, "$failed transactions failed (deadlock or serialization failure): $out"
	  if $failed;
	return ($done // 0, @errors);
}

1;
