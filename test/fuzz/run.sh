#!/usr/bin/env bash
# Runs the agentcache SQL fuzzer (test/fuzz/fuzz.py) against a throwaway
# cluster: run as root; the cluster and the fuzzer run as the postgres OS user.
#
#   bash test/fuzz/run.sh                       # FUZZ_CASES=3000, random seed (printed)
#   CI=true bash test/fuzz/run.sh               # the fixed CI seed
#   FUZZ_SEED=123 FUZZ_CASES=20000 bash test/fuzz/run.sh
#
# Environment: FUZZ_CASES (default 3000), FUZZ_SEED (default: fixed when
# CI=true, else random), FUZZ_PORT (default 55470), FUZZ_ARGS (extra fuzz.py
# arguments, e.g. --keep-going), FUZZ_TIMEOUT (seconds for the whole run,
# default 1800), FUZZ_LOG (copy the server log there). Exits non-zero when
# the fuzzer reports a failure or the server log shows a PANIC, a backend
# killed by a signal, or an internal error (XX000).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
require_root

CI_SEED=20240611
PORT=${FUZZ_PORT:-55470}
CASES=${FUZZ_CASES:-3000}
if [ -n "${FUZZ_SEED:-}" ]; then
  SEED=$FUZZ_SEED
elif [ "${CI:-}" = true ]; then
  SEED=$CI_SEED
else
  SEED=$(( (RANDOM << 15 | RANDOM) + 1 ))
fi
DB=fuzz
PY=/usr/bin/python3

[ -x "$PGBIN/initdb" ] || die "PostgreSQL $PG_MAJOR is not installed ($PGBIN)"
[ -f "$("$PG_CONFIG" --pkglibdir)/agentcache.so" ] || die "agentcache is not installed (make install first)"
$PY -c 'import psycopg' 2>/dev/null || die "python3-psycopg is missing (apt-get install python3-psycopg)"

header "agentcache fuzz: FUZZ_SEED=$SEED FUZZ_CASES=$CASES (port $PORT)"

WORK=
stop_cluster_on_exit

start_throwaway_cluster agentcache-fuzz "$PORT" "agentcache.database = '$DB'
max_prepared_transactions = 4
max_connections = 20
agentcache.session_memory = '2MB'
agentcache.map_memory = '2MB'
agentcache.sweep_interval = '1s'
log_line_prefix = '%m [%p] %e '"
note "cluster in $WORK"

psql_pg() { aspg psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" "$@"; }
psql_pg -d postgres -c "CREATE DATABASE $DB"
psql_pg -d "$DB" -c "CREATE EXTENSION agentcache"

# the fuzzer runs from the cluster's directory, so that it does not matter
# whether the postgres user can read the source tree
cp "$ROOT/test/fuzz/fuzz.py" "$WORK/fuzz.py"
chown postgres:postgres "$WORK/fuzz.py"

rc=0
start=$(date +%s)
# shellcheck disable=SC2086
aspg env PGHOST="$WORK" PGPORT="$PORT" PGDATABASE="$DB" \
  timeout --kill-after=30 "${FUZZ_TIMEOUT:-1800}" \
  "$PY" "$WORK/fuzz.py" --seed "$SEED" --cases "$CASES" ${FUZZ_ARGS:-} || rc=$?
note "fuzz.py exited with $rc after $(( $(date +%s) - start )) s"
[ "$rc" -ne 124 ] || note "the fuzzer did not finish within FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-1800} s (hang?)"

# stop the server before reading its log (shutdown problems show there too)
aspg pg_ctl -D "$WORK/data" -m fast -w -t 60 stop >/dev/null 2>&1 || {
  note "the server did not stop within 60 s"
  rc=1
}

log=$WORK/server.log
bad=$(grep -nE 'PANIC:|terminated by signal|server process .* was terminated|was terminated by exception' "$log" || true)
# XX000 in the log: any internal error, also the worker's; the boundary
# self-test's deliberate probes (agentcache._boundary_selftest('cxx'/'cxx_lwlock')) excepted
xx=$(grep -nE ' XX000 ' "$log" | grep -vE 'boom from C\+\+|thrown while holding an LWLock|_boundary_selftest' || true)
if [ -n "$bad" ] || [ -n "$xx" ]; then
  printf '\nFAILURE: the server log shows a crash or an internal error:\n%s\n%s\n' "$bad" "$xx" | head -n 40
  rc=1
fi

if [ -n "${FUZZ_LOG:-}" ]; then
  cp "$log" "$FUZZ_LOG" && note "server log copied to $FUZZ_LOG"
fi

if [ "$rc" -eq 0 ]; then
  note "fuzz: OK (seed $SEED)"
else
  note "fuzz: FAILED (seed $SEED); replay: FUZZ_SEED=$SEED FUZZ_CASES=$CASES bash test/fuzz/run.sh"
fi
exit "$rc"
