#!/usr/bin/env bash
# CPU work per hot-path message, counted rather than timed: instructions a
# backend executes for one inbound() + outbound() (the hot path of
# bench/run.sh), under valgrind's callgrind, for each build given. On this
# shared 2-core machine a timed A/B of a few per cent is lost in the noise;
# an instruction count is the same on every run (it does not see cache
# misses: a change that saves memory stalls shows less here than in time).
#
# How: a throwaway cluster gets the instances map's tables and 50 sessions
# of 30 turns; it is stopped and copied; for each build, a single-user
# backend (postgres --single, agentcache preloaded) runs N1 and then N2
# messages on fresh copies, and (instructions(N2) - instructions(N1)) /
# (N2 - N1) is the per-message figure (the start-up, the map load and the
# session warming cancel out). Single-user mode runs each statement through
# the simple query protocol and prints each result: the figure includes
# parse/plan of the two SELECTs and jsonb output, as the server would do for
# an unprepared call.
# Usage (as root, after building each tree as the postgres user):
#   bash bench/instructions.sh /tmp/agentcache-a /tmp/agentcache-b
# Env: N1 (100) N2 (500). The last build's .so stays installed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/lib.sh"
[ $# -ge 1 ] || die "usage: bash bench/instructions.sh BUILD... (trees with a built agentcache.so)"
for d in "$@"; do [ -f "$d/agentcache.so" ] || die "$d/agentcache.so not found: build it first"; done
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
require_root
N1=${N1:-100} N2=${N2:-500}
[ "$N2" -gt "$N1" ] || die "N2 must be larger than N1"
LIB=$("$PG_CONFIG" --pkglibdir)
start_throwaway_cluster agentcache-instr 54341 "synchronous_commit = on"
stop_cluster_on_exit
runuser -u postgres -- "$PGBIN/psql" -X -q -h "$WORK" -p 54341 -d postgres -v ON_ERROR_STOP=1 -c "
  CREATE EXTENSION agentcache;
  CREATE TABLE public.clinics (id int PRIMARY KEY, name text, timezone text);
  CREATE TABLE public.integrations (instance text PRIMARY KEY, clinic_id int, active bool);
  INSERT INTO public.clinics SELECT k, 'Clinica ' || k, 'America/Sao_Paulo' FROM generate_series(1, 100) k;
  INSERT INTO public.integrations SELECT 'inst-' || k, k, true FROM generate_series(1, 100) k;
  INSERT INTO agentcache.turns (session_id, seq, role, content, created_at)
  SELECT 'sess-' || s, t, CASE WHEN t % 2 = 1 THEN 'user' ELSE 'assistant' END,
         repeat('hello there, this is turn text ', 9), now()
    FROM generate_series(1, 50) s, generate_series(1, 30) t;" >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/data" -m fast -w stop >/dev/null
mv "$WORK/data" "$WORK/seed"

# script N: the map, the sessions warmed, then N messages (fixed ids and order)
script() {
  local n=$1 k s i
  printf '%s\n' "SELECT agentcache.define_map('instances', \$q\$SELECT i.instance AS key, jsonb_build_object('clinic_id', c.id, 'name', c.name, 'timezone', c.timezone) AS value FROM public.integrations i JOIN public.clinics c ON c.id = i.clinic_id\$q\$);"
  for ((s = 1; s <= 50; s++)); do printf "SELECT agentcache.warm_session('sess-%d');\n" "$s"; done
  for ((k = 0; k < n; k++)); do
    s=$((1 + (k * 7919) % 50)) i=$((1 + (k * 104729) % 100))
    printf "SELECT agentcache.inbound('inst-%d', 'msg-%d', 'sess-%d', 'Can I book Thursday morning with Dr Souza please?');\n" "$i" "$k" "$s"
    printf "SELECT agentcache.outbound('msg-%d', 'sess-%d', 'Dr. Souza has 9:00 and 10:30 free on Thursday. Which one suits you?');\n" "$k" "$s"
  done
}
script "$N1" >"$WORK/n1.sql"
script "$N2" >"$WORK/n2.sql"
chown postgres:postgres "$WORK"/*.sql

# instructions RUN: callgrind's total for one single-user run of RUN.sql
instructions() {
  rm -rf "$WORK/data"
  cp -a "$WORK/seed" "$WORK/data"
  runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file="$WORK/$1.out" \
    "$PGBIN/postgres" --single -D "$WORK/data" postgres <"$WORK/$1.sql" >"$WORK/$1.log" 2>&1 ||
    { tail -n 20 "$WORK/$1.log" >&2; die "the single-user run $1 failed"; }
  grep -q ERROR "$WORK/$1.log" && { grep -m 5 ERROR "$WORK/$1.log" >&2; die "the single-user run $1 raised an error"; }
  callgrind_annotate "$WORK/$1.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
header "instructions per message (inbound + outbound; callgrind; ($N2 - $N1) messages)"
for d in "$@"; do
  cp "$d/agentcache.so" "$LIB/agentcache.so"
  a=$(instructions n1) b=$(instructions n2)
  awk -v a="$a" -v b="$b" -v n=$((N2 - N1)) -v d="$d" 'BEGIN { printf "  %-40s %9.0f instructions per message\n", d, (b - a) / n }'
done
