#!/usr/bin/env bash
# The differential test of token_count: gpt-tokenizer 4.0.0 under Node (the
# reference, pinned in package-lock.json) counts ≥ 10,000 generated strings
# (gen.mjs: random Unicode mixes and chat-like text in many languages) in
# both encodings; token_count must give every count back, in a throwaway
# cluster with agentcache preloaded (the rank tables loaded by the postmaster).
# Run as root.
#
#   bash test/tokenizer/run.sh                        # TOKENIZER_CASES=10000, the fixed seed
#   TOKENIZER_CASES=100000 TOKENIZER_SEED=7 bash test/tokenizer/run.sh
#
# The reference counts are written to test/tokenizer/cases-SEED-N.jsonl (not
# tracked); when Node is not installed (the PostgreSQL 17/18 roots of
# scripts/test.sh, which get the file made on the host) that file is used
# as it is. Environment: TOKENIZER_CASES, TOKENIZER_SEED, TOKENIZER_PORT
# (default 55480), TOKENIZER_REFERENCE_ONLY=1 (only make the reference file:
# scripts/test.sh does, before the roots copy the tree).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
require_root

CASES=${TOKENIZER_CASES:-10000}
SEED=${TOKENIZER_SEED:-20261205}
PORT=${TOKENIZER_PORT:-55480}
DIR=$ROOT/test/tokenizer
FILE=$DIR/cases-$SEED-$CASES.jsonl

[ "${TOKENIZER_REFERENCE_ONLY:-0}" = 1 ] || [ -f "$("$PG_CONFIG" --pkglibdir)/agentcache.so" ] ||
  die "agentcache is not installed (make install first)"
header "token_count vs gpt-tokenizer: $CASES strings (seed $SEED), o200k_base and cl100k_base"

if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if [ ! -d "$DIR/node_modules/gpt-tokenizer" ]; then
    note "npm ci (gpt-tokenizer $(sed -n 's/.*"gpt-tokenizer": "\(.*\)".*/\1/p' "$DIR/package.json"), from package-lock.json)"
    (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $DIR"
  fi
  note "node $(node --version): generating the strings and the reference counts"
  node "$DIR/gen.mjs" --count "$CASES" --seed "$SEED" >"$FILE.tmp"
  mv "$FILE.tmp" "$FILE"
elif [ -f "$FILE" ]; then
  note "no Node here: using the reference counts made earlier ($FILE)"
else
  die "neither Node (apt-get install nodejs npm) nor $FILE: nothing to compare against"
fi
if [ "${TOKENIZER_REFERENCE_ONLY:-0}" = 1 ]; then
  chmod 644 "$FILE"
  note "reference counts in $FILE ($(wc -l <"$FILE") strings)"
  exit 0
fi
n=$(wc -l <"$FILE")
[ "$n" -ge "$CASES" ] || die "$FILE has $n strings, expected $CASES"
chmod 644 "$FILE"

WORK=
stop_cluster_on_exit
start_throwaway_cluster agentcache-tokenizer "$PORT"
psql_pg() { aspg psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -d postgres "$@"; }

cp "$FILE" "$WORK/cases.jsonl"
chown postgres "$WORK/cases.jsonl"
# CSV with delimiter and quote bytes that JSON text never holds: each line
# is read as it is (the text format would undo the JSON's backslashes)
psql_pg -c "CREATE EXTENSION agentcache" -c "CREATE TABLE cases (n serial, j jsonb)" \
  -c "\\copy cases (j) FROM '$WORK/cases.jsonl' WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
report=$(psql_pg -At -F ' ' -c "
  WITH c AS (SELECT n, j->>'text' AS t, (j->>'o200k_base')::int AS o, (j->>'cl100k_base')::int AS c FROM cases)
  SELECT count(*), count(*) FILTER (WHERE agentcache.token_count(t, 'o200k_base') <> o),
         count(*) FILTER (WHERE agentcache.token_count(t, 'cl100k_base') <> c),
         sum(octet_length(t)), sum(o), sum(c) FROM c")
read -r total bad_o bad_c bytes tok_o tok_c <<<"$report"
note "compared $total strings ($bytes bytes; $tok_o o200k_base tokens, $tok_c cl100k_base tokens)"
note "mismatches: o200k_base $bad_o, cl100k_base $bad_c"
if [ "$bad_o" != 0 ] || [ "$bad_c" != 0 ]; then
  psql_pg -c "SELECT n, j->>'text' AS text, j->'o200k_base' AS node_o200k, agentcache.token_count(j->>'text', 'o200k_base') AS ours_o200k,
                     j->'cl100k_base' AS node_cl100k, agentcache.token_count(j->>'text', 'cl100k_base') AS ours_cl100k
                FROM cases WHERE agentcache.token_count(j->>'text', 'o200k_base') <> (j->>'o200k_base')::int
                   OR agentcache.token_count(j->>'text', 'cl100k_base') <> (j->>'cl100k_base')::int ORDER BY n LIMIT 10"
  die "token_count differs from gpt-tokenizer"
fi
[ "$total" -ge "$CASES" ] || die "only $total strings were compared"
note "token_count == gpt-tokenizer for every string, in both encodings"
