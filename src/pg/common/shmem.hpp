// Shared memory: a registry of fixed-size regions, one per tier, requested in
// shmem_request_hook (PG 15) and attached in shmem_startup_hook under
// AddinShmemInitLock. Each region is a named ShmemInitStruct with its own
// named LWLock tranche; sizes come from postmaster GUCs, so nothing grows.
// A tier's init registers its region (only while preloading), in the order
// _PG_init calls the tiers.
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::pg::shmem {

struct Region {
  const char* name;  // ShmemInitStruct key and LWLock tranche name
  Size (*size)();    // bytes, from postmaster GUCs
  int nlocks;        // LWLocks in the region's tranche (may be 0)
  // Called in the postmaster (and again after a crash restart) with
  // AddinShmemInitLock held; `found`: already initialised. Must not raise;
  // returns false when the region cannot be laid out (FATAL follows).
  bool (*attach)(void* base, bool found, LWLockPadded* locks);
};

// From a tier's init, while shared_preload_libraries is being processed.
void add_region(const Region& r);
// From _PG_init after every tier's init, while preloading.
void install_hooks();

// True when the library was loaded through shared_preload_libraries and the
// regions are attached.
bool preloaded() noexcept;
// Throws sql_error 55000 naming shared_preload_libraries (with the line to
// add as hint) unless preloaded. `what` names the caller in the message.
void require(const char* what);

// The context of a shared-memory size GUC: postmaster while preloading
// (PostgreSQL refuses to create postmaster variables later); loaded on
// demand, the variables still exist, read-mostly, so SHOW works.
GucContext startup_context() noexcept;

}  // namespace agentcache::pg::shmem
