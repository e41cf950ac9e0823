# shellcheck shell=bash disable=SC2034
# Shared helpers for scripts/demo.sh and scripts/test.sh (sourced, not run).
# Both scripts run as root on Debian 12: PostgreSQL refuses to run as root, so
# builds, servers and test suites run as the "postgres" OS user (runuser), and
# only `apt-get` and `make install` run as root.

PG_MAJOR=15
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PGBIN/pg_config
APT_PACKAGES=(
  postgresql-15 postgresql-server-dev-15 postgresql-contrib
  libboost-dev libfmt-dev libgtest-dev libgmock-dev
  cmake ninja-build g++ make libipc-run-perl
)

header() { printf '\n==== %s ====\n' "$*"; }
note() { printf '  %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "run this as root (e.g. sudo bash $0): it installs packages and runs PostgreSQL as the postgres user"
}

# Install the build and test dependencies; quiet unless something fails.
apt_install() {
  local log
  log=$(mktemp /tmp/agentcache-apt.XXXXXX)
  note "apt-get update && apt-get install -y ${APT_PACKAGES[*]}"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get -q update &&
         DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0 install "${APT_PACKAGES[@]}"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    die "apt-get failed (output above)"
  fi
  rm -f "$log"
  note "done"
}

# Run a command as postgres with a clean libpq environment (no PGHOST/PGPORT
# leaking into pg_regress or the TAP framework) and postgres's own HOME.
aspg() {
  local home
  home=$(getent passwd postgres | cut -d: -f6)
  runuser -u postgres -- env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGDATA \
    HOME="${home:-/var/lib/postgresql}" PATH="$PGBIN:$PATH" "$@"
}

# prepare_tree ROOT: sets SRC to a directory the postgres user can build and
# write test output in, and STAGED=1 when that had to be a copy.
#  - If postgres can reach ROOT (e.g. not under a 0700 /root), build in place:
#    everything except .git is chowned to postgres; ROOT itself keeps its
#    owner (so root's git does not refuse the repository as "dubious
#    ownership") and becomes group-writable by postgres (pg_regress writes
#    results/ and regression.diffs there, cmake creates build/).
#  - Otherwise copy the tree (without .git) to a temp dir owned by postgres.
prepare_tree() {
  local root=$1
  id postgres >/dev/null 2>&1 || die "no postgres user: is postgresql-$PG_MAJOR installed?"
  STAGED=0
  if runuser -u postgres -- test -r "$root/Makefile"; then
    SRC=$root
    find "$root" -mindepth 1 -maxdepth 1 ! -name .git -exec chown -R postgres:postgres {} +
    chgrp postgres "$root"
    chmod g+rwx "$root"
  else
    SRC=$(mktemp -d /tmp/agentcache-src.XXXXXX)
    STAGED=1
    note "the postgres user cannot read $root (a parent directory is private); using a copy in $SRC"
    tar -C "$root" --exclude=./.git -cf - . | tar -C "$SRC" -xf -
    chown -R postgres:postgres "$SRC"
  fi
}
