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
  int32 attempts;   // after this call (0 unless acquired)
  bool repeated;    // the caller already held the claim (its lease renewed)
  bool taken_over;  // acquired from a holder whose lease ran out, released or gone
};

void check_message_id(std::string_view id);  // 54000
// dedup_begin(); conversation/body may be null (no fingerprint), within < 0:
// the GUC; lease_us < 0: agentcache.claim_lease, 0: no lease.
BeginResult begin(std::string_view message_id, const text* conversation, const text* body, int64 within_us,
                  int64 lease_us);
// dedup_complete(): 55000 unless the caller holds the claim (and is not fenced).
void complete(std::string_view message_id);
// outbound(): 55000 unless the caller holds the claim — checked before the
// reply turn is added; then complete_with_reply records the turn's seq as
// the message's unsent reply (55000 when fenced: the caller's transaction
// then rolls the turn back).
void require_claim(std::string_view message_id);
void complete_with_reply(std::string_view message_id, std::string_view session_id, int64 seq);
// The stored reply of a completed message while it is not marked sent, as
// {"seq","role","content","at"} (+ "meta"); nullptr when there is none.
Jsonb* unsent_reply(std::string_view message_id);
const char* outcome_name(Outcome o);

}  // namespace agentcache::dedup
