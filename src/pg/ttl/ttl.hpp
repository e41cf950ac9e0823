// TTL cache tier: what the rest of the glue may use (tiers.cpp).
#pragma once
#include "pg/common/tier.hpp"

namespace agentcache::ttl {
extern const pg::Tier kTier;
}  // namespace agentcache::ttl
