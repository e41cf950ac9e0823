// The TTL tier's background sweep (see sweep.cpp).
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::ttl {
int64 sweep();
}  // namespace agentcache::ttl
