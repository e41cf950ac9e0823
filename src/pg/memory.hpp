// Conversation-memory tier (glue).
#pragma once
#include "agentcache/core/session_cache.hpp"

namespace agentcache::memory {
void register_callbacks();
// Tier totals for stats()/health(); zeros when not preloaded.
core::SessionStats collect_stats() noexcept;
void reset_stats() noexcept;
// Drops every cached session of this database.
void reset_db() noexcept;
}  // namespace agentcache::memory
