// core::cut: the window cut to max_chars / max_tokens, with a kept system
// turn and start_on_user.
#include "agentcache/core/budget.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace {

using agentcache::core::Budget;
using agentcache::core::BudgetTurn;
using agentcache::core::cut;
using agentcache::core::Role;
using agentcache::core::Window;

std::vector<std::size_t> asked;
Window run(const std::vector<BudgetTurn>& v, const BudgetTurn* sys, const Budget& b) {
  asked.clear();
  return cut(v.data(), v.size(), sys, b, [&](std::size_t i) {
    asked.push_back(i);
    return v[i].tokens;
  });
}

const std::vector<BudgetTurn> kChat = {
    {Role::User, 10, 3}, {Role::Assistant, 20, 5}, {Role::Tool, 5, 2}, {Role::User, 8, 2}, {Role::Assistant, 12, 4}};

TEST(Budget, NoLimitsKeepEverything) {
  const Window w = run(kChat, nullptr, Budget{});
  EXPECT_EQ(w.from, 0u);
  EXPECT_FALSE(w.system);
  EXPECT_TRUE(asked.empty());  // no token budget: no token count asked for
}

TEST(Budget, TokensWithOverheadFromTheNewest) {
  Budget b;
  b.max_tokens = 14;
  b.overhead = 4;  // (4+4) + (2+4) = 14: the newest two fit exactly
  EXPECT_EQ(run(kChat, nullptr, b).from, 3u);
  EXPECT_EQ(asked, (std::vector<std::size_t>{4, 3, 2}));  // stops at the first that does not fit
  b.max_tokens = 13;
  EXPECT_EQ(run(kChat, nullptr, b).from, 4u);
  b.max_tokens = 7;
  EXPECT_EQ(run(kChat, nullptr, b).from, 5u);  // the newest alone does not fit: empty
  b.max_tokens = 0;
  b.overhead = 0;
  EXPECT_EQ(run(kChat, nullptr, b).from, 5u);
}

TEST(Budget, CharsThenTokens) {
  Budget b;
  b.max_chars = 25;  // 12 + 8 + 5 = 25: three turns by chars
  EXPECT_EQ(run(kChat, nullptr, b).from, 2u);
  b.max_tokens = 6;  // but 4 + 2 = 6 tokens: two
  EXPECT_EQ(run(kChat, nullptr, b).from, 3u);
}

TEST(Budget, KeptSystemTurnCountsAgainstBothBudgets) {
  const BudgetTurn sys{Role::System, 30, 6};
  Budget b;
  Window w = run(kChat, &sys, b);
  EXPECT_TRUE(w.system);
  EXPECT_EQ(w.from, 0u);
  b.max_tokens = 6 + 4 + 4 + 4;  // the system turn and the newest (4 tokens + 4)
  b.overhead = 4;
  w = run(kChat, &sys, b);
  EXPECT_TRUE(w.system);
  EXPECT_EQ(w.from, 4u);
  b.max_tokens = 9;  // the system turn alone (6 + 4) exceeds it: empty
  w = run(kChat, &sys, b);
  EXPECT_FALSE(w.system);
  EXPECT_EQ(w.from, kChat.size());
  b = Budget{};
  b.max_chars = 29;  // the system turn alone exceeds max_chars: empty
  w = run(kChat, &sys, b);
  EXPECT_FALSE(w.system);
  EXPECT_EQ(w.from, kChat.size());
  b.max_chars = 30;  // exactly the system turn
  w = run(kChat, &sys, b);
  EXPECT_TRUE(w.system);
  EXPECT_EQ(w.from, kChat.size());
}

TEST(Budget, StartOnUserDropsLeadingNonUserTurns) {
  Budget b;
  b.start_on_user = true;
  EXPECT_EQ(run(kChat, nullptr, b).from, 0u);
  b.max_tokens = 11;  // tool (2) + user (2) + assistant (4) + ... = the newest three fit: tool first
  EXPECT_EQ(run(kChat, nullptr, b).from, 3u);  // the tool turn is dropped: the window starts on the user turn
  const std::vector<BudgetTurn> no_user = {{Role::Assistant, 1, 1}, {Role::Tool, 1, 1}};
  b = Budget{};
  b.start_on_user = true;
  EXPECT_EQ(run(no_user, nullptr, b).from, 2u);  // nothing starts on a user turn: only the system turn, if kept
  const BudgetTurn sys{Role::System, 1, 1};
  const Window w = run(no_user, &sys, b);
  EXPECT_TRUE(w.system);
  EXPECT_EQ(w.from, 2u);
}

}  // namespace
