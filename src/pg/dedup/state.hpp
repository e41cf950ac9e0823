// Message deduplication, inside the tier: GUCs, limits and counters. The
// protocol is described in tier.cpp.
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::dedup {

constexpr std::size_t kMaxMessageIdBytes = 256;

extern int dedup_window_s;          // agentcache.dedup_window (user)
extern int max_claims_per_session;  // agentcache.max_claims_per_session (user)
extern int claim_lease_ms;          // agentcache.claim_lease (user; 0: no lease)

// stats() tier dedup: hits = duplicate answers, misses = acquired,
// stale_hits = in_progress, expirations = rows swept.
struct Counters {
  pg_atomic_uint64 acquired, in_progress, duplicate, expirations;
};
Counters* counters() noexcept;  // nullptr when not preloaded
void count(pg_atomic_uint64 Counters::*field, uint64 n = 1) noexcept;
// Claim and fingerprint locks held in the whole cluster: adds `delta`, returns
// the new total (0 without preload: then only the per-session cap applies).
int64 cluster_count(int delta) noexcept;

}  // namespace agentcache::dedup
