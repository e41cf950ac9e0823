// Message deduplication (glue): claims are session-level advisory locks in a
// private lock space; state lives in the logged table agentcache.dedup.
#pragma once
#include "pg/pg.hpp"

#include <string_view>

namespace agentcache::dedup {

enum class Outcome { Acquired, InProgress, Duplicate };
struct BeginResult {
  Outcome outcome;
  int32 attempts;   // after this call (0 unless acquired)
  bool repeated;    // the caller already held the claim
};

void check_message_id(std::string_view id);  // 54000
// dedup_begin(); conversation/body may be null (no fingerprint), within < 0: the GUC.
BeginResult begin(std::string_view message_id, const text* conversation, const text* body, int64 within_us);
// dedup_complete(): 55000 unless the caller holds the claim.
void complete(std::string_view message_id);
const char* outcome_name(Outcome o);
void register_callbacks();
int64 sweep();
int64 claims_held();  // cluster-wide, from the lock table
void reset_stats() noexcept;

}  // namespace agentcache::dedup
