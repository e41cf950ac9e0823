// Shared-memory regions (see shmem.hpp).
#include "pg/common/shmem.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/format.hpp"

namespace agentcache::pg::shmem {

namespace {

constexpr int kMaxRegions = 8;
Region g_regions[kMaxRegions];
int g_nregions = 0;
bool g_hooks = false;     // install_hooks ran (we are being preloaded)
bool g_attached = false;  // every region is attached in this process
shmem_request_hook_type prev_request_hook = nullptr;
shmem_startup_hook_type prev_startup_hook = nullptr;

void request_hook() {
  if (prev_request_hook) prev_request_hook();
  for (int i = 0; i < g_nregions; ++i) {
    RequestAddinShmemSpace(MAXALIGN(g_regions[i].size()));
    if (g_regions[i].nlocks > 0) RequestNamedLWLockTranche(g_regions[i].name, g_regions[i].nlocks);
  }
}

void startup_hook() {
  if (prev_startup_hook) prev_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  for (int i = 0; i < g_nregions; ++i) {
    const Region& r = g_regions[i];
    bool found = false;
    void* base = ShmemInitStruct(r.name, MAXALIGN(r.size()), &found);
    LWLockPadded* locks = r.nlocks > 0 ? GetNamedLWLockTranche(r.name) : nullptr;
    if (!r.attach(base, found, locks)) {
      LWLockRelease(AddinShmemInitLock);
      ereport(FATAL, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                      errmsg("agentcache could not lay out its shared memory region \"%s\" (%zu bytes)", r.name,
                             static_cast<std::size_t>(r.size()))));
    }
  }
  LWLockRelease(AddinShmemInitLock);
  g_attached = true;
}

}  // namespace

void add_region(const Region& r) {
  if (g_nregions >= kMaxRegions) elog(ERROR, "agentcache: too many shared-memory regions");
  g_regions[g_nregions++] = r;
}

void install_hooks() {
  g_hooks = true;
  prev_request_hook = shmem_request_hook;
  shmem_request_hook = request_hook;
  prev_startup_hook = shmem_startup_hook;
  shmem_startup_hook = startup_hook;
}

bool preloaded() noexcept { return g_hooks && g_attached; }

void require(const char* what) {
  if (preloaded()) return;
  throw sql_error(
      ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
      textf<256>(FMT_STRING("{} requires agentcache to be loaded via shared_preload_libraries"), what).c_str(), nullptr,
      "Add shared_preload_libraries = 'agentcache' to postgresql.conf and restart the server.");
}

GucContext startup_context() noexcept {
  return process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP;
}

}  // namespace agentcache::pg::shmem
