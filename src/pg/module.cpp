// Module entry: the magic block and _PG_init, which initialises the common
// layer, every tier (src/pg/tiers.cpp lists them, in order) and the worker,
// then installs the shared-memory hooks when preloading.
#include "pg/common/boundary.hpp"
#include "pg/common/compat.hpp"
#include "pg/common/shmem.hpp"
#include "pg/common/sweeps.hpp"
#include "pg/common/tokens.hpp"
#include "pg/selftest.hpp"
#include "pg/tiers.hpp"
#include "pg/worker/worker.hpp"

extern "C" {
AGENTCACHE_MODULE_MAGIC("agentcache", AGENTCACHE_VERSION);
PGDLLEXPORT void _PG_init(void);
}

void _PG_init(void) {
  using namespace agentcache;
  pg::sweeps::init();
  for (const pg::Tier* const* t = tiers::kAll; *t != nullptr; ++t) (*t)->init();
  tiers::init_hooks();
  selftest::init();
  worker::init();
  MarkGUCPrefixReserved("agentcache");
  if (process_shared_preload_libraries_in_progress) {
    pg::shmem::install_hooks();
    pg::tokens::preload();  // the rank tables, once, before the postmaster forks
  }
}
