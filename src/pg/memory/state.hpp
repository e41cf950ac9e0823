// Conversation-memory tier, inside the tier: its shared memory, GUCs and the
// types its files share. The protocol is described in tier.cpp.
#pragma once
#include "pg/common/pg.hpp"
#include "agentcache/core/session_cache.hpp"

#include <string_view>

namespace agentcache::memory {

constexpr uint32 kPartitions = 16;
constexpr std::size_t kMaxSessionIdBytes = 256;

// GUCs (defined in tier.cpp).
extern int session_memory_kb;    // agentcache.session_memory (postmaster)
extern int session_turns;        // agentcache.session_turns (postmaster)
extern int context_turns;        // agentcache.context_turns (user)
extern int max_turn_bytes;       // agentcache.max_turn_bytes (user)
extern int turn_retention_s;     // agentcache.turn_retention (sighup; 0 = keep)
extern int token_encoding;       // agentcache.token_encoding (user; core::tok::Encoding)
extern int turn_token_overhead;  // agentcache.turn_token_overhead (user)

// Shared memory: the session cache and one LWLock per partition.
core::SessionCache* sessions() noexcept;  // nullptr when not preloaded
LWLock* partition_lock(uint32 partition) noexcept;

// A standby caches sessions only through warm_session, and replay does not
// keep them current. Before publishing during recovery, note it; the first
// cache access after the standby is promoted drops every cached session
// (they are reloaded from the table). noexcept: called at commit too.
void note_filled_in_recovery() noexcept;
void forget_if_promoted() noexcept;
// Whether sessions were ever cached during recovery since the server started
// (a promoted standby): then no cached seq is trusted (see
// read::newest_cached_seq).
bool ever_filled_in_recovery() noexcept;

// Changes to agentcache.turns other than add_turn's (the trigger's queued
// invalidations), counted from the first one in a transaction until the
// transaction ends, after its invalidations are applied (pending.cpp). The
// state read before and after looking at a cached session tells whether
// such a change could have been committed without being applied yet: not
// when no transaction was counted at the first read and none began or ended
// until the second (bits 0-31: not yet ended, 32-63: ended).
void sql_change_begin() noexcept;
void sql_change_end() noexcept;
uint64 sql_change_state() noexcept;

// A turn in backend memory (palloc'd, in the scratch buffer or a pending op). POD.
struct LTurn {
  int64 seq;
  TimestampTz at;
  core::Role role;
  uint32 chars;
  const char* content;
  uint32 content_len;
  Jsonb* meta;       // nullptr when SQL NULL
  uint32 tokens[2];  // content tokens per core::tok::Encoding; core::kTokensUnknown until counted
};
inline void tokens_unknown(LTurn& t) { t.tokens[0] = t.tokens[1] = core::kTokensUnknown; }
// The turn as the core's session cache takes it (pointing into `t`).
inline core::TurnData turn_data(const LTurn& t) {
  core::TurnData td;
  td.seq = t.seq;
  td.created_at = t.at;
  td.role = t.role;
  td.content = {t.content, t.content_len};
  td.has_meta = t.meta != nullptr;
  if (t.meta) td.meta = {reinterpret_cast<const char*>(t.meta), VARSIZE(t.meta)};
  return td;
}
struct LTurns {
  LTurn* v = nullptr;
  uint32 n = 0;
};

// The newest `want` of `all` (oldest first).
inline LTurns newest(LTurns all, uint32 want) {
  if (all.n > want) {
    all.v += all.n - want;
    all.n = want;
  }
  return all;
}

}  // namespace agentcache::memory
