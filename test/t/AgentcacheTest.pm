# Helpers shared by agentcache's TAP tests (test/t is on prove's include path).
package AgentcacheTest;

use strict;
use warnings;
use Exporter 'import';
use Time::HiRes qw(time sleep);

our @EXPORT = qw(wait_true sqlstate expected_context_sql instances_sql);

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

1;
