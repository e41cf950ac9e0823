// What every tier exports to the top of the glue (module.cpp, stats.cpp,
// tiers.cpp), which loops over the tiers in the order src/pg/tiers.cpp
// lists them. A tier never calls another tier through this.
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::pg {

// One row of agentcache.stats().
struct StatsRow {
  const char* tier;
  const char* name;
  int64 entries, bytes, hits, misses, stale_hits, evictions, expirations, invalidations;
};

// Where a tier writes its stats() rows (a tuplestore in stats.cpp).
struct StatsSink {
  void (*emit)(void* ctx, const StatsRow& row);
  void* ctx;
  void row(const StatsRow& r) const { emit(ctx, r); }
};

struct Tier {
  const char* name;
  // From _PG_init: the tier's GUCs, transaction callbacks, shared-memory
  // region (when preloading) and background jobs.
  void (*init)();
  // stats(): the tier's rows for this database (zero counters without preload).
  void (*collect_stats)(const StatsSink& sink);
  // health(): the tier's top-level keys, pushed into an open jsonb object.
  void (*add_health)(JsonbParseState** state);
  // reset_stats(): zeroes the tier's counters.
  void (*reset_stats)();
  // Drops a database's shared-memory state of the tier: when DROP EXTENSION
  // or DROP DATABASE commits, and from the install script (so DROP + CREATE
  // EXTENSION starts empty). Runs at commit: must not raise.
  void (*forget_database)(Oid db);
};

}  // namespace agentcache::pg
