// The conversation tier's commit protocol, backend side: what this
// transaction changed in agentcache.turns, applied to shared memory when it
// commits (see tier.cpp).
#pragma once
#include "pg/common/pg.hpp"
#include "pg/memory/state.hpp"

#include <string_view>

namespace agentcache::memory::pending {

void register_callbacks();

// add_turn's own turn, applied to the cache at commit.
void add_turn(std::string_view key, uint64 hash, const LTurn& turn);
// A direct change of a session's rows (trigger, forget_session): its cached
// copy is dropped at commit.
void invalidate(std::string_view key);
// TRUNCATE agentcache.turns: every cached session of this database is dropped.
void truncate();

// True while add_turn runs its own INSERT (the trigger stays quiet).
bool in_add_turn() noexcept;
void set_in_add_turn(bool on) noexcept;

// Whether this transaction changed `key` (a TRUNCATE changes every key).
bool touches(std::string_view key) noexcept;
// True when every pending change to `key` is an add_turn (no direct DML, no
// TRUNCATE); *count: how many.
bool adds_only(std::string_view key, uint32* count) noexcept;
// This transaction's own turns of `key`, oldest first, appended to out->v
// (which has room for them).
void append_turns(std::string_view key, LTurns* out);

}  // namespace agentcache::memory::pending
