// Shared memory: sizing (shmem_request_hook, PG 15), attachment under
// AddinShmemInitLock (shmem_startup_hook), and the LWLock tranche.
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"

namespace agentcache::shmem {

namespace {

constexpr const char* kTranche = "agentcache";
constexpr const char* kStructName = "agentcache shared state";

// Locks of the tranche: [0] self-test, [1..kSessionPartitions] session partitions.
constexpr int kLockCount = 1 + static_cast<int>(kSessionPartitions);

struct Shared {
  LWLockPadded* locks;
  core::SessionCache* sessions;
  std::size_t session_bytes;
};

bool g_preloaded = false;
Shared* g_shared = nullptr;
shmem_request_hook_type prev_request_hook = nullptr;
shmem_startup_hook_type prev_startup_hook = nullptr;

std::size_t session_bytes() {
  return static_cast<std::size_t>(guc::session_memory_kb) * 1024;
}

std::size_t total_size() {
  std::size_t sz = MAXALIGN(sizeof(Shared));
  sz = add_size(sz, core::SessionCache::footprint(session_bytes(), kSessionPartitions,
                                                  static_cast<std::uint32_t>(guc::session_turns)));
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
    if (sh->sessions == nullptr) {
      LWLockRelease(AddinShmemInitLock);
      ereport(FATAL, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                      errmsg("agentcache could not lay out its session cache in %zu bytes", sh->session_bytes)));
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

void install_hooks() {
  g_preloaded = true;
  prev_request_hook = shmem_request_hook;
  shmem_request_hook = request_hook;
  prev_startup_hook = shmem_startup_hook;
  shmem_startup_hook = startup_hook;
}

}  // namespace agentcache::shmem
