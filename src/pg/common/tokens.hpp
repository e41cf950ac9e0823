// Token counting for the glue: the two encodings' rank tables, loaded from
// the share directory once per process — by the postmaster before it forks
// when agentcache is preloaded (every backend inherits them), else by the
// first backend call that needs one — and never per call.
#pragma once
#include "pg/common/pg.hpp"

#include "agentcache/core/tokenizer.hpp"

#include <string_view>

namespace agentcache::pg::tokens {

using core::tok::Encoding;

// From _PG_init in the postmaster: loads both tables (a missing or damaged
// file is a WARNING there; the first call that needs it raises the error).
void preload() noexcept;

// The encoding named `name` (o200k_base, cl100k_base); else 22023.
Encoding parse_encoding(std::string_view name);

// Tokens of `text` in the database encoding (converted to UTF-8 first when
// that is another encoding). Loads the table on first use (58P01 when its
// file is missing, XX001 when it is damaged).
int64 count(Encoding e, std::string_view text);

// What the tables cost this process (health()): tables loaded, bytes.
struct Usage {
  int loaded;
  int64 bytes;
  double load_ms;  // time the loads took (all tables)
};
Usage usage() noexcept;

}  // namespace agentcache::pg::tokens
