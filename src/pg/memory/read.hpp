// The conversation tier's read path: shared memory when it can answer, else
// agentcache.turns (loading the session into memory when that is safe).
#pragma once
#include "pg/common/pg.hpp"
#include "pg/memory/state.hpp"

#include <string_view>

namespace agentcache::memory::read {

// The newest `want` turns of a session, oldest first (this transaction's own
// pending turns included).
LTurns turns(std::string_view key, uint32 want);
// The window get_context / get_turns / inbound shape: the newest `want`
// turns and, with keep_system, the session's first system turn (kept apart:
// not among `turns`, not counted in `want`; from shared memory when the
// session is cached, else read).
struct Window {
  LTurns turns;
  LTurn system{};
  bool has_system = false;
};
Window window(std::string_view key, uint32 want, bool keep_system);
// Token counts computed for these turns (and the system turn), kept with the
// cached turns that hold the same content (under a shared lock: atomic
// stores); no-op when the session is not cached.
void remember_tokens(std::string_view key, int encoding, const LTurn* v, uint32 n, const LTurn* system) noexcept;
// The seq of the session's newest cached turn, 0 when it is not cached: a
// hint (a commit elsewhere may be about to change it). With `known`, for a
// caller that holds the session's writer lock and has no pending change to
// the session, *known tells whether it is also the answer: every committed
// turn of the session is then in the cache, unless a change other than
// add_turn's was committed and its invalidation is not applied yet — which
// sql_change_state() rules out (false whenever it cannot) — or the cache was
// filled during recovery (a promoted standby: false until a restart).
int64 newest_cached_seq(std::string_view key, bool* known = nullptr) noexcept;
// Loads a session into shared memory now; the number of turns cached (0 when
// this transaction has pending changes to it, which must not be published).
int32 warm(std::string_view key);
// The turns encoded as get_context's jsonb array.
Jsonb* context_json(const LTurn* v, uint32 n);
// Gives back the scratch buffer when a huge read grew it.
void shrink_scratch();

}  // namespace agentcache::memory::read
