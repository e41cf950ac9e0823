// GUC variables (defined in module.cpp).
#pragma once

namespace agentcache::guc {
extern int session_memory_kb;  // agentcache.session_memory (postmaster)
extern int session_turns;      // agentcache.session_turns (postmaster)
extern int context_turns;      // agentcache.context_turns (user)
extern int max_turn_bytes;     // agentcache.max_turn_bytes (user)
extern int map_memory_kb;      // agentcache.map_memory (postmaster)
extern char* database;         // agentcache.database (postmaster)
extern int sweep_interval_ms;  // agentcache.sweep_interval (sighup)
extern int turn_retention_s;   // agentcache.turn_retention (sighup; 0 = keep)
extern int default_ttl_s;      // agentcache.default_ttl (user)
extern int stale_retention_s;  // agentcache.stale_retention (sighup)
extern int dedup_window_s;     // agentcache.dedup_window (user)
}  // namespace agentcache::guc
