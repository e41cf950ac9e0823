// Message deduplication tier: what the rest of the glue may use
// (inbound.cpp, tiers.cpp).
#pragma once
#include "pg/common/pg.hpp"
#include "pg/common/tier.hpp"

#include <string_view>

namespace agentcache::dedup {

extern const pg::Tier kTier;

enum class Outcome { Acquired, InProgress, Duplicate };
struct BeginResult {
  Outcome outcome;
  int32 attempts;  // after this call (0 unless acquired)
  bool repeated;   // the caller already held the claim
};

void check_message_id(std::string_view id);  // 54000
// dedup_begin(); conversation/body may be null (no fingerprint), within < 0: the GUC.
BeginResult begin(std::string_view message_id, const text* conversation, const text* body, int64 within_us);
// dedup_complete(): 55000 unless the caller holds the claim.
void complete(std::string_view message_id);
const char* outcome_name(Outcome o);

}  // namespace agentcache::dedup
