// Conversation-memory tier (glue).
#pragma once
#include "pg/pg.hpp"
#include "agentcache/core/session_cache.hpp"

#include <string_view>

namespace agentcache::memory {
void register_callbacks();
// Tier totals for stats()/health(); zeros when not preloaded.
core::SessionStats collect_stats() noexcept;
void reset_stats() noexcept;
// Drops every cached session of this database.
void reset_db() noexcept;

// For other tiers (inbound/outbound). Callers validate NULLs, the role and
// read-only state; these raise 54000 for too long values.
void check_session_id(std::string_view key);
void check_content(text* content);
// A max_turns argument: the GUC when NULL, 22023 when not positive.
int max_turns_arg(FunctionCallInfo fcinfo, int i);
// Inserts a turn in the caller's transaction (cached at commit); returns seq.
int64 add_turn(std::string_view key, core::Role role, text* content, Jsonb* meta);
// get_context(): the newest `want` turns trimmed to max_chars (-1: no limit).
Jsonb* context(std::string_view key, uint32 want, int64 max_chars);
}  // namespace agentcache::memory
