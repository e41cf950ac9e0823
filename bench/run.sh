#!/usr/bin/env bash
# agentcache benchmark: get_context() from shared memory vs. the plain SQL an
# application would write vs. SELECT 1, measured with pgbench on a throwaway
# PostgreSQL 15 cluster. Run as root on Debian 12 after `make install`:
#     bash bench/run.sh
# Env: SESSIONS (10000) TURNS (30) DURATION (10 s per pgbench run) RUNS (3)
#      CLIENTS ("1 8") BENCH_PORT (54330) SESSION_MEMORY ('160MB')
#      INSTANCES (1000 rows in the 'instances' lookup map)
#      INSTANCES_BIG (100000 entries for the map load measurement)
#      MAP_MEMORY ('128MB').
# Smoke test:
#   SESSIONS=200 DURATION=2 RUNS=1 INSTANCES=100 INSTANCES_BIG=10000 bash bench/run.sh
# See bench/README.md for how to read the output.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

SESSIONS=${SESSIONS:-10000}
TURNS=${TURNS:-30}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-"1 8"}
PORT=${BENCH_PORT:-54330}
SESSION_MEMORY=${SESSION_MEMORY:-160MB}
INSTANCES=${INSTANCES:-1000}
INSTANCES_BIG=${INSTANCES_BIG:-100000}
# A map reload builds the new version beside the one in use, so map_memory
# must hold two copies of the biggest map (plus every other map).
MAP_MEMORY=${MAP_MEMORY:-128MB}
# output_floor returns one session's prebuilt context (same bytes as a warm
# get_context) from a one-row table: what sending ~8 KB of jsonb costs with no
# agentcache code at all. get_context_1 asks for the newest turn only: the
# cost of the shared-memory read path without the big response.
# resolve_instance reads the 'instances' lookup map from shared memory;
# plain_join is the integrations JOIN clinics query an application runs today
# (its baseline in the "vs plain SQL" column).
# map_floor returns one instance's record (the same bytes resolve_instance
# returns) from a one-row table: the response's own cost for the map rows.
WORKLOADS=(select1 plain_sql get_context output_floor get_context_1 resolve_instance plain_join map_floor)
# workload -> the workload its "vs plain SQL" column divides by (default plain_sql)
declare -A BASELINE=([resolve_instance]=plain_join [plain_join]=plain_join [map_floor]=plain_join)
baseline_of() { printf '%s' "${BASELINE[$1]:-plain_sql}"; }

is_uint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
for v in SESSIONS TURNS DURATION RUNS INSTANCES INSTANCES_BIG; do
  is_uint "${!v}" || die "$v must be a positive integer (got '${!v}')"
done
read -r -a CLIENT_LIST <<<"$CLIENTS"
[ "${#CLIENT_LIST[@]}" -gt 0 ] || die "CLIENTS must list at least one client count"
for c in "${CLIENT_LIST[@]}"; do is_uint "$c" || die "CLIENTS must be positive integers (got '$c')"; done

WORK=""
cleanup() {
  local rc=$?
  set +e
  stop_throwaway_cluster "$rc"
  if [ "$rc" -ne 0 ]; then
    printf '\nbenchmark FAILED (exit %s); the temporary cluster was stopped and removed\n' "$rc" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_root
id postgres >/dev/null 2>&1 || die "no postgres user: is postgresql-$PG_MAJOR installed? (run scripts/demo.sh)"
[ -x "$PGBIN/pgbench" ] || die "$PGBIN/pgbench not found: apt-get install postgresql-$PG_MAJOR"
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir 2>/dev/null) || die "$PG_CONFIG not found: apt-get install postgresql-server-dev-$PG_MAJOR"
SHAREDIR=$("$PG_CONFIG" --sharedir)
if [ ! -f "$PKGLIBDIR/agentcache.so" ] || [ ! -f "$SHAREDIR/extension/agentcache.control" ]; then
  die "agentcache is not installed ($PKGLIBDIR/agentcache.so missing): run \`make install\` in $ROOT (or bash scripts/demo.sh, which builds and installs it), then re-run"
fi

header "setup"
note "sessions=$SESSIONS turns/session=$TURNS duration=${DURATION}s runs=$RUNS clients=${CLIENT_LIST[*]} port=$PORT"
note "instances=$INSTANCES (map 'instances'), instances_big=$INSTANCES_BIG (map load measurement), map_memory=$MAP_MEMORY"
note "host: $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg); pgbench and the server share these CPUs"

start_throwaway_cluster agentcache-bench "$PORT" "agentcache.session_memory = '$SESSION_MEMORY'
agentcache.map_memory = '$MAP_MEMORY'
shared_buffers = 256MB
max_connections = 50
fsync = off
synchronous_commit = off
full_page_writes = off"
note "cluster in $WORK (removed on exit): shared_buffers=256MB max_connections=50 agentcache.session_memory=$SESSION_MEMORY agentcache.map_memory=$MAP_MEMORY"
note "NOTE: fsync=off, synchronous_commit=off, full_page_writes=off (not crash-safe; only loading writes, the measured workloads are read-only)"

psql_b() {
  aspg psql -X -q -h "$WORK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -P pager=off "$@"
}
# one value, unaligned
psql_v() { psql_b -At -c "$1"; }
# wall-clock milliseconds of one statement, as psql's \timing reports it
# (client round trip included: well under 1 ms on a Unix socket)
psql_ms() {
  local out
  out=$(psql_b -At -c '\timing on' -c "$1") || return 1
  printf '%s\n' "$out" | awk '/^Time: / { print $2; found = 1 } END { if (!found) exit 1 }'
}

note "server: $(psql_v 'SHOW server_version'); effective agentcache.session_memory = $(psql_v 'SHOW agentcache.session_memory'), agentcache.map_memory = $(psql_v 'SHOW agentcache.map_memory')"
if [ "$(psql_v "SELECT pg_size_bytes(current_setting('agentcache.session_memory')) = pg_size_bytes('$SESSION_MEMORY')" 2>/dev/null)" != t ]; then
  die "the server did not accept agentcache.session_memory = '$SESSION_MEMORY' (allowed: 1MB to 16GB, e.g. SESSION_MEMORY=160MB)"
fi
if [ "$(psql_v "SELECT pg_size_bytes(current_setting('agentcache.map_memory')) = pg_size_bytes('$MAP_MEMORY')" 2>/dev/null)" != t ]; then
  die "the server did not accept agentcache.map_memory = '$MAP_MEMORY' (allowed: 1MB to 16GB, e.g. MAP_MEMORY=128MB)"
fi
psql_b -c 'CREATE EXTENSION agentcache'

header "load: $SESSIONS sessions x $TURNS turns (INSERT ... SELECT, batches of 1000 sessions)"
t0=$(date +%s.%N)
for ((lo = 1; lo <= SESSIONS; lo += 1000)); do
  hi=$((lo + 999 > SESSIONS ? SESSIONS : lo + 999))
  # ~200 characters of varying text per turn; roles: a system prompt first,
  # then user/assistant alternating with a tool turn every 7th; meta on
  # every 5th turn; created_at increases with seq.
  psql_b -c "
    INSERT INTO agentcache.turns (session_id, seq, role, content, meta, created_at)
    SELECT 'sess-' || s, t,
           CASE WHEN t = 1 THEN 'system'
                WHEN t % 7 = 0 THEN 'tool'
                WHEN t % 2 = 0 THEN 'user'
                ELSE 'assistant' END,
           'turn ' || t || ' of session ' || s || ': ' ||
             left(repeat(md5(s::text || ':' || t::text), 7), 200 - length('turn ' || t || ' of session ' || s || ': ')),
           CASE WHEN t % 5 = 0
                THEN jsonb_build_object('channel', 'whatsapp', 'message_id', 'm-' || s || '-' || t, 'tokens', 40 + t)
           END,
           timestamptz '2025-01-01 00:00:00+00' + s * interval '1 second' + t * interval '1 minute'
      FROM generate_series($lo, $hi) AS s, generate_series(1, $TURNS) AS t"
done
psql_b -c 'VACUUM ANALYZE agentcache.turns'
t1=$(date +%s.%N)
note "$(psql_v "SELECT count(*) || ' rows, avg content ' || round(avg(length(content))) || ' chars, table+index ' || pg_size_pretty(pg_total_relation_size('agentcache.turns')) FROM agentcache.turns")"
note "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "loaded and vacuumed in %.1f s", b - a }')"

header "warm the cache"
t0=$(date +%s.%N)
warmed=$(psql_v "SELECT sum(agentcache.warm_session('sess-' || s)) FROM generate_series(1, $SESSIONS) AS s")
t1=$(date +%s.%N)
note "$(awk -v a="$t0" -v b="$t1" -v w="$warmed" 'BEGIN { printf "warm_session() cached %d turns in %.1f s", w, b - a }')"
IFS='|' read -r used limit nsess nturns content meta < <(psql_v "
  SELECT m->>'used', m->>'limit', m->>'sessions', m->>'turns', m->>'content_bytes', m->>'meta_bytes'
    FROM (SELECT agentcache.health()->'session_memory' AS m) h")
note "health()->session_memory: used=$used limit=$limit sessions=$nsess turns=$nturns content_bytes=$content meta_bytes=$meta"
if [ "$nturns" -gt 0 ]; then
  # payload = each turn's content and meta bytes; everything else the tier
  # allocates (turn headers, allocator headers and rounding, session records,
  # rings, keys) is overhead
  note "$(awk -v u="$used" -v c="$content" -v m="$meta" -v n="$nturns" -v l="$limit" 'BEGIN {
    printf "shared-memory overhead per cached turn = (used - content_bytes - meta_bytes) / turns = (%d - %d - %d) / %d = %.1f bytes (target <= 64); %.1f%% of limit used", u, c, m, n, (u - c - m) / n, 100 * u / l }')"
fi
if [ "$nsess" -lt "$SESSIONS" ]; then
  note "WARNING: only $nsess of $SESSIONS sessions fit in agentcache.session_memory=$SESSION_MEMORY; get_context will miss (raise SESSION_MEMORY)"
fi
psql_b -c "CREATE TABLE public.bench_floor (j jsonb);
  ALTER TABLE public.bench_floor ALTER COLUMN j SET STORAGE EXTERNAL;
  INSERT INTO public.bench_floor SELECT agentcache.get_context('sess-1');" >/dev/null
note "output floor row: $(psql_v "SELECT length(j::text) || ' characters of JSON text, ' || jsonb_array_length(j) || ' turns' FROM public.bench_floor")"

# load_instances SUFFIX N: public.clinicsSUFFIX and public.integrationsSUFFIX
# with N rows each (instance 'inst-K' -> clinic K), then ANALYZE.
load_instances() {
  local sfx=$1 n=$2
  psql_b -c "
    CREATE TABLE public.clinics$sfx (id int PRIMARY KEY, name text, timezone text, phone text, settings jsonb);
    CREATE TABLE public.integrations$sfx (instance text PRIMARY KEY, clinic_id int REFERENCES public.clinics$sfx,
                                          provider text, active bool);
    INSERT INTO public.clinics$sfx
    SELECT k,
           (ARRAY['Clinica', 'Consultorio', 'Centro Medico', 'Odonto', 'Fisio'])[1 + k % 5] || ' ' ||
             (ARRAY['Sao Lucas', 'Santa Clara', 'Vida', 'Bem Estar', 'Sorriso', 'Saude Total'])[1 + k % 6] || ' ' || k,
           (ARRAY['America/Sao_Paulo', 'America/Manaus', 'America/Recife', 'America/New_York', 'Europe/Lisbon'])[1 + k % 5],
           '+55 11 9' || lpad(((k * 7919) % 100000000)::text, 8, '0'),
           jsonb_build_object('language', (ARRAY['pt-BR', 'en-US', 'es'])[1 + k % 3],
                              'hours', jsonb_build_object('open', '08:00', 'close', (ARRAY['18:00', '19:00', '20:00'])[1 + k % 3]),
                              'max_daily_appointments', 20 + k % 40,
                              'reminders', k % 4 <> 0)
      FROM generate_series(1, $n) AS k;
    INSERT INTO public.integrations$sfx
    SELECT 'inst-' || k, k, (ARRAY['whatsapp-cloud', 'evolution', 'z-api', 'twilio'])[1 + k % 4], true
      FROM generate_series(1, $n) AS k;
    ANALYZE public.clinics$sfx, public.integrations$sfx;"
}
# the map query: instance -> the same record plain_join builds
map_query() {
  local sfx=$1
  printf '%s' "SELECT i.instance AS key, jsonb_build_object('clinic_id', c.id, 'name', c.name, 'timezone', c.timezone, 'phone', c.phone, 'settings', c.settings, 'provider', i.provider) AS value FROM public.integrations$sfx i JOIN public.clinics$sfx c ON c.id = i.clinic_id WHERE i.active"
}
# map_stat NAME: "entries|bytes" of that map in agentcache.stats
map_stat() { psql_v "SELECT entries || '|' || bytes FROM agentcache.stats WHERE tier = 'map' AND name = '$1'"; }

header "lookup map 'instances': $INSTANCES clinics + $INSTANCES integrations"
load_instances "" "$INSTANCES"
note "$(psql_v "SELECT count(*) || ' integrations, ' || pg_size_pretty(pg_total_relation_size('public.integrations') + pg_total_relation_size('public.clinics')) || ' tables+indexes' FROM public.integrations")"
ms=$(psql_ms "SELECT agentcache.define_map('instances', \$q\$$(map_query "")\$q\$)") || die "define_map('instances') failed"
IFS='|' read -r ment mbytes < <(map_stat instances)
note "$(awk -v t="$ms" -v e="$ment" -v b="$mbytes" 'BEGIN { printf "define_map(\047instances\047) took %.1f ms; agentcache.stats (tier map): entries=%d bytes=%d (%.1f bytes/entry)", t, e, b, (e > 0 ? b / e : 0) }')"
note "sample value: $(psql_v "SELECT agentcache.resolve_instance('inst-1')")"
note "$(psql_v "SELECT 'avg value ' || round(avg(length(value::text))) || ' characters of JSON text' FROM ($(map_query "")) q")"
[ "$ment" -eq "$INSTANCES" ] || die "map 'instances' has $ment entries, expected $INSTANCES"
psql_b -c "CREATE TABLE public.bench_map_floor (v jsonb);
  INSERT INTO public.bench_map_floor SELECT agentcache.resolve_instance('inst-1');" >/dev/null
psql_b -c 'SELECT agentcache.reset_stats()' >/dev/null

# ---------------------------------------------------------------- pgbench
cat >"$WORK/select1.sql" <<'EOF'
SELECT 1;
EOF
cat >"$WORK/plain_sql.sql" <<'EOF'
\set s random(1, :sessions)
SELECT coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'role', role, 'content', content, 'at', created_at) ORDER BY seq), '[]') FROM (SELECT * FROM agentcache.turns WHERE session_id = 'sess-' || :s ORDER BY seq DESC LIMIT 30) t;
EOF
cat >"$WORK/get_context.sql" <<'EOF'
\set s random(1, :sessions)
SELECT agentcache.get_context('sess-' || :s);
EOF
cat >"$WORK/output_floor.sql" <<'EOF'
SELECT j FROM public.bench_floor;
EOF
cat >"$WORK/get_context_1.sql" <<'EOF'
\set s random(1, :sessions)
SELECT agentcache.get_context('sess-' || :s, 1);
EOF
cat >"$WORK/resolve_instance.sql" <<'EOF'
\set i random(1, :instances)
SELECT agentcache.resolve_instance('inst-' || :i);
EOF
cat >"$WORK/plain_join.sql" <<'EOF'
\set i random(1, :instances)
SELECT jsonb_build_object('clinic_id', c.id, 'name', c.name, 'timezone', c.timezone, 'phone', c.phone, 'settings', c.settings, 'provider', i.provider) FROM integrations i JOIN clinics c ON c.id = i.clinic_id WHERE i.instance = 'inst-' || :i AND i.active;
EOF
cat >"$WORK/map_floor.sql" <<'EOF'
SELECT v FROM public.bench_map_floor;
EOF
chown postgres:postgres "$WORK"/*.sql

header "pgbench: -n -M prepared -T $DURATION, clients ${CLIENT_LIST[*]}, $RUNS run(s), workloads interleaved"
declare -A TPS   # key "workload:clients" -> space-separated TPS of each run
for ((run = 1; run <= RUNS; run++)); do
  for c in "${CLIENT_LIST[@]}"; do
    for w in "${WORKLOADS[@]}"; do
      out=$(aspg pgbench -n -M prepared -T "$DURATION" -c "$c" -j "$c" -D "sessions=$SESSIONS" -D "instances=$INSTANCES" \
              -h "$WORK" -p "$PORT" -U postgres -f "$WORK/$w.sql" postgres 2>&1) || {
        printf '%s\n' "$out" >&2
        die "pgbench failed ($w, $c clients)"
      }
      tps=$(printf '%s\n' "$out" | awk '/^tps = / { print $3; exit }')
      [ -n "$tps" ] || { printf '%s\n' "$out" >&2; die "no tps in pgbench output ($w, $c clients)"; }
      TPS[$w:$c]="${TPS[$w:$c]:-}${TPS[$w:$c]:+ }$(printf '%.0f' "$tps")"
      note "run $run/$RUNS  clients=$c  $(printf '%-16s' "$w") $(printf '%10.0f' "$tps") tps"
    done
  done
done

median() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A MED
for c in "${CLIENT_LIST[@]}"; do
  for w in "${WORKLOADS[@]}"; do MED[$w:$c]=$(median <<<"${TPS[$w:$c]}"); done
done

header "results (median of $RUNS run(s) of ${DURATION}s; $SESSIONS sessions x $TURNS turns; $INSTANCES instances)"
printf '  %-16s | %7s | %10s | %11s | %13s | %-10s | %s\n' workload clients "median TPS" "vs SELECT 1" "vs plain SQL" baseline "TPS per run"
printf '  %s\n' "-----------------+---------+------------+-------------+---------------+------------+-------------------"
for c in "${CLIENT_LIST[@]}"; do
  for w in "${WORKLOADS[@]}"; do
    b=$(baseline_of "$w")
    awk -v w="$w" -v c="$c" -v m="${MED[$w:$c]}" -v s="${MED[select1:$c]}" -v p="${MED[$b:$c]}" -v b="$b" -v runs="${TPS[$w:$c]}" \
      'BEGIN { printf "  %-16s | %7d | %10.0f | %10.2fx | %12.2fx | %-10s | %s\n", w, c, m, m / s, m / p, b, runs }'
  done
done

printf '\n  targets (8 clients): '
if [ -n "${MED[get_context:8]:-}" ]; then
  awk -v g="${MED[get_context:8]}" -v s="${MED[select1:8]}" -v p="${MED[plain_sql:8]}" 'BEGIN {
    r1 = g / s; r2 = g / p
    printf "get_context >= 0.8x SELECT 1: %.2fx %s;  get_context >= 2x plain SQL: %.2fx %s\n",
      r1, (r1 >= 0.8 ? "PASS" : "MISS"), r2, (r2 >= 2 ? "PASS" : "MISS") }'
  awk -v g="${MED[get_context:8]}" -v f="${MED[output_floor:8]}" -v s="${MED[select1:8]}" -v g1="${MED[get_context_1:8]}" 'BEGIN {
    printf "  output floor (8 clients): returning the same ~8 KB context from a one-row table, no agentcache code, runs at %.2fx SELECT 1;\n", f / s
    printf "  get_context reaches %.0f%% of that floor; with max_turns => 1 (small response) it runs at %.2fx SELECT 1.\n", 100 * g / f, g1 / s }'
  awk -v r="${MED[resolve_instance:8]}" -v s="${MED[select1:8]}" -v p="${MED[plain_join:8]}" 'BEGIN {
    r1 = r / s; r2 = r / p
    printf "  maps (8 clients): resolve_instance >= 0.95x SELECT 1: %.2fx %s;  resolve_instance >= 1.5x plain_join: %.2fx %s\n",
      r1, (r1 >= 0.95 ? "PASS" : "MISS"), r2, (r2 >= 1.5 ? "PASS" : "MISS") }'
  awk -v r="${MED[resolve_instance:8]}" -v f="${MED[map_floor:8]}" -v s="${MED[select1:8]}" 'BEGIN {
    printf "  map output floor (8 clients): the same record from a one-row table runs at %.2fx SELECT 1; resolve_instance reaches %.0f%% of it.\n", f / s, 100 * r / f }'
else
  printf 'not measured (8 is not in CLIENTS)\n'
fi

IFS='|' read -r hits misses < <(psql_v "SELECT sum(hits), sum(misses) FROM agentcache.stats WHERE tier = 'session'")
awk -v h="$hits" -v m="$misses" 'BEGIN {
  printf "  session cache during the runs (agentcache.stats): hits=%d misses=%d hit ratio=%s\n",
    h, m, (h + m > 0 ? sprintf("%.4f", h / (h + m)) : "n/a") }'
IFS='|' read -r hits misses < <(psql_v "SELECT hits, misses FROM agentcache.stats WHERE tier = 'map' AND name = 'instances'")
awk -v h="$hits" -v m="$misses" 'BEGIN {
  printf "  map \047instances\047 during the runs (agentcache.stats): hits=%d misses=%d hit ratio=%s\n",
    h, m, (h + m > 0 ? sprintf("%.4f", h / (h + m)) : "n/a") }'
note "host load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs shared by pgbench, the server and anything else running)"

# ------------------------------------------------- big map load (after pgbench)
header "map load: $INSTANCES_BIG-entry map 'big' (define_map, then refresh_map twice)"
load_instances _big "$INSTANCES_BIG"
LOAD_MS=()
ms=$(psql_ms "SELECT agentcache.define_map('big', \$q\$$(map_query _big)\$q\$)") ||
  die "define_map('big') failed: agentcache.map_memory=$MAP_MEMORY too small? (a reload needs room for the new version beside the old one)"
LOAD_MS+=("$ms")
note "$(printf 'define_map:  %10.1f ms' "$ms")"
for i in 1 2; do
  ms=$(psql_ms "SELECT agentcache.refresh_map('big')") ||
    die "refresh_map('big') failed: agentcache.map_memory=$MAP_MEMORY too small? (a reload needs room for the new version beside the old one)"
  LOAD_MS+=("$ms")
  note "$(printf 'refresh_map: %10.1f ms (%d/2)' "$ms" "$i")"
done
IFS='|' read -r bent bbytes < <(map_stat big)
IFS='|' read -r mused mlimit < <(psql_v "SELECT m->>'used' || '|' || (m->>'limit') FROM (SELECT agentcache.health()->'map_memory' AS m) h")
note "$(awk -v t="$(median <<<"${LOAD_MS[*]}")" -v e="$bent" -v b="$bbytes" 'BEGIN {
  printf "median load time %.1f ms for %d entries (%.2f us/entry); map bytes=%d (%.1f bytes/entry, agentcache.stats)", t, e, 1000 * t / e, b, b / e }')"
note "$(awk -v u="$mused" -v l="$mlimit" -v b="$bbytes" 'BEGIN {
  printf "health()->map_memory: used=%d limit=%d (%.1f%%); a reload needs %d more bytes free beside the version in use", u, l, 100 * u / l, b }')"
[ "$bent" -eq "$INSTANCES_BIG" ] || die "map 'big' has $bent entries, expected $INSTANCES_BIG"
psql_b -At -c "SELECT agentcache.drop_map('big')" >/dev/null
note "drop_map('big'); map_memory used after: $(psql_v "SELECT agentcache.health()->'map_memory'->>'used'") bytes"

header "done: stopping and removing the temporary cluster"
