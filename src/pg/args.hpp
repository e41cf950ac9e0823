// Argument helpers shared by the SQL-callable functions of every tier.
#pragma once
#include "pg/boundary.hpp"

#include <string_view>

namespace agentcache::pg {

inline std::string_view text_view(text* t) { return {VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)}; }

// SQLSTATE 22004 naming the argument.
[[noreturn]] inline void null_arg(const char* name) {
  char msg[128];
  pg_snprintf(msg, sizeof msg, "%s must not be null", name);
  throw sql_error(ERRCODE_NULL_VALUE_NOT_ALLOWED, msg);
}

}  // namespace agentcache::pg
