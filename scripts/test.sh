#!/usr/bin/env bash
# Run every agentcache test suite on every supported PostgreSQL major, from a
# fresh clone on Debian 12, as root:
#     bash scripts/test.sh              # the matrix: 15, 17 and 18
#     bash scripts/test.sh --pg 17      # one version (repeat --pg for several)
# Per version: core-ctest (GoogleTest and the lints, no server), regress,
# nopreload, isolation and tap (each in its own throwaway instance started by
# pg_regress or the TAP framework), soak (test/soak: the chaos soak,
# SOAK_SECONDS, default 60), fuzz (test/fuzz: the SQL fuzzer, FUZZ_CASES,
# default 3000), and package (test/package: the Debian package built with
# dpkg-buildpackage, installed into a fresh root and played).
# 15 runs on the host; 17 and 18 run inside Debian 13 (trixie) and Debian 14
# (forky) roots that scripts/roots.sh makes with debootstrap under
# /tmp/agentcache-roots (reused when younger than a day), where this same
# script runs with --local. Every suite runs even when an earlier one fails.
# The last line of output is "N passed, N failed" (N counts suites, one per
# suite and version); the exit status is non-zero when anything failed.
# Every server started and every mount made is stopped/undone on exit.
# Env: AGENTCACHE_SKIP_APT=1 skips apt-get on the host; SOAK_SECONDS,
# SOAK_SEED, FUZZ_CASES, FUZZ_SEED are passed to every version's run.
# --local (used inside the roots): only the PostgreSQL installed here, no
# package suite; results also go to $AGENTCACHE_RESULTS (name<TAB>result<TAB>s).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
# shellcheck source=scripts/roots.sh
. "$ROOT/scripts/roots.sh"

HOST_MAJOR=$PG_MAJOR
LOCAL=0
VERSIONS=()
while [ $# -gt 0 ]; do
  case $1 in
    --local) LOCAL=1 ;;
    --pg)
      [ $# -ge 2 ] || die "--pg needs a version (15, 17, 18 or all)"
      case $2 in
        all) VERSIONS+=(15 17 18) ;;
        15 | 17 | 18) VERSIONS+=("$2") ;;
        *) die "unsupported PostgreSQL version '$2' (15, 17, 18 or all)" ;;
      esac
      shift ;;
    -h | --help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(15 17 18)
[ "$LOCAL" = 1 ] && VERSIONS=("$PG_MAJOR")

LOCAL_SUITES=(core-ctest regress nopreload isolation tap soak fuzz tokenizer clients)
ORDER=()  # every result's name, in the order run ("15/regress", ...)
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
  roots_cleanup || true
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

# record NAME PASS|FAIL SECONDS
record() {
  ORDER+=("$1")
  RESULT[$1]=$2
  SECONDS_TAKEN[$1]=$3
}

# run_suite NAME COMMAND...: runs it, records PASS/FAIL and the time taken
# under "$PG_MAJOR/NAME".
run_suite() {
  local name=$1 start rc=0
  shift
  header "suite: $PG_MAJOR/$name"
  start=$(date +%s)
  "$@" || rc=$?
  if [ "$rc" -eq 0 ]; then
    record "$PG_MAJOR/$name" PASS $(( $(date +%s) - start ))
  else
    record "$PG_MAJOR/$name" FAIL $(( $(date +%s) - start ))
    printf '\n>>> suite %s/%s FAILED (exit %s)\n' "$PG_MAJOR" "$name" "$rc"
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
    soak | fuzz | tokenizer) bash "test/$1/run.sh" ;;  # run as root: they start their own cluster as postgres
    clients) bash clients/run.sh ;;
    *) aspg make PG_CONFIG="$PG_CONFIG" "check-$1" ;;
  esac
}

# run_local: every suite against the PostgreSQL installed here ($PG_MAJOR).
run_local() {
  header "PostgreSQL $PG_MAJOR: source tree"
  prepare_tree "$ROOT"
  cd "$SRC"
  note "testing in $SRC"
  # outputs of a previous run must not be mistaken for this run's
  rm -f test/regress/regression.diffs test/regress/regression.out test/nopreload/regression.diffs \
        test/nopreload/regression.out output_iso/regression.diffs output_iso/regression.out

  run_suite core-ctest core_ctest

  header "PostgreSQL $PG_MAJOR: extension build (as postgres) and install (as root)"
  local ext_ok=1 s
  if ! aspg make -j2 WERROR=1 PG_CONFIG="$PG_CONFIG"; then
    ext_ok=0
    printf '\n>>> extension build FAILED\n'
  elif ! make install PG_CONFIG="$PG_CONFIG"; then
    ext_ok=0
    printf '\n>>> make install FAILED\n'
  fi

  for s in regress nopreload isolation tap soak fuzz tokenizer clients; do
    if [ "$ext_ok" = 1 ]; then
      run_suite "$s" pg_suite "$s"
    else
      record "$PG_MAJOR/$s" FAIL 0
      note "suite $s not run: the extension did not build or install"
    fi
  done
  stop_leftover_servers || true
  cd "$ROOT"
}

# run_in_root MAJOR: this script with --local inside the build root for
# MAJOR, on a fresh copy of the tree; its results join ours.
run_in_root() {
  local major=$1 start results s line name res secs
  start=$(date +%s)
  header "PostgreSQL $major: $(debian_of_suite "$(suite_of_major "$major")") root"
  if ! root_build_dir "$major"; then
    record "$major/root" FAIL $(( $(date +%s) - start ))
    for s in "${LOCAL_SUITES[@]}"; do record "$major/$s" FAIL 0; done
    return 0
  fi
  note "root ready in $(( $(date +%s) - start )) s: $(root_run "$BUILD_ROOT" pg_config --version)"
  rm -rf "$BUILD_ROOT/build/agentcache" "$BUILD_ROOT/build/results.tsv"
  copy_tree "$ROOT" "$BUILD_ROOT/build/agentcache"
  local pass=(AGENTCACHE_SKIP_APT=1 "AGENTCACHE_PG_MAJOR=$major" AGENTCACHE_RESULTS=/build/results.tsv)
  for s in CI SOAK_SECONDS SOAK_SEED SOAK_KILL9 FUZZ_CASES FUZZ_SEED TOKENIZER_CASES TOKENIZER_SEED; do
    [ -n "${!s:-}" ] && pass+=("$s=${!s}")
  done
  root_run "$BUILD_ROOT" env "${pass[@]}" bash /build/agentcache/scripts/test.sh --local || true
  root_umount "$BUILD_ROOT"  # nothing of this run stays running in the root
  results="$BUILD_ROOT/build/results.tsv"
  for s in "${LOCAL_SUITES[@]}"; do
    line=$(awk -F"\t" -v n="$major/$s" '$1 == n' "$results" 2>/dev/null || true)
    if [ -n "$line" ]; then
      IFS=$'\t' read -r name res secs <<<"$line"
      record "$name" "$res" "$secs"
    else
      record "$major/$s" FAIL 0
    fi
  done
}

# run_package MAJOR: test/package/run.sh (build the .deb, install, play).
run_package() {
  local major=$1 start rc=0
  header "suite: $major/package"
  start=$(date +%s)
  bash "$ROOT/test/package/run.sh" "$major" || rc=$?
  if [ "$rc" -eq 0 ]; then
    record "$major/package" PASS $(( $(date +%s) - start ))
  else
    record "$major/package" FAIL $(( $(date +%s) - start ))
    printf '\n>>> suite %s/package FAILED (exit %s)\n' "$major" "$rc"
  fi
}

require_root

if [ "$LOCAL" = 0 ]; then
  header "dependencies (apt)"
  if [ "${AGENTCACHE_SKIP_APT:-0}" = 1 ]; then
    note "skipped (AGENTCACHE_SKIP_APT=1)"
  else
    apt_install "${MATRIX_APT_PACKAGES[@]}"
  fi
fi

START_ALL=$(date +%s)
declare -A VERSION_SECONDS=()
# The token_count differential test's reference counts come from Node on the
# host (the 17/18 roots have no Node): made once, in the tree the roots copy.
if [ "$LOCAL" = 0 ]; then
  header "token_count reference (gpt-tokenizer under Node, for every version)"
  TOKENIZER_REFERENCE_ONLY=1 bash "$ROOT/test/tokenizer/run.sh" || note "no reference counts: each version's tokenizer suite will fail"
fi
for v in "${VERSIONS[@]}"; do
  vstart=$(date +%s)
  if [ "$LOCAL" = 1 ] || [ "$v" = "$HOST_MAJOR" ]; then
    run_local
  else
    run_in_root "$v"
  fi
  [ "$LOCAL" = 1 ] || run_package "$v"
  VERSION_SECONDS[$v]=$(( $(date +%s) - vstart ))
done

cleanup

if [ "$LOCAL" = 1 ] && [ -n "${AGENTCACHE_RESULTS:-}" ]; then
  for n in "${ORDER[@]}"; do printf '%s\t%s\t%s\n' "$n" "${RESULT[$n]}" "${SECONDS_TAKEN[$n]}"; done >"$AGENTCACHE_RESULTS"
fi

header "summary"
passed=0 failed=0
printf '%-18s %-6s %s\n' suite result seconds
for n in "${ORDER[@]}"; do
  printf '%-18s %-6s %s\n' "$n" "${RESULT[$n]}" "${SECONDS_TAKEN[$n]}"
  if [ "${RESULT[$n]}" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
if [ "$LOCAL" = 0 ]; then
  for v in "${VERSIONS[@]}"; do printf 'PostgreSQL %s: %s s\n' "$v" "${VERSION_SECONDS[$v]}"; done
  printf 'all: %s s\n' "$(( $(date +%s) - START_ALL ))"
fi
[ "$STAGED" = 1 ] && printf '(tests on the host ran in the copy %s; its outputs are kept there)\n' "$SRC"
[ ${#ORDER[@]} -gt 0 ] || failed=1
printf '%s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
