// Every shared-memory structure of agentcache, requested in shmem_request_hook
// and attached in shmem_startup_hook (only when preloaded).
#pragma once
#include "pg/pg.hpp"
#include "agentcache/core/map_store.hpp"
#include "agentcache/core/session_cache.hpp"

namespace agentcache::shmem {

constexpr std::uint32_t kSessionPartitions = 16;

// True when the library was loaded through shared_preload_libraries.
bool preloaded() noexcept;
// Throws sql_error 55000 naming shared_preload_libraries (with the line to
// add as hint) unless preloaded. `what` names the caller in the message.
void require(const char* what);

core::SessionCache* sessions() noexcept;  // nullptr when not preloaded
LWLock* session_lock(std::uint32_t partition) noexcept;
LWLock* selftest_lock() noexcept;
std::size_t session_memory_limit() noexcept;  // bytes, from the GUC at start-up

// Lookup maps: the store and its two locks (see core/map_store.hpp).
core::MapStore* maps() noexcept;  // nullptr when not preloaded
LWLock* map_build_lock() noexcept;
LWLock* map_read_lock() noexcept;
std::size_t map_memory_limit() noexcept;

// Background worker state, guarded by worker_lock().
constexpr int kMaxRefreshRequests = 64;
constexpr int kMapErrorLen = 256;
struct MapStatus {
  bool used;
  uint32 db;
  char name[core::MapStore::kMaxName + 1];
  char last_error[kMapErrorLen];  // empty: last refresh succeeded
  TimestampTz last_refresh;       // last success; 0: never
  TimestampTz last_attempt;       // last attempt, failed or not; 0: never
  int64 entries;
  // Set by define_map: shared memory holds a version its transaction built.
  // The worker keeps such a map while that transaction is in progress or
  // committed, and reloads it from the catalog if it aborted.
  TransactionId definer_xid;
};
struct WorkerState {
  pid_t pid;  // 0 when not running
  Latch* latch;
  uint64 starts;
  TimestampTz started_at, last_sweep, last_refresh;
  bool reconcile;    // run a cycle: drop maps the catalog lacks, load missing ones
  bool refresh_all;  // requests overflowed: refresh every map on the next cycle
  int nrequests;
  struct {
    uint32 db;
    char name[core::MapStore::kMaxName + 1];
  } requests[kMaxRefreshRequests];
  MapStatus status[core::MapStore::kMaxMaps];
};
WorkerState* worker_state() noexcept;  // nullptr when not preloaded

// TTL cache: per-namespace counters (the data lives in agentcache.entries).
// Slots are found by (db, name) under ttl_lock(); counters are atomics.
constexpr int kTtlNamespaces = 1024;
struct TtlCounters {
  pg_atomic_uint64 hits, misses, stale_hits, evictions, expirations, invalidations;
  pg_atomic_uint64 entries, bytes;  // estimates, re-counted by the worker
};
struct TtlNamespace {
  bool used;
  uint32 db;
  char name[64];
  TtlCounters c;
};
TtlNamespace* ttl_namespaces() noexcept;  // kTtlNamespaces slots; nullptr when not preloaded
// Bumped by every committed change of agentcache.namespaces: backends cache a
// namespace's settings together with the generation they read it at.
pg_atomic_uint64* ttl_settings_generation() noexcept;  // nullptr when not preloaded

// Message deduplication counters (stats() tier dedup).
struct DedupCounters {
  pg_atomic_uint64 acquired, in_progress, duplicate, expirations;
};
DedupCounters* dedup_counters() noexcept;  // nullptr when not preloaded
LWLock* ttl_lock() noexcept;
LWLock* worker_lock() noexcept;

void install_hooks();  // from _PG_init, when preloading

}  // namespace agentcache::shmem
