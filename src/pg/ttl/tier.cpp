// TTL cache: put/get/get_stale/fetch/invalidate*/clear*/configure_namespace and
// invalidate_trigger over the UNLOGGED table agentcache.entries.
//
// Reads (get, get_stale, a fetch hit; read.cpp) scan the primary key directly
// (no SPI, no planner). Writes (write.cpp) run in the caller's transaction,
// so every invalidation takes effect iff the transaction commits and is
// visible to the transaction itself at once; put's row is written directly
// while the table is as installed, through SQL otherwise.
//
// Races are closed with transaction-scoped locks in private advisory lock
// spaces (pg/common/locks.hpp; taken in the order global, namespace, key):
//  * key lock (exclusive): fetch's single flight (concurrent misses of a key
//    queue on it; the first runs the query, the others wait for its
//    transaction to end and then read the stored value, or take over if it
//    failed, was cancelled or died), and invalidate of that key (both until
//    their transaction ends); put takes it only for its call and gives it
//    back, and a fetch leader finding an uncommitted put of its key waits for
//    that transaction (read::writer);
//  * namespace lock: fetch leaders hold it shared, clear() exclusive;
//  * global lock: fetch leaders hold it shared, clear_all() exclusive.
// Row locks: a statement that deletes many rows (clear, invalidate_tag, the
// trigger) locks them first in (namespace, key) order (write::delete_where);
// the eviction and the worker's sweep lock with SKIP LOCKED and never wait.
// A put locks one row. So no two agentcache calls wait on each other's rows
// in opposite orders.
// A fetch leader runs its query on a fresh snapshot taken after it holds the
// key lock, so a value computed from data older than a committed invalidation
// of its key is never stored.
//
// Shared memory (region "agentcache_ttl"): kSlots per-namespace counter
// slots, found under one LWLock and counted with atomics, and the settings
// generation (an atomic) that invalidates every backend's cached namespace
// settings when agentcache.namespaces changes.
#include "pg/common/shmem.hpp"
#include "pg/common/sweeps.hpp"
#include "pg/ttl/namespaces.hpp"
#include "pg/ttl/state.hpp"
#include "pg/ttl/sweep.hpp"
#include "pg/ttl/table.hpp"
#include "pg/ttl/ttl.hpp"

#include "pg/common/boundary.hpp"

#include <cstring>

namespace agentcache::ttl {

int default_ttl_s = 5 * 60;
int stale_retention_s = 15 * 60;

namespace {

struct Shared {
  LWLock* lock;
  pg_atomic_uint64 settings_generation;
  Slot slots[kSlots];
};
Shared* g_shared = nullptr;

Size region_size() { return sizeof(Shared); }

bool attach(void* base, bool found, LWLockPadded* locks) {
  g_shared = static_cast<Shared*>(base);
  if (found) return true;
  std::memset(base, 0, sizeof(Shared));
  g_shared->lock = &locks[0].lock;
  pg_atomic_init_u64(&g_shared->settings_generation, 0);
  for (Slot& s : g_shared->slots)
    for (pg_atomic_uint64* a : {&s.c.hits, &s.c.misses, &s.c.stale_hits, &s.c.evictions, &s.c.expirations,
                                &s.c.invalidations, &s.c.entries, &s.c.bytes})
      pg_atomic_init_u64(a, 0);
  return true;
}

void init() {
  DefineCustomIntVariable("agentcache.default_ttl",
                          "TTL a namespace created by its first put() gets as its default_ttl.", nullptr,
                          &default_ttl_s, 5 * 60, 1, INT_MAX, PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.stale_retention",
                          "How long expired TTL entries are kept for get_stale() and stale_if_error.", nullptr,
                          &stale_retention_s, 15 * 60, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  if (process_shared_preload_libraries_in_progress)
    pg::shmem::add_region(pg::shmem::Region{"agentcache_ttl", region_size, 1, attach});
  table::register_callbacks();
  namespaces::register_callbacks();
  pg::sweeps::register_sweep("ttl_expired", sweep);
}

// One row per namespace of this database. The slot table is read under its
// lock (counters are atomics); rows are emitted after it is released.
void collect_stats(const pg::StatsSink& sink) {
  if (g_shared == nullptr) return;
  struct Copy {
    char name[64];
    uint64 v[8];
  };
  auto* rows = static_cast<Copy*>(palloc(sizeof(Copy) * kSlots));
  int n = 0;
  {
    pg::LWLockGuard g(g_shared->lock, LW_SHARED);
    for (Slot& s : g_shared->slots) {
      if (!s.used || s.db != MyDatabaseId) continue;
      Copy& r = rows[n++];
      std::memcpy(r.name, s.name, sizeof r.name);
      int k = 0;
      for (pg_atomic_uint64* a : {&s.c.entries, &s.c.bytes, &s.c.hits, &s.c.misses, &s.c.stale_hits, &s.c.evictions,
                                  &s.c.expirations, &s.c.invalidations})
        r.v[k++] = pg_atomic_read_u64(a);
    }
  }
  for (int i = 0; i < n; ++i) {
    const uint64* v = rows[i].v;
    auto s = [](uint64 x) { return static_cast<int64>(x); };
    sink.row(pg::StatsRow{"ttl", rows[i].name, s(v[0]), s(v[1]), s(v[2]), s(v[3]), s(v[4]), s(v[5]), s(v[6]), s(v[7])});
  }
}

// The database's counter slots go back to the free pool. A backend that
// cached a pointer to one checks the slot's name before it counts into it
// (namespaces::slot).
void forget_database(Oid db) {
  if (g_shared == nullptr || db == InvalidOid) return;
  pg::LWLockGuard g(g_shared->lock, LW_EXCLUSIVE);
  for (Slot& s : g_shared->slots)
    if (s.used && s.db == db) {
      s.db = InvalidOid;  // a tombstone (see namespaces::slot)
      s.name[0] = '\0';
    }
}

void reset_stats() {
  if (g_shared == nullptr) return;
  for (Slot& s : g_shared->slots)
    for (pg_atomic_uint64* a :
         {&s.c.hits, &s.c.misses, &s.c.stale_hits, &s.c.evictions, &s.c.expirations, &s.c.invalidations})
      pg_atomic_write_u64(a, 0);
}

}  // namespace

Slot* slots() noexcept { return g_shared ? g_shared->slots : nullptr; }
LWLock* slot_lock() noexcept { return g_shared->lock; }
pg_atomic_uint64* settings_generation() noexcept { return g_shared ? &g_shared->settings_generation : nullptr; }

const pg::Tier kTier{"ttl", init, collect_stats, nullptr, reset_stats, forget_database};

}  // namespace agentcache::ttl
