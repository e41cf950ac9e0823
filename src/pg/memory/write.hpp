// The conversation tier's write path: forget_session (add_turn is declared
// in memory.hpp, for inbound/outbound too).
#pragma once
#include "pg/common/pg.hpp"

#include <string_view>

namespace agentcache::memory::write {

// Deletes a session's history in the caller's transaction; rows deleted.
int64 forget(std::string_view key);

}  // namespace agentcache::memory::write
