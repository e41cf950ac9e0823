#!/usr/bin/env bash
# Runs the chaos soak (test/soak/soak.cpp) against a throwaway cluster: builds
# the driver, starts PostgreSQL as the postgres user under /tmp with
# agentcache preloaded and autovacuum at aggressive thresholds, sets up the
# soak database, runs the driver for SOAK_SECONDS (default 60), and stops the
# cluster whatever happens. Exit status: 0 when the driver saw no violation
# and the server log has no crash other than the soak's own kill -9s.
#
# Run as root:  bash test/soak/run.sh
# Env: SOAK_SECONDS (default 60), SOAK_SEED (default: fixed under CI=true,
#      random otherwise), SOAK_KILL9 (seconds between kill -9s, default 40;
#      0: none), SOAK_PORT (default 55460).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
require_root

SECONDS_TO_RUN=${SOAK_SECONDS:-60}
if [ -n "${SOAK_SEED:-}" ]; then SEED=$SOAK_SEED
elif [ "${CI:-}" = true ]; then SEED=20261204
else SEED=$(( (RANDOM << 15) | RANDOM )); fi
KILL9=${SOAK_KILL9:-40}
PORT=${SOAK_PORT:-55460}
WORK=""
BIN=$(mktemp -d /tmp/agentcache-soak-bin.XXXXXX)

finish() {
  local rc=$?
  stop_throwaway_cluster "$rc"
  rm -rf "$BIN"
  exit "$rc"
}
trap finish EXIT

header "soak: build the driver"
g++ -O2 -std=c++17 -Wall -Wextra -pthread -I"$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)" \
  "$ROOT/test/soak/soak.cpp" -o "$BIN/soak" -lpq
chmod 755 "$BIN" "$BIN/soak"

header "soak: throwaway cluster on port $PORT"
start_throwaway_cluster agentcache-soak "$PORT" "agentcache.database = 'soak'
agentcache.dedup_window = '1h'
agentcache.sweep_interval = '1s'
max_connections = 60
autovacuum_naptime = '1s'
autovacuum_vacuum_threshold = 20
autovacuum_analyze_threshold = 20
autovacuum_vacuum_scale_factor = 0.01
autovacuum_analyze_scale_factor = 0.01
autovacuum_vacuum_insert_threshold = 20
restart_after_crash = on
log_line_prefix = '%m [%p] %e %a '"
PSQL=(runuser -u postgres -- "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT")
"${PSQL[@]}" -d postgres -c "CREATE DATABASE soak"
"${PSQL[@]}" -d soak -c "CREATE EXTENSION agentcache"
BASELINE=$("${PSQL[@]}" -d soak -Atc "SELECT (h->'session_memory'->>'used') || '/' || (h->'map_memory'->>'used') FROM agentcache.health() h")
"${PSQL[@]}" -d soak <<'SQL'
CREATE ROLE soak_app NOLOGIN;
SELECT agentcache.grant_app('soak_app');
CREATE ROLE soak_reader NOLOGIN;
CREATE TABLE public.soak_src (k text PRIMARY KEY, ver int NOT NULL);
INSERT INTO public.soak_src SELECT 'k' || g, 1 FROM generate_series(0, 199) g;
SELECT agentcache.define_map('soak_map',
  'SELECT k, jsonb_build_object(''k'', k, ''ver'', ver) FROM public.soak_src', '1 second');
SELECT agentcache.configure_namespace('soak-a', '1 hour', 50);
SELECT agentcache.configure_namespace('soak-b', '1 hour');
SQL

header "soak: $SECONDS_TO_RUN s, seed $SEED"
rc=0
runuser -u postgres -- "$BIN/soak" -d "host=$WORK port=$PORT dbname=soak user=postgres" \
  -T "$SECONDS_TO_RUN" -s "$SEED" -k "$KILL9" -b "$BASELINE" -v || rc=$?

# the server log: crashes other than the soak's own kill -9s fail the run
kills=$(grep -c "was terminated by signal 9: Killed" "$WORK/server.log" || true)
others=$(grep -E "PANIC|terminated by signal [0-8]\b|terminated by signal 1[0-9]|TRAP:" "$WORK/server.log" | grep -vc "signal 9" || true)
note "server log: $kills backends killed by the soak (signal 9), $others other crashes"
if [ "$others" -gt 0 ]; then
  grep -E "PANIC|terminated by signal|TRAP:" "$WORK/server.log" | grep -v "signal 9" | head -n 20
  rc=1
fi
xx=$(grep -c "XX000\|deadlock detected" "$WORK/server.log" || true)
[ "$xx" -eq 0 ] || { note "server log: $xx XX000/deadlock lines"; grep -m 10 "XX000\|deadlock detected" "$WORK/server.log"; rc=1; }
exit "$rc"
