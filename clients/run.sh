#!/usr/bin/env bash
# The client tests against a real server: a throwaway cluster with agentcache
# preloaded (as the postgres user), then the Python client's pytest suite
# (Debian's python3-psycopg and python3-pytest). Run as root after
# `make install`. Exits non-zero when a test fails.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
require_root
PORT=${CLIENTS_PORT:-55490}
PY=/usr/bin/python3
$PY -c 'import psycopg, pytest' 2>/dev/null || die "python3-psycopg and python3-pytest are needed (apt-get install python3-psycopg python3-pytest)"
[ -f "$("$PG_CONFIG" --pkglibdir)/agentcache.so" ] || die "agentcache is not installed (make install first)"
WORK=
finish() {
  local rc=$?
  trap - EXIT
  stop_throwaway_cluster "$rc"
  exit "$rc"
}
trap finish EXIT
start_throwaway_cluster agentcache-clients "$PORT" "agentcache.claim_lease = '5min'"
header "Python client (clients/python): pytest against PostgreSQL $PG_MAJOR"
# the tests run as postgres from a copy (pytest writes its cache next to them)
cp -r "$ROOT/clients/python" "$WORK/python"
chown -R postgres "$WORK/python"
(cd "$WORK/python" && aspg env AGENTCACHE_TEST_DSN="host=$WORK port=$PORT dbname=postgres user=postgres" \
  PYTHONPATH="$WORK/python" $PY -m pytest -q -p no:cacheprovider tests)
