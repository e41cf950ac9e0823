// Conversation-memory tier: what the rest of the glue may use (inbound.cpp,
// tiers.cpp). Callers validate NULLs, the role and read-only state first.
#pragma once
#include "pg/common/pg.hpp"
#include "pg/common/tier.hpp"
#include "agentcache/core/text.hpp"

#include <string_view>

namespace agentcache::memory {

extern const pg::Tier kTier;

// 54000 for a session_id over 256 bytes / content over max_turn_bytes.
void check_session_id(std::string_view key);
void check_content(const text* content);
// A max_turns argument: the GUC when NULL, 22023 when not positive.
int max_turns_arg(FunctionCallInfo fcinfo, int i);
// 42501 unless the caller may add turns (INSERT and SELECT on agentcache.turns):
// outbound checks it before it completes the claim.
void require_add_privileges();
// Inserts a turn in the caller's transaction (cached at commit); returns seq.
int64 add_turn(std::string_view key, core::Role role, text* content, Jsonb* meta);
// How get_context / get_turns / inbound shape the window (API.md 0.2.0,
// "Token budgets"); -1: no limit.
struct Shape {
  int64 max_chars = -1;
  int64 max_tokens = -1;
  bool keep_system = false;
  bool start_on_user = false;
};
// Reads max_tokens (22023 when negative), keep_system and start_on_user from
// arguments i, i+1, i+2 when the function has them (0.1.0's signatures do
// not); NULL booleans are false.
void budget_args(FunctionCallInfo fcinfo, int i, Shape* s);
// get_context(): the newest `want` turns shaped as `s`.
Jsonb* context(std::string_view key, uint32 want, const Shape& s);

}  // namespace agentcache::memory
