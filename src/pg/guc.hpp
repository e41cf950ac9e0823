// GUC variables (defined in module.cpp).
#pragma once

namespace agentcache::guc {
extern int session_memory_kb;  // agentcache.session_memory (postmaster)
extern int session_turns;      // agentcache.session_turns (postmaster)
extern int context_turns;      // agentcache.context_turns (user)
extern int max_turn_bytes;     // agentcache.max_turn_bytes (user)
}  // namespace agentcache::guc
