# shellcheck shell=bash
# Debian roots for the PostgreSQL version matrix (sourced by scripts/test.sh
# and test/package/run.sh, not run). PostgreSQL 17 ships with Debian 13
# (trixie), 18 with Debian 14 (forky, testing); 15 is the host's Debian 12
# (bookworm). Each root is made with debootstrap from the host's own Debian
# package registry, under $ROOTS_DIR:
#   <suite>-base.tar   a minbase root with its apt sources (reused < 1 day)
#   <suite>-build/     base + what building and testing need (reused < 1 day)
#   fresh roots        unpacked from the tarball per use (the package test)
# Every mount this file makes is recorded, and roots_cleanup (call it from an
# EXIT trap) stops every process running inside a root and unmounts them all.

ROOTS_DIR=${AGENTCACHE_ROOTS_DIR:-/tmp/agentcache-roots}
ROOTS_MOUNTED=()  # root directories with our mounts, in mount order

suite_of_major() {  # suite_of_major 15|17|18
  case $1 in
    15) echo bookworm ;;
    17) echo trixie ;;
    18) echo forky ;;
    *) return 1 ;;
  esac
}

debian_of_suite() {
  case $1 in
    bookworm) echo "Debian 12 (bookworm)" ;;
    trixie) echo "Debian 13 (trixie)" ;;
    forky) echo "Debian 14 (forky, testing)" ;;
  esac
}

# The URI of the host's main Debian source (the registry this machine reaches).
host_mirror() {
  local uri
  uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk '$2 ~ /^[a-z]+$/ {print $1; exit}')
  echo "${uri:-http://deb.debian.org/debian/}"
}

# younger_than_a_day PATH: true when PATH exists and was made < 24 h ago.
younger_than_a_day() {
  [ -e "$1" ] && [ -n "$(find "$1" -maxdepth 0 -mmin -1440 2>/dev/null)" ]
}

# root_base_tar SUITE: prints the path of a minbase tarball for SUITE, making
# it with debootstrap unless one younger than a day is there.
root_base_tar() {
  local suite=$1 tar="$ROOTS_DIR/$1-base.tar" tmp mirror script=()
  # the build roots and fresh roots unpacked from it are made by this user
  if younger_than_a_day "$tar"; then
    echo "$tar"
    return 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap is not installed"
  mkdir -p "$ROOTS_DIR"
  tmp=$(mktemp -d "$ROOTS_DIR/$suite-debootstrap.XXXXXX")
  mirror=$(host_mirror)
  # bookworm's debootstrap has no script for forky (testing): sid's works
  [ -e "/usr/share/debootstrap/scripts/$suite" ] || script=(/usr/share/debootstrap/scripts/sid)
  note "debootstrap $suite from $mirror" >&2
  if ! debootstrap --variant=minbase --include=ca-certificates "$suite" "$tmp" "$mirror" "${script[@]}" \
       >"$tmp.log" 2>&1; then
    tail -n 30 "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "debootstrap $suite failed"
  fi
  rm -f "$tmp.log"
  # no service may start inside the root (postgresql's postinst would try)
  printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
  chmod 755 "$tmp/usr/sbin/policy-rc.d"
  tar -C "$tmp" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
  rm -rf "$tmp"
  echo "$tar"
}

# write_sources SUITE DIR: DIR's apt sources, from the host's registry: the
# suite and, for a released suite, its -updates and -security (the package
# built against a point release must install where that release is).
write_sources() {
  local suite=$1 dir=$2 mirror security suites
  mirror=$(host_mirror)
  security=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -m1 'debian-security' || true)
  rm -f "$dir/etc/apt/sources.list"
  mkdir -p "$dir/etc/apt/sources.list.d"
  suites=$suite
  [ "$suite" = forky ] || suites="$suite $suite-updates"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" "$suites"
    if [ -n "$security" ] && [ "$suite" != forky ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$security" "$suite"
    fi
  } >"$dir/etc/apt/sources.list.d/debian.sources"
  # the registry serves snapshots: a testing suite's Release file may be past
  # its Valid-Until; and apt runs as root here (no _apt sandbox in a chroot)
  printf 'Acquire::Check-Valid-Until "false";\nAPT::Sandbox::User "root";\n' >"$dir/etc/apt/apt.conf.d/99agentcache"
}

# root_unpack SUITE DIR: a fresh root in DIR from SUITE's base tarball.
root_unpack() {
  local tar
  tar=$(root_base_tar "$1") || return 1
  rm -rf "$2"
  mkdir -p "$2"
  tar -C "$2" -xf "$tar"
  chmod 755 "$2"  # the tarball's "." is debootstrap's mktemp dir (0700): postgres must reach /
  write_sources "$1" "$2"
}

# copy_tree SRC DEST: the sources of the tree SRC (no .git, no build or test
# outputs) into DEST, for a build inside a root or a package build.
copy_tree() {
  mkdir -p "$2"
  tar -C "$1" --exclude=./.git --exclude=./build --exclude='./tmp_check*' --exclude=./output_iso \
      --exclude='*.o' --exclude='*.d' --exclude='*.so' --exclude='./test/*/results' \
      --exclude='./test/*/log' --exclude='./debian/postgresql-*' --exclude=./test/tokenizer/node_modules \
      -cf - . | tar -C "$2" -xf -
}

# root_mount DIR: what a program inside needs (proc, sys, dev, devpts, a
# tmpfs /dev/shm for PostgreSQL's shared memory, name resolution).
root_mount() {
  local r=$1
  root_is_mounted "$r" && return 0
  # mounted by the process that called us (scripts/test.sh around
  # test/package/run.sh): use its mounts, leave them to it
  mountpoint -q "$r/proc" && return 0
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  ROOTS_MOUNTED+=("$r")
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  mount --bind /dev "$r/dev"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts"
  mount -t tmpfs -o size=1g,mode=1777 tmpfs "$r/dev/shm"
}

root_is_mounted() {
  local m
  for m in "${ROOTS_MOUNTED[@]}"; do [ "$m" = "$1" ] && return 0; done
  return 1
}

# root_stop_processes DIR: every process whose root is DIR (servers a suite
# left behind) gets SIGTERM, then SIGKILL.
root_stop_processes() {
  local r p pid sig found
  r=$(readlink -f "$1")
  for sig in TERM KILL; do
    found=0
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/root" 2>/dev/null)" = "$r" ] || continue
      pid=${p#/proc/}
      [ "$pid" = "$$" ] && continue
      kill "-$sig" "$pid" 2>/dev/null && found=1
    done
    [ "$found" = 0 ] && return 0
    sleep 2
  done
}

root_umount() {
  local r=$1 m
  root_stop_processes "$r"
  for m in dev/shm dev/pts dev sys proc; do
    if mountpoint -q "$r/$m"; then
      umount "$r/$m" 2>/dev/null || umount -l "$r/$m"
    fi
  done
  local keep=() x
  for x in "${ROOTS_MOUNTED[@]}"; do [ "$x" = "$r" ] || keep+=("$x"); done
  ROOTS_MOUNTED=("${keep[@]}")
}

roots_cleanup() {
  local i
  for ((i = ${#ROOTS_MOUNTED[@]} - 1; i >= 0; i--)); do
    root_umount "${ROOTS_MOUNTED[$i]}"
  done
}

# root_run DIR COMMAND...: runs COMMAND as root inside DIR with a clean env.
root_run() {
  local r=$1
  shift
  chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# root_apt DIR PACKAGE...: apt-get update + install inside DIR, quiet unless it fails.
root_apt() {
  local r=$1 log
  shift
  log=$(mktemp /tmp/agentcache-root-apt.XXXXXX)
  if ! { root_run "$r" apt-get -q update &&
         root_run "$r" apt-get -q -y -o Dpkg::Use-Pty=0 --no-install-recommends install "$@"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# build_root_packages MAJOR: what building and testing need in that root (the
# host's APT_PACKAGES for that major, clang-format left out: the format lint
# is checked with Debian 12's clang-format 14 only).
build_root_packages() {
  local major=$1
  echo postgresql-"$major" postgresql-server-dev-"$major" postgresql-contrib \
    libboost-dev libfmt-dev libgtest-dev libgmock-dev cmake ninja-build g++ make \
    libipc-run-perl python3 libpq-dev python3-psycopg python3-pytest libicu-dev \
    build-essential debhelper dpkg-dev fakeroot postgresql-server-dev-all
}

# root_build_dir MAJOR: sets BUILD_ROOT to a mounted build root for MAJOR
# with every package installed; reused when younger than a day and made for
# the same package list. (Not for $(...): the mounts must be recorded here.)
root_build_dir() {
  local major=$1 suite dir pkgs
  suite=$(suite_of_major "$major") || die "no Debian root for PostgreSQL $major"
  dir="$ROOTS_DIR/$suite-build"
  pkgs=$(build_root_packages "$major")
  BUILD_ROOT=$dir
  if younger_than_a_day "$dir/.agentcache-root"; then
    note "reusing the $suite root $dir (made $(stat -c %y "$dir/.agentcache-root" | cut -d. -f1))"
    root_mount "$dir"
    if [ "$(cat "$dir/.agentcache-root")" != "$pkgs" ]; then
      note "apt-get install in the $suite root (the package list changed): $pkgs"
      # shellcheck disable=SC2086
      root_apt "$dir" $pkgs || return 1
      # keep the root's age: it is still made from the same day's base
      echo "$pkgs" >"$dir/.agentcache-root.new"
      touch -r "$dir/.agentcache-root" "$dir/.agentcache-root.new"
      mv "$dir/.agentcache-root.new" "$dir/.agentcache-root"
    fi
    return 0
  fi
  [ -d "$dir" ] && root_umount "$dir"
  note "making the $suite root $dir"
  root_unpack "$suite" "$dir" || return 1
  root_mount "$dir"
  note "apt-get install in the $suite root: $pkgs"
  # shellcheck disable=SC2086
  root_apt "$dir" $pkgs || return 1
  echo "$pkgs" >"$dir/.agentcache-root"
}
