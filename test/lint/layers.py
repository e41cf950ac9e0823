#!/usr/bin/env python3
"""Checks that the glue's dependencies point down only.

  src/core, include/   -> nothing of src/pg (the pure core)
  src/pg/common        -> common, core
  src/pg/<tier>        -> common, its own tier, core
  src/pg/worker        -> common, worker, core
  src/pg/*.cpp|hpp     -> anything (the top: module, tiers, stats, inbound, selftest)

that each glue idiom has one home (SPI_connect in common/spi.hpp,
SetUserIdAndSecContext in common/roles.hpp, SET_LOCKTAG_ADVISORY in
common/locks.hpp, interval month/day arithmetic in common/interval.hpp, no
snprintf into fixed buffers: common/format.hpp's textf; every difference
between PostgreSQL majors, i.e. every PG_VERSION_NUM, in common/compat.hpp), and that no tier's shared-memory region, stats rows or sweep is registered
outside its folder (shmem::add_region / register_sweep / register_cycle /
StatsRow appear only under src/pg/common, src/pg/<tier> or the top).
Run from the repository root; exits 1 and names each violation.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIERS = {"memory", "ttl", "dedup", "maps"}
IDIOMS = [
    ("SPI_connect(", "common/spi.hpp"),
    ("SetUserIdAndSecContext(", "common/roles.hpp"),
    ("SET_LOCKTAG_ADVISORY(", "common/locks.hpp"),
    ("DAYS_PER_MONTH", "common/interval.hpp"),
    ("snprintf(", "common/pg.hpp"),
    ("PG_VERSION_NUM", "common/compat.hpp"),
]
INCLUDE = re.compile(r'^\s*#\s*include\s+"pg/([^"/]+)(/[^"]*)?"', re.M)


def room(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT / "src" / "pg")
    return rel.parts[0] if len(rel.parts) > 1 else "top"


def allowed(src_room: str, dst_room: str) -> bool:
    if src_room == "top":
        return True
    if src_room == "common":
        return dst_room == "common"
    return dst_room in ("common", src_room)


def main() -> int:
    bad = []
    for path in sorted((ROOT / "src" / "core").glob("*.cpp")) + sorted((ROOT / "include").rglob("*.hpp")):
        for m in INCLUDE.finditer(path.read_text()):
            bad.append(f"{path.relative_to(ROOT)}: the pure core includes pg/{m.group(1)}{m.group(2) or ''}")
    for path in sorted((ROOT / "src" / "pg").rglob("*.[ch]pp")):
        src_room = room(path)
        text = path.read_text()
        for m in INCLUDE.finditer(text):
            dst = m.group(1) if m.group(2) else "top"
            if dst.endswith(".hpp"):
                dst = "top"
            if not allowed(src_room, dst):
                bad.append(f"{path.relative_to(ROOT)}: {src_room} includes pg/{m.group(1)}{m.group(2) or ''} "
                           f"(dependencies point down only: tier -> common -> core)")
        if src_room in ("worker",) or (src_room == "common" and path.name not in ("sweeps.hpp", "sweeps.cpp", "shmem.hpp",
                                                                                  "shmem.cpp", "tier.hpp")):
            for what in ("add_region(", "register_sweep(", "register_cycle(", "StatsRow{"):
                if what in text:
                    bad.append(f"{path.relative_to(ROOT)}: {what} outside a tier's folder")
    for path in sorted((ROOT / "src" / "pg").rglob("*.[ch]pp")):
        rel = str(path.relative_to(ROOT / "src" / "pg"))
        text = re.sub(r"//[^\n]*", "", path.read_text())
        for token, home in IDIOMS:
            if token in text and rel != home:
                bad.append(f"src/pg/{rel}: {token} belongs in src/pg/{home} only")
    if src_tiers := {p.name for p in (ROOT / "src" / "pg").iterdir() if p.is_dir()} - TIERS - {"common", "worker"}:
        bad.append(f"src/pg has folders that are neither a tier, common nor worker: {sorted(src_tiers)}")
    for line in bad:
        print(f"layers: {line}", file=sys.stderr)
    if not bad:
        print("layers: every dependency points down (tier -> common -> core)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
