#!/usr/bin/env bash
# agentcache demo: from a fresh clone on Debian 12, as root:
#     bash scripts/demo.sh
# Installs the dependencies, builds and installs the extension, starts a
# throwaway PostgreSQL 15 cluster in /tmp with agentcache preloaded, plays a
# short clinic-assistant conversation, and removes the cluster on exit.
# Env: DEMO_PORT (default 54329), AGENTCACHE_SKIP_APT=1 to skip apt-get.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

PORT=${DEMO_PORT:-54329}
WORK=""
STAGED=0
SRC=""

cleanup() {
  local rc=$?
  set +e
  stop_throwaway_cluster "$rc"
  [ "$STAGED" = 1 ] && [ -n "$SRC" ] && rm -rf "$SRC"
  if [ "$rc" -ne 0 ]; then
    printf '\ndemo FAILED (exit %s); the temporary cluster was stopped and removed\n' "$rc" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_root

header "1/5 dependencies (apt)"
if [ "${AGENTCACHE_SKIP_APT:-0}" = 1 ]; then
  note "skipped (AGENTCACHE_SKIP_APT=1)"
else
  apt_install
fi

header "2/5 build (as postgres) and install (as root)"
prepare_tree "$ROOT"
cd "$SRC"
aspg make -j2 PG_CONFIG="$PG_CONFIG"
make install PG_CONFIG="$PG_CONFIG"

header "3/5 throwaway cluster on port $PORT"
start_throwaway_cluster agentcache-demo "$PORT"
note "data directory $WORK/data, socket in $WORK"

psql_demo() {
  runuser -u postgres -- env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
    "$PGBIN/psql" -X -h "$WORK" -p "$PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -P pager=off
}

header "4/5 conversation memory"
psql_demo <<'SQL'
\echo '-- CREATE EXTENSION agentcache;'
CREATE EXTENSION agentcache;

\echo
\echo '-- a WhatsApp conversation with the clinic assistant (add_turn returns the turn''s seq)'
SELECT agentcache.add_turn('whatsapp:+5511999990000', 'system',
  'You are the clinic assistant of Clinica Boa Vida. Be brief and kind. Book, move or cancel appointments; never give medical advice.') AS seq;
SELECT agentcache.add_turn('whatsapp:+5511999990000', 'user',
  'Hi! Can I see Dr. Souza on Thursday morning?') AS seq;
SELECT agentcache.add_turn('whatsapp:+5511999990000', 'assistant',
  'Dr. Souza has 9:00 and 10:30 free on Thursday. Which one suits you?') AS seq;
SELECT agentcache.add_turn('whatsapp:+5511999990000', 'user',
  '10:30 please. My name is Ana Lima.',
  '{"channel": "whatsapp", "message_id": "wamid.HBgNNTUxMTk5OTk5MDAwMBUCABIYFjNBMDQ", "instance": "clinic-boavida"}'::jsonb) AS seq;

\echo
\echo '-- the prompt context, oldest first: get_context(session)'
SELECT jsonb_pretty(agentcache.get_context('whatsapp:+5511999990000')) AS context;

\echo
\echo '-- get_context(session, max_turns => NULL, max_chars => 120): trimmed from the oldest side'
SELECT jsonb_pretty(agentcache.get_context('whatsapp:+5511999990000', NULL, 120)) AS context;

\echo
\echo '-- as rows: get_turns(session)'
SELECT seq, role, left(content, 60) AS content, meta, created_at
  FROM agentcache.get_turns('whatsapp:+5511999990000');
SQL

header "5/5 observability"
psql_demo <<'SQL'
\echo '-- agentcache.health()'
SELECT jsonb_pretty(agentcache.health()) AS health;
\echo
\echo '-- agentcache.stats'
SELECT * FROM agentcache.stats;
SQL

header "demo finished: stopping and removing the temporary cluster"
