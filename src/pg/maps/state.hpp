// Lookup maps, inside the tier: shared memory, GUCs and the types its files
// share. The protocol (and the lock order build -> read -> status) is
// described in tier.cpp.
#pragma once
#include "pg/common/pg.hpp"
#include "agentcache/core/map_store.hpp"

namespace agentcache::maps {

constexpr std::size_t kMaxKeyBytes = 64 * 1024;
using Name = char[core::MapStore::kMaxName + 1];

extern int map_memory_kb;  // agentcache.map_memory (postmaster)

// A map's definition, as agentcache.maps holds it.
struct MapDef {
  const char* name;
  const char* query;
  Oid owner;
  const char* search_path;
};

// What is known of a map's loads, guarded by status_lock().
constexpr int kErrorLen = 256;
struct Status {
  bool used;
  uint32 db;
  Name name;
  Oid owner;                   // the map's owner at its last load (health() shows last_error to it only)
  char last_error[kErrorLen];  // empty: last refresh succeeded
  TimestampTz last_refresh;    // last success; 0: never
  TimestampTz last_attempt;    // last attempt, failed or not; 0: never
  int64 entries;
  // Set by define_map: shared memory holds a version its transaction built.
  // The worker keeps such a map while that transaction is in progress or
  // committed, and reloads it from the catalog if it aborted.
  TransactionId definer_xid;
  // The snapshot of the installed version's load (its
  // snapXactCompletionCount): a load that ran on an older snapshot never
  // replaces it (a worker refresh finishing after a refresh_map that saw
  // newer data).
  uint64 installed_snapshot;
};

// Work asked of the worker, guarded by status_lock().
constexpr int kMaxRequests = 64;
struct Requests {
  bool reconcile;    // run a cycle: drop maps the catalog lacks, load missing ones
  bool refresh_all;  // requests overflowed: refresh every map on the next cycle
  int n;
  struct {
    uint32 db;
    Name name;
  } v[kMaxRequests];
};

core::MapStore* store() noexcept;  // nullptr when not preloaded
LWLock* build_lock() noexcept;     // building/freeing versions (exclusive)
LWLock* read_lock() noexcept;      // lookups (shared), swaps (exclusive)
LWLock* status_lock() noexcept;    // statuses and requests
Status* statuses() noexcept;       // core::MapStore::kMaxMaps of them
Requests* request_queue() noexcept;

}  // namespace agentcache::maps
