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
// Loads a session into shared memory now; the number of turns cached (0 when
// this transaction has pending changes to it, which must not be published).
int32 warm(std::string_view key);
// The turns encoded as get_context's jsonb array.
Jsonb* context_json(const LTurn* v, uint32 n);
// Gives back the scratch buffer when a huge read grew it.
void shrink_scratch();

}  // namespace agentcache::memory::read
