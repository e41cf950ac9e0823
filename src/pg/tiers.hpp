// The tiers, in the order _PG_init initialises them and stats()/health()
// list them.
#pragma once
#include "pg/common/tier.hpp"

namespace agentcache::tiers {

// Ends with nullptr.
extern const pg::Tier* const kAll[];

// From _PG_init: a DROP EXTENSION agentcache or DROP DATABASE that commits
// releases that database's shared-memory state in every tier.
void init_hooks();

}  // namespace agentcache::tiers
