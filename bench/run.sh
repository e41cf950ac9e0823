#!/usr/bin/env bash
# agentcache benchmark: get_context() from shared memory vs. the plain SQL an
# application would write vs. SELECT 1, the lookup maps vs. a JOIN, and the
# TTL cache (get/fetch/put) vs. an application's own cache tables, measured
# with pgbench on a throwaway PostgreSQL 15 cluster; then the inbound-message
# hot path (inbound+outbound vs. plain SQL vs. Redis) and dedup_begin+
# dedup_complete vs. plain SQL, measured by bench/hotpath_client.c (libpq +
# hiredis) against the same cluster and a throwaway redis-server on loopback.
# Run as root on Debian 12 after `make install` and
# `apt-get install -y redis-server libhiredis-dev libpq-dev`:
#     bash bench/run.sh
# Env: SESSIONS (10000) TURNS (30) DURATION (8 s per pgbench run) RUNS (3)
#      CLIENTS ("1 8") BENCH_PORT (54330) SESSION_MEMORY ('160MB')
#      INSTANCES (1000 rows in the 'instances' lookup map)
#      INSTANCES_BIG (100000 entries for the map load measurement)
#      MAP_MEMORY ('128MB') KEYS (100000 ~1 KB entries in TTL namespace 'bench').
#      HOTPATH (1; 0 skips the hot-path section) ONLY ('' = everything;
#      'hotpath' = load sessions and the instances map, then only the hot-path
#      section) REDIS_PORT (first free port from 6390) HOTPATH_REDIS (unix:
#      the client reaches Redis through its Unix socket, like PostgreSQL's;
#      tcp: through 127.0.0.1:REDIS_PORT).
# Smoke test:
#   SESSIONS=200 DURATION=2 RUNS=1 INSTANCES=100 INSTANCES_BIG=2000 KEYS=2000 bash bench/run.sh
#   SESSIONS=200 DURATION=2 RUNS=1 INSTANCES=100 ONLY=hotpath bash bench/run.sh   # hot path only
# See bench/README.md for how to read the output.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

SESSIONS=${SESSIONS:-10000}
TURNS=${TURNS:-30}
DURATION=${DURATION:-8}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-"1 8"}
PORT=${BENCH_PORT:-54330}
SESSION_MEMORY=${SESSION_MEMORY:-160MB}
INSTANCES=${INSTANCES:-1000}
INSTANCES_BIG=${INSTANCES_BIG:-100000}
# A map reload builds the new version beside the one in use, so map_memory
# must hold two copies of the biggest map (plus every other map).
MAP_MEMORY=${MAP_MEMORY:-128MB}
KEYS=${KEYS:-100000}
HOTPATH=${HOTPATH:-1}
ONLY=${ONLY:-}
HOTPATH_REDIS=${HOTPATH_REDIS:-unix}
REDIS_PORT=${REDIS_PORT:-}
# output_floor returns one session's prebuilt context (same bytes as a warm
# get_context) from a one-row table: what sending ~8 KB of jsonb costs with no
# agentcache code at all. get_context_1 asks for the newest turn only: the
# cost of the shared-memory read path without the big response.
# resolve_instance reads the 'instances' lookup map from shared memory;
# plain_join is the integrations JOIN clinics query an application runs today
# (its baseline in the "vs plain SQL" column).
# map_floor returns one instance's record (the same bytes resolve_instance
# returns) from a one-row table: the response's own cost for the map rows.
# TTL cache, namespace 'bench' with KEYS ~1 KB entries: ttl_get vs. the
# lookup an application does in its own UNLOGGED cache table
# (plain_unlogged_get); ttl_fetch_hit (fetch() that always hits) vs. ttl_get;
# ttl_put vs. an upsert into an ordinary LOGGED table (plain_logged_upsert).
# get_context_budget: get_context with max_tokens cutting the window about in
# half (half the tokens of a session's 30 turns, overhead included): its
# "vs plain SQL" column divides by get_context (target >= 0.9x).
WORKLOADS=(select1 plain_sql get_context output_floor get_context_1 get_context_budget resolve_instance plain_join map_floor
           ttl_get plain_unlogged_get ttl_fetch_hit ttl_put plain_logged_upsert)
# workload -> the workload its "vs plain SQL" column divides by (default plain_sql)
declare -A BASELINE=([get_context_budget]=get_context [resolve_instance]=plain_join [plain_join]=plain_join [map_floor]=plain_join
                     [ttl_get]=plain_unlogged_get [plain_unlogged_get]=plain_unlogged_get
                     [ttl_fetch_hit]=ttl_get
                     [ttl_put]=plain_logged_upsert [plain_logged_upsert]=plain_logged_upsert)
# The write workloads run with production durability (fsync, full_page_writes
# and synchronous_commit on); everything else with the fast loading settings.
declare -A WRITES=([ttl_put]=1 [plain_logged_upsert]=1)
durability_of() { if [ -n "${WRITES[$1]:-}" ]; then printf durable; else printf fast; fi; }
baseline_of() { printf '%s' "${BASELINE[$1]:-plain_sql}"; }

is_uint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
for v in SESSIONS TURNS DURATION RUNS INSTANCES INSTANCES_BIG KEYS; do
  is_uint "${!v}" || die "$v must be a positive integer (got '${!v}')"
done
read -r -a CLIENT_LIST <<<"$CLIENTS"
[ "${#CLIENT_LIST[@]}" -gt 0 ] || die "CLIENTS must list at least one client count"
for c in "${CLIENT_LIST[@]}"; do is_uint "$c" || die "CLIENTS must be positive integers (got '$c')"; done
case $ONLY in '' | hotpath) ;; *) die "ONLY must be empty or 'hotpath' (got '$ONLY')" ;; esac
case $HOTPATH in 0 | 1) ;; *) die "HOTPATH must be 0 or 1 (got '$HOTPATH')" ;; esac
[ "$ONLY" != hotpath ] || [ "$HOTPATH" = 1 ] || die "ONLY=hotpath with HOTPATH=0 measures nothing"
case $HOTPATH_REDIS in unix | tcp) ;; *) die "HOTPATH_REDIS must be 'unix' or 'tcp' (got '$HOTPATH_REDIS')" ;; esac
[ -z "$REDIS_PORT" ] || is_uint "$REDIS_PORT" || die "REDIS_PORT must be a port number (got '$REDIS_PORT')"
if [ "$HOTPATH" = 1 ]; then
  for c in "${CLIENT_LIST[@]}"; do
    [ "$c" -le "$SESSIONS" ] || die "the hot-path section needs SESSIONS >= every client count (each connection owns its sessions)"
  done
fi

WORK=""
REDIS_DIR="" REDIS_PID=""
# stop_redis: shuts down the redis-server this script started (by its pid) and
# waits until it is gone. Safe to call twice.
stop_redis() {
  [ -n "$REDIS_PID" ] || return 0
  redis-cli -s "$REDIS_DIR/redis.sock" shutdown nosave >/dev/null 2>&1
  local i
  # still ours only while that pid is a redis-server (not a reused pid)
  # (a zombie waiting for init to reap it counts as gone)
  ours() {
    local comm state
    read -r _ comm state _ <"/proc/$REDIS_PID/stat" 2>/dev/null || return 1
    [ "$comm" = "(redis-server)" ] && [ "$state" != Z ]
  }
  for ((i = 0; i < 50; i++)); do
    ours || { REDIS_PID=""; return 0; }
    sleep 0.1
  done
  kill "$REDIS_PID" 2>/dev/null
  sleep 0.5
  ours && kill -9 "$REDIS_PID" 2>/dev/null
  REDIS_PID=""
}
cleanup() {
  local rc=$?
  set +e
  stop_redis
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
# the hot-path section's prerequisites, checked before anything long runs
if [ "$HOTPATH" = 1 ]; then
  missing=()
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  { command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 || missing+=(redis-server)
  [ -f /usr/include/hiredis/hiredis.h ] || missing+=(libhiredis-dev)
  [ -f "$("$PG_CONFIG" --includedir)/libpq-fe.h" ] || missing+=(libpq-dev)
  [ "${#missing[@]}" -eq 0 ] ||
    die "the hot-path section needs ${missing[*]}: run \`apt-get install -y redis-server libhiredis-dev libpq-dev gcc\` (or HOTPATH=0 to skip it)"
fi

header "setup"
note "sessions=$SESSIONS turns/session=$TURNS duration=${DURATION}s runs=$RUNS clients=${CLIENT_LIST[*]} port=$PORT"
note "instances=$INSTANCES (map 'instances'), instances_big=$INSTANCES_BIG (map load measurement), map_memory=$MAP_MEMORY"
note "keys=$KEYS (~1 KB jsonb entries in TTL namespace 'bench' and in each baseline table)"
note "host: $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg); pgbench and the server share these CPUs"

start_throwaway_cluster agentcache-bench "$PORT" "agentcache.session_memory = '$SESSION_MEMORY'
agentcache.map_memory = '$MAP_MEMORY'
shared_buffers = 1GB
max_connections = 50
fsync = off
synchronous_commit = off
full_page_writes = off"
note "cluster in $WORK (removed on exit): shared_buffers=1GB max_connections=50 agentcache.session_memory=$SESSION_MEMORY agentcache.map_memory=$MAP_MEMORY"
note "NOTE: fsync=off, synchronous_commit=off, full_page_writes=off for loading and the read-only workloads (not crash-safe);"
note "      the write workloads (ttl_put, plain_logged_upsert) run with fsync=on, full_page_writes=on, synchronous_commit=on"

psql_b() {
  aspg psql -X -q -h "$WORK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -P pager=off "$@"
}
# one value, unaligned
psql_v() { psql_b -At -c "$1"; }
# median of the numbers on stdin (space-separated)
median() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# wall-clock milliseconds of one statement, as psql's \timing reports it
# (client round trip included: well under 1 ms on a Unix socket)
psql_ms() {
  local out
  out=$(psql_b -At -c '\timing on' -c "$1") || return 1
  printf '%s\n' "$out" | awk '/^Time: / { print $2; found = 1 } END { if (!found) exit 1 }'
}
# the durability settings a new connection sees, as one line
durability_now() {
  psql_v "SELECT 'fsync=' || current_setting('fsync') || ' full_page_writes=' || current_setting('full_page_writes')
                 || ' synchronous_commit=' || current_setting('synchronous_commit')
                 || ' wal_sync_method=' || current_setting('wal_sync_method')"
}
# set_durability fast|durable: fsync, full_page_writes and synchronous_commit
# all off (loading, read-only workloads) or all on (production durability, for
# the write workloads). All three take effect on a reload (fsync and
# full_page_writes are sighup settings); ALTER SYSTEM + pg_reload_conf(), then
# wait until a new connection (what pgbench opens) sees the new values, since
# the postmaster applies the reload asynchronously. Sets DURABILITY and
# DURABILITY_SEEN[mode] (the settings read back).
DURABILITY=""
declare -A DURABILITY_SEEN
set_durability() {
  local mode=$1 v i now
  [ "$mode" != "$DURABILITY" ] || return 0
  case $mode in durable) v=on ;; fast) v=off ;; *) die "set_durability: unknown mode '$mode'" ;; esac
  psql_b -c "ALTER SYSTEM SET fsync = $v" -c "ALTER SYSTEM SET full_page_writes = $v" \
         -c "ALTER SYSTEM SET synchronous_commit = $v" -c 'SELECT pg_reload_conf()' >/dev/null
  for ((i = 0; i < 100; i++)); do
    now=$(durability_now)
    if [[ $now == "fsync=$v full_page_writes=$v synchronous_commit=$v "* ]]; then
      DURABILITY=$mode
      DURABILITY_SEEN[$mode]=$now
      return 0
    fi
    sleep 0.1
  done
  die "the server did not switch to $mode durability (fsync/full_page_writes/synchronous_commit = $v); it shows: $now"
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

if [ "$ONLY" != hotpath ]; then # ---- TTL cache load (skipped with ONLY=hotpath); body not indented
# ~1 KB of jsonb per entry: the kind of value an agent caches (a model answer
# with a little metadata). ttl_value_sql KEYEXPR NUMEXPR -> SQL expression.
ttl_value_sql() {
  printf '%s' "jsonb_build_object('key', $1, 'model', 'bench-model-v1', 'tokens', 100 + ($2) % 900, 'cached', true, 'answer', left(repeat(md5(($2)::text), 30), 950))"
}
header "TTL cache: $KEYS entries of ~1 KB in namespace 'bench' + the same rows in app_cache_unlogged and app_cache_logged"
t0=$(date +%s.%N)
psql_b -c "
  INSERT INTO agentcache.entries (namespace, key, value, expires_at)
  SELECT 'bench', 'k' || k, $(ttl_value_sql "'k' || k" k), now() + interval '1 day'
    FROM generate_series(1, $KEYS) AS k;
  SELECT agentcache.configure_namespace('bench', '1 day');
  CREATE UNLOGGED TABLE public.app_cache_unlogged (key text PRIMARY KEY, value jsonb, expires_at timestamptz);
  CREATE TABLE public.app_cache_logged (key text PRIMARY KEY, value jsonb, expires_at timestamptz);
  INSERT INTO public.app_cache_unlogged SELECT key, value, expires_at FROM agentcache.entries WHERE namespace = 'bench';
  INSERT INTO public.app_cache_logged SELECT key, value, expires_at FROM agentcache.entries WHERE namespace = 'bench';" >/dev/null
psql_b -c 'VACUUM ANALYZE agentcache.entries, agentcache.namespaces, public.app_cache_unlogged, public.app_cache_logged'
t1=$(date +%s.%N)
note "$(psql_v "SELECT count(*) || ' entries, avg value ' || round(avg(length(value::text))) || ' characters of JSON text / '
                       || round(avg(pg_column_size(value))) || ' bytes of jsonb; agentcache.entries table+indexes '
                       || pg_size_pretty(pg_total_relation_size('agentcache.entries'))
                  FROM agentcache.entries WHERE namespace = 'bench'")"
note "$(psql_v "SELECT 'app_cache_unlogged ' || pg_size_pretty(pg_total_relation_size('public.app_cache_unlogged'))
                       || ', app_cache_logged ' || pg_size_pretty(pg_total_relation_size('public.app_cache_logged')) || ' (table+index)'")"
note "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "loaded and vacuumed in %.1f s", b - a }')"
# the value ttl_put and plain_logged_upsert write (same shape and size)
PUT_VALUE=$(psql_v "SELECT $(ttl_value_sql "'w'" 0)::text")
case $PUT_VALUE in *"'"* | *:[A-Za-z_]*) die "the put value must contain no quote and no :name (pgbench variable syntax)" ;; esac
note "write value: ${#PUT_VALUE} characters of JSON text"
fi # ---- end of the TTL cache load

# Everything is loaded: write it out now (fast, fsync=off) so that no
# checkpoint flushes the load during a measured run, and read the tables the
# workloads use into shared_buffers (bulk loads and VACUUM use small rings).
psql_b -c 'CHECKPOINT' >/dev/null
PREWARM_RELS="'agentcache.turns', 'agentcache.turns_pkey'"
[ "$ONLY" = hotpath ] || PREWARM_RELS+=", 'agentcache.entries', 'agentcache.entries_pkey', 'public.app_cache_unlogged',
                                           'public.app_cache_unlogged_pkey', 'public.app_cache_logged', 'public.app_cache_logged_pkey'"
HAVE_PREWARM=0
if psql_b -c 'CREATE EXTENSION pg_prewarm' >/dev/null 2>&1; then
  HAVE_PREWARM=1
  note "pg_prewarm: $(psql_v "SELECT sum(pg_prewarm(c::regclass)) || ' blocks read into shared_buffers'
                               FROM unnest(ARRAY[$PREWARM_RELS]) AS c")"
else
  note "pg_prewarm not available (postgresql-contrib); the first runs read the tables into shared_buffers"
fi
psql_b -c 'SELECT agentcache.reset_stats()' >/dev/null

if [ "$ONLY" != hotpath ]; then # ---- pgbench and map load (skipped with ONLY=hotpath); body not indented
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
cat >"$WORK/get_context_budget.sql" <<'EOF'
\set s random(1, :sessions)
SELECT agentcache.get_context('sess-' || :s, max_tokens => :half_tokens);
EOF
# half of sess-1's 30 turns in tokens (content + agentcache.turn_token_overhead each)
HALF_TOKENS=$(psql_v "SELECT ((sum(agentcache.token_count(content)) + count(*) * current_setting('agentcache.turn_token_overhead')::int) / 2)::int
                      FROM (SELECT content FROM agentcache.turns WHERE session_id = 'sess-1' ORDER BY seq DESC LIMIT 30) t")
note "get_context_budget: max_tokens => $HALF_TOKENS (half of sess-1's newest 30 turns: $(psql_v "SELECT jsonb_array_length(agentcache.get_context('sess-1', max_tokens => $HALF_TOKENS))") of 30 turns fit)"
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
cat >"$WORK/ttl_get.sql" <<'EOF'
\set k random(1, :keys)
SELECT agentcache.get('bench', 'k' || :k);
EOF
cat >"$WORK/plain_unlogged_get.sql" <<'EOF'
\set k random(1, :keys)
SELECT value FROM app_cache_unlogged WHERE key = 'k' || :k AND (expires_at IS NULL OR expires_at > clock_timestamp());
EOF
cat >"$WORK/ttl_fetch_hit.sql" <<'EOF'
\set k random(1, :keys)
SELECT agentcache.fetch('bench', 'k' || :k, 'SELECT 1');
EOF
# the write scripts: new keys 'w1'..'wKEYS' (inserts first, then updates)
cat >"$WORK/ttl_put.sql" <<EOF
\\set k random(1, :keys)
SELECT agentcache.put('bench', 'w' || :k, '$PUT_VALUE'::jsonb, '1 hour');
EOF
cat >"$WORK/plain_logged_upsert.sql" <<EOF
\\set k random(1, :keys)
INSERT INTO app_cache_logged VALUES ('w' || :k, '$PUT_VALUE', now() + '1 hour') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at;
EOF
chown postgres:postgres "$WORK"/*.sql

header "pgbench: -n -M prepared -T $DURATION, clients ${CLIENT_LIST[*]}, $RUNS run(s), workloads interleaved"
set_durability durable
note "write workloads (ttl_put, plain_logged_upsert): ${DURABILITY_SEEN[durable]}"
set_durability fast
note "all other workloads (read-only):                ${DURABILITY_SEEN[fast]}"
note "(switched with ALTER SYSTEM + pg_reload_conf() before the first write workload of each run and back after it; checked from a new connection each time)"
declare -A TPS   # key "workload:clients" -> space-separated TPS of each run
for ((run = 1; run <= RUNS; run++)); do
  for c in "${CLIENT_LIST[@]}"; do
    for w in "${WORKLOADS[@]}"; do
      set_durability "$(durability_of "$w")"
      out=$(aspg pgbench -n -M prepared -T "$DURATION" -c "$c" -j "$c" -D "sessions=$SESSIONS" -D "instances=$INSTANCES" -D "keys=$KEYS" -D "half_tokens=$HALF_TOKENS" \
              -h "$WORK" -p "$PORT" -U postgres -f "$WORK/$w.sql" postgres 2>&1) || {
        printf '%s\n' "$out" >&2
        die "pgbench failed ($w, $c clients)"
      }
      tps=$(printf '%s\n' "$out" | awk '/^tps = / { print $3; exit }')
      [ -n "$tps" ] || { printf '%s\n' "$out" >&2; die "no tps in pgbench output ($w, $c clients)"; }
      TPS[$w:$c]="${TPS[$w:$c]:-}${TPS[$w:$c]:+ }$(printf '%.0f' "$tps")"
      note "run $run/$RUNS  clients=$c  $(printf '%-19s' "$w") $(printf '%10.0f' "$tps") tps  ($DURABILITY)"
    done
  done
done
set_durability fast

declare -A MED
for c in "${CLIENT_LIST[@]}"; do
  for w in "${WORKLOADS[@]}"; do MED[$w:$c]=$(median <<<"${TPS[$w:$c]}"); done
done

header "results (median of $RUNS run(s) of ${DURATION}s; $SESSIONS sessions x $TURNS turns; $INSTANCES instances; $KEYS TTL keys)"
printf '  %-19s | %7s | %10s | %11s | %13s | %-19s | %s\n' workload clients "median TPS" "vs SELECT 1" "vs plain SQL" baseline "TPS per run"
printf '  %s\n' "--------------------+---------+------------+-------------+---------------+---------------------+-------------------"
for c in "${CLIENT_LIST[@]}"; do
  for w in "${WORKLOADS[@]}"; do
    b=$(baseline_of "$w")
    awk -v w="$w" -v c="$c" -v m="${MED[$w:$c]}" -v s="${MED[select1:$c]}" -v p="${MED[$b:$c]}" -v b="$b" -v runs="${TPS[$w:$c]}" \
      'BEGIN { printf "  %-19s | %7d | %10.0f | %10.2fx | %12.2fx | %-19s | %s\n", w, c, m, m / s, m / p, b, runs }'
  done
done
printf '  durability: ttl_put, plain_logged_upsert ran with %s;\n              all other rows with %s\n' \
  "${DURABILITY_SEEN[durable]}" "${DURABILITY_SEEN[fast]}"

printf '\n  targets (8 clients): '
if [ -n "${MED[get_context:8]:-}" ]; then
  awk -v g="${MED[get_context:8]}" -v s="${MED[select1:8]}" -v p="${MED[plain_sql:8]}" 'BEGIN {
    r1 = g / s; r2 = g / p
    printf "get_context >= 0.8x SELECT 1: %.2fx %s;  get_context >= 2x plain SQL: %.2fx %s\n",
      r1, (r1 >= 0.8 ? "PASS" : "MISS"), r2, (r2 >= 2 ? "PASS" : "MISS") }'
  awk -v g="${MED[get_context:8]}" -v f="${MED[output_floor:8]}" -v s="${MED[select1:8]}" -v g1="${MED[get_context_1:8]}" 'BEGIN {
    printf "  output floor (8 clients): returning the same ~8 KB context from a one-row table, no agentcache code, runs at %.2fx SELECT 1;\n", f / s
    printf "  get_context reaches %.0f%% of that floor; with max_turns => 1 (small response) it runs at %.2fx SELECT 1.\n", 100 * g / f, g1 / s }'
  awk -v b="${MED[get_context_budget:8]}" -v g="${MED[get_context:8]}" 'BEGIN {
    r = b / g
    printf "  token budget (8 clients): get_context with max_tokens (half the window) >= 0.9x get_context: %.2fx %s\n", r, (r >= 0.9 ? "PASS" : "MISS") }'
  awk -v r="${MED[resolve_instance:8]}" -v s="${MED[select1:8]}" -v p="${MED[plain_join:8]}" 'BEGIN {
    r1 = r / s; r2 = r / p
    printf "  maps (8 clients): resolve_instance >= 0.95x SELECT 1: %.2fx %s;  resolve_instance >= 1.5x plain_join: %.2fx %s\n",
      r1, (r1 >= 0.95 ? "PASS" : "MISS"), r2, (r2 >= 1.5 ? "PASS" : "MISS") }'
  awk -v r="${MED[resolve_instance:8]}" -v f="${MED[map_floor:8]}" -v s="${MED[select1:8]}" 'BEGIN {
    printf "  map output floor (8 clients): the same record from a one-row table runs at %.2fx SELECT 1; resolve_instance reaches %.0f%% of it.\n", f / s, 100 * r / f }'
else
  printf 'not measured (8 is not in CLIENTS)\n'
fi
# TTL cache targets, at 1 and at 8 clients (whichever of them CLIENTS has)
for c in 1 8; do
  if [ -z "${MED[ttl_get:$c]:-}" ]; then
    note "TTL targets ($c client(s)): not measured ($c is not in CLIENTS)"
    continue
  fi
  awk -v c="$c" -v g="${MED[ttl_get:$c]}" -v pg="${MED[plain_unlogged_get:$c]}" -v f="${MED[ttl_fetch_hit:$c]}" \
      -v p="${MED[ttl_put:$c]}" -v pu="${MED[plain_logged_upsert:$c]}" 'BEGIN {
    r1 = g / pg; r2 = p / pu; r3 = f / g
    printf "  TTL targets (%d client%s): ttl_get >= 0.9x plain_unlogged_get: %.2fx %s;  ttl_put >= 2.5x plain_logged_upsert: %.2fx %s;  ttl_fetch_hit >= 0.9x ttl_get: %.2fx %s\n",
      c, (c == 1 ? "" : "s"), r1, (r1 >= 0.9 ? "PASS" : "MISS"), r2, (r2 >= 2.5 ? "PASS" : "MISS"), r3, (r3 >= 0.9 ? "PASS" : "MISS") }'
done

IFS='|' read -r hits misses < <(psql_v "SELECT sum(hits), sum(misses) FROM agentcache.stats WHERE tier = 'session'")
awk -v h="$hits" -v m="$misses" 'BEGIN {
  printf "  session cache during the runs (agentcache.stats): hits=%d misses=%d hit ratio=%s\n",
    h, m, (h + m > 0 ? sprintf("%.4f", h / (h + m)) : "n/a") }'
IFS='|' read -r hits misses < <(psql_v "SELECT hits, misses FROM agentcache.stats WHERE tier = 'map' AND name = 'instances'")
awk -v h="$hits" -v m="$misses" 'BEGIN {
  printf "  map \047instances\047 during the runs (agentcache.stats): hits=%d misses=%d hit ratio=%s\n",
    h, m, (h + m > 0 ? sprintf("%.4f", h / (h + m)) : "n/a") }'
IFS='|' read -r hits misses < <(psql_v "SELECT coalesce(sum(hits), 0) || '|' || coalesce(sum(misses), 0) FROM agentcache.stats WHERE tier = 'ttl' AND name = 'bench'")
awk -v h="$hits" -v m="$misses" 'BEGIN {
  printf "  TTL namespace \047bench\047 during the runs (agentcache.stats): hits=%d misses=%d hit ratio=%s (ttl_get and ttl_fetch_hit always hit)\n",
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
fi # ---- end of pgbench and map load

# ------------------------------------------------------------ hot path (last)
# inbound+outbound vs. the same steps as separate plain-SQL statements vs. the
# Redis hot path, and dedup_begin+dedup_complete vs. plain SQL, all measured by
# one client program (bench/hotpath_client.c, libpq + hiredis). Skipped with
# HOTPATH=0. See bench/README.md for exactly what each mode sends.
if [ "$HOTPATH" = 1 ]; then # ---- body not indented
# HOTPATH_MODES (space-separated) runs a subset, e.g. to measure an older build
# that lacks claim leases: HOTPATH_MODES="agentcache plainsql redis redis_pg_full"
read -r -a HP_MODES <<<"${HOTPATH_MODES:-agentcache agentcache_nolease plainsql redis redis_pipelined redis_pg_full dedup dedup_plain takeover outbox}"
# the results table divides by these: a subset must keep them
for base in plainsql redis redis_pg_full; do
  [[ " ${HP_MODES[*]} " == *" $base "* ]] || die "HOTPATH_MODES must include $base (the results table's baselines)"
done
header "hot path: ${HP_MODES[*]} (bench/hotpath_client.c, libpq + hiredis)"
HP_BIN=$WORK/hotpath_client
gcc -O2 -Wall -o "$HP_BIN" "$ROOT/bench/hotpath_client.c" -I"$("$PG_CONFIG" --includedir)" \
  -L"$("$PG_CONFIG" --libdir)" -lpq -lhiredis -lpthread -lm || die "could not compile bench/hotpath_client.c"
chmod 755 "$HP_BIN"
note "compiled $HP_BIN (gcc -O2; libpq-dev $(dpkg-query -W -f='${Version}' libpq-dev 2>/dev/null || echo '?'), libhiredis-dev $(dpkg-query -W -f='${Version}' libhiredis-dev 2>/dev/null || echo '?'))"

# What an application keeps without the extension: its own turns table (a
# copy of agentcache.turns, same primary key) and its own dedup state table.
psql_b -c "CREATE TABLE public.app_turns (LIKE agentcache.turns INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
  INSERT INTO public.app_turns SELECT * FROM agentcache.turns;
  CREATE TABLE public.app_dedup (message_id text PRIMARY KEY, state text NOT NULL, holder_pid int,
                                 attempts int NOT NULL, updated_at timestamptz, expires_at timestamptz);" >/dev/null
psql_b -c 'VACUUM ANALYZE public.app_turns, public.app_dedup' >/dev/null
CTX_TURNS=$(psql_v 'SHOW agentcache.context_turns')
note "public.app_turns: $(psql_v "SELECT count(*) || ' rows (copy of agentcache.turns), ' || pg_size_pretty(pg_total_relation_size('public.app_turns')) || ' table+index' FROM public.app_turns"); public.app_dedup: empty"
note "context: the newest $CTX_TURNS turns (agentcache.context_turns) in every mode"

# redis-server: loopback TCP + a Unix socket in its own directory, no
# persistence, run as the postgres user, stopped by the EXIT trap.
REDIS_DIR=$WORK/redis
mkdir -p "$REDIS_DIR"
chown postgres:postgres "$REDIS_DIR"
chmod 700 "$REDIS_DIR"
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# REDIS_PORT given: that port only; else the first free one from 6390 on
if [ -n "$REDIS_PORT" ]; then first_port=$REDIS_PORT last_port=$REDIS_PORT; else first_port=6390 last_port=6409; fi
REDIS_PORT=""
for ((p = first_port; p <= last_port; p++)); do
  port_in_use "$p" && continue
  rm -f "$REDIS_DIR/redis.pid"
  aspg redis-server --bind 127.0.0.1 --port "$p" --protected-mode yes \
    --unixsocket "$REDIS_DIR/redis.sock" --unixsocketperm 700 \
    --save '' --appendonly no --daemonize yes --pidfile "$REDIS_DIR/redis.pid" \
    --logfile "$REDIS_DIR/redis.log" --dir "$REDIS_DIR" || continue
  # redis writes its pidfile after it starts listening: wait for both
  up=0
  for ((i = 0; i < 100; i++)); do
    [ -s "$REDIS_DIR/redis.pid" ] && REDIS_PID=$(cat "$REDIS_DIR/redis.pid")
    if [ -n "$REDIS_PID" ] && [ "$(redis-cli -s "$REDIS_DIR/redis.sock" ping 2>/dev/null)" = PONG ]; then
      up=1
      break
    fi
    sleep 0.1
  done
  if [ "$up" = 1 ]; then
    REDIS_PORT=$p
    break
  fi
  stop_redis # stops it if it wrote its pid at all (a failed bind exits by itself)
done
if [ -z "$REDIS_PID" ]; then
  tail -n 20 "$REDIS_DIR/redis.log" >&2 2>/dev/null
  die "could not start redis-server on 127.0.0.1 (port(s) $first_port..$last_port in use or failing; see the log above)"
fi
note "redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') pid $REDIS_PID: bind $(redis-cli -s "$REDIS_DIR/redis.sock" config get bind | tail -n 1) port $REDIS_PORT and unix socket $REDIS_DIR/redis.sock; save '$(redis-cli -s "$REDIS_DIR/redis.sock" config get save | tail -n 1)' appendonly $(redis-cli -s "$REDIS_DIR/redis.sock" config get appendonly | tail -n 1)"
note "listening: $(ss -Hltnp 2>/dev/null | awk -v pid="pid=$REDIS_PID," 'index($0, pid) { printf "%s ", $4 }')"
if [ "$HOTPATH_REDIS" = tcp ]; then REDIS_ADDR=127.0.0.1:$REDIS_PORT; else REDIS_ADDR=$REDIS_DIR/redis.sock; fi
note "the client reaches Redis at $REDIS_ADDR (HOTPATH_REDIS=$HOTPATH_REDIS) and PostgreSQL at its Unix socket in $WORK"
HP_CONNINFO="host=$WORK port=$PORT user=postgres dbname=postgres"
hp_client() {
  aspg "$HP_BIN" -d "$HP_CONNINFO" -r "$REDIS_ADDR" -s "$SESSIONS" -i "$INSTANCES" -t "$CTX_TURNS" "$@"
}
out=$(hp_client -m prewarm_redis -c 1 -T 1) || { printf '%s\n' "$out" >&2; die "prewarming Redis failed"; }
note "Redis prewarmed: $out (route:<instance> = the instances map value; ctx:<session> = the newest $CTX_TURNS turns as JSON)"

# production durability: every mode writes (turns and dedup state)
set_durability durable
note "durability for every hot-path mode: ${DURABILITY_SEEN[durable]} (Redis: no persistence)"
psql_b -c 'CHECKPOINT' >/dev/null
if [ "$HAVE_PREWARM" = 1 ]; then
  note "pg_prewarm: $(psql_v "SELECT sum(pg_prewarm(c::regclass)) || ' blocks of app_turns, app_dedup, integrations, clinics read into shared_buffers'
                               FROM unnest(ARRAY['public.app_turns', 'public.app_turns_pkey', 'public.app_dedup',
                                                 'public.integrations', 'public.integrations_pkey',
                                                 'public.clinics', 'public.clinics_pkey']) AS c")"
fi

header "hot path runs: -T $DURATION, connections ${CLIENT_LIST[*]}, $RUNS run(s), modes interleaved"
declare -A HP_OPS HP_P50 HP_P99 # key "mode:conns" -> space-separated values of each run
declare -A HP_WALB HP_SYNC      # key "mode:conns" -> WAL bytes / WAL syncs per message, per run
for ((run = 1; run <= RUNS; run++)); do
  for c in "${CLIENT_LIST[@]}"; do
    for m in "${HP_MODES[@]}"; do
      read -r wal0 sync0 < <(psql_v "SELECT wal_bytes || ' ' || wal_sync FROM pg_stat_wal")
      # HP_PERF=mode:conns records a system-wide profile (perf, call graphs)
      # of that mode's first run into /tmp/agentcache-perf-MODE-CONNS.data
      perf_pid=""
      if [ "$run" = 1 ] && [ "${HP_PERF:-}" = "$m:$c" ]; then
        perf record -q -a -g -o "/tmp/agentcache-perf-$m-$c.data" -- sleep "$DURATION" 2>/dev/null &
        perf_pid=$!
      fi
      # HP_WAITS="mode:conns ..." samples what those modes' client backends are doing
      # (pg_stat_activity: the wait event of an active one, or CPU; idle: the
      # client's turn) every 10 ms during its first run
      waits_pid=""
      if [ "$run" = 1 ] && [[ " ${HP_WAITS:-} " == *" $m:$c "* ]]; then
        psql_v "CREATE TEMP TABLE w (ev text);
          DO \$w\$ BEGIN
            FOR i IN 1..$((DURATION * 100 - 50)) LOOP
              PERFORM pg_catalog.pg_stat_clear_snapshot();
              INSERT INTO w SELECT CASE WHEN a.state = 'active'
                                        THEN coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU')
                                        ELSE 'idle (client turn)' END
                FROM pg_catalog.pg_stat_activity a
               WHERE a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid();
              PERFORM pg_catalog.pg_sleep(0.01);
            END LOOP;
          END \$w\$;
          SELECT string_agg(ev || ' ' || round(100.0 * n / t, 1) || '%', ', ' ORDER BY n DESC)
            FROM (SELECT ev, count(*) AS n, sum(count(*)) OVER () AS t FROM w GROUP BY ev) s" >"$WORK/waits.txt" 2>&1 &
        waits_pid=$!
      fi
      out=$(hp_client -m "$m" -c "$c" -T "$DURATION" -p "r$run-c$c-$m" 2>&1) || {
        printf '%s\n' "$out" >&2
        die "hotpath_client failed ($m, $c connections)"
      }
      read -r wal1 sync1 < <(psql_v "SELECT wal_bytes || ' ' || wal_sync FROM pg_stat_wal")
      if [ -n "$waits_pid" ]; then
        wait "$waits_pid" || true
        note "what $m's backends waited on at $c connections (share of 10 ms samples of its backends): $(tail -n 1 "$WORK/waits.txt")"
      fi
      if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || true
        note "perf profile of $m at $c connections: /tmp/agentcache-perf-$m-$c.data (perf report -i ...)"
      fi
      read -r ops p50 p99 nops < <(printf '%s\n' "$out" | awk '/^RESULT / {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["ops_per_s"], v["p50_ms"], v["p99_ms"], v["ops"]; exit }')
      HP_WALB[$m:$c]="${HP_WALB[$m:$c]:-}${HP_WALB[$m:$c]:+ }$(awk -v a="$wal0" -v b="$wal1" -v n="$nops" 'BEGIN { printf "%.0f", (b - a) / (n > 0 ? n : 1) }')"
      HP_SYNC[$m:$c]="${HP_SYNC[$m:$c]:-}${HP_SYNC[$m:$c]:+ }$(awk -v a="$sync0" -v b="$sync1" -v n="$nops" 'BEGIN { printf "%.2f", (b - a) / (n > 0 ? n : 1) }')"
      [ -n "${p99:-}" ] || { printf '%s\n' "$out" >&2; die "no RESULT line from hotpath_client ($m, $c connections)"; }
      HP_OPS[$m:$c]="${HP_OPS[$m:$c]:-}${HP_OPS[$m:$c]:+ }$(printf '%.0f' "$ops")"
      HP_P50[$m:$c]="${HP_P50[$m:$c]:-}${HP_P50[$m:$c]:+ }$p50"
      HP_P99[$m:$c]="${HP_P99[$m:$c]:-}${HP_P99[$m:$c]:+ }$p99"
      note "$(printf 'run %d/%d  conns=%d  %-15s %9.0f ops/s  p50 %7.3f ms  p99 %7.3f ms' "$run" "$RUNS" "$c" "$m" "$ops" "$p50" "$p99")"
    done
  done
done

declare -A HP_MED HP_M50 HP_M99
for c in "${CLIENT_LIST[@]}"; do
  for m in "${HP_MODES[@]}"; do
    HP_MED[$m:$c]=$(median <<<"${HP_OPS[$m:$c]}")
    HP_M50[$m:$c]=$(median <<<"${HP_P50[$m:$c]}")
    HP_M99[$m:$c]=$(median <<<"${HP_P99[$m:$c]}")
  done
done
# mode -> the plain-SQL mode its "vs plain SQL" column divides by
declare -A HP_BASE=([dedup]=dedup_plain [dedup_plain]=dedup_plain [takeover]=dedup_plain [outbox]=dedup_plain)
header "hot path results (median of $RUNS run(s) of ${DURATION}s; one op = one message: inbound+outbound, or begin+complete)"
printf '  %-15s | %5s | %12s | %8s | %8s | %12s | %9s | %s\n' mode conns "median ops/s" "p50 ms" "p99 ms" "vs plain SQL" "vs redis" "ops/s per run"
printf '  %s\n' "----------------+-------+--------------+----------+----------+--------------+-----------+--------------"
for c in "${CLIENT_LIST[@]}"; do
  for m in "${HP_MODES[@]}"; do
    b=${HP_BASE[$m]:-plainsql}
    awk -v m="$m" -v c="$c" -v o="${HP_MED[$m:$c]}" -v p50="${HP_M50[$m:$c]}" -v p99="${HP_M99[$m:$c]}" \
        -v p="${HP_MED[$b:$c]}" -v r="${HP_MED[redis:$c]}" -v b="$b" -v runs="${HP_OPS[$m:$c]}" 'BEGIN {
      vr = (b == "plainsql") ? sprintf("%8.2fx", o / r) : sprintf("%9s", "-")
      printf "  %-15s | %5d | %12.0f | %8.3f | %8.3f | %11.2fx | %s | %s\n", m, c, o, p50, p99, o / p, vr, runs }'
  done
done
note "vs plain SQL: agentcache, plainsql, redis, redis_pipelined, redis_pg_full divide by plainsql; dedup and dedup_plain by dedup_plain"
printf '\n  WAL per message (pg_stat_wal deltas / messages; median of the runs; the Redis modes write only their PostgreSQL part):\n'
for c in "${CLIENT_LIST[@]}"; do
  for m in "${HP_MODES[@]}"; do
    printf '    %-15s conns=%d  WAL bytes %6s  WAL syncs %5s\n' "$m" "$c" "$(median <<<"${HP_WALB[$m:$c]}")" "$(median <<<"${HP_SYNC[$m:$c]}")"
  done
done
note "durability: ${DURABILITY_SEEN[durable]}; Redis without persistence; PostgreSQL over its Unix socket, Redis at $REDIS_ADDR"
printf '\n'
for c in 1 8; do
  if [ -z "${HP_MED[agentcache:$c]:-}" ]; then
    note "hot-path targets ($c connection(s)): not measured ($c is not in CLIENTS)"
    continue
  fi
  awk -v c="$c" -v a="${HP_MED[agentcache:$c]}" -v p="${HP_MED[plainsql:$c]}" -v r="${HP_MED[redis:$c]}" \
      -v a99="${HP_M99[agentcache:$c]}" -v r99="${HP_M99[redis:$c]}" \
      -v rp="${HP_MED[redis_pipelined:$c]:-0}" -v rp99="${HP_M99[redis_pipelined:$c]:-0}" 'BEGIN {
    r1 = a / p; r2 = a / r
    printf "  hot-path targets (%d connection%s): inbound+outbound >= 1.5x plainsql: %.2fx %s;  ahead of redis in ops/s: %.2fx %s;  in p99: %.3f vs %.3f ms %s\n",
      c, (c == 1 ? "" : "s"), r1, (r1 >= 1.5 ? "PASS" : "MISS"), r2, (r2 > 1 ? "PASS" : "MISS"), a99, r99, (a99 < r99 ? "PASS" : "MISS")
    if (rp > 0) printf "    (no target) vs redis_pipelined: %.2fx ops/s, p99 %.3f vs %.3f ms\n", a / rp, a99, rp99 }'
  # issue 13: against Redis + PostgreSQL storing the same (both turns, the completed state)
  [ -n "${HP_MED[redis_pg_full:$c]:-}" ] || continue
  awk -v c="$c" -v a="${HP_MED[agentcache:$c]}" -v f="${HP_MED[redis_pg_full:$c]}" \
      -v a99="${HP_M99[agentcache:$c]}" -v f99="${HP_M99[redis_pg_full:$c]}" 'BEGIN {
    need = (c == 8 ? 1.5 : 1.25); r = a / f; q = a99 / f99
    printf "  vs redis_pg_full (%d connection%s): ops/s %.2fx (target >= %.2fx) %s;  p99 %.3f vs %.3f ms = %.2fx (target <= 0.80x) %s\n",
      c, (c == 1 ? "" : "s"), r, need, (r >= need ? "PASS" : "MISS"), a99, f99, q, (q <= 0.8 ? "PASS" : "MISS") }'
done
for c in "${CLIENT_LIST[@]}"; do
  awk -v c="$c" -v a="${HP_MED[agentcache:$c]:-0}" -v n="${HP_MED[agentcache_nolease:$c]:-0}" \
      -v t="${HP_MED[takeover:$c]:-0}" -v d="${HP_MED[dedup:$c]:-0}" -v o="${HP_MED[outbox:$c]:-0}" 'BEGIN {
    s = (c == 1 ? "" : "s")
    if (a > 0 && n > 0) printf "  leases (%d connection%s, no target): inbound+outbound with the 5 min lease runs at %.2fx of claim_lease = 0\n", c, s, a / n
    if (t > 0) printf "  fenced takeover (%d connection%s): %.0f cycles/s (holder acquires, lease over, contender takes over + completes, holder fenced) vs %.0f dedup_begin+dedup_complete/s\n", c, s, t, d
    if (o > 0) printf "  outbox (%d connection%s): %.0f replies/s locked by pending_replies and marked by reply_sent (one per statement)\n", c, s, o }'
  [ -n "${HP_MED[dedup:$c]:-}" ] && [ -n "${HP_MED[dedup_plain:$c]:-}" ] || continue
  awk -v c="$c" -v d="${HP_MED[dedup:$c]}" -v p="${HP_MED[dedup_plain:$c]}" 'BEGIN {
    printf "  dedup (%d connection%s, no target): dedup_begin+dedup_complete runs at %.2fx INSERT ... ON CONFLICT + pg_try_advisory_lock/unlock\n",
      c, (c == 1 ? "" : "s"), d / p }'
done
note "rows written: agentcache.dedup $(psql_v 'SELECT count(*) FROM agentcache.dedup'), public.app_dedup $(psql_v 'SELECT count(*) FROM public.app_dedup'); agentcache.stats dedup: $(psql_v "SELECT 'acquired (misses)=' || misses || ' duplicate (hits)=' || hits || ' in_progress=' || stale_hits FROM agentcache.stats WHERE tier = 'dedup'")"
note "host load average after the hot-path runs: $(cut -d' ' -f1-3 /proc/loadavg)"
stop_redis
note "redis-server stopped"
set_durability fast
fi # ---- end of the hot path

header "done: stopping and removing the temporary cluster"
