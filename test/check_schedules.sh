#!/usr/bin/env bash
# Fails when a test file is not scheduled, or a schedule names a test that
# has no file: every test/regress/sql/*.sql must appear in
# test/regress/schedule, every test/isolation/specs/*.spec in
# test/isolation/schedule, each with its expected output. (TAP files,
# test/t/*.pl, are picked up by wildcard and need no schedule.)
# Usage: bash test/check_schedules.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
# check SCHEDULE DIR EXT EXPECTED_DIR
check() {
  local schedule=$1 dir=$2 ext=$3 expected=$4 f name
  local -A listed=()
  while read -r kw rest; do
    [ "$kw" = "test:" ] || continue
    for name in $rest; do
      listed[$name]=1
      if [ ! -f "$dir/$name.$ext" ]; then
        echo "check_schedules: $schedule names '$name', but $dir/$name.$ext does not exist" >&2
        status=1
      fi
    done
  done <"$schedule"
  for f in "$dir"/*."$ext"; do
    name=$(basename "$f" ".$ext")
    if [ -z "${listed[$name]:-}" ]; then
      echo "check_schedules: $f is not in $schedule: it would never run" >&2
      status=1
    fi
    if ! compgen -G "$expected/$name.out" >/dev/null; then
      echo "check_schedules: $f has no expected output in $expected/" >&2
      status=1
    fi
  done
}

check test/regress/schedule test/regress/sql sql test/regress/expected
check test/isolation/schedule test/isolation/specs spec test/isolation/expected
[ "$status" -eq 0 ] && echo "check_schedules: every test file is scheduled"
exit "$status"
