#!/usr/bin/env bash
# token_count throughput next to gpt-tokenizer (Node) on the same corpus, in
# one run: test/tokenizer/gen.mjs makes the corpus (chat-like text in many
# languages and random Unicode mixes); gpt-tokenizer's countTokens counts it
# in Node, agentcache.token_count in a throwaway preloaded cluster
# (SELECT sum(token_count(t, enc)) over a table of the strings: the
# executor's per-row cost included). Runs interleaved, medians of RUNS.
# Run as root after `make install`.
#
#   bash bench/tokens.sh                  # STRINGS=20000 (~5 MB), RUNS=3
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
require_root
STRINGS=${STRINGS:-20000}
RUNS=${RUNS:-3}
PORT=${BENCH_PORT:-54331}
DIR=$ROOT/test/tokenizer
command -v node >/dev/null || die "node is not installed (apt-get install nodejs npm)"
[ -d "$DIR/node_modules/gpt-tokenizer" ] || (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)

WORK=
stop_cluster_on_exit
start_throwaway_cluster agentcache-bench-tokens "$PORT"
psql_b() { aspg psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -d postgres "$@"; }

CORPUS=$WORK/corpus.jsonl
node "$DIR/gen.mjs" --count "$STRINGS" --seed 424242 >"$CORPUS"
chown postgres "$CORPUS"
psql_b -c "CREATE EXTENSION agentcache" -c "CREATE TABLE corpus (j jsonb)" \
  -c "\\copy corpus (j) FROM '$CORPUS' WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')" \
  -c "CREATE TABLE texts AS SELECT j->>'text' AS t FROM corpus" -c "VACUUM ANALYZE texts"
BYTES=$(psql_b -At -c "SELECT sum(octet_length(t)) FROM texts")
header "token_count vs gpt-tokenizer $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$DIR/node_modules/gpt-tokenizer/package.json") (node $(node --version)): $STRINGS strings, $BYTES bytes, $RUNS runs"
median() { tr ' ' '\n' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A NODE_S PG_S NODE_T PG_T
for ((r = 1; r <= RUNS; r++)); do
  while read -r enc s tokens; do
    NODE_S[$enc]="${NODE_S[$enc]:-} $s"
    NODE_T[$enc]=$tokens
  done < <(cd "$DIR" && node "$DIR/bench.mjs" "$CORPUS")
  for enc in o200k_base cl100k_base; do
    t0=$(date +%s%N)
    tokens=$(psql_b -At -c "SELECT sum(agentcache.token_count(t, '$enc')) FROM texts")
    t1=$(date +%s%N)
    PG_S[$enc]="${PG_S[$enc]:-} $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')"
    PG_T[$enc]=$tokens
  done
  note "run $r/$RUNS: node ${NODE_S[o200k_base]##* } / ${NODE_S[cl100k_base]##* } s, token_count ${PG_S[o200k_base]##* } / ${PG_S[cl100k_base]##* } s (o200k_base / cl100k_base)"
done
printf '\n  %-12s | %14s | %14s | %8s | %s\n' encoding "node MB/s" "token_count MB/s" ratio "tokens (node = token_count)"
for enc in o200k_base cl100k_base; do
  ns=$(median <<<"${NODE_S[$enc]# }")
  ps=$(median <<<"${PG_S[$enc]# }")
  awk -v e="$enc" -v b="$BYTES" -v ns="$ns" -v ps="$ps" -v nt="${NODE_T[$enc]}" -v pt="${PG_T[$enc]}" -v nr="${NODE_S[$enc]# }" -v pr="${PG_S[$enc]# }" 'BEGIN {
    printf "  %-12s | %14.2f | %16.2f | %7.2fx | %s = %s %s  (runs, s: node %s; token_count %s)\n",
      e, b / 1e6 / ns, b / 1e6 / ps, ns / ps, nt, pt, (nt == pt ? "(same)" : "(DIFFER)"), nr, pr }'
  [ "${NODE_T[$enc]}" = "${PG_T[$enc]}" ] || die "token totals differ for $enc"
done
note "target: token_count >= 3x gpt-tokenizer's MB/s"
