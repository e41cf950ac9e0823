// The tiers, in the order _PG_init initialises them and stats()/health()
// list them.
#pragma once
#include "pg/common/tier.hpp"

namespace agentcache::tiers {

// Ends with nullptr.
extern const pg::Tier* const kAll[];

}  // namespace agentcache::tiers
