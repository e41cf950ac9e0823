// Ending a claim the caller holds (dedup_complete, dedup_fail, outbound).
#pragma once
#include "pg/common/pg.hpp"

#include <string_view>

namespace agentcache::dedup {
// Completed (ok) or failed with `error`; released when the transaction
// commits. 55000 unless the caller holds the claim.
void finish(std::string_view message_id, bool ok, const text* error);
}  // namespace agentcache::dedup
