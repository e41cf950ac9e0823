# shellcheck shell=bash disable=SC2034
# Shared helpers for scripts/demo.sh and scripts/test.sh (sourced, not run).
# Both scripts run as root on Debian 12: PostgreSQL refuses to run as root, so
# builds, servers and test suites run as the "postgres" OS user (runuser), and
# only `apt-get` and `make install` run as root.

# The PostgreSQL major to build and test against: the host's 15 (Debian 12),
# or what scripts/test.sh sets inside a Debian 13/14 root (17, 18).
PG_MAJOR=${AGENTCACHE_PG_MAJOR:-15}
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PGBIN/pg_config
APT_PACKAGES=(
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" postgresql-contrib
  libboost-dev libfmt-dev libgtest-dev libgmock-dev
  cmake ninja-build g++ make libipc-run-perl clang-format python3
  libpq-dev python3-psycopg python3-pytest libicu-dev
)
# Node and npm for the token_count differential test (gpt-tokenizer from the
# npm registry): Debian's, unless this machine has them already (e.g. a
# NodeSource nodejs, which bundles npm and which Debian's npm would conflict with).
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)
# What the version matrix and the package suite need on the host as well:
# roots for 17/18 and a fresh root to install the .deb into (debootstrap),
# and dpkg-buildpackage with Debian's PostgreSQL packaging helpers.
MATRIX_APT_PACKAGES=(debootstrap build-essential debhelper dpkg-dev fakeroot postgresql-server-dev-all)

header() { printf '\n==== %s ====\n' "$*"; }
note() { printf '  %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "run this as root (e.g. sudo bash $0): it installs packages and runs PostgreSQL as the postgres user"
}

# Install the build and test dependencies; quiet unless something fails.
apt_install() {
  local log
  [ $# -eq 0 ] || APT_PACKAGES+=("$@")
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

# start_throwaway_cluster PREFIX PORT [EXTRA_CONF]: initdb into a new
# /tmp/PREFIX.XXXXXX (sets WORK) as postgres, listening only on a Unix socket
# in that directory, with agentcache preloaded, then start it.
start_throwaway_cluster() {
  local prefix=$1 port=$2 extra=${3:-}
  WORK=$(mktemp -d "/tmp/$prefix.XXXXXX")
  chown postgres:postgres "$WORK"
  chmod 700 "$WORK"
  runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/data" --no-locale -E UTF8 -A trust >/dev/null
  {
    printf '\n# agentcache throwaway cluster\n'
    printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$port" "$WORK"
    printf "shared_preload_libraries = 'agentcache'\n"
    [ -z "$extra" ] || printf '%s\n' "$extra"
  } >>"$WORK/data/postgresql.conf"
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
}

# stop_cluster_on_exit: an EXIT trap that stops the cluster in WORK (showing
# its log when the script fails) and keeps the script's exit status.
stop_cluster_on_exit() {
  # shellcheck disable=SC2317  # run by the EXIT trap
  _stop_cluster_trap() {
    local rc=$?
    trap - EXIT
    stop_throwaway_cluster "$rc"
    exit "$rc"
  }
  trap _stop_cluster_trap EXIT
}

# stop_throwaway_cluster RC: stops the cluster in WORK (if any), shows the end
# of its log when RC is non-zero, and removes WORK. Safe to call twice.
stop_throwaway_cluster() {
  local rc=$1
  [ -n "${WORK:-}" ] && [ -d "$WORK" ] || return 0
  if [ -f "$WORK/data/postmaster.pid" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/data" -m fast -w stop >/dev/null 2>&1
  fi
  if [ "$rc" -ne 0 ] && [ -f "$WORK/server.log" ]; then
    printf '\n---- last lines of the server log ----\n' >&2
    tail -n 30 "$WORK/server.log" >&2
  fi
  rm -rf "$WORK"
}
