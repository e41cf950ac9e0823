// TTL cache tier, inside the tier: its shared memory, GUCs and limits. The
// protocol is described in tier.cpp.
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::ttl {

constexpr std::size_t kMaxNamespaceBytes = 63;
constexpr std::size_t kMaxKeyBytes = 1024;

// GUCs (defined in tier.cpp).
extern int default_ttl_s;      // agentcache.default_ttl (user)
extern int stale_retention_s;  // agentcache.stale_retention (sighup)

// Per-namespace counters (the data lives in agentcache.entries). Slots are
// found by (db, name) under slot_lock(); counters are atomics. Slots are
// never freed, so a pointer to one stays valid for the backend's life.
constexpr int kSlots = 1024;
struct Counters {
  pg_atomic_uint64 hits, misses, stale_hits, evictions, expirations, invalidations;
  pg_atomic_uint64 entries, bytes;  // estimates, re-counted by the worker
};
struct Slot {
  bool used;
  uint32 db;
  char name[64];
  Counters c;
  // the worker's re-count in progress (a walk over several sweeps), copied
  // into c.entries/c.bytes when the walk reaches the end of the table
  pg_atomic_uint64 pass_entries, pass_bytes;
};
Slot* slots() noexcept;  // kSlots slots; nullptr when not preloaded
LWLock* slot_lock() noexcept;
// Bumped by every committed change of agentcache.namespaces: backends cache a
// namespace's settings together with the generation they read it at.
pg_atomic_uint64* settings_generation() noexcept;  // nullptr when not preloaded

}  // namespace agentcache::ttl
