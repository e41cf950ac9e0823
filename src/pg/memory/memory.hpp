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
// get_context(): the newest `want` turns trimmed to max_chars (-1: no limit).
Jsonb* context(std::string_view key, uint32 want, int64 max_chars);

}  // namespace agentcache::memory
