// Shared memory: sizing (shmem_request_hook, PG 15), attachment under
// AddinShmemInitLock (shmem_startup_hook), and the LWLock tranche.
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/maps.hpp"
#include "pg/memory.hpp"

#include <cstring>

namespace agentcache::shmem {

namespace {

constexpr const char* kTranche = "agentcache";
constexpr const char* kStructName = "agentcache shared state";

// Locks of the tranche: [0] self-test, [1..kSessionPartitions] session
// partitions, then map build, map read, worker state.
constexpr int kMapBuildLock = 1 + static_cast<int>(kSessionPartitions);
constexpr int kMapReadLock = kMapBuildLock + 1;
constexpr int kWorkerLock = kMapReadLock + 1;
constexpr int kTtlLock = kWorkerLock + 1;
constexpr int kLockCount = kTtlLock + 1;

struct Shared {
  LWLockPadded* locks;
  core::SessionCache* sessions;
  std::size_t session_bytes;
  core::MapStore* maps;
  std::size_t map_bytes;
  WorkerState worker;
  TtlNamespace ttl[kTtlNamespaces];
  pg_atomic_uint64 ttl_settings_generation;
  DedupCounters dedup;
};

bool g_preloaded = false;
Shared* g_shared = nullptr;
shmem_request_hook_type prev_request_hook = nullptr;
shmem_startup_hook_type prev_startup_hook = nullptr;

std::size_t session_bytes() {
  return static_cast<std::size_t>(guc::session_memory_kb) * 1024;
}

std::size_t map_bytes() { return static_cast<std::size_t>(guc::map_memory_kb) * 1024; }

std::size_t session_region() {
  return MAXALIGN(core::SessionCache::footprint(session_bytes(), kSessionPartitions,
                                                static_cast<std::uint32_t>(guc::session_turns)));
}

std::size_t total_size() {
  std::size_t sz = MAXALIGN(sizeof(Shared));
  sz = add_size(sz, session_region());
  sz = add_size(sz, MAXALIGN(map_bytes()));
  return sz;
}

void request_hook() {
  if (prev_request_hook) prev_request_hook();
  RequestAddinShmemSpace(total_size());
  RequestNamedLWLockTranche(kTranche, kLockCount);
}

void startup_hook() {
  if (prev_startup_hook) prev_startup_hook();
  bool found = false;
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  auto* sh = static_cast<Shared*>(ShmemInitStruct(kStructName, total_size(), &found));
  if (!found) {
    sh->locks = GetNamedLWLockTranche(kTranche);
    sh->session_bytes = session_bytes();
    void* region = reinterpret_cast<char*>(sh) + MAXALIGN(sizeof(Shared));
    sh->sessions = core::SessionCache::create(region, sh->session_bytes, kSessionPartitions,
                                              static_cast<std::uint32_t>(guc::session_turns));
    sh->map_bytes = map_bytes();
    sh->maps = core::MapStore::create(static_cast<char*>(region) + session_region(), sh->map_bytes);
    std::memset(&sh->worker, 0, sizeof sh->worker);
    std::memset(sh->ttl, 0, sizeof sh->ttl);
    for (auto& ns : sh->ttl) {
      for (pg_atomic_uint64* a : {&ns.c.hits, &ns.c.misses, &ns.c.stale_hits, &ns.c.evictions, &ns.c.expirations,
                                  &ns.c.invalidations, &ns.c.entries, &ns.c.bytes})
        pg_atomic_init_u64(a, 0);
    }
    pg_atomic_init_u64(&sh->ttl_settings_generation, 0);
    for (pg_atomic_uint64* a : {&sh->dedup.acquired, &sh->dedup.in_progress, &sh->dedup.duplicate,
                                &sh->dedup.expirations})
      pg_atomic_init_u64(a, 0);
    if (sh->sessions == nullptr || sh->maps == nullptr) {
      LWLockRelease(AddinShmemInitLock);
      ereport(FATAL, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                      errmsg("agentcache could not lay out its shared memory (%zu + %zu bytes)", sh->session_bytes,
                             sh->map_bytes)));
    }
  }
  LWLockRelease(AddinShmemInitLock);
  g_shared = sh;
}

}  // namespace

bool preloaded() noexcept { return g_preloaded; }

void require(const char* what) {
  if (g_preloaded && g_shared != nullptr) return;
  char msg[256];
  pg_snprintf(msg, sizeof msg, "%s requires agentcache to be loaded via shared_preload_libraries", what);
  throw pg::sql_error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, msg, nullptr,
                      "Add shared_preload_libraries = 'agentcache' to postgresql.conf and restart the server.");
}

core::SessionCache* sessions() noexcept { return g_shared ? g_shared->sessions : nullptr; }

LWLock* session_lock(std::uint32_t partition) noexcept { return &g_shared->locks[1 + partition].lock; }

LWLock* selftest_lock() noexcept { return g_shared ? &g_shared->locks[0].lock : nullptr; }

std::size_t session_memory_limit() noexcept { return g_shared ? g_shared->session_bytes : session_bytes(); }

core::MapStore* maps() noexcept { return g_shared ? g_shared->maps : nullptr; }
LWLock* map_build_lock() noexcept { return &g_shared->locks[kMapBuildLock].lock; }
LWLock* map_read_lock() noexcept { return &g_shared->locks[kMapReadLock].lock; }
std::size_t map_memory_limit() noexcept { return g_shared ? g_shared->map_bytes : map_bytes(); }
WorkerState* worker_state() noexcept { return g_shared ? &g_shared->worker : nullptr; }
LWLock* worker_lock() noexcept { return &g_shared->locks[kWorkerLock].lock; }
TtlNamespace* ttl_namespaces() noexcept { return g_shared ? g_shared->ttl : nullptr; }
LWLock* ttl_lock() noexcept { return &g_shared->locks[kTtlLock].lock; }
pg_atomic_uint64* ttl_settings_generation() noexcept { return g_shared ? &g_shared->ttl_settings_generation : nullptr; }
DedupCounters* dedup_counters() noexcept { return g_shared ? &g_shared->dedup : nullptr; }

void install_hooks() {
  g_preloaded = true;
  prev_request_hook = shmem_request_hook;
  shmem_request_hook = request_hook;
  prev_startup_hook = shmem_startup_hook;
  shmem_startup_hook = startup_hook;
}

}  // namespace agentcache::shmem

// _reset_memory() RETURNS void: drops this database's sessions and maps from
// shared memory (run by the install script, so DROP + CREATE EXTENSION starts
// from empty shared memory).
AGENTCACHE_FUNCTION(agentcache_reset_memory) {
  return agentcache::pg::boundary([&]() -> Datum {
    agentcache::memory::reset_db();
    agentcache::maps::reset_db();
    PG_RETURN_VOID();
  });
}
