# Helpers shared by agentcache's TAP tests (test/t is on prove's include path).
package AgentcacheTest;

use strict;
use warnings;
use Exporter 'import';
use Time::HiRes qw(time sleep);

our @EXPORT = qw(wait_true sqlstate);

# Polls $node (every 0.1 s, errors ignored) until $query returns t, for at most
# $limit seconds (default 15); returns the seconds since $t0 (default: now),
# undef on timeout.
sub wait_true
{
	my ($node, $query, $t0, $limit) = @_;
	$t0 //= time;
	$limit //= 15;
	while (time - $t0 < $limit)
	{
		my ($out, $err) = ('', '');
		my $ret = $node->psql('postgres', $query, stdout => \$out, stderr => \$err);
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

1;
