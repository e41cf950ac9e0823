// The background worker: loads and refreshes lookup maps, runs the periodic
// sweeps (turn retention now; later tiers register theirs here).
#pragma once
#include "pg/pg.hpp"

namespace agentcache::worker {

void register_worker();  // from _PG_init, when preloading

// Asks the worker to refresh a map (after a commit) or to reload the catalog.
void request_refresh(uint32 db, const char* name) noexcept;
void request_reconcile() noexcept;

// A periodic sweep: runs in the worker, in its own transaction, never during
// recovery. Returns rows affected.
using SweepFn = int64 (*)();
void register_sweep(const char* name, SweepFn fn);

}  // namespace agentcache::worker
