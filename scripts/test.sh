#!/usr/bin/env bash
# Run every agentcache test suite: from a fresh clone on Debian 12, as root:
#     bash scripts/test.sh
# Suites: core-ctest (GoogleTest, no server), regress, nopreload, isolation and
# tap (each in its own throwaway instance started by pg_regress or the TAP
# framework), then soak (test/soak: the chaos soak, SOAK_SECONDS, default 60)
# and fuzz (test/fuzz: the SQL fuzzer, FUZZ_CASES, default 3000), each with a
# throwaway cluster under /tmp. Every suite runs even when an earlier one
# fails. The last line of output is "N passed, N failed" (N counts suites);
# the exit status is non-zero when anything failed.
# Env: AGENTCACHE_SKIP_APT=1 skips apt-get; SOAK_SECONDS, FUZZ_CASES, FUZZ_SEED.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

SUITES=(core-ctest regress nopreload isolation tap soak fuzz)
declare -A RESULT=() SECONDS_TAKEN=()
SRC=""
STAGED=0
CLEANED=0

# Stop any server still running from a temp instance of this tree (a suite
# interrupted mid-run). Only postmasters whose data directory lies under
# $SRC/tmp_check* are touched, each by its own pid.
stop_leftover_servers() {
  local pidfile dir pid
  [ -n "$SRC" ] || return 0
  while IFS= read -r -d '' pidfile; do
    dir=$(dirname "$pidfile")
    pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    kill -0 "$pid" 2>/dev/null || continue
    # the postmaster chdirs to its data directory: make sure it is this one
    [ "$(readlink -f "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$dir")" ] || continue
    printf 'stopping leftover server %s (%s)\n' "$pid" "$dir" >&2
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir" -m immediate -w -t 10 stop >/dev/null 2>&1 ||
      kill -KILL "$pid" 2>/dev/null || true
  done < <(find "$SRC" -maxdepth 6 -path "$SRC/tmp_check*" -name postmaster.pid -print0 2>/dev/null)
}

cleanup() {
  [ "$CLEANED" = 1 ] && return 0
  CLEANED=1
  stop_leftover_servers || true
}
trap 'rc=$?; set +e; cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_file() {  # show_file PATH [MAX_LINES]
  local f=$1 max=${2:-400} n
  [ -s "$f" ] || return 0
  n=$(wc -l <"$f")
  printf '\n---- %s (%s lines) ----\n' "$f" "$n"
  head -n "$max" "$f"
  [ "$n" -le "$max" ] || printf '... (%s more lines in %s)\n' "$((n - max))" "$f"
}

show_tail() {  # show_tail PATH LINES
  [ -s "$1" ] || return 0
  printf '\n---- tail of %s ----\n' "$1"
  tail -n "$2" "$1"
}

# What to print when a suite fails.
failure_details() {
  case $1 in
    regress)
      show_file test/regress/regression.diffs
      show_tail tmp_check/log/postmaster.log 40 ;;
    nopreload)
      show_file test/nopreload/regression.diffs
      show_tail tmp_check_np/log/postmaster.log 40 ;;
    isolation)
      show_file output_iso/regression.diffs
      show_tail tmp_check_iso/log/postmaster.log 40 ;;
    tap)
      local f
      for f in tmp_check_tap/tmp_check/log/regress_log_* tmp_check_tap/log/regress_log_*; do
        [ -e "$f" ] && show_tail "$f" 60
      done ;;
  esac
  return 0
}

# run_suite NAME COMMAND...: runs it, records PASS/FAIL and the time taken.
run_suite() {
  local name=$1 start rc=0
  shift
  header "suite: $name"
  start=$(date +%s)
  "$@" || rc=$?
  SECONDS_TAKEN[$name]=$(( $(date +%s) - start ))
  if [ "$rc" -eq 0 ]; then
    RESULT[$name]=PASS
  else
    RESULT[$name]=FAIL
    printf '\n>>> suite %s FAILED (exit %s)\n' "$name" "$rc"
    failure_details "$name"
  fi
}

core_ctest() {
  # a build/ configured with another generator cannot be reused with Ninja
  if [ -f build/CMakeCache.txt ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' build/CMakeCache.txt; then
    rm -rf build
  fi
  aspg cmake -S . -B build -G Ninja || return
  aspg cmake --build build -j 2 || return
  aspg ctest --test-dir build --output-on-failure
}

pg_suite() {
  case $1 in
    soak | fuzz) bash "test/$1/run.sh" ;;  # run as root: they start their own cluster as postgres
    *) aspg make PG_CONFIG="$PG_CONFIG" "check-$1" ;;
  esac
}

require_root

header "dependencies (apt)"
if [ "${AGENTCACHE_SKIP_APT:-0}" = 1 ]; then
  note "skipped (AGENTCACHE_SKIP_APT=1)"
else
  apt_install
fi

header "source tree"
prepare_tree "$ROOT"
cd "$SRC"
note "testing in $SRC"
# outputs of a previous run must not be mistaken for this run's
rm -f test/regress/regression.diffs test/regress/regression.out test/nopreload/regression.diffs test/nopreload/regression.out \
      output_iso/regression.diffs output_iso/regression.out

run_suite core-ctest core_ctest

header "extension: build (as postgres) and install (as root)"
EXT_OK=1
if ! aspg make -j2 WERROR=1 PG_CONFIG="$PG_CONFIG"; then
  EXT_OK=0
  printf '\n>>> extension build FAILED\n'
elif ! make install PG_CONFIG="$PG_CONFIG"; then
  EXT_OK=0
  printf '\n>>> make install FAILED\n'
fi

for s in regress nopreload isolation tap soak fuzz; do
  if [ "$EXT_OK" = 1 ]; then
    run_suite "$s" pg_suite "$s"
  else
    RESULT[$s]="FAIL"
    SECONDS_TAKEN[$s]=0
    note "suite $s not run: the extension did not build or install"
  fi
done

cleanup

header "summary"
passed=0 failed=0
printf '%-12s %-6s %s\n' suite result seconds
for s in "${SUITES[@]}"; do
  printf '%-12s %-6s %s\n' "$s" "${RESULT[$s]:-FAIL}" "${SECONDS_TAKEN[$s]:-0}"
  if [ "${RESULT[$s]:-FAIL}" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
[ "$STAGED" = 1 ] && printf '(tests ran in the copy %s; its outputs are kept there)\n' "$SRC"
printf '%s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
