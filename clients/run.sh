#!/usr/bin/env bash
# The client tests against a real server: a throwaway cluster with agentcache
# preloaded (as the postgres user), then the Python client's pytest suite
# (Debian's python3-psycopg and python3-pytest) and the Node client's
# node --test suite (pg and @langchain/core as package-lock.json pins them;
# skipped with a note where Node is not installed, e.g. the 17/18 roots).
# Run as root after `make install`. Exits non-zero when a test fails.
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
stop_cluster_on_exit
start_throwaway_cluster agentcache-clients "$PORT" "agentcache.claim_lease = '5min'"
header "Python client (clients/python): pytest against PostgreSQL $PG_MAJOR"
# the tests run as postgres from a copy (pytest writes its cache next to them)
cp -r "$ROOT/clients/python" "$WORK/python"
chown -R postgres "$WORK/python"
(cd "$WORK/python" && aspg env AGENTCACHE_TEST_DSN="host=$WORK port=$PORT dbname=postgres user=postgres" \
  PYTHONPATH="$WORK/python" $PY -m pytest -q -p no:cacheprovider tests)

header "Node client (clients/node): node --test against PostgreSQL $PG_MAJOR"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  cp -r "$ROOT/clients/node" "$WORK/node"
  rm -rf "$WORK/node/node_modules"
  chown -R postgres "$WORK/node"
  # pg and @langchain/core exactly as package-lock.json pins them
  (cd "$WORK/node" && aspg env HOME="$WORK" npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in clients/node"
  (cd "$WORK/node" && aspg env AGENTCACHE_TEST_DSN="postgresql://postgres@/postgres?host=$WORK&port=$PORT" node --test test/)
else
  note "Node is not installed here: the Node client's tests run where it is (scripts/test.sh runs them on the host)"
fi

header "WhatsApp bot example (examples/whatsapp-bot): a burst with re-deliveries and a killed worker"
cp -r "$ROOT/examples/whatsapp-bot" "$WORK/whatsapp-bot"
mkdir -p "$WORK/clients"
cp -r "$ROOT/clients/python" "$WORK/clients/python"
mkdir -p "$WORK/examples"
mv "$WORK/whatsapp-bot" "$WORK/examples/whatsapp-bot"
chown -R postgres "$WORK/examples" "$WORK/clients"
(cd "$WORK/examples/whatsapp-bot" && aspg env AGENTCACHE_TEST_DSN="host=$WORK port=$PORT dbname=postgres user=postgres" \
  $PY -m pytest -q -s -p no:cacheprovider test_bot.py)
