// The list of tiers, and the one SQL function that goes to every tier.
//
// Order: memory, ttl, dedup, maps. _PG_init initialises them in this order
// (their GUCs, shared-memory regions and background jobs: the worker sweeps
// turns, then TTL entries, then dedup rows); stats() lists their rows in it.
#include "pg/tiers.hpp"

#include "pg/common/boundary.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/maps/maps.hpp"
#include "pg/memory/memory.hpp"
#include "pg/ttl/ttl.hpp"

namespace agentcache::tiers {

const pg::Tier* const kAll[] = {&memory::kTier, &ttl::kTier, &dedup::kTier, &maps::kTier, nullptr};

}  // namespace agentcache::tiers

// _reset_memory() RETURNS void: drops this database's shared-memory state of
// every tier (run by the install script, so DROP + CREATE EXTENSION starts
// from empty shared memory).
AGENTCACHE_FUNCTION(agentcache_reset_memory) {
  using namespace agentcache;
  return pg::boundary([&]() -> Datum {
    for (const pg::Tier* const* t = tiers::kAll; *t != nullptr; ++t)
      if ((*t)->forget_database != nullptr) (*t)->forget_database();
    PG_RETURN_VOID();
  });
}
