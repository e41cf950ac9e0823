// Message deduplication, inside the tier: GUCs, limits and counters. The
// protocol is described in tier.cpp.
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::dedup {

constexpr std::size_t kMaxMessageIdBytes = 256;

extern int dedup_window_s;  // agentcache.dedup_window (user)

// stats() tier dedup: hits = duplicate answers, misses = acquired,
// stale_hits = in_progress, expirations = rows swept.
struct Counters {
  pg_atomic_uint64 acquired, in_progress, duplicate, expirations;
};
Counters* counters() noexcept;  // nullptr when not preloaded
void count(pg_atomic_uint64 Counters::*field, uint64 n = 1) noexcept;

}  // namespace agentcache::dedup
