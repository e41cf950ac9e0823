#!/usr/bin/env bash
# A/B of two builds of agentcache on one throwaway cluster: the .so of each
# build is installed in turn (the server restarted), and each workload runs
# under pgbench (-M prepared, CLIENTS clients, DURATION s, a CHECKPOINT before
# each run); ROUNDS rounds, the order of the builds alternating between
# rounds so that neither always runs first. Prints one line per run and the
# medians. The SQL objects are the installed ones (the builds must share
# them); the last build's .so stays installed.
# Usage (as root, after building both trees as the postgres user):
#   bash bench/ab_builds.sh /tmp/agentcache-a /tmp/agentcache-b
# Env: ROUNDS (4) DURATION (8) CLIENTS (8)
#      WORKLOADS ("select1 resolve_instance ttl_get ttl_put get_context add_turn")
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/lib.sh"
[ $# -eq 2 ] || die "usage: bash bench/ab_builds.sh BUILD_A BUILD_B (trees with a built agentcache.so)"
A=$1 B=$2
for d in "$A" "$B"; do [ -f "$d/agentcache.so" ] || die "$d/agentcache.so not found: build it first"; done
ROUNDS=${ROUNDS:-4} DURATION=${DURATION:-8} CLIENTS=${CLIENTS:-8}
read -r -a LOADS <<<"${WORKLOADS:-select1 resolve_instance ttl_get ttl_put get_context add_turn}"
require_root
LIB=$("$PG_CONFIG" --pkglibdir)
start_throwaway_cluster agentcache-ab 54340 "shared_buffers = 512MB
max_connections = 30
agentcache.map_memory = '64MB'"
trap 'stop_throwaway_cluster $?' EXIT
psql_ab() { runuser -u postgres -- "$PGBIN/psql" -X -q -h "$WORK" -p 54340 -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql_ab -c "CREATE EXTENSION agentcache" \
  -c "CREATE TABLE clinics (id int PRIMARY KEY, name text NOT NULL, tz text)" \
  -c "CREATE TABLE integrations (instance text PRIMARY KEY, clinic_id int REFERENCES clinics)" \
  -c "INSERT INTO clinics SELECT i, 'clinic ' || i, 'America/Sao_Paulo' FROM generate_series(1, 100) i" \
  -c "INSERT INTO integrations SELECT 'inst-' || i, i % 100 + 1 FROM generate_series(1, 1000) i" \
  -c "SELECT agentcache.define_map('instances', 'SELECT i.instance, jsonb_build_object(''clinic_id'', c.id, ''name'', c.name, ''tz'', c.tz) FROM integrations i JOIN clinics c ON c.id = i.clinic_id')" \
  -c "SELECT count(agentcache.put('bench', 'k' || g, jsonb_build_object('v', repeat('x', 900)), '1 day')) FROM generate_series(1, 10000) g" \
  -c "INSERT INTO agentcache.turns (session_id, seq, role, content) SELECT 's' || s, t, CASE WHEN t % 2 = 0 THEN 'assistant' ELSE 'user' END, repeat('word ', 40) FROM generate_series(1, 1000) s, generate_series(1, 30) t" >/dev/null
printf 'SELECT 1;\n' >"$WORK/select1.sql"
printf '\\set i random(1, 1000)\nSELECT agentcache.resolve_instance(%s);\n' "'inst-' || :i" >"$WORK/resolve_instance.sql"
printf '\\set k random(1, 10000)\nSELECT agentcache.get(%s);\n' "'bench', 'k' || :k" >"$WORK/ttl_get.sql"
printf '\\set k random(1, 10000)\nSELECT agentcache.put(%s);\n' "'bench', 'w' || :k, '{\"v\": 1}'::jsonb, '1 hour'" >"$WORK/ttl_put.sql"
printf '\\set s random(1, 1000)\nSELECT agentcache.get_context(%s);\n' "'s' || :s" >"$WORK/get_context.sql"
printf '\\set s random(1, 100000)\nSELECT agentcache.add_turn(%s);\n' "'w' || :s, 'user', 'a new message of some length'" >"$WORK/add_turn.sql"
chown postgres "$WORK"/*.sql
declare -A RUNS=()
for ((round = 1; round <= ROUNDS; round++)); do
  order=("$A" "$B"); [ $((round % 2)) -eq 0 ] && order=("$B" "$A")
  for build in "${order[@]}"; do
    # stop first, then replace the file (a running server has it mapped), then start
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/data" -w stop >/dev/null
    install -m 755 "$build/agentcache.so" "$LIB/agentcache.so"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
    psql_ab -c "SELECT agentcache.refresh_map('instances')" >/dev/null
    for w in "${LOADS[@]}"; do
      psql_ab -c CHECKPOINT
      tps=$(runuser -u postgres -- "$PGBIN/pgbench" -n -M prepared -T "$DURATION" -c "$CLIENTS" -j "$CLIENTS" \
              -h "$WORK" -p 54340 -f "$WORK/$w.sql" postgres 2>&1 | awk '/^tps/ {print int($3)}')
      printf 'round %d  %-40s %-18s %8s tps\n' "$round" "$build" "$w" "$tps"
      RUNS[$build:$w]="${RUNS[$build:$w]:-} $tps"
    done
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '\nmedians of %d runs, %d clients, %d s each:\n' "$ROUNDS" "$CLIENTS" "$DURATION"
for w in "${LOADS[@]}"; do
  a=$(median <<<"${RUNS[$A:$w]}") b=$(median <<<"${RUNS[$B:$w]}")
  awk -v w="$w" -v a="$a" -v b="$b" 'BEGIN { printf "  %-18s A %9.0f  B %9.0f  B/A %.3f\n", w, a, b, b / a }'
done
