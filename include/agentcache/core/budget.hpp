// The conversation window cut to a budget, as get_context / get_turns /
// inbound shape it (API.md 0.2.0, "Token budgets"): after max_turns (the
// caller's candidates) and max_chars, turns are dropped from the oldest side
// until Σ (tokens + overhead) ≤ max_tokens; a kept system turn comes first
// and counts against max_chars and max_tokens (if it alone exceeds either,
// the window is empty); start_on_user then drops the leading turns (after
// the system turn) that are not user turns.
#pragma once
#include "agentcache/core/pure.hpp"
#include "agentcache/core/text.hpp"

#include <cstddef>
#include <cstdint>

namespace agentcache::core {

struct BudgetTurn {
  Role role;
  std::uint32_t chars;
  std::uint32_t tokens;  // content tokens (only read when max_tokens >= 0)
};

struct Budget {
  std::int64_t max_chars = -1;   // < 0: none
  std::int64_t max_tokens = -1;  // < 0: none
  std::uint32_t overhead = 0;    // tokens per turn (the chat format)
  bool start_on_user = false;
};

struct Window {
  std::size_t from = 0;  // the first kept candidate
  bool system = false;   // the kept system turn comes first
};

// `turns`: the candidates, oldest first (without the kept system turn);
// `system`: the kept system turn, or nullptr. Returns which to keep; an
// empty window is {n, false}. `tokens_at(i)` (i < n) is asked only for the
// candidates that the token budget has to weigh, newest first.
template <class TokensAt>
Window cut(const BudgetTurn* turns, std::size_t n, const BudgetTurn* system, const Budget& b, TokensAt tokens_at) {
  const Window empty{n, false};
  std::uint64_t chars_left = ~std::uint64_t(0);
  if (b.max_chars >= 0) {
    chars_left = static_cast<std::uint64_t>(b.max_chars);
    if (system != nullptr) {
      if (system->chars > chars_left) return empty;
      chars_left -= system->chars;
    }
  }
  std::uint64_t tokens_left = ~std::uint64_t(0);
  if (b.max_tokens >= 0) {
    tokens_left = static_cast<std::uint64_t>(b.max_tokens);
    if (system != nullptr) {
      const std::uint64_t cost = std::uint64_t(system->tokens) + b.overhead;
      if (cost > tokens_left) return empty;
      tokens_left -= cost;
    }
  }
  // newest first: keep while both budgets hold
  std::size_t keep = 0;
  std::uint64_t chars = 0, tokens = 0;
  while (keep < n) {
    const std::size_t i = n - 1 - keep;
    const std::uint64_t c = turns[i].chars;
    if (chars + c > chars_left) break;
    if (b.max_tokens >= 0) {
      const std::uint64_t t = std::uint64_t(tokens_at(i)) + b.overhead;
      if (tokens + t > tokens_left) break;
      tokens += t;
    }
    chars += c;
    ++keep;
  }
  Window w{n - keep, system != nullptr};
  if (b.start_on_user)
    while (w.from < n && turns[w.from].role != Role::User) ++w.from;
  return w;
}

}  // namespace agentcache::core
