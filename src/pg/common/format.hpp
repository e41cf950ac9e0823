// Text built with fmt into a fixed buffer: error messages, details and hints
// that sql_error copies. Nothing is allocated and nothing needs destroying,
// so a FixedText may live in a frame a PostgreSQL ERROR unwinds. Call sites
// pass FMT_STRING("..."): the format is checked at compile time.
#pragma once
#include "pg/common/pg.hpp"

#include <fmt/format.h>

#include <cstddef>
#include <utility>

namespace agentcache::pg {

template <std::size_t N>
struct FixedText {
  char text[N];
  const char* c_str() const noexcept { return text; }
};

// Formats into N bytes, truncating (always NUL-terminated).
template <std::size_t N = 256, class... Args>
FixedText<N> textf(fmt::format_string<Args...> format, Args&&... args) {
  FixedText<N> out;
  auto r = fmt::format_to_n(out.text, N - 1, format, std::forward<Args>(args)...);
  *r.out = '\0';
  return out;
}

}  // namespace agentcache::pg
