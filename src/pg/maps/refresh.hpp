// The worker's cycle for maps (see refresh.cpp).
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::maps {
int64 refresh_cycle(bool first);
}  // namespace agentcache::maps
