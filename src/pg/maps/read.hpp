// lookup() from shared memory only: no table is read.
#pragma once
#include "pg/common/pg.hpp"

#include <string_view>

namespace agentcache::maps::read {

// The value of `key` in map `name` (palloc'd jsonb), or nullptr when the key
// is absent. An unknown map raises 42704 — or gives nullptr when missing_ok
// (also without preload; else 55000 naming `what`).
Jsonb* lookup(const char* what, std::string_view name, std::string_view key, bool missing_ok);

}  // namespace agentcache::maps::read
