#!/usr/bin/env bash
# The Debian package test, for one PostgreSQL major (as root):
#     bash test/package/run.sh 15|17|18
# 1. builds the binary package postgresql-NN-agentcache with dpkg-buildpackage
#    (debian/, pg_buildext) from a copy of this tree: on the host for 15, in
#    the Debian 13/14 build root (scripts/roots.sh) for 17/18;
# 2. unpacks a fresh minbase root of the Debian release that ships NN, with no
#    source tree and no compiler, and `apt-get install`s the .deb into it
#    (apt pulls postgresql-NN and the shared libraries it depends on);
# 3. sets shared_preload_libraries in the cluster the package manager made,
#    starts it with pg_ctlcluster, creates the extension and plays one webhook
#    through inbound/outbound, then its re-delivery (play.sql, replay.sql).
# The cluster is stopped and every mount undone on exit, also on failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
# shellcheck source=scripts/roots.sh
. "$ROOT/scripts/roots.sh"

MAJOR=${1:-}
SUITE=$(suite_of_major "$MAJOR") || die "usage: $0 15|17|18"
require_root

BUILD=""      # where the copy is built (host path)
FRESH="$ROOTS_DIR/$SUITE-pkgtest"
STARTED=0

cleanup() {
  set +e
  if [ "$STARTED" = 1 ]; then
    root_run "$FRESH" pg_ctlcluster "$MAJOR" main stop -m fast >/dev/null 2>&1
  fi
  roots_cleanup
  [ -n "$BUILD" ] && [ "$MAJOR" = 15 ] && rm -rf "$BUILD"
  [ -d "$FRESH" ] && rm -rf "$FRESH"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

header "package: build postgresql-$MAJOR-agentcache ($(debian_of_suite "$SUITE"))"
t0=$(date +%s)
if [ "$MAJOR" = 15 ]; then
  BUILD=$(mktemp -d /tmp/agentcache-pkg.XXXXXX)
  copy_tree "$ROOT" "$BUILD/agentcache"
  (cd "$BUILD/agentcache" && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b) >"$BUILD/build.log" 2>&1 ||
    { tail -n 60 "$BUILD/build.log"; die "dpkg-buildpackage failed"; }
  DEBS=("$BUILD"/postgresql-"$MAJOR"-agentcache_*.deb)
else
  root_build_dir "$MAJOR" || die "no build root for $MAJOR"
  BUILD="$BUILD_ROOT/build/pkg"
  rm -rf "$BUILD"
  copy_tree "$ROOT" "$BUILD/agentcache"
  root_run "$BUILD_ROOT" bash -c 'cd /build/pkg/agentcache && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b' \
    >"$BUILD/build.log" 2>&1 || { tail -n 60 "$BUILD/build.log"; die "dpkg-buildpackage failed"; }
  DEBS=("$BUILD"/postgresql-"$MAJOR"-agentcache_*.deb)
fi
[ -f "${DEBS[0]}" ] || die "dpkg-buildpackage made no postgresql-$MAJOR-agentcache package"
DEB=${DEBS[0]}
note "built $(basename "$DEB") ($(du -k "$DEB" | cut -f1) KB) in $(( $(date +%s) - t0 )) s"
dpkg-deb -f "$DEB" Package Version Depends | sed 's/^/  /'

header "package: install into a fresh $SUITE root"
t0=$(date +%s)
root_unpack "$SUITE" "$FRESH"
root_mount "$FRESH"
cp "$DEB" "$FRESH/tmp/"
root_apt "$FRESH" "/tmp/$(basename "$DEB")" || die "apt-get install of the package failed"
note "installed with its dependencies in $(( $(date +%s) - t0 )) s"
# the point of the package: no source tree, no compiler in that root
for tool in g++ gcc c++ cc make; do
  if root_run "$FRESH" sh -c "command -v $tool" >/dev/null 2>&1; then
    die "the fresh root has $tool: it is not a plain server root"
  fi
done
[ ! -e "$FRESH/usr/include/postgresql/$MAJOR/server" ] || die "the fresh root has the server headers (postgresql-server-dev-$MAJOR)"
[ -f "$FRESH/usr/lib/postgresql/$MAJOR/lib/agentcache.so" ] || die "agentcache.so is not where postgresql-$MAJOR loads it from"
[ -f "$FRESH/usr/share/postgresql/$MAJOR/extension/agentcache.control" ] || die "agentcache.control is not installed"

header "package: preload, create the extension, play a webhook"
CONF="/etc/postgresql/$MAJOR/main/postgresql.conf"
if [ ! -f "$FRESH$CONF" ]; then
  root_run "$FRESH" pg_createcluster "$MAJOR" main >/dev/null
fi
{
  printf "\n# test/package\nshared_preload_libraries = 'agentcache'\n"
  printf "port = 55490\nlisten_addresses = ''\n"
} >>"$FRESH$CONF"
STARTED=1
root_run "$FRESH" pg_ctlcluster "$MAJOR" main start
cp "$HERE/play.sql" "$HERE/replay.sql" "$FRESH/tmp/"
chmod 644 "$FRESH/tmp/play.sql" "$FRESH/tmp/replay.sql"
psql_in_root() {
  chroot --userspec=postgres:postgres "$FRESH" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/var/lib/postgresql \
    psql -X -q -p 55490 -d postgres "$@"
}
psql_in_root -f /tmp/play.sql
out=$(psql_in_root -At -f /tmp/replay.sql)
printf '  %s\n' "$out"
[ "$out" = "package play: ok" ] || die "the replay did not end as expected"
note "postgresql-$MAJOR-agentcache: installed, preloaded, inbound/outbound served"
