// Unit tests for the conversation-memory cache core
// (include/agentcache/core/session_cache.hpp, src/core/session_cache.cpp).
#include "agentcache/core/session_cache.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace agentcache::core {
// Readable gtest failure messages.
inline void PrintTo(SessionTable::Publish p, std::ostream* os) {
  switch (p) {
    case SessionTable::Publish::Published:
      *os << "Published";
      return;
    case SessionTable::Publish::AlreadyCached:
      *os << "AlreadyCached";
      return;
    case SessionTable::Publish::Stale:
      *os << "Stale";
      return;
    case SessionTable::Publish::NoRoom:
      *os << "NoRoom";
      return;
  }
  *os << "Publish(" << static_cast<int>(p) << ")";
}
}  // namespace agentcache::core

namespace {

namespace ac = agentcache::core;
using ac::Role;
using ac::SessionCache;
using ac::SessionStats;
using ac::SessionTable;
using ac::TurnData;
using ac::TurnRecord;
using Offset = SessionTable::Offset;
using Publish = SessionTable::Publish;
constexpr Offset kNull = ac::Arena::kNull;
using Seqs = std::vector<std::int64_t>;

// ------------------------------------------------------------------ helpers

// A turn that owns its bytes (TurnData only holds views).
struct Turn {
  std::int64_t seq = 0;
  std::int64_t created_at = 0;
  Role role = Role::User;
  std::string content;
  bool has_meta = false;
  std::string meta;
  TurnData data() const {
    TurnData d;
    d.seq = seq;
    d.created_at = created_at;
    d.role = role;
    d.content = content;
    d.has_meta = has_meta;
    d.meta = meta;
    return d;
  }
};

std::string content_for(std::int64_t seq) { return "turn#" + std::to_string(seq); }

Turn mk(std::int64_t seq) {
  Turn t;
  t.seq = seq;
  t.created_at = 1000 * seq;
  t.role = static_cast<Role>(seq % 4);
  t.content = content_for(seq);
  return t;
}

Turn mk_sized(std::int64_t seq, std::size_t n) {
  Turn t = mk(seq);
  t.content.assign(n, static_cast<char>('a' + seq % 26));
  return t;
}

std::vector<Turn> mk_range(std::int64_t first, std::int64_t last, std::size_t size = 0) {
  std::vector<Turn> v;
  for (std::int64_t s = first; s <= last; ++s) v.push_back(size ? mk_sized(s, size) : mk(s));
  return v;
}

Seqs seq_range(std::int64_t first, std::int64_t last) {
  Seqs v;
  for (std::int64_t s = first; s <= last; ++s) v.push_back(s);
  return v;
}

struct Key {
  std::uint32_t db;
  std::string key;
  std::uint64_t hash;
};
Key K(std::uint32_t db, std::string key) {
  std::uint64_t h = ac::session_hash(db, key);
  return Key{db, std::move(key), h};
}
Key KH(std::uint32_t db, std::string key, std::uint64_t hash) { return Key{db, std::move(key), hash}; }

// A SessionTable over an 8-aligned heap buffer.
class Table {
 public:
  Table(std::size_t bytes, std::uint32_t cap) : buf_(bytes / 8, 0) {
    t_ = SessionTable::create(buf_.data(), buf_.size() * 8, cap);
  }
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;
  SessionTable* get() { return t_; }
  SessionTable& operator*() { return *t_; }
  SessionTable* operator->() { return t_; }

 private:
  std::vector<std::uint64_t> buf_;
  SessionTable* t_ = nullptr;
};

Publish publish(SessionTable& t, const Key& k, const std::vector<Turn>& turns) {
  std::vector<TurnData> d;
  for (const Turn& x : turns) d.push_back(x.data());
  return t.publish(k.db, k.hash, k.key, d.data(), static_cast<std::uint32_t>(d.size()), t.generation(k.hash));
}
Publish publish_gen(SessionTable& t, const Key& k, const std::vector<Turn>& turns, std::uint64_t gen) {
  std::vector<TurnData> d;
  for (const Turn& x : turns) d.push_back(x.data());
  return t.publish(k.db, k.hash, k.key, d.data(), static_cast<std::uint32_t>(d.size()), gen);
}
bool apply(SessionTable& t, const Key& k, const Turn& x) {
  TurnData d = x.data();
  return t.apply_turn(k.db, k.hash, k.key, d);
}
Offset find(const SessionTable& t, const Key& k) { return t.find(k.db, k.hash, k.key); }
bool cached(const SessionTable& t, const Key& k) { return find(t, k) != kNull; }

Seqs seqs(const SessionTable& t, Offset s) {
  Seqs v;
  for (std::uint32_t i = 0; i < t.turn_count(s); ++i) v.push_back(t.turn(s, i).seq);
  return v;
}
// Seqs of a cached session; {-1} if not cached (never a valid result).
Seqs seqs_of(const SessionTable& t, const Key& k) {
  Offset s = find(t, k);
  return s == kNull ? Seqs{-1} : seqs(t, s);
}

SessionStats stats(const SessionTable& t) {
  SessionStats st;
  t.add_stats(st);
  return st;
}

std::vector<std::string> lru_keys(const SessionTable& t) {
  std::vector<std::string> v;
  t.for_each_lru([&](Offset s) { v.push_back(std::string(t.key_of(s))); });
  return v;
}

::testing::AssertionResult record_matches(const TurnRecord& r, const Turn& x) {
  std::string meta = x.has_meta ? x.meta : std::string();
  if (r.seq != x.seq) return ::testing::AssertionFailure() << "seq " << r.seq << " != " << x.seq;
  if (r.created_at != x.created_at)
    return ::testing::AssertionFailure() << "created_at " << r.created_at << " != " << x.created_at;
  if (r.role != static_cast<std::uint8_t>(x.role))
    return ::testing::AssertionFailure() << "role " << int(r.role) << " != " << int(x.role);
  if (r.content_view() != x.content)
    return ::testing::AssertionFailure() << "content '" << r.content_view() << "' != '" << x.content << "'";
  if (r.content_len != x.content.size()) return ::testing::AssertionFailure() << "content_len";
  if (r.chars != ac::utf8_chars(x.content))
    return ::testing::AssertionFailure() << "chars " << r.chars << " != " << ac::utf8_chars(x.content);
  if (r.has_meta != (x.has_meta ? 1 : 0)) return ::testing::AssertionFailure() << "has_meta " << int(r.has_meta);
  if (r.meta_len != meta.size() || r.meta_view() != meta)
    return ::testing::AssertionFailure() << "meta '" << r.meta_view() << "' != '" << meta << "'";
  return ::testing::AssertionSuccess();
}

// Compares a cached session against the expected turns (oldest first).
::testing::AssertionResult session_matches(const SessionTable& t, const Key& k, const std::vector<Turn>& want) {
  Offset s = find(t, k);
  if (s == kNull) return ::testing::AssertionFailure() << "session '" << k.key << "' not cached";
  if (t.turn_count(s) != want.size())
    return ::testing::AssertionFailure() << "turn_count " << t.turn_count(s) << " != " << want.size();
  for (std::uint32_t i = 0; i < want.size(); ++i) {
    auto r = record_matches(t.turn(s, i), want[i]);
    if (!r) return r << " (turn index " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

// Head of the bucket array, as computed by SessionTable::create.
std::size_t bucket_count(std::size_t table_bytes) {
  std::size_t head = (sizeof(SessionTable) + 7) & ~std::size_t(7);
  std::size_t nb = (table_bytes - head) / 512;
  return nb < 64 ? 64 : nb;
}

// Publishes sessions `prefix<i>` (4 turns of `turn_bytes`) starting at index
// `*next` until the table's eviction counter moves; returns the keys published.
std::vector<Key> publish_until_eviction(SessionTable& t, const std::string& prefix, int* next,
                                        std::size_t turn_bytes = 1000) {
  std::vector<Key> keys;
  std::uint64_t ev0 = stats(t).evictions;
  for (int guard = 0; guard < 1000 && stats(t).evictions == ev0; ++guard) {
    Key k = K(1, prefix + std::to_string((*next)++));
    EXPECT_EQ(publish(t, k, mk_range(1, 4, turn_bytes)), Publish::Published);
    keys.push_back(k);
    EXPECT_TRUE(t.check());
  }
  EXPECT_GT(stats(t).evictions, ev0) << "table never filled up";
  return keys;
}

// Every evicted key must be older than every present key.
::testing::AssertionResult evicted_are_oldest(const SessionTable& t, const std::vector<Key>& in_publish_order) {
  bool seen_present = false;
  for (const Key& k : in_publish_order) {
    bool c = cached(t, k);
    if (c)
      seen_present = true;
    else if (seen_present)
      return ::testing::AssertionFailure() << k.key << " evicted while an older one survived";
  }
  return ::testing::AssertionSuccess();
}

constexpr std::size_t kSmall = 64 * 1024;  // a table that fills after ~14 sessions of 4 KB

// =================================================================== create

TEST(SessionTableCreate, RejectsBadArguments) {
  std::vector<std::uint64_t> buf(kSmall / 8);
  EXPECT_EQ(SessionTable::create(nullptr, kSmall, 4), nullptr);
  EXPECT_EQ(SessionTable::create(reinterpret_cast<char*>(buf.data()) + 4, kSmall - 8, 4), nullptr);
  EXPECT_EQ(SessionTable::create(buf.data(), kSmall, 0), nullptr);
  EXPECT_EQ(SessionTable::create(buf.data(), kSmall, 0x10000), nullptr);
  EXPECT_EQ(SessionTable::create(buf.data(), 1024, 4), nullptr);
  EXPECT_EQ(SessionTable::create(buf.data(), 0, 4), nullptr);
  EXPECT_NE(SessionTable::create(buf.data(), kSmall, 1), nullptr);
}

TEST(SessionTableCreate, FreshTableIsEmpty) {
  Table t(kSmall, 4);
  ASSERT_NE(t.get(), nullptr);
  EXPECT_EQ(t->ring_capacity(), 4u);
  EXPECT_TRUE(t->check());
  SessionStats st = stats(*t);
  EXPECT_EQ(st.sessions, 0u);
  EXPECT_EQ(st.turns, 0u);
  EXPECT_EQ(st.content_bytes, 0u);
  EXPECT_EQ(st.used_bytes, 0u);
  EXPECT_EQ(st.hits + st.misses + st.evictions, 0u);
  EXPECT_GT(st.capacity, kSmall / 2);
  EXPECT_LT(st.capacity, kSmall);
  EXPECT_TRUE(lru_keys(*t).empty());
  EXPECT_FALSE(cached(*t, K(1, "nobody")));
  EXPECT_EQ(t->generation(0), t->generation(~std::uint64_t(0)));
}

TEST(SessionTableCreate, FootprintIsEnoughForTheArena) {
  for (std::size_t arena : {std::size_t(8192), std::size_t(64 * 1024), std::size_t(1 << 20)}) {
    SCOPED_TRACE(arena);
    std::size_t fp = SessionTable::footprint(arena, 8);
    EXPECT_GE(fp, arena + sizeof(SessionTable));
    EXPECT_LT(SessionTable::footprint(arena, 8), SessionTable::footprint(2 * arena, 8));
    Table t(fp, 8);
    ASSERT_NE(t.get(), nullptr);
    SessionStats st = stats(*t);
    EXPECT_LE(st.capacity, arena);
    EXPECT_GE(st.capacity + 4096, arena);  // only the arena's own control data is lost
    EXPECT_TRUE(t->check());
  }
}

TEST(SessionTableCreate, MaximumRingCapacityWorks) {
  Table t(2 << 20, 0xFFFF);
  ASSERT_NE(t.get(), nullptr);
  EXPECT_EQ(t->ring_capacity(), 0xFFFFu);
  Key k = K(1, "wide");
  ASSERT_EQ(publish(*t, k, mk_range(1, 3)), Publish::Published);
  EXPECT_TRUE(apply(*t, k, mk(4)));
  EXPECT_EQ(seqs_of(*t, k), seq_range(1, 4));
  EXPECT_TRUE(t->check());
}

// ===================================================================== ring

TEST(SessionTableRing, PublishFewerThanCapacity) {
  Table t(kSmall, 5);
  Key k = K(1, "a");
  auto turns = mk_range(1, 3);
  ASSERT_EQ(publish(*t, k, turns), Publish::Published);
  EXPECT_TRUE(session_matches(*t, k, turns));
  EXPECT_EQ(stats(*t).turns, 3u);
  EXPECT_TRUE(t->check());
}

TEST(SessionTableRing, PublishExactlyCapacity) {
  Table t(kSmall, 5);
  Key k = K(1, "a");
  auto turns = mk_range(11, 15);
  ASSERT_EQ(publish(*t, k, turns), Publish::Published);
  EXPECT_TRUE(session_matches(*t, k, turns));
  // Full ring: the next turn pushes the oldest out.
  EXPECT_TRUE(apply(*t, k, mk(16)));
  EXPECT_TRUE(session_matches(*t, k, mk_range(12, 16)));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableRing, PublishMoreThanCapacityKeepsNewest) {
  Table t(kSmall, 5);
  Key k = K(1, "a");
  ASSERT_EQ(publish(*t, k, mk_range(1, 12)), Publish::Published);
  EXPECT_TRUE(session_matches(*t, k, mk_range(8, 12)));
  SessionStats st = stats(*t);
  EXPECT_EQ(st.turns, 5u);
  std::uint64_t bytes = 0;
  for (auto& x : mk_range(8, 12)) bytes += x.content.size();
  EXPECT_EQ(st.content_bytes, bytes);
  EXPECT_TRUE(t->check());
}

TEST(SessionTableRing, PublishEmptySessionThenApply) {
  Table t(kSmall, 3);
  Key k = K(1, "empty");
  ASSERT_EQ(t->publish(k.db, k.hash, k.key, nullptr, 0, t->generation(k.hash)), Publish::Published);
  Offset s = find(*t, k);
  ASSERT_NE(s, kNull);
  EXPECT_EQ(t->turn_count(s), 0u);
  EXPECT_EQ(stats(*t).sessions, 1u);
  EXPECT_TRUE(apply(*t, k, mk(1)));
  EXPECT_TRUE(session_matches(*t, k, {mk(1)}));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableRing, ApplyAppendsNewest) {
  Table t(kSmall, 5);
  Key k = K(1, "a");
  ASSERT_EQ(publish(*t, k, mk_range(1, 2)), Publish::Published);
  for (int s = 3; s <= 5; ++s) EXPECT_TRUE(apply(*t, k, mk(s)));
  EXPECT_TRUE(session_matches(*t, k, mk_range(1, 5)));
  EXPECT_TRUE(apply(*t, k, mk(6)));
  EXPECT_TRUE(session_matches(*t, k, mk_range(2, 6)));
  EXPECT_TRUE(apply(*t, k, mk(100)));  // gaps in seq are fine
  EXPECT_EQ(seqs_of(*t, k), (Seqs{3, 4, 5, 6, 100}));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableRing, WrapAroundOverManyApplies) {
  for (std::uint32_t cap : {1u, 3u, 5u}) {
    SCOPED_TRACE(cap);
    Table t(kSmall, cap);
    Key k = K(3, "wrap");
    auto turn = [](std::int64_t s) {
      Turn x = mk(s);
      x.content = std::string(static_cast<std::size_t>(s % 17), 'x') + std::to_string(s);
      if (s % 3 == 0) {
        x.has_meta = true;
        x.meta = "m" + std::to_string(s);
      }
      return x;
    };
    ASSERT_EQ(publish(*t, k, {turn(1)}), Publish::Published);
    for (std::int64_t s = 2; s <= 1000; ++s) {
      ASSERT_TRUE(apply(*t, k, turn(s))) << s;
      std::int64_t first = std::max<std::int64_t>(1, s - cap + 1);
      std::vector<Turn> want;
      std::uint64_t bytes = 0;
      for (std::int64_t q = first; q <= s; ++q) {
        want.push_back(turn(q));
        bytes += want.back().content.size();
      }
      ASSERT_TRUE(session_matches(*t, k, want)) << "after seq " << s;
      SessionStats st = stats(*t);
      ASSERT_EQ(st.turns, want.size());
      ASSERT_EQ(st.content_bytes, bytes);
      ASSERT_TRUE(t->check()) << s;
    }
    EXPECT_EQ(lru_keys(*t), std::vector<std::string>{"wrap"});
  }
}

TEST(SessionTableRing, OutOfOrderInsertsInSortedPosition) {
  Table t(kSmall, 5);
  Key k = K(1, "ooo");
  ASSERT_EQ(publish(*t, k, {mk(1), mk(2), mk(4), mk(5)}), Publish::Published);
  EXPECT_TRUE(apply(*t, k, mk(3)));
  EXPECT_TRUE(session_matches(*t, k, mk_range(1, 5)));

  Key k2 = K(1, "ooo2");
  ASSERT_EQ(publish(*t, k2, {mk(5), mk(6)}), Publish::Published);
  EXPECT_TRUE(apply(*t, k2, mk(3)));  // lower than the oldest of a non-full ring: kept
  EXPECT_EQ(seqs_of(*t, k2), (Seqs{3, 5, 6}));
  EXPECT_TRUE(apply(*t, k2, mk(1)));
  EXPECT_TRUE(apply(*t, k2, mk(4)));
  EXPECT_EQ(seqs_of(*t, k2), (Seqs{1, 3, 4, 5, 6}));
  EXPECT_TRUE(apply(*t, k2, mk(2)));  // full: 2 > oldest 1, so 1 leaves
  EXPECT_TRUE(session_matches(*t, k2, mk_range(2, 6)));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableRing, OutOfOrderIntoFullRingAtEveryRotation) {
  // A reference ring: the newest `cap` distinct seqs ever applied.
  constexpr std::uint32_t cap = 5;
  for (std::uint32_t rot = 0; rot < cap; ++rot) {
    SCOPED_TRACE(rot);
    Table t(kSmall, cap);
    Key k = K(1, "rot");
    ASSERT_EQ(publish(*t, k, {}), Publish::Published);
    std::set<std::int64_t> model;
    auto step = [&](std::int64_t s) {
      bool keep = model.size() < cap || s > *model.begin();
      if (keep && model.insert(s).second && model.size() > cap) model.erase(model.begin());
      ASSERT_TRUE(apply(*t, k, mk(s)));
      ASSERT_EQ(seqs_of(*t, k), Seqs(model.begin(), model.end())) << "after " << s;
      std::vector<Turn> want;
      for (auto q : model) want.push_back(mk(q));
      ASSERT_TRUE(session_matches(*t, k, want));
      ASSERT_TRUE(t->check());
    };
    for (std::int64_t s = 2; s <= 2 * static_cast<std::int64_t>(cap + rot); s += 2) step(s);
    // Ring is full and its start index is `rot`; insert odd seqs in every gap.
    std::int64_t hi = 2 * static_cast<std::int64_t>(cap + rot);
    for (std::int64_t s = hi - 2 * cap + 1; s < hi; s += 2) step(s);
    // Now interleave: new newest, then a seq in the middle, then one too old.
    step(hi + 3);
    step(hi + 1);
    step(hi - 100);
  }
}

TEST(SessionTableRing, LowerThanOldestOfFullRingIsIgnored) {
  Table t(kSmall, 3);
  Key k = K(1, "full");
  ASSERT_EQ(publish(*t, k, mk_range(10, 12)), Publish::Published);
  SessionStats before = stats(*t);
  std::uint64_t g = t->generation(k.hash);
  EXPECT_TRUE(apply(*t, k, mk(9)));  // still cached
  EXPECT_TRUE(apply(*t, k, mk(-5)));
  EXPECT_TRUE(session_matches(*t, k, mk_range(10, 12)));
  SessionStats after = stats(*t);
  EXPECT_EQ(after.turns, before.turns);
  EXPECT_EQ(after.content_bytes, before.content_bytes);
  EXPECT_EQ(after.used_bytes, before.used_bytes);
  EXPECT_EQ(t->generation(k.hash), g + 2);  // a committed turn always bumps
  EXPECT_TRUE(t->check());
}

TEST(SessionTableRing, DuplicateSeqIsIgnored) {
  Table t(kSmall, 4);
  Key k = K(1, "dup");
  ASSERT_EQ(publish(*t, k, mk_range(1, 3)), Publish::Published);
  SessionStats before = stats(*t);
  for (std::int64_t s : {1, 2, 3, 2, 3}) {
    Turn other = mk(s);
    other.content = "CHANGED CONTENT " + std::to_string(s);
    EXPECT_TRUE(apply(*t, k, other));
  }
  EXPECT_TRUE(session_matches(*t, k, mk_range(1, 3)));
  SessionStats after = stats(*t);
  EXPECT_EQ(after.turns, before.turns);
  EXPECT_EQ(after.content_bytes, before.content_bytes);
  EXPECT_EQ(after.used_bytes, before.used_bytes);
  // Also for a full ring, including its oldest turn.
  EXPECT_TRUE(apply(*t, k, mk(4)));
  EXPECT_TRUE(apply(*t, k, mk(1)));
  EXPECT_TRUE(apply(*t, k, mk(4)));
  EXPECT_TRUE(session_matches(*t, k, mk_range(1, 4)));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableRing, TurnFieldsAreCopied) {
  Table t(kSmall, 8);
  Key k = K(9, "fields");
  std::vector<Turn> turns(7);
  turns[0] = {1, -123456789, Role::System, "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80", false, ""};
  turns[1] = {2, 0, Role::User, "", false, ""};  // empty content
  turns[2] = {3, 42, Role::Assistant, "with meta", true, "{\"k\": [1, 2]}"};
  turns[3] = {4, 43, Role::Tool, "empty meta", true, ""};                       // has_meta, empty
  turns[4] = {5, 44, Role::User, "no meta", false, "this must not be stored"};  // meta ignored
  turns[5] = {6, INT64_MAX, Role::Assistant, std::string("nul\0inside", 10), true, std::string("\0\1\2", 3)};
  turns[6] = {7, INT64_MIN, Role::Tool, std::string(3000, '\xE2'), false, ""};
  ASSERT_EQ(publish(*t, k, turns), Publish::Published);
  for (Turn& x : turns) {  // the cache must own copies
    std::fill(x.content.begin(), x.content.end(), '#');
    std::fill(x.meta.begin(), x.meta.end(), '#');
  }
  Offset s = find(*t, k);
  ASSERT_NE(s, kNull);
  ASSERT_EQ(t->turn_count(s), 7u);
  const TurnRecord& r0 = t->turn(s, 0);
  EXPECT_EQ(r0.content_view(), "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80");
  EXPECT_EQ(r0.content_len, 15u);
  EXPECT_EQ(r0.chars, 9u);
  EXPECT_EQ(r0.created_at, -123456789);
  EXPECT_EQ(r0.role, static_cast<std::uint8_t>(Role::System));
  EXPECT_EQ(r0.has_meta, 0u);
  EXPECT_EQ(r0.meta_len, 0u);
  const TurnRecord& r1 = t->turn(s, 1);
  EXPECT_EQ(r1.content_len, 0u);
  EXPECT_EQ(r1.chars, 0u);
  EXPECT_EQ(r1.content_view(), "");
  const TurnRecord& r2 = t->turn(s, 2);
  EXPECT_EQ(r2.has_meta, 1u);
  EXPECT_EQ(r2.meta_view(), "{\"k\": [1, 2]}");
  EXPECT_EQ(r2.role, static_cast<std::uint8_t>(Role::Assistant));
  const TurnRecord& r3 = t->turn(s, 3);
  EXPECT_EQ(r3.has_meta, 1u);  // jsonb '' vs SQL NULL must stay distinguishable
  EXPECT_EQ(r3.meta_len, 0u);
  EXPECT_EQ(r3.role, static_cast<std::uint8_t>(Role::Tool));
  const TurnRecord& r4 = t->turn(s, 4);
  EXPECT_EQ(r4.has_meta, 0u);
  EXPECT_EQ(r4.meta_len, 0u);
  EXPECT_EQ(r4.content_view(), "no meta");
  const TurnRecord& r5 = t->turn(s, 5);
  EXPECT_EQ(r5.content_view(), std::string("nul\0inside", 10));
  EXPECT_EQ(r5.chars, 10u);
  EXPECT_EQ(r5.meta_view(), std::string("\0\1\2", 3));
  EXPECT_EQ(r5.created_at, INT64_MAX);
  const TurnRecord& r6 = t->turn(s, 6);
  EXPECT_EQ(r6.content_len, 3000u);
  EXPECT_EQ(r6.chars, 3000u);  // 0xE2 lead bytes each count
  EXPECT_EQ(r6.created_at, INT64_MIN);
  for (std::uint32_t i = 0; i < 7; ++i)
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&t->turn(s, i)) % alignof(TurnRecord), 0u);

  // Same through apply_turn.
  Turn x{8, 777, Role::Tool, "\xF0\x9F\x98\x80\xF0\x9F\x98\x80 ok", true, "{}"};
  ASSERT_TRUE(apply(*t, k, x));
  Turn expect = x;
  x.content.assign(x.content.size(), '!');
  x.meta = "xx";
  EXPECT_TRUE(record_matches(t->turn(find(*t, k), 7), expect));
  EXPECT_EQ(t->turn(find(*t, k), 7).chars, 5u);
  EXPECT_TRUE(t->check());
}

TEST(SessionTableRing, AllByteValuesRoundTrip) {
  Table t(kSmall, 2);
  Key k = K(1, "bytes");
  Turn x = mk(1);
  x.content.clear();
  for (int i = 0; i < 20000; ++i) x.content.push_back(static_cast<char>(i * 31 % 256));
  x.has_meta = true;
  x.meta = x.content.substr(0, 777);
  ASSERT_EQ(publish(*t, k, {x}), Publish::Published);
  EXPECT_TRUE(session_matches(*t, k, {x}));
}

// ============================================================== generations

TEST(SessionTableGeneration, PublishWithCurrentGenerationIsPublished) {
  Table t(kSmall, 4);
  Key k = K(1, "g");
  std::uint64_t g = t->generation(k.hash);
  EXPECT_EQ(publish_gen(*t, k, mk_range(1, 2), g), Publish::Published);
  EXPECT_TRUE(cached(*t, k));
  EXPECT_EQ(t->generation(k.hash), g);  // publishing does not bump
}

TEST(SessionTableGeneration, PublishWithOtherGenerationIsStale) {
  Table t(kSmall, 4);
  Key k = K(1, "g");
  std::uint64_t g = t->generation(k.hash);
  EXPECT_EQ(publish_gen(*t, k, mk_range(1, 2), g + 1), Publish::Stale);
  EXPECT_EQ(publish_gen(*t, k, mk_range(1, 2), g - 1), Publish::Stale);
  EXPECT_FALSE(cached(*t, k));
  EXPECT_EQ(stats(*t).sessions, 0u);
  EXPECT_EQ(stats(*t).used_bytes, 0u);
}

TEST(SessionTableGeneration, ApplyTurnOnUncachedReturnsFalseButBumps) {
  Table t(kSmall, 4);
  Key k = K(1, "g");
  std::uint64_t g = t->generation(k.hash);
  EXPECT_FALSE(apply(*t, k, mk(1)));
  EXPECT_EQ(t->generation(k.hash), g + 1);
  EXPECT_FALSE(cached(*t, k));
  EXPECT_EQ(stats(*t).turns, 0u);
  // A load that started before the commit must not be published.
  EXPECT_EQ(publish_gen(*t, k, {}, g), Publish::Stale);
  EXPECT_FALSE(cached(*t, k));
  EXPECT_EQ(publish_gen(*t, k, {mk(1)}, g + 1), Publish::Published);
  EXPECT_TRUE(session_matches(*t, k, {mk(1)}));
}

TEST(SessionTableGeneration, ApplyTurnOnCachedBumpsAndStaleWinsOverAlreadyCached) {
  Table t(kSmall, 4);
  Key k = K(1, "g");
  ASSERT_EQ(publish(*t, k, {mk(1)}), Publish::Published);
  std::uint64_t g = t->generation(k.hash);
  EXPECT_TRUE(apply(*t, k, mk(2)));
  EXPECT_EQ(t->generation(k.hash), g + 1);
  EXPECT_EQ(publish_gen(*t, k, {mk(1)}, g), Publish::Stale);
  EXPECT_EQ(publish(*t, k, {mk(1)}), Publish::AlreadyCached);
  EXPECT_EQ(seqs_of(*t, k), (Seqs{1, 2}));
}

TEST(SessionTableGeneration, AlreadyCachedLeavesTheSessionAlone) {
  Table t(kSmall, 4);
  Key k = K(1, "g");
  ASSERT_EQ(publish(*t, k, mk_range(1, 3)), Publish::Published);
  SessionStats before = stats(*t);
  Turn other = mk(1);
  other.content = "something else";
  EXPECT_EQ(publish(*t, k, {other, mk(2), mk(3), mk(4)}), Publish::AlreadyCached);
  EXPECT_TRUE(session_matches(*t, k, mk_range(1, 3)));
  SessionStats after = stats(*t);
  EXPECT_EQ(after.sessions, 1u);
  EXPECT_EQ(after.turns, before.turns);
  EXPECT_EQ(after.used_bytes, before.used_bytes);
  EXPECT_TRUE(t->check());
}

TEST(SessionTableGeneration, InvalidateBumpsAndDrops) {
  Table t(kSmall, 4);
  Key k = K(1, "g");
  ASSERT_EQ(publish(*t, k, mk_range(1, 3)), Publish::Published);
  std::uint64_t g = t->generation(k.hash);
  EXPECT_TRUE(t->invalidate(k.db, k.hash, k.key));
  EXPECT_FALSE(cached(*t, k));
  EXPECT_EQ(t->generation(k.hash), g + 1);
  EXPECT_EQ(publish_gen(*t, k, mk_range(1, 3), g), Publish::Stale);
  // Not cached: still bumps, returns false.
  EXPECT_FALSE(t->invalidate(k.db, k.hash, k.key));
  EXPECT_EQ(t->generation(k.hash), g + 2);
  EXPECT_EQ(stats(*t).used_bytes, 0u);
  EXPECT_TRUE(t->check());
}

TEST(SessionTableGeneration, DropDoesNotBump) {
  Table t(kSmall, 4);
  Key k = K(1, "g");
  std::uint64_t g = t->generation(k.hash);
  ASSERT_EQ(publish_gen(*t, k, mk_range(1, 3), g), Publish::Published);
  EXPECT_TRUE(t->drop(k.db, k.hash, k.key));
  EXPECT_EQ(t->generation(k.hash), g);
  EXPECT_FALSE(cached(*t, k));
  EXPECT_FALSE(t->drop(k.db, k.hash, k.key));
  EXPECT_EQ(publish_gen(*t, k, mk_range(1, 3), g), Publish::Published);
  EXPECT_TRUE(t->check());
}

TEST(SessionTableGeneration, InvalidateAllBumpsEveryGeneration) {
  Table t(kSmall, 4);
  std::vector<std::uint64_t> hashes, before;
  for (int i = 0; i < 500; ++i) {
    hashes.push_back(ac::session_hash(static_cast<std::uint32_t>(i % 3), "s" + std::to_string(i)));
    before.push_back(t->generation(hashes.back()));
  }
  for (int i = 0; i < ac::SessionTable::kGenStripes; ++i) {
    hashes.push_back(std::uint64_t(i) << 20);
    before.push_back(t->generation(hashes.back()));
  }
  EXPECT_EQ(t->invalidate_all(77), 0u);  // no session of db 77, still bumps all
  for (std::size_t i = 0; i < hashes.size(); ++i) EXPECT_EQ(t->generation(hashes[i]), before[i] + 1) << i;
  Key k = K(1, "after");
  EXPECT_EQ(publish_gen(*t, k, {mk(1)}, before[0]), Publish::Stale);
  EXPECT_EQ(t->invalidate_all(0), 0u);
  for (std::size_t i = 0; i < hashes.size(); ++i) EXPECT_EQ(t->generation(hashes[i]), before[i] + 2) << i;
}

TEST(SessionTableGeneration, GenerationsAreStripedByHash) {
  Table t(kSmall, 4);
  const std::uint64_t h1 = 0x123456789ABCDEF0ULL;
  const std::uint64_t other_stripe = h1 + (std::uint64_t(1) << 20);
  const std::uint64_t same_stripe = h1 + (std::uint64_t(SessionTable::kGenStripes) << 20);
  Key a = KH(1, "a", h1), b = KH(1, "b", other_stripe), c = KH(1, "c", same_stripe);
  std::uint64_t gb = t->generation(b.hash), gc = t->generation(c.hash);
  EXPECT_FALSE(apply(*t, a, mk(1)));
  EXPECT_EQ(t->generation(b.hash), gb);
  EXPECT_EQ(publish_gen(*t, b, {mk(1)}, gb), Publish::Published);
  EXPECT_EQ(publish_gen(*t, c, {mk(1)}, gc), Publish::Stale);  // shares a's counter: conservative
}

// ====================================================================== LRU

TEST(SessionTableLru, ForEachLruIsMostRecentFirst) {
  Table t(1 << 20, 4);
  Key a = K(1, "a"), b = K(1, "b"), c = K(1, "c"), d = K(1, "d");
  ASSERT_EQ(publish(*t, a, {mk(1)}), Publish::Published);
  ASSERT_EQ(publish(*t, b, {mk(1)}), Publish::Published);
  ASSERT_EQ(publish(*t, c, {mk(1)}), Publish::Published);
  EXPECT_EQ(lru_keys(*t), (std::vector<std::string>{"c", "b", "a"}));
  EXPECT_TRUE(apply(*t, a, mk(2)));
  EXPECT_EQ(lru_keys(*t), (std::vector<std::string>{"a", "c", "b"}));
  t->touch(find(*t, b));  // reads mark, they do not reorder
  EXPECT_EQ(lru_keys(*t), (std::vector<std::string>{"a", "c", "b"}));
  EXPECT_TRUE(t->drop(c.db, c.hash, c.key));
  EXPECT_EQ(lru_keys(*t), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(publish(*t, d, {mk(1)}), Publish::Published);
  EXPECT_EQ(lru_keys(*t), (std::vector<std::string>{"d", "a", "b"}));
  EXPECT_TRUE(t->drop(b.db, b.hash, b.key));  // the tail
  EXPECT_TRUE(t->drop(d.db, d.hash, d.key));  // the head
  EXPECT_EQ(lru_keys(*t), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableLru, EvictsLeastRecentlyPublishedFirst) {
  Table t(kSmall, 4);
  int next = 0;
  std::vector<Key> all = publish_until_eviction(*t, "s", &next);
  ASSERT_GE(all.size(), 6u);
  EXPECT_FALSE(cached(*t, all[0]));  // the first published is the first evicted
  EXPECT_TRUE(evicted_are_oldest(*t, all));
  for (int i = 0; i < 40; ++i) {
    Key k = K(1, "s" + std::to_string(next++));
    ASSERT_EQ(publish(*t, k, mk_range(1, 4, 1000)), Publish::Published);
    all.push_back(k);
    ASSERT_TRUE(t->check());
    ASSERT_TRUE(evicted_are_oldest(*t, all));
    ASSERT_TRUE(cached(*t, k));
    // LRU lists the present sessions newest first.
    std::vector<std::string> want;
    for (auto it = all.rbegin(); it != all.rend() && cached(*t, *it); ++it) want.push_back(it->key);
    ASSERT_EQ(lru_keys(*t), want);
    SessionStats st = stats(*t);
    ASSERT_EQ(st.sessions, want.size());
    ASSERT_EQ(st.evictions, all.size() - want.size());  // nothing else removed sessions
    ASSERT_LE(st.used_bytes, st.capacity);
  }
}

TEST(SessionTableLru, ApplyTurnRefreshesRecency) {
  Table t(kSmall, 4);
  int next = 0;
  std::vector<Key> all = publish_until_eviction(*t, "s", &next);
  std::vector<Key> older;  // present sessions other than the refreshed one
  std::size_t first = 0;
  while (!cached(*t, all[first])) ++first;
  Key a = all[first];
  for (std::size_t i = first + 1; i < all.size(); ++i) older.push_back(all[i]);
  ASSERT_TRUE(apply(*t, a, mk_sized(5, 1000)));
  EXPECT_EQ(lru_keys(*t).front(), a.key);
  for (int i = 0; i < 40; ++i) {
    Key k = K(1, "n" + std::to_string(i));
    ASSERT_EQ(publish(*t, k, mk_range(1, 4, 1000)), Publish::Published);
    ASSERT_TRUE(t->check());
    bool any_older = std::any_of(older.begin(), older.end(), [&](const Key& o) { return cached(*t, o); });
    if (!cached(*t, a)) {
      ASSERT_FALSE(any_older) << "refreshed session evicted before older ones";
    }
  }
  EXPECT_FALSE(cached(*t, a));  // eventually it goes too
}

TEST(SessionTableLru, TouchedSessionGetsASecondChance) {
  Table t(kSmall, 4);
  int next = 0;
  std::vector<Key> all = publish_until_eviction(*t, "s", &next);
  std::size_t first = 0;
  while (!cached(*t, all[first])) ++first;
  ASSERT_LT(first + 3, all.size());
  Key a = all[first], b = all[first + 1];
  std::vector<Key> rest(all.begin() + static_cast<std::ptrdiff_t>(first + 2), all.end());
  t->touch(find(*t, a));
  t->touch(find(*t, a));  // idempotent
  std::uint64_t ev = stats(*t).evictions;
  Key trigger;
  for (int i = 0; i < 10 && cached(*t, b); ++i) {
    trigger = K(1, "x" + std::to_string(i));
    ASSERT_EQ(publish(*t, trigger, mk_range(1, 4, 1000)), Publish::Published);
    ASSERT_TRUE(t->check());
  }
  ASSERT_FALSE(cached(*t, b));
  EXPECT_TRUE(cached(*t, a)) << "touched session was evicted before an untouched newer one";
  EXPECT_GT(stats(*t).evictions, ev);
  // The survivor was moved to the front when it was passed over: it is now
  // ahead of every session that was newer than it (the new session may have
  // been linked before or after the rotation, depending on which allocation
  // had to evict).
  std::vector<std::string> order = lru_keys(*t);
  ASSERT_GE(order.size(), 2u);
  auto pos = [&](const std::string& key) { return std::find(order.begin(), order.end(), key) - order.begin(); };
  EXPECT_LE(pos(a.key), 1);
  EXPECT_LE(pos(trigger.key), 1);
  for (const Key& r : rest) {
    if (cached(*t, r)) {
      EXPECT_LT(pos(a.key), pos(r.key)) << r.key;
    }
  }
  // The mark is spent: without another touch, `a` goes after the sessions now behind it.
  for (int i = 0; i < 40 && cached(*t, a); ++i) {
    ASSERT_EQ(publish(*t, K(1, "y" + std::to_string(i)), mk_range(1, 4, 1000)), Publish::Published);
    ASSERT_TRUE(t->check());
  }
  EXPECT_FALSE(cached(*t, a));
  for (const Key& r : rest) EXPECT_FALSE(cached(*t, r)) << r.key;
}

TEST(SessionTableLru, AllTouchedStillEvictsTheOldest) {
  Table t(kSmall, 4);
  int next = 0;
  std::vector<Key> all = publish_until_eviction(*t, "s", &next);
  std::vector<Key> present;
  for (const Key& k : all)
    if (cached(*t, k)) present.push_back(k);
  for (const Key& k : present) t->touch(find(*t, k));
  std::vector<std::string> order_before = lru_keys(*t);
  Key k = K(1, "new");
  ASSERT_EQ(publish(*t, k, mk_range(1, 4, 1000)), Publish::Published);
  EXPECT_TRUE(t->check());
  EXPECT_FALSE(cached(*t, present.front()));
  EXPECT_TRUE(evicted_are_oldest(*t, present));
  EXPECT_TRUE(cached(*t, present.back()));
  // The full rotation keeps the relative order of the survivors.
  std::vector<std::string> order = lru_keys(*t);
  std::vector<std::string> survivors;
  for (const std::string& key : order) {
    if (key != "new") survivors.push_back(key);
  }
  ASSERT_EQ(survivors.size() + 1, order.size());
  std::vector<std::string> expect(order_before.begin(),
                                  order_before.begin() + static_cast<std::ptrdiff_t>(survivors.size()));
  EXPECT_EQ(survivors, expect);
}

TEST(SessionTableLru, ApplyTurnNeverEvictsItsOwnSession) {
  Table t(kSmall, 4);
  int next = 0;
  std::vector<Key> all = publish_until_eviction(*t, "s", &next);
  std::size_t first = 0;
  while (!cached(*t, all[first])) ++first;
  Key a = all[first];  // the LRU tail
  ASSERT_EQ(lru_keys(*t).back(), a.key);
  std::uint64_t ev = stats(*t).evictions;
  Turn big = mk_sized(5, 20000);  // needs several sessions' worth of space
  ASSERT_TRUE(apply(*t, a, big));
  EXPECT_GT(stats(*t).evictions, ev);
  EXPECT_TRUE(session_matches(*t, a, {mk_sized(2, 1000), mk_sized(3, 1000), mk_sized(4, 1000), big}));
  EXPECT_EQ(lru_keys(*t).front(), a.key);
  std::vector<Key> others(all.begin() + static_cast<std::ptrdiff_t>(first + 1), all.end());
  EXPECT_TRUE(evicted_are_oldest(*t, others));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableLru, EvictionsCountedAndReset) {
  Table t(kSmall, 4);
  int next = 0;
  std::vector<Key> all = publish_until_eviction(*t, "s", &next);
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(publish(*t, K(1, "s" + std::to_string(next++)), mk_range(1, 4, 1000)), Publish::Published);
  SessionStats st = stats(*t);
  EXPECT_EQ(st.evictions, static_cast<std::uint64_t>(next) - st.sessions);
  EXPECT_GE(st.evictions, 20u);
  t->reset_counters();
  SessionStats st2 = stats(*t);
  EXPECT_EQ(st2.evictions, 0u);
  EXPECT_EQ(st2.sessions, st.sessions);
  EXPECT_EQ(st2.turns, st.turns);
  EXPECT_EQ(st2.used_bytes, st.used_bytes);
}

// =============================================================== exhaustion

TEST(SessionTableExhaustion, TurnLargerThanArenaDropsTheSession) {
  Table t(kSmall, 4);
  Key a = K(1, "victim");
  ASSERT_EQ(publish(*t, a, mk_range(1, 2, 100)), Publish::Published);
  std::uint64_t g = t->generation(a.hash);
  Turn huge = mk_sized(3, stats(*t).capacity + 1000);
  EXPECT_FALSE(apply(*t, a, huge));
  EXPECT_FALSE(cached(*t, a));
  EXPECT_EQ(t->generation(a.hash), g + 1);
  EXPECT_TRUE(t->check());
  SessionStats st = stats(*t);
  EXPECT_EQ(st.sessions, 0u);
  EXPECT_EQ(st.turns, 0u);
  EXPECT_EQ(st.content_bytes, 0u);
  EXPECT_EQ(st.used_bytes, 0u);
  EXPECT_FALSE(apply(*t, a, huge));  // uncached now
  // The table still works.
  ASSERT_EQ(publish(*t, a, mk_range(1, 2, 100)), Publish::Published);
  EXPECT_TRUE(session_matches(*t, a, mk_range(1, 2, 100)));
}

TEST(SessionTableExhaustion, TurnAlmostAsLargeAsArenaDropsTheSession) {
  Table t(kSmall, 4);
  Key a = K(1, "victim");
  ASSERT_EQ(publish(*t, a, mk_range(1, 2, 100)), Publish::Published);
  // Fits the arena on its own, but not next to the session record.
  EXPECT_FALSE(apply(*t, a, mk_sized(3, stats(*t).capacity - 40)));
  EXPECT_FALSE(cached(*t, a));
  EXPECT_TRUE(t->check());
  EXPECT_EQ(stats(*t).used_bytes, 0u);
}

TEST(SessionTableExhaustion, TooLargePublishIsNoRoomAndLeavesNoTrace) {
  Table t(kSmall, 8);
  std::uint64_t cap = stats(*t).capacity;
  Key a = K(1, "big");
  EXPECT_EQ(publish(*t, a, {mk(1), mk_sized(2, cap + 1)}), Publish::NoRoom);
  EXPECT_FALSE(cached(*t, a));
  EXPECT_TRUE(t->check());
  // Many turns that only together exceed the arena.
  EXPECT_EQ(publish(*t, a, mk_range(1, 8, cap / 4)), Publish::NoRoom);
  EXPECT_FALSE(cached(*t, a));
  EXPECT_TRUE(t->check());
  SessionStats st = stats(*t);
  EXPECT_EQ(st.sessions, 0u);
  EXPECT_EQ(st.turns, 0u);
  EXPECT_EQ(st.content_bytes, 0u);
  EXPECT_EQ(st.used_bytes, 0u);
  EXPECT_TRUE(lru_keys(*t).empty());
  // More than capacity turns, only the newest of which must fit.
  EXPECT_EQ(publish(*t, a, mk_range(1, 20, cap / 16)), Publish::Published);
  EXPECT_EQ(seqs_of(*t, a), seq_range(13, 20));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableExhaustion, KeyLengthLimit) {
  Table t(1 << 20, 4);
  Key too_long = K(1, std::string(0x10000, 'k'));
  EXPECT_EQ(publish(*t, too_long, {mk(1)}), Publish::NoRoom);
  EXPECT_FALSE(cached(*t, too_long));
  Key longest = K(1, std::string(0xFFFF, 'k'));
  ASSERT_EQ(publish(*t, longest, {mk(1)}), Publish::Published);
  Offset s = find(*t, longest);
  ASSERT_NE(s, kNull);
  EXPECT_EQ(t->key_of(s), longest.key);
  Key shorter = K(1, std::string(0xFFFE, 'k'));
  EXPECT_FALSE(cached(*t, shorter));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableExhaustion, MemoryIsReusedAfterEvictionAndDrop) {
  Table t(kSmall, 4);
  int next = 0;
  std::vector<Key> all = publish_until_eviction(*t, "s", &next);
  SessionStats full = stats(*t);
  std::vector<Key> present;
  for (const Key& k : all)
    if (cached(*t, k)) present.push_back(k);
  ASSERT_EQ(present.size(), full.sessions);
  // Dropping one frees its bytes, and a new session then fits without eviction.
  ASSERT_TRUE(t->drop(present[0].db, present[0].hash, present[0].key));
  SessionStats after_drop = stats(*t);
  EXPECT_LT(after_drop.used_bytes, full.used_bytes);
  EXPECT_GE(full.used_bytes - after_drop.used_bytes, 4 * 1000u);
  ASSERT_EQ(publish(*t, K(1, "refill"), mk_range(1, 4, 1000)), Publish::Published);
  EXPECT_EQ(stats(*t).evictions, full.evictions);
  // Emptying the table returns every byte; the same load then fits again.
  EXPECT_EQ(t->invalidate_all(0), full.sessions);
  SessionStats empty = stats(*t);
  EXPECT_EQ(empty.used_bytes, 0u);
  EXPECT_EQ(empty.sessions, 0u);
  EXPECT_EQ(empty.turns, 0u);
  EXPECT_EQ(empty.content_bytes, 0u);
  EXPECT_TRUE(t->check());
  for (std::size_t i = 0; i < present.size(); ++i)
    ASSERT_EQ(publish(*t, K(2, "again" + std::to_string(i)), mk_range(1, 4, 1000)), Publish::Published);
  EXPECT_EQ(stats(*t).evictions, full.evictions);
  EXPECT_EQ(stats(*t).sessions, present.size());
  EXPECT_TRUE(t->check());
}

TEST(SessionTableExhaustion, RandomChurnStaysConsistent) {
  Table t(kSmall, 6);
  std::mt19937_64 rng(12345);
  std::vector<Key> keys;
  for (int i = 0; i < 60; ++i) keys.push_back(K(1 + i % 3, "churn" + std::to_string(i)));
  std::map<std::string, std::int64_t> next_seq;
  const std::uint64_t cap = stats(*t).capacity;
  for (int op = 0; op < 4000; ++op) {
    const Key& k = keys[rng() % keys.size()];
    std::int64_t& ns = next_seq[k.key];
    std::size_t size = rng() % 8 == 0 ? rng() % 12000 : rng() % 1500;
    if (rng() % 200 == 0) size = cap + rng() % 5000;  // impossible turn
    switch (rng() % 4) {
      case 0: {
        std::vector<Turn> v;
        for (std::uint64_t i = 0, n = rng() % 9; i < n; ++i) v.push_back(mk_sized(++ns, size / (i + 1)));
        Publish p = publish(*t, k, v);
        ASSERT_TRUE(p == Publish::Published || p == Publish::AlreadyCached || p == Publish::NoRoom);
        if (p == Publish::NoRoom) {
          ASSERT_FALSE(cached(*t, k));
        }
        break;
      }
      case 1:
      case 2: {
        bool was = cached(*t, k);
        bool now = apply(*t, k, mk_sized(++ns, size));
        ASSERT_EQ(now, cached(*t, k));
        if (!was) {
          ASSERT_FALSE(now);
        }
        if (size > cap) {
          ASSERT_FALSE(now);
        }
        break;
      }
      default:
        if (rng() % 2)
          t->drop(k.db, k.hash, k.key);
        else
          t->invalidate(k.db, k.hash, k.key);
        ASSERT_FALSE(cached(*t, k));
    }
    ASSERT_TRUE(t->check()) << "op " << op;
    SessionStats st = stats(*t);
    ASSERT_LE(st.used_bytes, st.capacity);
    ASSERT_LE(st.content_bytes, st.used_bytes);
  }
  EXPECT_GT(stats(*t).evictions, 0u);
  t->invalidate_all(0);
  EXPECT_EQ(stats(*t).used_bytes, 0u);
  EXPECT_TRUE(t->check());
}

// A turn that can never fit should cost only its own session: evicting the
// rest of the partition first cannot make room for it.
TEST(SessionTableExhaustion, OversizedTurnDoesNotFlushOtherSessions) {
  Table t(kSmall, 4);
  std::vector<Key> others;
  for (int i = 0; i < 5; ++i) {
    others.push_back(K(1, "bystander" + std::to_string(i)));
    ASSERT_EQ(publish(*t, others.back(), mk_range(1, 2, 500)), Publish::Published);
  }
  Key a = K(1, "victim");
  ASSERT_EQ(publish(*t, a, mk_range(1, 2, 100)), Publish::Published);
  EXPECT_FALSE(apply(*t, a, mk_sized(3, stats(*t).capacity + 1000)));
  EXPECT_FALSE(cached(*t, a));
  EXPECT_TRUE(t->check());
  for (const Key& k : others) EXPECT_TRUE(cached(*t, k)) << k.key << " was evicted for a turn that cannot fit";
  EXPECT_EQ(stats(*t).evictions, 0u);
}

TEST(SessionTableExhaustion, OversizedPublishDoesNotFlushOtherSessions) {
  Table t(kSmall, 4);
  std::vector<Key> others;
  for (int i = 0; i < 5; ++i) {
    others.push_back(K(1, "bystander" + std::to_string(i)));
    ASSERT_EQ(publish(*t, others.back(), mk_range(1, 2, 500)), Publish::Published);
  }
  Key a = K(1, "huge");
  EXPECT_EQ(publish(*t, a, {mk(1), mk_sized(2, stats(*t).capacity + 1000)}), Publish::NoRoom);
  EXPECT_TRUE(t->check());
  for (const Key& k : others) EXPECT_TRUE(cached(*t, k)) << k.key << " was evicted for a session that cannot fit";
  EXPECT_EQ(stats(*t).evictions, 0u);
}

// With a full ring the oldest turn leaves anyway; its space should be usable
// for the newcomer instead of dropping the whole session.
TEST(SessionTableExhaustion, FullRingAdvancesWhenOnlyTheOldestTurnsSpaceIsFree) {
  Table t(kSmall, 1);
  Key a = K(1, "big-turns");
  std::size_t size = stats(*t).capacity * 6 / 10;  // one fits, two never do
  ASSERT_EQ(publish(*t, a, {mk_sized(1, size)}), Publish::Published);
  EXPECT_TRUE(apply(*t, a, mk_sized(2, size))) << "session dropped although turn 2 fits once turn 1 leaves";
  EXPECT_TRUE(t->check());
  if (cached(*t, a)) {
    EXPECT_TRUE(session_matches(*t, a, {mk_sized(2, size)}));
  }
}

// ==================================================================== keys

TEST(SessionTableKeys, SameKeyInTwoDatabasesIsTwoSessions) {
  Table t(kSmall, 4);
  Key a1 = K(1, "conv"), a2 = K(2, "conv");
  ASSERT_NE(a1.hash, a2.hash);
  ASSERT_EQ(publish(*t, a1, {mk(1)}), Publish::Published);
  ASSERT_EQ(publish(*t, a2, mk_range(5, 7)), Publish::Published);
  EXPECT_NE(find(*t, a1), find(*t, a2));
  EXPECT_EQ(seqs_of(*t, a1), (Seqs{1}));
  EXPECT_EQ(seqs_of(*t, a2), seq_range(5, 7));
  // Forced identical hash: still distinguished by db.
  Key b1 = KH(1, "same", 0xFEEDu), b2 = KH(2, "same", 0xFEEDu);
  ASSERT_EQ(publish(*t, b1, {mk(10)}), Publish::Published);
  ASSERT_EQ(publish(*t, b2, {mk(20), mk(21)}), Publish::Published);
  EXPECT_EQ(seqs_of(*t, b1), (Seqs{10}));
  EXPECT_EQ(seqs_of(*t, b2), (Seqs{20, 21}));
  EXPECT_TRUE(t->drop(b1.db, b1.hash, b1.key));
  EXPECT_FALSE(cached(*t, b1));
  EXPECT_EQ(seqs_of(*t, b2), (Seqs{20, 21}));
  EXPECT_TRUE(apply(*t, b2, mk(22)));
  EXPECT_FALSE(apply(*t, b1, mk(11)));
  EXPECT_EQ(seqs_of(*t, b2), (Seqs{20, 21, 22}));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableKeys, DifferentKeysWithTheSameHash) {
  Table t(kSmall, 4);
  const std::uint64_t H = 0xABCDEF0123456789ULL;
  std::vector<Key> keys = {KH(1, "a", H), KH(1, "b", H),   KH(1, "ab", H),
                           KH(1, "", H),  KH(1, "abc", H), KH(1, std::string("a\0", 2), H)};
  for (std::size_t i = 0; i < keys.size(); ++i)
    ASSERT_EQ(publish(*t, keys[i], {mk(static_cast<std::int64_t>(i + 1))}), Publish::Published) << i;
  std::set<Offset> offs;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    Offset s = find(*t, keys[i]);
    ASSERT_NE(s, kNull) << i;
    offs.insert(s);
    EXPECT_EQ(t->key_of(s), keys[i].key);
    EXPECT_EQ(seqs(*t, s), (Seqs{static_cast<std::int64_t>(i + 1)}));
  }
  EXPECT_EQ(offs.size(), keys.size());
  EXPECT_FALSE(cached(*t, KH(1, "zz", H)));
  EXPECT_FALSE(cached(*t, KH(1, "a", H + 1)));  // right key, wrong hash
  EXPECT_FALSE(cached(*t, KH(2, "a", H)));
  // Remove from the middle, the head and the tail of the chain.
  for (std::size_t victim : {2u, 5u, 0u}) {
    EXPECT_TRUE(t->drop(keys[victim].db, keys[victim].hash, keys[victim].key));
    keys[victim].key = "#gone#";
    ASSERT_TRUE(t->check());
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i].key != "#gone#") {
        EXPECT_EQ(seqs_of(*t, keys[i]), (Seqs{static_cast<std::int64_t>(i + 1)}));
      }
  }
  EXPECT_EQ(stats(*t).sessions, 3u);
}

TEST(SessionTableKeys, DifferentHashesInTheSameBucket) {
  Table t(kSmall, 4);
  const std::uint64_t nb = bucket_count(kSmall);
  const std::uint64_t H = 977;
  std::vector<Key> keys;
  for (std::uint64_t i = 0; i < 5; ++i) keys.push_back(KH(1, "k" + std::to_string(i), H + i * nb));
  for (std::size_t i = 0; i < keys.size(); ++i)
    ASSERT_EQ(publish(*t, keys[i], {mk(static_cast<std::int64_t>(i + 1))}), Publish::Published);
  for (std::size_t i = 0; i < keys.size(); ++i)
    EXPECT_EQ(seqs_of(*t, keys[i]), (Seqs{static_cast<std::int64_t>(i + 1)}));
  EXPECT_FALSE(cached(*t, KH(1, "k1", H)));  // key of one, hash of another
  EXPECT_TRUE(t->invalidate(keys[2].db, keys[2].hash, keys[2].key));
  EXPECT_FALSE(cached(*t, keys[2]));
  for (std::size_t i : {0u, 1u, 3u, 4u}) EXPECT_TRUE(cached(*t, keys[i]));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableKeys, BinaryAndMultibyteKeys) {
  Table t(kSmall, 4);
  std::vector<Key> keys = {K(1, std::string("\0\0", 2)), K(1, std::string("\0", 1)), K(1, ""),
                           K(1, "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80"), K(1, std::string(300, '\xFF'))};
  for (const Key& k : keys) ASSERT_EQ(publish(*t, k, {mk(1)}), Publish::Published);
  for (const Key& k : keys) {
    Offset s = find(*t, k);
    ASSERT_NE(s, kNull);
    EXPECT_EQ(t->key_of(s), k.key);
  }
  EXPECT_EQ(stats(*t).sessions, keys.size());
}

TEST(SessionTableKeys, InvalidateAndDropOnlyAffectTheGivenDatabase) {
  Table t(kSmall, 4);
  const std::uint64_t H = 4242;
  Key d1 = KH(1, "s", H), d2 = KH(2, "s", H), d3 = KH(3, "s", H);
  for (const Key& k : {d1, d2, d3}) ASSERT_EQ(publish(*t, k, {mk(1)}), Publish::Published);
  EXPECT_TRUE(t->invalidate(2, H, "s"));
  EXPECT_TRUE(cached(*t, d1));
  EXPECT_FALSE(cached(*t, d2));
  EXPECT_TRUE(cached(*t, d3));
  EXPECT_FALSE(t->invalidate(4, H, "s"));
  EXPECT_TRUE(t->drop(3, H, "s"));
  EXPECT_FALSE(t->drop(3, H, "s"));
  EXPECT_TRUE(cached(*t, d1));
  EXPECT_FALSE(apply(*t, d2, mk(2)));
  EXPECT_TRUE(apply(*t, d1, mk(2)));
  EXPECT_EQ(seqs_of(*t, d1), (Seqs{1, 2}));
  EXPECT_TRUE(t->check());
}

TEST(SessionTableKeys, InvalidateAllByDatabase) {
  Table t(1 << 20, 4);
  std::vector<Key> keys;
  for (std::uint32_t db = 1; db <= 3; ++db)
    for (int i = 0; i < 5; ++i) keys.push_back(K(db, "s" + std::to_string(i)));
  for (const Key& k : keys) ASSERT_EQ(publish(*t, k, mk_range(1, 3, 50)), Publish::Published);
  EXPECT_EQ(t->invalidate_all(2), 5u);
  for (const Key& k : keys) EXPECT_EQ(cached(*t, k), k.db != 2) << k.db << "/" << k.key;
  EXPECT_TRUE(t->check());
  SessionStats st = stats(*t);
  EXPECT_EQ(st.sessions, 10u);
  EXPECT_EQ(st.turns, 30u);
  EXPECT_EQ(st.content_bytes, 30u * 50u);
  EXPECT_EQ(t->invalidate_all(2), 0u);
  EXPECT_EQ(t->invalidate_all(9), 0u);
  EXPECT_EQ(t->invalidate_all(0), 10u);
  EXPECT_TRUE(lru_keys(*t).empty());
  EXPECT_EQ(stats(*t).used_bytes, 0u);
  EXPECT_EQ(t->invalidate_all(0), 0u);
  EXPECT_TRUE(t->check());
}

// =================================================================== stats

TEST(SessionTableStats, CountsSessionsTurnsAndContent) {
  Table t(1 << 20, 3);
  Key a = K(1, "a"), b = K(1, "b");
  ASSERT_EQ(publish(*t, a, {mk_sized(1, 10), mk_sized(2, 20)}), Publish::Published);
  ASSERT_EQ(publish(*t, b, {mk_sized(1, 100)}), Publish::Published);
  SessionStats st = stats(*t);
  EXPECT_EQ(st.sessions, 2u);
  EXPECT_EQ(st.turns, 3u);
  EXPECT_EQ(st.content_bytes, 130u);
  ASSERT_TRUE(apply(*t, a, mk_sized(3, 30)));
  ASSERT_TRUE(apply(*t, a, mk_sized(4, 40)));  // 10 leaves
  st = stats(*t);
  EXPECT_EQ(st.turns, 4u);
  EXPECT_EQ(st.content_bytes, 20u + 30u + 40u + 100u);
  ASSERT_TRUE(t->drop(b.db, b.hash, b.key));
  st = stats(*t);
  EXPECT_EQ(st.sessions, 1u);
  EXPECT_EQ(st.turns, 3u);
  EXPECT_EQ(st.content_bytes, 90u);
  // Multibyte content counts bytes, not characters.
  ASSERT_TRUE(apply(*t, a, Turn{5, 0, Role::User, "\xF0\x9F\x98\x80", false, ""}));
  EXPECT_EQ(stats(*t).content_bytes, 30u + 40u + 4u);
}

TEST(SessionTableStats, UsedBytesCoversRecordsAndStaysWithinCapacity) {
  Table t(1 << 20, 6);
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(publish(*t, K(1, "s" + std::to_string(i)), mk_range(1, 6, 77)), Publish::Published);
  SessionStats st = stats(*t);
  std::uint64_t floor = st.content_bytes + st.turns * (sizeof(TurnRecord) + ac::Arena::kHeader) +
                        st.sessions * (32 + 6 * sizeof(Offset) + ac::Arena::kHeader);
  EXPECT_GE(st.used_bytes, floor);
  EXPECT_LE(st.used_bytes, st.capacity);
  EXPECT_EQ(st.used_bytes, t->arena().used_bytes());
  EXPECT_EQ(st.capacity, t->arena().capacity());
}

TEST(SessionTableStats, HitMissCountersAndReset) {
  Table t(kSmall, 4);
  Key a = K(1, "a");
  ASSERT_EQ(publish(*t, a, {mk(1)}), Publish::Published);
  for (int i = 0; i < 3; ++i) t->count_hit();
  for (int i = 0; i < 2; ++i) t->count_miss();
  SessionStats st = stats(*t);
  EXPECT_EQ(st.hits, 3u);
  EXPECT_EQ(st.misses, 2u);
  t->reset_counters();
  st = stats(*t);
  EXPECT_EQ(st.hits, 0u);
  EXPECT_EQ(st.misses, 0u);
  EXPECT_EQ(st.evictions, 0u);
  EXPECT_EQ(st.sessions, 1u);  // gauges are not counters
  EXPECT_EQ(st.turns, 1u);
  EXPECT_TRUE(cached(*t, a));
  t->count_hit();
  EXPECT_EQ(stats(*t).hits, 1u);
}

TEST(SessionTableStats, AddStatsAccumulates) {
  Table t1(kSmall, 4), t2(kSmall, 4);
  ASSERT_EQ(publish(*t1, K(1, "a"), mk_range(1, 2, 10)), Publish::Published);
  ASSERT_EQ(publish(*t2, K(1, "b"), mk_range(1, 3, 20)), Publish::Published);
  t1->count_hit();
  t2->count_miss();
  t2->count_miss();
  SessionStats st;
  st.sessions = 100;
  st.hits = 7;
  t1->add_stats(st);
  t2->add_stats(st);
  EXPECT_EQ(st.sessions, 102u);
  EXPECT_EQ(st.turns, 5u);
  EXPECT_EQ(st.content_bytes, 80u);
  EXPECT_EQ(st.hits, 8u);
  EXPECT_EQ(st.misses, 2u);
  EXPECT_EQ(st.capacity, stats(*t1).capacity + stats(*t2).capacity);
  EXPECT_EQ(st.used_bytes, stats(*t1).used_bytes + stats(*t2).used_bytes);
}

TEST(SessionTableStats, PerTurnOverheadIsAtMost64Bytes) {
  Table t(4 << 20, 30);
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(publish(*t, K(1, "session-" + std::to_string(i)), mk_range(1, 30, 200)), Publish::Published);
  SessionStats st = stats(*t);
  ASSERT_EQ(st.sessions, 100u);
  ASSERT_EQ(st.turns, 3000u);
  ASSERT_EQ(st.content_bytes, 3000u * 200u);
  ASSERT_EQ(st.evictions, 0u);
  double overhead = double(st.used_bytes - st.content_bytes) / double(st.turns);
  std::cout << "[ overhead ] used_bytes=" << st.used_bytes << " content_bytes=" << st.content_bytes
            << " turns=" << st.turns << " per-turn overhead=" << overhead << " bytes" << std::endl;
  RecordProperty("per_turn_overhead_bytes", std::to_string(overhead));
  EXPECT_LE(overhead, 64.0);
  EXPECT_TRUE(t->check());
}

// =========================================================== concurrency

TEST(SessionTableConcurrency, SharedReadersFindTouchAndRead) {
  Table t(1 << 20, 8);
  std::vector<Key> keys;
  for (int i = 0; i < 50; ++i) {
    keys.push_back(K(1, "r" + std::to_string(i)));
    ASSERT_EQ(publish(*t, keys.back(), mk_range(1, 8)), Publish::Published);
  }
  const SessionTable& ct = *t;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int it = 0; it < 20000; ++it) {
        const Key& k = keys[static_cast<std::size_t>((it * 7 + th) % 50)];
        Offset s = find(ct, k);
        if (s == kNull) {
          ++bad;
          continue;
        }
        ct.touch(s);
        std::uint32_t n = ct.turn_count(s);
        if (n != 8 || ct.turn(s, it % 8).content_view() != content_for(it % 8 + 1)) ++bad;
        (it % 2 ? t->count_hit() : t->count_miss());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(stats(*t).hits + stats(*t).misses, 80000u);
  EXPECT_TRUE(t->check());
}

// =================================================================== model

// Random commits (partly out of order), loads, invalidations and drops over a
// small table. A cached session must always hold exactly the newest
// min(total, capacity) committed turns.
TEST(SessionTableModel, RandomOperationsMatchTheCommittedLog) {
  constexpr std::uint32_t cap = 4;
  Table t(kSmall, cap);
  std::mt19937_64 rng(20240607);
  struct Sess {
    Key k;
    std::map<std::int64_t, Turn> log;
    std::int64_t next = 1;
    std::vector<std::int64_t> pending;  // seqs taken but committed later
  };
  std::vector<Sess> ss;
  for (int i = 0; i < 40; ++i) {
    std::uint32_t db = 1 + static_cast<std::uint32_t>(i % 3);
    std::string key = "m" + std::to_string(i % 20);  // same key in several dbs
    if (i < 6)
      ss.push_back({KH(db, key, 0x5151515151ULL), {}, 1, {}});  // one hash chain
    else
      ss.push_back({K(db, key), {}, 1, {}});
  }
  auto random_turn = [&](std::int64_t seq) {
    Turn x;
    x.seq = seq;
    x.created_at = static_cast<std::int64_t>(rng() % 1000000);
    x.role = static_cast<Role>(rng() % 4);
    std::size_t n = rng() % 1000;
    for (std::size_t i = 0; i < n; ++i)
      x.content.push_back(rng() % 5 == 0 ? '\xC3' : 'a' + static_cast<char>(rng() % 26));
    x.has_meta = rng() % 2;
    if (x.has_meta) x.meta = std::string(rng() % 40, 'm');
    return x;
  };
  auto newest = [&](const Sess& s) {
    std::vector<Turn> v;
    for (auto it = s.log.rbegin(); it != s.log.rend() && v.size() < cap; ++it) v.insert(v.begin(), it->second);
    return v;
  };
  auto commit = [&](Sess& s) {
    std::int64_t seq;
    if (!s.pending.empty() && rng() % 3 == 0) {
      std::size_t i = rng() % s.pending.size();
      seq = s.pending[i];
      s.pending.erase(s.pending.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      if (rng() % 6 == 0) s.pending.push_back(s.next++);
      seq = s.next++;
    }
    Turn x = random_turn(seq);
    s.log[seq] = x;
    return x;
  };
  std::uint64_t hits = 0, misses = 0;
  for (int op = 0; op < 20000; ++op) {
    Sess& s = ss[rng() % ss.size()];
    bool was = cached(*t, s.k);
    std::uint32_t r = static_cast<std::uint32_t>(rng() % 100);
    if (r < 40) {  // commit a turn
      Turn x = commit(s);
      ASSERT_EQ(apply(*t, s.k, x), was) << "op " << op;
    } else if (r < 65) {  // load and publish
      Publish p = publish(*t, s.k, [&] {
        std::vector<Turn> all;
        for (auto& kv : s.log) all.push_back(kv.second);
        return all;
      }());
      ASSERT_EQ(p, was ? Publish::AlreadyCached : Publish::Published) << "op " << op;
    } else if (r < 70) {  // a load that raced with a commit
      std::uint64_t g = t->generation(s.k.hash);
      std::vector<Turn> snap = newest(s);
      Turn x = commit(s);
      apply(*t, s.k, x);
      ASSERT_EQ(publish_gen(*t, s.k, snap, g), Publish::Stale);
    } else if (r < 75) {  // end_session
      ASSERT_EQ(t->drop(s.k.db, s.k.hash, s.k.key), was);
    } else if (r < 80) {  // delete a turn: change of unknown shape
      if (!s.log.empty()) {
        auto it = s.log.begin();
        std::advance(it, static_cast<long>(rng() % s.log.size()));
        s.log.erase(it);
      }
      ASSERT_EQ(t->invalidate(s.k.db, s.k.hash, s.k.key), was);
    } else if (r < 81) {
      std::uint32_t db = static_cast<std::uint32_t>(rng() % 4);
      std::uint64_t expect = 0;
      for (const Sess& o : ss)
        if ((db == 0 || o.k.db == db) && cached(*t, o.k)) ++expect;
      ASSERT_EQ(t->invalidate_all(db), expect);
    } else {  // read
      Offset off = find(*t, s.k);
      if (off != kNull) {
        t->touch(off);
        t->count_hit();
        ++hits;
      } else {
        t->count_miss();
        ++misses;
      }
    }
    ASSERT_TRUE(t->check()) << "op " << op;
    std::uint64_t n = 0, turns = 0, bytes = 0;
    for (const Sess& o : ss) {
      if (!cached(*t, o.k)) continue;
      std::vector<Turn> want = newest(o);
      ASSERT_TRUE(session_matches(*t, o.k, want)) << "op " << op << " session " << o.k.db << "/" << o.k.key;
      ++n;
      turns += want.size();
      for (auto& x : want) bytes += x.content.size();
    }
    SessionStats st = stats(*t);
    ASSERT_EQ(st.sessions, n);
    ASSERT_EQ(st.turns, turns);
    ASSERT_EQ(st.content_bytes, bytes);
    ASSERT_EQ(st.hits, hits);
    ASSERT_EQ(st.misses, misses);
  }
  EXPECT_GT(stats(*t).evictions, 0u);
}

// ============================================================ SessionCache

TEST(SessionCache, CreateRejectsBadArguments) {
  std::vector<std::uint64_t> buf(1 << 17);
  EXPECT_EQ(SessionCache::create(nullptr, 1 << 20, 4, 4), nullptr);
  EXPECT_EQ(SessionCache::create(buf.data(), buf.size() * 4, 0, 4), nullptr);
  EXPECT_EQ(SessionCache::create(buf.data(), buf.size() * 4, SessionCache::kMaxPartitions + 1, 4), nullptr);
  EXPECT_EQ(SessionCache::create(buf.data(), 64 * 1024, 64, 4), nullptr);  // 1 KiB per table
  EXPECT_EQ(SessionCache::create(buf.data(), buf.size() * 4, 4, 0), nullptr);
  EXPECT_NE(SessionCache::create(buf.data(), buf.size() * 4, 4, 4), nullptr);
}

TEST(SessionCache, LaysOutIndependentTablesInsideTheRegion) {
  constexpr std::uint32_t P = 16;
  const std::size_t total = P * 64 * 1024;
  std::size_t fp = SessionCache::footprint(total, P, 4);
  ASSERT_GE(fp, total);
  std::vector<std::uint64_t> buf(fp / 8 + 1);
  SessionCache* c = SessionCache::create(buf.data(), total, P, 4);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->partitions(), P);
  EXPECT_EQ(c->region_bytes(), fp);
  const char* lo = reinterpret_cast<const char*>(buf.data());
  const char* hi = lo + fp;
  std::uint64_t cap_sum = 0;
  for (std::uint32_t p = 0; p < P; ++p) {
    const SessionTable& tb = c->table(p);
    const char* at = reinterpret_cast<const char*>(&tb);
    EXPECT_GE(at, lo + sizeof(SessionCache));
    EXPECT_LE(at + 64 * 1024, hi);
    if (p + 1 < P) {
      EXPECT_GE(reinterpret_cast<const char*>(&c->table(p + 1)) - at, 64 * 1024);
    }
    EXPECT_EQ(&tb, &static_cast<const SessionCache*>(c)->table(p));
    EXPECT_EQ(tb.ring_capacity(), 4u);
    EXPECT_TRUE(tb.check());
    cap_sum += stats(tb).capacity;
  }
  EXPECT_LE(cap_sum, total);
  EXPECT_GE(cap_sum, total * 9 / 10);
}

TEST(SessionCache, PartitionOfDistributesHashes) {
  std::vector<std::uint64_t> buf(1 << 18);
  SessionCache* c = SessionCache::create(buf.data(), buf.size() * 8 - 1024, 16, 4);
  ASSERT_NE(c, nullptr);
  std::vector<int> per(16, 0);
  for (int i = 0; i < 10000; ++i) {
    std::uint64_t h = ac::session_hash(static_cast<std::uint32_t>(1 + i % 5), "sess-" + std::to_string(i));
    std::uint32_t p = c->partition_of(h);
    ASSERT_LT(p, 16u);
    EXPECT_EQ(p, (h >> 40) % 16);
    ++per[p];
  }
  for (int p = 0; p < 16; ++p) {
    EXPECT_GT(per[static_cast<std::size_t>(p)], 10000 / 16 / 2) << p;
    EXPECT_LT(per[static_cast<std::size_t>(p)], 10000 / 16 * 2) << p;
  }
  SessionCache* one = SessionCache::create(buf.data(), buf.size() * 8 - 1024, 1, 4);
  ASSERT_NE(one, nullptr);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(one->partition_of(ac::session_hash(1, std::to_string(i))), 0u);
}

TEST(SessionCache, TablesAreIndependent) {
  constexpr std::uint32_t P = 4;
  const std::size_t total = P * 64 * 1024;
  std::vector<std::uint64_t> buf(SessionCache::footprint(total, P, 4) / 8 + 1);
  SessionCache* c = SessionCache::create(buf.data(), total, P, 4);
  ASSERT_NE(c, nullptr);
  Key k = K(1, "shared");
  ASSERT_EQ(publish(c->table(0), k, mk_range(1, 2)), Publish::Published);
  ASSERT_EQ(publish(c->table(1), k, mk_range(5, 8)), Publish::Published);
  EXPECT_EQ(seqs_of(c->table(0), k), seq_range(1, 2));
  EXPECT_EQ(seqs_of(c->table(1), k), seq_range(5, 8));
  EXPECT_FALSE(cached(c->table(2), k));
  std::uint64_t g1 = c->table(1).generation(k.hash);
  EXPECT_TRUE(apply(c->table(0), k, mk(3)));
  EXPECT_EQ(c->table(1).generation(k.hash), g1);
  EXPECT_EQ(c->table(0).invalidate_all(0), 1u);
  EXPECT_EQ(seqs_of(c->table(1), k), seq_range(5, 8));
  // Filling one table to eviction leaves its neighbours untouched.
  int next = 0;
  publish_until_eviction(c->table(2), "fill", &next);
  for (int i = 0; i < 30; ++i) publish(c->table(2), K(1, "fill" + std::to_string(next++)), mk_range(1, 4, 1000));
  EXPECT_EQ(seqs_of(c->table(1), k), seq_range(5, 8));
  EXPECT_TRUE(session_matches(c->table(1), k, mk_range(5, 8)));
  EXPECT_EQ(stats(c->table(1)).evictions, 0u);
  EXPECT_EQ(stats(c->table(3)).used_bytes, 0u);
  for (std::uint32_t p = 0; p < P; ++p) EXPECT_TRUE(c->table(p).check()) << p;
}

TEST(SessionCache, RoutesManySessionsByPartition) {
  constexpr std::uint32_t P = 8;
  const std::size_t total = P * 128 * 1024;
  std::vector<std::uint64_t> buf(SessionCache::footprint(total, P, 4) / 8 + 1);
  SessionCache* c = SessionCache::create(buf.data(), total, P, 4);
  ASSERT_NE(c, nullptr);
  std::vector<Key> keys;
  for (int i = 0; i < 2000; ++i) {
    keys.push_back(K(1 + static_cast<std::uint32_t>(i % 2), "route-" + std::to_string(i)));
    const Key& k = keys.back();
    ASSERT_EQ(publish(c->table(c->partition_of(k.hash)), k, mk_range(1, 3, 300)), Publish::Published);
  }
  std::uint64_t found = 0;
  for (const Key& k : keys) {
    std::uint32_t home = c->partition_of(k.hash);
    if (cached(c->table(home), k)) {
      ++found;
      EXPECT_TRUE(session_matches(c->table(home), k, mk_range(1, 3, 300)));
    }
    for (std::uint32_t p = 0; p < P; ++p)
      if (p != home) {
        ASSERT_FALSE(cached(c->table(p), k));
      }
  }
  SessionStats st;
  for (std::uint32_t p = 0; p < P; ++p) {
    EXPECT_TRUE(c->table(p).check());
    c->table(p).add_stats(st);
    EXPECT_GT(stats(c->table(p)).sessions, 0u) << p;
  }
  EXPECT_EQ(st.sessions, found);
  EXPECT_EQ(st.sessions + st.evictions, keys.size());
  EXPECT_GT(found, 500u);
}

}  // namespace

// =================================================================== the first system turn, token counts

namespace {

Turn sys_turn(std::int64_t seq, const std::string& text) {
  Turn t = mk(seq);
  t.role = Role::System;
  t.content = text;
  return t;
}

SessionTable::System system_state(const SessionTable& t, const Key& k, std::int64_t* seq = nullptr) {
  SessionTable::System st;
  const TurnRecord* r = t.system_turn(find(t, k), &st);
  if (seq) *seq = r ? r->seq : -1;
  return st;
}

Publish publish_sys(SessionTable& t, const Key& k, const std::vector<Turn>& turns, const Turn* sys,
                    SessionTable::System state) {
  std::vector<TurnData> d;
  for (const Turn& x : turns) d.push_back(x.data());
  TurnData s;
  if (sys) s = sys->data();
  return t.publish(k.db, k.hash, k.key, d.data(), static_cast<std::uint32_t>(d.size()), t.generation(k.hash),
                   sys ? &s : nullptr, state);
}

}  // namespace

TEST(SessionTableSystem, PublishedUnknownByDefaultAndAppliesLeaveItUnknown) {
  Table t(kSmall, 4);
  Key k = K(1, "s");
  ASSERT_EQ(publish(*t, k, mk_range(1, 2)), Publish::Published);
  EXPECT_EQ(system_state(*t, k), SessionTable::System::Unknown);
  ASSERT_TRUE(apply(*t, k, sys_turn(3, "rules")));
  EXPECT_EQ(system_state(*t, k), SessionTable::System::Unknown);  // an earlier one may exist
  EXPECT_TRUE(t->check());
}

TEST(SessionTableSystem, NoneBecomesKnownWithTheFirstSystemTurn) {
  Table t(kSmall, 4);
  Key k = K(1, "s");
  ASSERT_EQ(publish_sys(*t, k, mk_range(1, 1), nullptr, SessionTable::System::None), Publish::Published);
  EXPECT_EQ(system_state(*t, k), SessionTable::System::None);
  ASSERT_TRUE(apply(*t, k, sys_turn(5, "first")));
  std::int64_t seq = 0;
  EXPECT_EQ(system_state(*t, k, &seq), SessionTable::System::Known);
  EXPECT_EQ(seq, 5);
  ASSERT_TRUE(apply(*t, k, sys_turn(7, "second")));  // a later system turn is not the first
  EXPECT_EQ(system_state(*t, k, &seq), SessionTable::System::Known);
  EXPECT_EQ(seq, 5);
  ASSERT_TRUE(apply(*t, k, sys_turn(4, "earlier, committed late")));  // out of order: it is the first
  EXPECT_EQ(system_state(*t, k, &seq), SessionTable::System::Known);
  EXPECT_EQ(seq, 4);
  SessionTable::System st;
  EXPECT_EQ(t->system_turn(find(*t, k), &st)->content_view(), "earlier, committed late");
  EXPECT_TRUE(t->check());
}

TEST(SessionTableSystem, KnownSurvivesTheRingAndIsFreedWithTheSession) {
  Table t(kSmall, 2);
  Key k = K(1, "s");
  const Turn first = sys_turn(1, "you are a clinic assistant");
  ASSERT_EQ(publish_sys(*t, k, mk_range(9, 10), &first, SessionTable::System::Known), Publish::Published);
  for (std::int64_t s = 11; s <= 40; ++s) ASSERT_TRUE(apply(*t, k, mk(s)));
  std::int64_t seq = 0;
  EXPECT_EQ(system_state(*t, k, &seq), SessionTable::System::Known);
  EXPECT_EQ(seq, 1);
  EXPECT_EQ(seqs_of(*t, k), (Seqs{39, 40}));
  EXPECT_EQ(stats(*t).turns, 2u);  // the kept system turn is not a ring turn
  const std::uint64_t used = stats(*t).used_bytes;
  EXPECT_TRUE(t->drop(k.db, k.hash, k.key));
  EXPECT_LT(stats(*t).used_bytes, used);
  EXPECT_EQ(stats(*t).used_bytes, 0u);  // nothing leaked
  EXPECT_TRUE(t->check());
}

TEST(SessionTableSystem, TokenCountsStartUnknownAndAreKept) {
  Table t(kSmall, 4);
  Key k = K(1, "s");
  ASSERT_EQ(publish(*t, k, mk_range(1, 3)), Publish::Published);
  const TurnRecord& r = t->turn(find(*t, k), 1);
  EXPECT_EQ(r.token_count(0), ac::kTokensUnknown);
  EXPECT_EQ(r.token_count(1), ac::kTokensUnknown);
  r.set_token_count(0, 17);
  EXPECT_EQ(t->turn(find(*t, k), 1).token_count(0), 17u);
  EXPECT_EQ(t->turn(find(*t, k), 1).token_count(1), ac::kTokensUnknown);
  ASSERT_TRUE(apply(*t, k, mk(4)));
  EXPECT_EQ(t->turn(find(*t, k), 3).token_count(0), ac::kTokensUnknown);
  EXPECT_EQ(t->turn(find(*t, k), 1).token_count(0), 17u);
}
