#!/usr/bin/env bash
# agentcache demo: from a fresh clone on Debian 12, as root:
#     bash scripts/demo.sh
# Installs the dependencies, builds and installs the extension, starts a
# throwaway PostgreSQL 15 cluster in /tmp with agentcache preloaded, plays the
# whole story of a WhatsApp clinic bot (routing map, one-round-trip webhooks,
# a re-delivery, a stuck worker taken over, a cached catalog invalidated by a
# commit, a token-budgeted context, stats) and removes the cluster on exit.
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

header "4/5 the story of one WhatsApp clinic bot, in plain SQL"
psql_demo <<'SQL'
\echo '-- CREATE EXTENSION agentcache;'
CREATE EXTENSION agentcache;

\echo
\echo '== 1. Routing without a table read: clinics + integrations -> the prewarmed "instances" map'
CREATE TABLE clinics (id int PRIMARY KEY, name text NOT NULL, timezone text NOT NULL);
CREATE TABLE integrations (instance text PRIMARY KEY, clinic_id int NOT NULL REFERENCES clinics);
INSERT INTO clinics VALUES (1, 'Clinica Boa Vida', 'America/Sao_Paulo'), (2, 'Clinica Santa Clara', 'America/Manaus');
INSERT INTO integrations VALUES ('evolution-boavida', 1), ('evolution-santaclara', 2);
SELECT agentcache.define_map('instances',
  'SELECT i.instance, jsonb_build_object(''clinic_id'', c.id, ''name'', c.name, ''timezone'', c.timezone)
     FROM integrations i JOIN clinics c ON c.id = i.clinic_id');
\echo '-- resolve_instance reads shared memory (the background worker keeps the map fresh)'
SELECT agentcache.resolve_instance('evolution-boavida') AS route;

\echo
\echo '== 2. A webhook served in one round trip: inbound() = route + claim + the user turn + the context'
SELECT agentcache.add_turn('wa:5511999990000', 'system',
  'You are the assistant of Clinica Boa Vida. Be brief and kind. Book, move or cancel appointments.') AS system_prompt_seq;
SELECT jsonb_pretty(agentcache.inbound('evolution-boavida', 'wamid.1', 'wa:5511999990000',
  'Hi! Can I see Dr. Souza on Thursday morning?')) AS inbound;
\echo '-- ... the bot calls its LLM with that context, then stores the reply with the completed claim:'
SELECT agentcache.outbound('wamid.1', 'wa:5511999990000',
  'Dr. Souza has 9:00 and 10:30 free on Thursday. Which one suits you?') AS reply_seq;

\echo
\echo '== 3. The provider re-delivers the same webhook (timeout, retry): recognised, with the stored reply'
SELECT jsonb_pretty(agentcache.inbound('evolution-boavida', 'wamid.1', 'wa:5511999990000',
  'Hi! Can I see Dr. Souza on Thursday morning?') - 'context') AS redelivered;
\echo '-- the bot sends the stored reply (it never runs the LLM twice), then marks it sent:'
SELECT agentcache.reply_sent('wamid.1') AS marked_sent;
SELECT agentcache.inbound('evolution-boavida', 'wamid.1', 'wa:5511999990000', 'Hi!')->'reply' AS reply_after_sent;
SQL

# 4. a worker that hangs: its claim has a 2 s lease; a second worker takes the
# message over after it; the first one's late reply is refused (fenced)
psql_demo >"$WORK/stuck.out" 2>&1 <<'SQL' &
\set ON_ERROR_STOP 0
SET agentcache.claim_lease = '2s';
SELECT agentcache.inbound('evolution-boavida', 'wamid.2', 'wa:5511999990000', '10:30 please. I am Ana Lima.')->>'dedup' AS worker_a;
SELECT pg_sleep(4);  -- the LLM call hangs past the lease
SELECT agentcache.outbound('wamid.2', 'wa:5511999990000', 'late reply from worker A') AS worker_a_reply;
SQL
stuck=$!
sleep 3
psql_demo <<'SQL'
\echo
\echo '== 4. A stuck worker: worker A claimed wamid.2 with a 2 s lease and hangs; 3 s later worker B gets the re-delivery'
SELECT agentcache.inbound('evolution-boavida', 'wamid.2', 'wa:5511999990000', '10:30 please. I am Ana Lima.')->>'dedup' AS worker_b;
SELECT agentcache.outbound('wamid.2', 'wa:5511999990000', 'Booked: Thursday 10:30 with Dr. Souza, Ana.') AS worker_b_reply;
SELECT state, attempts, reply_sent FROM agentcache.dedup_state('wamid.2');
SQL
wait "$stuck" || true
note "worker A, when its LLM call finally returns:"
sed 's/^/    /' "$WORK/stuck.out"

psql_demo <<'SQL'
\echo '-- the conversation holds each message once: worker A''s late reply was never added'
SELECT seq, role, left(content, 70) AS content FROM agentcache.get_turns('wa:5511999990000');

\echo
\echo '== 5. A catalog cache invalidated by a committed UPDATE (invalidate_trigger), refilled by fetch()'
CREATE TABLE services (id int PRIMARY KEY, clinic_id int NOT NULL, name text NOT NULL, price numeric NOT NULL);
INSERT INTO services VALUES (1, 1, 'Consulta', 250), (2, 1, 'Retorno', 120);
CREATE TRIGGER services_cache AFTER INSERT OR UPDATE OR DELETE ON services
  FOR EACH ROW EXECUTE FUNCTION agentcache.invalidate_trigger('catalog:{clinic_id}');
\echo '-- cached with its tag (fetch() stores what it computes untagged: put() tags)'
SELECT agentcache.put('catalog', 'clinic:1',
  (SELECT jsonb_agg(jsonb_build_object('name', name, 'price', price) ORDER BY id) FROM services WHERE clinic_id = 1),
  '1 hour', ARRAY['catalog:1']);
SELECT agentcache.get('catalog', 'clinic:1') AS cached;
UPDATE services SET price = 270 WHERE id = 1;
\echo '-- the committed UPDATE removed it; fetch() runs the query once (single flight) and caches the new price'
SELECT agentcache.get('catalog', 'clinic:1') AS after_update;
SELECT agentcache.fetch('catalog', 'clinic:1',
  'SELECT jsonb_agg(jsonb_build_object(''name'', name, ''price'', price) ORDER BY id) FROM services WHERE clinic_id = 1',
  '1 hour') AS fetched;
SELECT agentcache.fetch('catalog', 'clinic:1', 'SELECT ''"not run: a hit"''::jsonb', '1 hour') AS fetched_again;

\echo
\echo '== 6. The context cut to a token budget (o200k_base), the system prompt kept, starting on a user turn'
SELECT seq, role, tokens, left(content, 50) AS content FROM agentcache.get_turns('wa:5511999990000');
SELECT e->>'seq' AS seq, e->>'role' AS role, left(e->>'content', 50) AS content
  FROM jsonb_array_elements(agentcache.get_context('wa:5511999990000', max_tokens => 60, keep_system => true,
                                                   start_on_user => true)) e;
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
