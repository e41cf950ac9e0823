// TTL cache tier (glue): agentcache.entries (UNLOGGED) and agentcache.namespaces.
#pragma once
#include "pg/pg.hpp"

namespace agentcache::ttl {
// Worker sweep: expired rows past agentcache.stale_retention, max_entries
// overshoot, and a periodic re-count of the per-namespace estimates.
int64 sweep();
void reset_stats() noexcept;
}  // namespace agentcache::ttl
