// TTL cache tier (glue): agentcache.entries (UNLOGGED) and agentcache.namespaces.
#pragma once
#include "pg/pg.hpp"

namespace agentcache::ttl {
// Worker sweep: expired rows past agentcache.stale_retention, max_entries
// overshoot, and a periodic re-count of the per-namespace estimates.
int64 sweep();
void reset_stats() noexcept;
// Transaction callback: a committed change of agentcache.namespaces bumps the
// settings generation every backend's cached namespace settings carry.
void register_callbacks();
}  // namespace agentcache::ttl
