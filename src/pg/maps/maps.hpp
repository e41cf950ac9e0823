// Prewarmed lookup maps: what the rest of the glue may use (inbound.cpp,
// tiers.cpp).
#pragma once
#include "pg/common/pg.hpp"
#include "pg/common/tier.hpp"

#include <string_view>

namespace agentcache::maps {

extern const pg::Tier kTier;

// resolve_instance() for inbound(): nullptr (not an error) without preload
// or without an 'instances' map, or when the key is absent.
Jsonb* route(std::string_view instance);

}  // namespace agentcache::maps
