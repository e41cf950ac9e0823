// GoogleTest suite for the prewarmed lookup-map store (src/core/map_store.cpp).
#include "agentcache/core/map_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using agentcache::core::Arena;
using agentcache::core::MapEntryIn;
using agentcache::core::MapSlotStats;
using agentcache::core::MapStore;
using Offset = MapStore::Offset;
using Build = MapStore::Build;

constexpr std::size_t align8(std::size_t n) { return (n + 7) & ~std::size_t(7); }

// Smallest region MapStore::create accepts: its own control data + a minimal arena.
constexpr std::size_t kMinStoreBytes = align8(sizeof(MapStore)) + Arena::kMinRegion;

// An 8-aligned heap buffer holding one MapStore.
struct Region {
  explicit Region(std::size_t bytes, std::uint64_t fill = 0) : words((bytes + 7) / 8, fill), size(bytes) {
    store = MapStore::create(words.data(), bytes);
  }
  std::vector<std::uint64_t> words;
  std::size_t size;
  MapStore* store;
};

// Owns the bytes a MapEntryIn array points at.
struct Entries {
  std::vector<std::string> keys, values;
  std::vector<MapEntryIn> in;
  void add(std::string k, std::string v) {
    keys.push_back(std::move(k));
    values.push_back(std::move(v));
  }
  const std::vector<MapEntryIn>& view() {
    in.clear();
    for (std::size_t i = 0; i < keys.size(); ++i) in.push_back({keys[i], values[i]});
    return in;
  }
  std::size_t size() const { return keys.size(); }
  std::size_t version_bytes() { return MapStore::version_bytes(view().data(), size()); }
};

Build build(MapStore* s, Entries& e, Offset* v, std::size_t* dup = nullptr) {
  std::size_t d = 0xdeadbeef;
  Build r = s->build(e.view().data(), e.size(), v, &d);
  if (dup) *dup = d;
  return r;
}

// Builds and installs; the slot must not exist or its old version is freed.
int put(MapStore* s, std::uint32_t db, std::string_view name, Entries& e) {
  Offset v = Arena::kNull, old = Arena::kNull;
  if (build(s, e, &v) != Build::Ok) return MapStore::kNoSlot;
  if (!s->install(db, name, v, &old)) {
    s->free_version(v);
    return MapStore::kNoSlot;
  }
  s->free_version(old);
  return s->find(db, name);
}

// Entries of one key "k" whose version needs exactly `vb` bytes (vb % 8 == 0, vb >= 72):
// VersionHeader (16) + 8 buckets (32) + align8(EntryHeader(16) + 1 + L).
Entries sized_entries(std::size_t vb) {
  Entries e;
  e.add("k", std::string(vb - 65, 'x'));
  return e;
}

std::string value_for(std::size_t i, std::size_t len = 100) {
  std::string v = "{\"id\":" + std::to_string(i) + ",\"pad\":\"";
  while (v.size() + 2 < len) v.push_back(static_cast<char>('a' + (i + v.size()) % 26));
  v += "\"}";
  return v;
}

// ---------------------------------------------------------------- create

TEST(MapStoreCreate, RejectsNullTooSmallAndMisaligned) {
  std::vector<std::uint64_t> buf(kMinStoreBytes / 8 + 4, 0);
  EXPECT_EQ(MapStore::create(nullptr, kMinStoreBytes), nullptr);
  EXPECT_EQ(MapStore::create(buf.data(), 0), nullptr);
  EXPECT_EQ(MapStore::create(buf.data(), sizeof(MapStore)), nullptr);
  EXPECT_EQ(MapStore::create(buf.data(), kMinStoreBytes - 8), nullptr);
  EXPECT_EQ(MapStore::create(buf.data(), kMinStoreBytes - 1), nullptr);
  // Misaligned by every non-zero amount below 8 (plenty of room behind it).
  for (std::size_t mis = 1; mis < 8; ++mis) {
    char* p = reinterpret_cast<char*>(buf.data()) + mis;
    EXPECT_EQ(MapStore::create(p, kMinStoreBytes + 8), nullptr) << "misalignment " << mis;
  }
  MapStore* s = MapStore::create(buf.data(), kMinStoreBytes);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(static_cast<void*>(s), static_cast<void*>(buf.data()));
  EXPECT_TRUE(s->check());
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_GT(s->capacity(), 0u);
  EXPECT_LT(s->capacity(), Arena::kMinRegion);
}

TEST(MapStoreCreate, FreshStoreOverGarbageHasNoSlots) {
  Region r(1 << 16, ~std::uint64_t(0));  // every byte 0xFF before create
  ASSERT_NE(r.store, nullptr);
  MapStore* s = r.store;
  EXPECT_TRUE(s->check());
  EXPECT_EQ(s->used_bytes(), 0u);
  for (int i = 0; i < static_cast<int>(MapStore::kMaxMaps); ++i) {
    EXPECT_FALSE(s->slot_used(i)) << i;
    const MapSlotStats st = s->slot_stats(i);
    EXPECT_EQ(st.entries, 0u);
    EXPECT_EQ(st.bytes, 0u);
    EXPECT_EQ(st.hits, 0u);
    EXPECT_EQ(st.misses, 0u);
  }
  EXPECT_EQ(s->find(1, "m"), MapStore::kNoSlot);
  EXPECT_EQ(s->find(0, ""), MapStore::kNoSlot);
  Offset old = 123;
  EXPECT_FALSE(s->remove(1, "m", &old));
  EXPECT_EQ(old, Arena::kNull);
  EXPECT_EQ(s->remove_all(0), 0u);
}

TEST(MapStoreCreate, CapacityGrowsWithRegion) {
  Region small(kMinStoreBytes), big(kMinStoreBytes + 4096);
  ASSERT_NE(small.store, nullptr);
  ASSERT_NE(big.store, nullptr);
  EXPECT_EQ(big.store->capacity(), small.store->capacity() + 4096);
}

// ---------------------------------------------------------------- build / install / lookup

TEST(MapStoreBuild, InstallAndLookupBinaryEmptyAndUtf8) {
  Region r(1 << 16);
  MapStore* s = r.store;
  ASSERT_NE(s, nullptr);
  Entries e;
  e.add("plain", "value-1");
  e.add(std::string("a\0b", 3), std::string("\x00\xff\x01\x80", 4));  // embedded NUL + high bytes
  e.add("a", "just-a");                                               // prefix of the binary key
  e.add("", "value-of-empty-key");
  e.add("empty-value", "");
  e.add("ключ", "значение");
  e.add("日本語", "{\"emoji\":\"😀\"}");
  e.add(std::string(200, '\xee'), std::string(1000, '\x00'));
  Offset v = Arena::kNull;
  std::size_t dup = 777;
  ASSERT_EQ(s->build(e.view().data(), e.size(), &v, &dup), Build::Ok);
  EXPECT_NE(v, Arena::kNull);
  EXPECT_EQ(dup, 777u) << "dup must be untouched on success";
  EXPECT_TRUE(s->check());

  Offset old = 99;
  ASSERT_TRUE(s->install(7, "tools", v, &old));
  EXPECT_EQ(old, Arena::kNull);
  const int slot = s->find(7, "tools");
  ASSERT_NE(slot, MapStore::kNoSlot);
  EXPECT_TRUE(s->slot_used(slot));
  EXPECT_EQ(s->slot_db(slot), 7u);
  EXPECT_EQ(s->slot_name(slot), "tools");

  for (std::size_t i = 0; i < e.size(); ++i) {
    std::string_view got = s->lookup(slot, e.keys[i]);
    EXPECT_EQ(got.size(), e.values[i].size()) << "key #" << i;
    EXPECT_EQ(std::string(got), e.values[i]) << "key #" << i;
    EXPECT_NE(got.data(), nullptr) << "a present key (even with an empty value) has non-null data, #" << i;
    // The view points into the store's region, not at the caller's input.
    const char* lo = reinterpret_cast<const char*>(r.words.data());
    EXPECT_TRUE(got.data() >= lo && got.data() + got.size() <= lo + r.size) << "key #" << i;
  }
  // The empty value is distinguishable from absence.
  std::string_view ev = s->lookup(slot, "empty-value");
  EXPECT_TRUE(ev.empty());
  EXPECT_NE(ev.data(), nullptr);

  // Near misses: truncated at the NUL, extra byte, case change.
  EXPECT_EQ(s->lookup(slot, std::string("a\0", 2)).data(), nullptr);
  EXPECT_EQ(s->lookup(slot, std::string("a\0bc", 4)).data(), nullptr);
  EXPECT_EQ(s->lookup(slot, "Plain").data(), nullptr);
  EXPECT_EQ(s->lookup(slot, "plain ").data(), nullptr);
  EXPECT_EQ(s->lookup(slot, "ключ2").data(), nullptr);
  EXPECT_EQ(s->lookup(slot, "a"), "just-a");

  const MapSlotStats st = s->slot_stats(slot);
  EXPECT_EQ(st.entries, e.size());
  EXPECT_EQ(st.hits, e.size() + 2);
  EXPECT_EQ(st.misses, 5u);
  EXPECT_TRUE(s->check());
}

TEST(MapStoreBuild, EmptyMapBuildsAndMissesEverything) {
  Region r(1 << 14);
  MapStore* s = r.store;
  Entries e;
  Offset v = Arena::kNull;
  ASSERT_EQ(build(s, e, &v), Build::Ok);
  ASSERT_NE(v, Arena::kNull);
  EXPECT_EQ(s->used_bytes(), e.version_bytes() + Arena::kHeader);
  Offset old;
  ASSERT_TRUE(s->install(1, "none", v, &old));
  const int slot = s->find(1, "none");
  ASSERT_NE(slot, MapStore::kNoSlot);
  EXPECT_EQ(s->lookup(slot, "").data(), nullptr);
  EXPECT_EQ(s->lookup(slot, "x").data(), nullptr);
  const MapSlotStats st = s->slot_stats(slot);
  EXPECT_EQ(st.entries, 0u);
  EXPECT_EQ(st.bytes, e.version_bytes() + Arena::kHeader);
  EXPECT_EQ(st.misses, 2u);
  EXPECT_EQ(st.hits, 0u);
  EXPECT_TRUE(s->check());
}

TEST(MapStoreLookup, AbsentKeyIsNullViewAndCountsMiss) {
  Region r(1 << 14);
  MapStore* s = r.store;
  Entries e;
  e.add("x", "1");
  e.add("y", "2");
  const int slot = put(s, 3, "m", e);
  ASSERT_NE(slot, MapStore::kNoSlot);
  for (std::string_view k : {std::string_view("z"), std::string_view("xx"), std::string_view(""), std::string_view("X"),
                             std::string_view("y\0", 2)}) {
    std::string_view got = s->lookup(slot, k);
    EXPECT_EQ(got.data(), nullptr) << k;
    EXPECT_EQ(got.size(), 0u) << k;
  }
  MapSlotStats st = s->slot_stats(slot);
  EXPECT_EQ(st.misses, 5u);
  EXPECT_EQ(st.hits, 0u);
  EXPECT_EQ(s->lookup(slot, "x"), "1");
  st = s->slot_stats(slot);
  EXPECT_EQ(st.misses, 5u);
  EXPECT_EQ(st.hits, 1u);
}

// peek() finds what lookup() finds and counts nothing; count() counts once.
TEST(MapStoreLookup, PeekCountsNothingCountCountsOnce) {
  Region r(1 << 14);
  MapStore* s = r.store;
  Entries e;
  e.add("x", "1");
  const int slot = put(s, 3, "m", e);
  ASSERT_NE(slot, MapStore::kNoSlot);
  EXPECT_EQ(s->peek(slot, "x"), "1");
  EXPECT_EQ(s->peek(slot, "nope").data(), nullptr);
  MapSlotStats st = s->slot_stats(slot);
  EXPECT_EQ(st.hits, 0u);
  EXPECT_EQ(st.misses, 0u);
  s->count(slot, true);
  s->count(slot, false);
  s->count(slot, false);
  st = s->slot_stats(slot);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 2u);
}

// A std::string_view{} (data() == nullptr) key must behave like "" -- and must not
// hand a null pointer to memcmp/memcpy (run under -fsanitize=undefined).
TEST(MapStoreLookup, NullDataEmptyKeyAndName) {
  Region r(1 << 14);
  MapStore* s = r.store;
  std::vector<MapEntryIn> in = {{std::string_view{}, "empty"}, {"k", std::string_view{}}};
  Offset v = Arena::kNull, old = Arena::kNull;
  std::size_t dup = 0;
  ASSERT_EQ(s->build(in.data(), in.size(), &v, &dup), Build::Ok);
  ASSERT_TRUE(s->install(1, "m", v, &old));
  const int slot = s->find(1, "m");
  ASSERT_NE(slot, MapStore::kNoSlot);
  EXPECT_EQ(s->lookup(slot, std::string_view{}), "empty");
  EXPECT_EQ(s->lookup(slot, ""), "empty");
  std::string_view kv = s->lookup(slot, "k");
  EXPECT_TRUE(kv.empty());
  EXPECT_NE(kv.data(), nullptr);

  // Duplicate empty keys (both with null data): compared with memcmp(.., nullptr, 0).
  std::vector<MapEntryIn> dups = {{std::string_view{}, "a"}, {std::string_view{}, "b"}};
  const std::size_t before = s->used_bytes();
  Offset v2 = Arena::kNull;
  EXPECT_EQ(s->build(dups.data(), dups.size(), &v2, &dup), Build::DuplicateKey);
  EXPECT_EQ(dup, 1u);
  EXPECT_EQ(v2, Arena::kNull);
  EXPECT_EQ(s->used_bytes(), before);
  EXPECT_TRUE(s->check());

  // An empty map name given as std::string_view{} (memcpy/memcmp with nullptr, 0).
  Offset v3 = Arena::kNull;
  ASSERT_EQ(s->build(in.data(), 1, &v3, &dup), Build::Ok);
  ASSERT_TRUE(s->install(1, std::string_view{}, v3, &old));
  EXPECT_EQ(old, Arena::kNull);
  const int unnamed = s->find(1, std::string_view{});
  ASSERT_NE(unnamed, MapStore::kNoSlot);
  EXPECT_NE(unnamed, slot);
  EXPECT_EQ(s->find(1, ""), unnamed);
  EXPECT_EQ(s->slot_name(unnamed), "");
  EXPECT_EQ(s->lookup(unnamed, ""), "empty");
  EXPECT_EQ(s->remove_all(1), 2u);
  EXPECT_EQ(s->used_bytes(), 0u);
}

// ---------------------------------------------------------------- counters / stats

TEST(MapStoreCounters, HitsAndMissesPerSlotAndReset) {
  Region r(1 << 16);
  MapStore* s = r.store;
  Entries a, b;
  a.add("k1", "a1");
  a.add("k2", "a2");
  b.add("k1", "b1");
  const int sa = put(s, 1, "a", a);
  const int sb = put(s, 1, "b", b);
  ASSERT_NE(sa, MapStore::kNoSlot);
  ASSERT_NE(sb, MapStore::kNoSlot);
  ASSERT_NE(sa, sb);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s->lookup(sa, "k1"), "a1");
  EXPECT_EQ(s->lookup(sa, "k2"), "a2");
  EXPECT_EQ(s->lookup(sa, "nope").data(), nullptr);
  EXPECT_EQ(s->lookup(sb, "k1"), "b1");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s->lookup(sb, "k2").data(), nullptr);

  MapSlotStats st = s->slot_stats(sa);
  EXPECT_EQ(st.hits, 4u);
  EXPECT_EQ(st.misses, 1u);
  st = s->slot_stats(sb);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 4u);

  // Swapping in a new version keeps the slot's counters.
  Entries a2;
  a2.add("k1", "a1'");
  ASSERT_EQ(put(s, 1, "a", a2), sa);
  EXPECT_EQ(s->slot_stats(sa).hits, 4u);
  EXPECT_EQ(s->slot_stats(sa).entries, 1u);

  s->reset_counters();
  for (int slot : {sa, sb}) {
    st = s->slot_stats(slot);
    EXPECT_EQ(st.hits, 0u);
    EXPECT_EQ(st.misses, 0u);
    EXPECT_GT(st.entries, 0u) << "reset_counters must not touch the data";
  }
  EXPECT_EQ(s->lookup(sa, "k1"), "a1'");
  EXPECT_EQ(s->slot_stats(sa).hits, 1u);
  EXPECT_EQ(s->slot_stats(sb).hits, 0u);

  // A slot created again after removal starts from zero.
  EXPECT_EQ(s->lookup(sb, "zz").data(), nullptr);
  Offset old;
  ASSERT_TRUE(s->remove(1, "b", &old));
  s->free_version(old);
  const int sb2 = put(s, 1, "b", b);
  ASSERT_NE(sb2, MapStore::kNoSlot);
  EXPECT_EQ(s->slot_stats(sb2).hits, 0u);
  EXPECT_EQ(s->slot_stats(sb2).misses, 0u);
}

TEST(MapStoreStats, EntriesAndBytes) {
  Region r(1 << 18);
  MapStore* s = r.store;
  Entries e;
  for (int i = 0; i < 37; ++i) e.add("key-" + std::to_string(i), std::string(static_cast<std::size_t>(i), 'v'));
  const std::size_t vb = e.version_bytes();
  const int slot = put(s, 2, "stats", e);
  ASSERT_NE(slot, MapStore::kNoSlot);
  MapSlotStats st = s->slot_stats(slot);
  EXPECT_EQ(st.entries, 37u);
  EXPECT_EQ(st.bytes, vb + Arena::kHeader);
  EXPECT_EQ(st.bytes, s->used_bytes());
  // vb = header(16) + 128 buckets * 4 + sum of align8(16 + key + value).
  std::size_t expect = 16 + 128 * 4;
  for (std::size_t i = 0; i < e.size(); ++i) expect += align8(16 + e.keys[i].size() + e.values[i].size());
  EXPECT_EQ(vb, expect);
  // Removal leaves the slot unused and its stats empty.
  Offset old;
  ASSERT_TRUE(s->remove(2, "stats", &old));
  EXPECT_FALSE(s->slot_used(slot));
  s->free_version(old);
  st = s->slot_stats(slot);
  EXPECT_EQ(st.entries, 0u);
  EXPECT_EQ(st.bytes, 0u);
  EXPECT_EQ(s->used_bytes(), 0u);
}

TEST(MapStoreStats, BucketCountIsPowerOfTwoAtLeastTwiceCount) {
  // version_bytes reveals the bucket count: for n empty-key-free tiny entries,
  // vb = 16 + 4*nbuckets + n*24 (16-byte header + 1-byte key + 0-byte value -> 24).
  for (std::size_t n : {0u, 1u, 4u, 5u, 8u, 9u, 16u, 17u, 100u, 1000u}) {
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < n; ++i) keys.push_back(std::string(1, static_cast<char>(i)) + std::to_string(i));
    std::vector<MapEntryIn> in;
    std::size_t entry_total = 0;
    for (auto& k : keys) {
      in.push_back({k, ""});
      entry_total += align8(16 + k.size());
    }
    const std::size_t vb = MapStore::version_bytes(in.data(), n);
    const std::size_t buckets = (vb - 16 - entry_total) / 4;
    EXPECT_EQ(vb, 16 + align8(buckets * 4) + entry_total);
    EXPECT_GE(buckets, 8u) << n;
    EXPECT_GE(buckets, 2 * n) << n;
    EXPECT_EQ(buckets & (buckets - 1), 0u) << n;
    if (n > 4) {
      EXPECT_LT(buckets, 4 * n) << "smallest power of two >= 2n, n=" << n;
    }
  }
}

// ---------------------------------------------------------------- accounting

TEST(MapStoreAccounting, UsedBytesDeltaIsVersionBytesPlusHeader) {
  Region r(1 << 22);
  MapStore* s = r.store;
  std::vector<Offset> live;
  std::size_t expect_used = 0;
  for (std::size_t n : {0u, 1u, 3u, 7u, 64u, 500u, 3000u}) {
    Entries e;
    for (std::size_t i = 0; i < n; ++i) e.add("k" + std::to_string(i), std::string(i % 23, 'v'));
    const std::size_t vb = e.version_bytes();
    EXPECT_EQ(vb % 8, 0u);
    const std::size_t before = s->used_bytes();
    Offset v = Arena::kNull;
    ASSERT_EQ(build(s, e, &v), Build::Ok) << n;
    EXPECT_EQ(s->used_bytes() - before, align8(vb) + Arena::kHeader) << "n=" << n;
    expect_used += align8(vb) + Arena::kHeader;
    live.push_back(v);
  }
  EXPECT_EQ(s->used_bytes(), expect_used);
  EXPECT_TRUE(s->check());
  for (Offset v : live) s->free_version(v);
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_TRUE(s->check());
}

// slot_stats().bytes should be what the version really occupies. When the
// allocator hands out a free block that is 8 bytes too big to split, the block
// is larger than version_bytes + kHeader, yet slot_stats reports h->bytes + kHeader.
TEST(MapStoreStats, BytesMatchesBlockWhenAllocatorDoesNotSplit) {
  Region r(1 << 14);
  MapStore* s = r.store;
  ASSERT_NE(s, nullptr);
  const std::size_t X = 2064;  // A's version bytes; A's block = X + 8
  Entries a = sized_entries(X), b = sized_entries(200);
  ASSERT_EQ(a.version_bytes(), X);
  Offset va, vb, vf, vc, old;
  ASSERT_EQ(build(s, a, &va), Build::Ok);
  ASSERT_EQ(build(s, b, &vb), Build::Ok);
  const std::size_t tail = s->capacity() - s->used_bytes();
  ASSERT_GE(tail, 80u);
  Entries f = sized_entries(tail - 8);  // consumes the rest of the arena exactly
  ASSERT_EQ(build(s, f, &vf), Build::Ok);
  ASSERT_EQ(s->used_bytes(), s->capacity());
  s->free_version(va);  // a free block of X + 8 between arena start and B
  Entries c = sized_entries(X - 8);
  const std::size_t before = s->used_bytes();
  ASSERT_EQ(build(s, c, &vc), Build::Ok);
  const std::size_t delta = s->used_bytes() - before;
  EXPECT_EQ(delta, X + 8) << "remainder of 8 bytes cannot be split off";
  ASSERT_TRUE(s->install(1, "c", vc, &old));
  const int slot = s->find(1, "c");
  EXPECT_EQ(s->lookup(slot, "k"), c.values[0]);
  EXPECT_EQ(s->slot_stats(slot).bytes, delta) << "slot_stats().bytes under-reports the block the version occupies";
  EXPECT_TRUE(s->check());
  s->free_version(vb);
  s->free_version(vf);
  EXPECT_EQ(s->remove_all(0), 1u);
  EXPECT_EQ(s->used_bytes(), 0u);
}

// ---------------------------------------------------------------- duplicates

TEST(MapStoreBuild, DuplicateKeyReportsSecondIndexAndLeaksNothing) {
  Region r(1 << 20);
  MapStore* s = r.store;
  Entries keep;
  keep.add("live", "yes");
  ASSERT_NE(put(s, 1, "keep", keep), MapStore::kNoSlot);
  const std::size_t base = s->used_bytes();

  struct Case {
    std::vector<std::pair<std::string, std::string>> kv;
    std::size_t dup;
  };
  std::vector<Case> cases;
  cases.push_back({{{"a", "1"}, {"a", "2"}}, 1});
  cases.push_back({{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"b", "4"}}, 3});
  cases.push_back({{{"x", "1"}, {"y", "2"}, {"x", "3"}, {"y", "4"}}, 2});  // first duplicate wins
  cases.push_back({{{"", "e"}, {"k", "v"}, {"", "f"}}, 2});
  cases.push_back({{{std::string("\0", 1), "n"}, {"", "e"}, {std::string("\0", 1), "m"}}, 2});
  cases.push_back({{{"same", "v"}, {"same", "v"}}, 1});  // identical value still a duplicate
  {
    Case big;
    for (int i = 0; i < 2000; ++i) big.kv.push_back({"k" + std::to_string(i), "v"});
    big.kv.insert(big.kv.begin() + 1500, {"k777", "again"});
    big.dup = 1500;
    cases.push_back(big);
  }
  {
    Case last;
    for (int i = 0; i < 300; ++i) last.kv.push_back({"k" + std::to_string(i), std::string(50, 'v')});
    last.kv.push_back({"k0", "end"});
    last.dup = 300;
    cases.push_back(last);
  }
  for (std::size_t ci = 0; ci < cases.size(); ++ci) {
    Entries e;
    for (auto& kv : cases[ci].kv) e.add(kv.first, kv.second);
    Offset v = 4242;
    std::size_t dup = 0;
    EXPECT_EQ(build(s, e, &v, &dup), Build::DuplicateKey) << "case " << ci;
    EXPECT_EQ(dup, cases[ci].dup) << "case " << ci;
    EXPECT_EQ(v, Arena::kNull) << "case " << ci;
    EXPECT_EQ(s->used_bytes(), base) << "case " << ci;
    EXPECT_TRUE(s->check()) << "case " << ci;
  }
  // Distinct keys that differ only after a NUL or in length are not duplicates.
  Entries ok;
  ok.add(std::string("a\0x", 3), "1");
  ok.add(std::string("a\0y", 3), "2");
  ok.add("a", "3");
  ok.add("", "4");
  ok.add(std::string("\0", 1), "5");
  Offset v;
  std::size_t dup = 0;
  ASSERT_EQ(build(s, ok, &v, &dup), Build::Ok);
  s->free_version(v);
  EXPECT_EQ(s->used_bytes(), base);
  // The installed map is untouched by all of that.
  const int slot = s->find(1, "keep");
  EXPECT_EQ(s->lookup(slot, "live"), "yes");
}

// ---------------------------------------------------------------- out of memory

TEST(MapStoreBuild, OutOfMemoryWhenVersionDoesNotFit) {
  Region r(kMinStoreBytes);
  MapStore* s = r.store;
  ASSERT_NE(s, nullptr);
  const std::size_t cap = s->capacity();
  // Exactly the largest version that fits: block = capacity.
  Entries fits = sized_entries(cap - Arena::kHeader);
  Offset v = Arena::kNull;
  std::size_t dup = 555;
  ASSERT_EQ(build(s, fits, &v), Build::Ok);
  EXPECT_EQ(s->used_bytes(), cap);
  s->free_version(v);
  EXPECT_EQ(s->used_bytes(), 0u);

  Entries too_big = sized_entries(cap);  // 8 bytes more than fits
  v = 4242;
  EXPECT_EQ(s->build(too_big.view().data(), 1, &v, &dup), Build::OutOfMemory);
  EXPECT_EQ(v, Arena::kNull);
  EXPECT_EQ(dup, 555u);
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_TRUE(s->check());

  Entries huge = sized_entries(align8(cap * 5));
  EXPECT_EQ(build(s, huge, &v), Build::OutOfMemory);
  EXPECT_EQ(v, Arena::kNull);
  Entries many;
  for (int i = 0; i < 2000; ++i) many.add(std::to_string(i), "v");
  EXPECT_EQ(build(s, many, &v), Build::OutOfMemory);
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_TRUE(s->check());
}

TEST(MapStoreBuild, PreviousVersionKeepsServingWhenReloadDoesNotFit) {
  Region r(1 << 15);
  MapStore* s = r.store;
  const std::size_t cap = s->capacity();
  Entries v1;
  for (int i = 0; i < 40; ++i) v1.add("k" + std::to_string(i), "old-" + std::to_string(i) + std::string(200, 'o'));
  ASSERT_LT(v1.version_bytes() + 8, cap / 2);
  const int slot = put(s, 5, "m", v1);
  ASSERT_NE(slot, MapStore::kNoSlot);
  const std::size_t used = s->used_bytes();

  // v2 fits the empty arena but not beside v1.
  Entries v2 = sized_entries(align8(cap - used + 64));
  ASSERT_LE(v2.version_bytes() + Arena::kHeader, cap);
  Offset nv = 1;
  EXPECT_EQ(build(s, v2, &nv), Build::OutOfMemory);
  EXPECT_EQ(nv, Arena::kNull);
  EXPECT_EQ(s->used_bytes(), used);
  EXPECT_TRUE(s->check());
  EXPECT_EQ(s->find(5, "m"), slot);
  for (int i = 0; i < 40; ++i)
    EXPECT_EQ(s->lookup(slot, "k" + std::to_string(i)), v1.values[static_cast<std::size_t>(i)]);
  EXPECT_EQ(s->slot_stats(slot).entries, 40u);

  // Once the old version is gone, the same build succeeds.
  Offset old;
  ASSERT_TRUE(s->remove(5, "m", &old));
  s->free_version(old);
  ASSERT_EQ(build(s, v2, &nv), Build::Ok);
  ASSERT_TRUE(s->install(5, "m", nv, &old));
  EXPECT_EQ(old, Arena::kNull);
  EXPECT_EQ(s->lookup(s->find(5, "m"), "k"), v2.values[0]);
  EXPECT_TRUE(s->check());
}

// ---------------------------------------------------------------- swap

TEST(MapStoreSwap, InstallReturnsOldVersionReadableUntilFreed) {
  Region r(1 << 16);
  MapStore* s = r.store;
  Entries e1, e2;
  for (int i = 0; i < 10; ++i) {
    e1.add("k" + std::to_string(i), "one-" + std::to_string(i));
    if (i % 2 == 0) e2.add("k" + std::to_string(i), "two-" + std::to_string(i));
  }
  e2.add("new-only", "fresh");
  Offset v1, v2, old;
  ASSERT_EQ(build(s, e1, &v1), Build::Ok);
  ASSERT_TRUE(s->install(1, "m", v1, &old));
  EXPECT_EQ(old, Arena::kNull);
  const int slot = s->find(1, "m");
  const std::string_view held = s->lookup(slot, "k3");  // a reader's view into v1
  EXPECT_EQ(held, "one-3");
  const std::size_t used1 = s->used_bytes();

  ASSERT_EQ(build(s, e2, &v2), Build::Ok);
  EXPECT_NE(v2, v1);
  EXPECT_EQ(held, "one-3") << "building must not disturb the installed version";
  EXPECT_EQ(s->used_bytes(), used1 + e2.version_bytes() + Arena::kHeader);
  ASSERT_TRUE(s->install(1, "m", v2, &old));
  EXPECT_EQ(old, v1);
  EXPECT_EQ(s->find(1, "m"), slot) << "swap reuses the slot";
  // Old version's bytes are intact until freed.
  EXPECT_EQ(held, "one-3");
  // New lookups see only the new version.
  EXPECT_EQ(s->lookup(slot, "k3").data(), nullptr);
  EXPECT_EQ(s->lookup(slot, "k4"), "two-4");
  EXPECT_EQ(s->lookup(slot, "new-only"), "fresh");
  EXPECT_EQ(s->slot_stats(slot).entries, e2.size());
  EXPECT_TRUE(s->check());

  s->free_version(old);
  EXPECT_EQ(s->used_bytes(), e2.version_bytes() + Arena::kHeader);
  for (int i = 0; i < 10; i += 2) EXPECT_EQ(s->lookup(slot, "k" + std::to_string(i)), "two-" + std::to_string(i));
  EXPECT_TRUE(s->check());
  // Freeing kNull or the same version twice is harmless.
  s->free_version(Arena::kNull);
  s->free_version(old);
  EXPECT_EQ(s->used_bytes(), e2.version_bytes() + Arena::kHeader);
  EXPECT_TRUE(s->check());
}

// ---------------------------------------------------------------- remove

TEST(MapStoreRemove, RemoveAndRemoveAllFreeMemory) {
  Region r(1 << 20);
  MapStore* s = r.store;
  Entries e;
  for (int i = 0; i < 20; ++i) e.add("k" + std::to_string(i), std::string(64, 'v'));
  const std::size_t block = e.version_bytes() + Arena::kHeader;
  for (std::uint32_t db : {1u, 2u, 3u})
    for (const char* name : {"a", "b", "c"}) ASSERT_NE(put(s, db, name, e), MapStore::kNoSlot);
  EXPECT_EQ(s->used_bytes(), 9 * block);

  Offset old = 0;
  EXPECT_FALSE(s->remove(4, "a", &old));
  EXPECT_EQ(old, Arena::kNull);
  EXPECT_FALSE(s->remove(1, "zz", &old));
  ASSERT_TRUE(s->remove(1, "b", &old));
  EXPECT_NE(old, Arena::kNull);
  EXPECT_EQ(s->find(1, "b"), MapStore::kNoSlot);
  EXPECT_EQ(s->used_bytes(), 9 * block) << "remove hands the version back, it does not free it";
  s->free_version(old);
  EXPECT_EQ(s->used_bytes(), 8 * block);
  EXPECT_FALSE(s->remove(1, "b", &old));
  EXPECT_TRUE(s->check());

  EXPECT_EQ(s->remove_all(2), 3u);
  EXPECT_EQ(s->used_bytes(), 5 * block);
  for (const char* name : {"a", "b", "c"}) {
    EXPECT_EQ(s->find(2, name), MapStore::kNoSlot);
    EXPECT_NE(s->find(3, name), MapStore::kNoSlot);
  }
  EXPECT_EQ(s->remove_all(2), 0u);
  EXPECT_EQ(s->remove_all(99), 0u);
  EXPECT_TRUE(s->check());

  EXPECT_EQ(s->remove_all(0), 5u);
  EXPECT_EQ(s->used_bytes(), 0u);
  for (int i = 0; i < static_cast<int>(MapStore::kMaxMaps); ++i) EXPECT_FALSE(s->slot_used(i));
  EXPECT_TRUE(s->check());
  // The store is fully reusable afterwards.
  const int slot = put(s, 1, "a", e);
  ASSERT_NE(slot, MapStore::kNoSlot);
  EXPECT_EQ(s->lookup(slot, "k19"), std::string(64, 'v'));
}

TEST(MapStoreRemove, RemoveAllHandlesSlotsWithoutVersion) {
  Region r(1 << 16);
  MapStore* s = r.store;
  Offset old;
  // install(kNull) creates a slot with no version (lookups miss).
  ASSERT_TRUE(s->install(4, "empty", Arena::kNull, &old));
  const int slot = s->find(4, "empty");
  ASSERT_NE(slot, MapStore::kNoSlot);
  EXPECT_EQ(s->lookup(slot, "k").data(), nullptr);
  EXPECT_EQ(s->slot_stats(slot).misses, 1u);
  EXPECT_EQ(s->slot_stats(slot).entries, 0u);
  EXPECT_TRUE(s->check());
  EXPECT_EQ(s->remove_all(4), 1u);
  EXPECT_EQ(s->find(4, "empty"), MapStore::kNoSlot);
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_TRUE(s->check());
}

// ---------------------------------------------------------------- slots

TEST(MapStoreSlots, SameNameInTwoDatabasesIsTwoMaps) {
  Region r(1 << 16);
  MapStore* s = r.store;
  Entries e1, e2;
  e1.add("k", "db1");
  e1.add("only1", "x");
  e2.add("k", "db2");
  const int s1 = put(s, 1, "shared", e1);
  const int s2 = put(s, 2, "shared", e2);
  ASSERT_NE(s1, MapStore::kNoSlot);
  ASSERT_NE(s2, MapStore::kNoSlot);
  EXPECT_NE(s1, s2);
  EXPECT_EQ(s->slot_db(s1), 1u);
  EXPECT_EQ(s->slot_db(s2), 2u);
  EXPECT_EQ(s->slot_name(s1), "shared");
  EXPECT_EQ(s->slot_name(s2), "shared");
  EXPECT_EQ(s->lookup(s1, "k"), "db1");
  EXPECT_EQ(s->lookup(s2, "k"), "db2");
  EXPECT_EQ(s->lookup(s2, "only1").data(), nullptr);
  EXPECT_EQ(s->find(3, "shared"), MapStore::kNoSlot);
  EXPECT_EQ(s->find(1, "Shared"), MapStore::kNoSlot);
  EXPECT_EQ(s->find(1, "share"), MapStore::kNoSlot);
  EXPECT_EQ(s->find(1, "shared2"), MapStore::kNoSlot);
  // Names are byte strings: a name that is a prefix of another is distinct.
  Entries e3;
  e3.add("k", "prefix");
  const int s3 = put(s, 1, "share", e3);
  ASSERT_NE(s3, MapStore::kNoSlot);
  EXPECT_NE(s3, s1);
  EXPECT_EQ(s->lookup(s->find(1, "shared"), "k"), "db1");

  Offset old;
  ASSERT_TRUE(s->remove(1, "shared", &old));
  s->free_version(old);
  EXPECT_EQ(s->find(1, "shared"), MapStore::kNoSlot);
  EXPECT_EQ(s->find(2, "shared"), s2);
  EXPECT_EQ(s->lookup(s2, "k"), "db2");
  EXPECT_EQ(s->remove_all(1), 1u);  // only "share"
  EXPECT_EQ(s->lookup(s2, "k"), "db2");
  EXPECT_TRUE(s->check());
}

TEST(MapStoreSlots, SixtyFifthMapIsRefused) {
  Region r(1 << 20);
  MapStore* s = r.store;
  Entries e;
  e.add("k", "v");
  std::vector<int> slots;
  for (std::uint32_t i = 0; i < MapStore::kMaxMaps; ++i) {
    const int slot = put(s, 1 + i % 3, "map-" + std::to_string(i), e);
    ASSERT_NE(slot, MapStore::kNoSlot) << i;
    slots.push_back(slot);
  }
  for (std::size_t i = 0; i < slots.size(); ++i)
    for (std::size_t j = i + 1; j < slots.size(); ++j) ASSERT_NE(slots[i], slots[j]);
  const std::size_t used = s->used_bytes();
  EXPECT_EQ(used, MapStore::kMaxMaps * (e.version_bytes() + Arena::kHeader));

  Offset v, old = 77;
  ASSERT_EQ(build(s, e, &v), Build::Ok);
  EXPECT_FALSE(s->install(1, "map-65th", v, &old));
  EXPECT_EQ(old, Arena::kNull);
  EXPECT_EQ(s->find(1, "map-65th"), MapStore::kNoSlot);
  // A known name in a different database is a new map too.
  EXPECT_FALSE(s->install(9, "map-0", v, &old));
  // Replacing an existing map still works when the table is full.
  ASSERT_TRUE(s->install(1, "map-0", v, &old));
  EXPECT_NE(old, Arena::kNull);
  s->free_version(old);
  EXPECT_EQ(s->used_bytes(), used);
  EXPECT_TRUE(s->check());
  // Freeing one slot makes room for exactly one more.
  ASSERT_TRUE(s->remove(1 + 5 % 3, "map-5", &old));
  s->free_version(old);
  EXPECT_NE(put(s, 1, "map-65th", e), MapStore::kNoSlot);
  EXPECT_EQ(put(s, 1, "map-66th", e), MapStore::kNoSlot);
  EXPECT_EQ(s->used_bytes(), used);
  for (std::uint32_t i = 0; i < MapStore::kMaxMaps; ++i) {
    if (i == 5) continue;
    const int slot = s->find(1 + i % 3, "map-" + std::to_string(i));
    ASSERT_NE(slot, MapStore::kNoSlot) << i;
    EXPECT_EQ(s->lookup(slot, "k"), "v");
  }
  EXPECT_EQ(s->remove_all(0), MapStore::kMaxMaps);
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_TRUE(s->check());
}

TEST(MapStoreSlots, NameLengthLimit) {
  Region r(1 << 16);
  MapStore* s = r.store;
  Entries e;
  e.add("k", "v");
  const std::string longest(MapStore::kMaxName, 'n');
  const std::string too_long(MapStore::kMaxName + 1, 'n');
  const int slot = put(s, 1, longest, e);
  ASSERT_NE(slot, MapStore::kNoSlot);
  EXPECT_EQ(s->slot_name(slot), longest);
  EXPECT_EQ(s->lookup(slot, "k"), "v");

  Offset v, old = 5;
  ASSERT_EQ(build(s, e, &v), Build::Ok);
  EXPECT_FALSE(s->install(1, too_long, v, &old));
  EXPECT_EQ(old, Arena::kNull);
  EXPECT_FALSE(s->install(1, std::string(1000, 'n'), v, &old));
  EXPECT_EQ(s->find(1, too_long), MapStore::kNoSlot);
  // The too-long name must not be truncated onto the 63-byte one.
  EXPECT_EQ(s->lookup(slot, "k"), "v");
  EXPECT_EQ(s->slot_stats(slot).entries, 1u);
  s->free_version(v);
  EXPECT_EQ(s->used_bytes(), e.version_bytes() + Arena::kHeader);

  // Names with NUL and UTF-8 bytes round-trip exactly.
  const std::string odd = std::string("a\0b", 3) + "карта";
  const int s2 = put(s, 1, odd, e);
  ASSERT_NE(s2, MapStore::kNoSlot);
  EXPECT_EQ(s->slot_name(s2), odd);
  EXPECT_EQ(s->find(1, "a"), MapStore::kNoSlot);
  EXPECT_EQ(s->find(1, odd), s2);
  EXPECT_TRUE(s->check());
}

// ---------------------------------------------------------------- scale

TEST(MapStoreLarge, HundredThousandEntries) {
  constexpr std::size_t kN = 100000;
  Entries e;
  e.keys.reserve(kN);
  e.values.reserve(kN);
  for (std::size_t i = 0; i < kN; ++i) e.add("inst-" + std::to_string(i), value_for(i));
  const std::size_t vb = e.version_bytes();
  Region r(2 * vb + (1 << 20));
  MapStore* s = r.store;
  ASSERT_NE(s, nullptr);

  Offset v;
  std::size_t dup = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const Build res = s->build(e.view().data(), kN, &v, &dup);
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_EQ(res, Build::Ok);
  EXPECT_EQ(s->used_bytes(), vb + Arena::kHeader);
  Offset old;
  ASSERT_TRUE(s->install(1, "instances", v, &old));
  const int slot = s->find(1, "instances");
  ASSERT_NE(slot, MapStore::kNoSlot);

  const auto t2 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < kN; ++i) {
    const std::string_view got = s->lookup(slot, e.keys[i]);
    if (got != e.values[i]) {
      ADD_FAILURE() << "key " << e.keys[i] << " -> '" << got << "'";
      break;
    }
  }
  const auto t3 = std::chrono::steady_clock::now();
  std::size_t false_hits = 0;
  for (std::size_t i = 0; i < kN; ++i) {
    false_hits += s->lookup(slot, "inst-" + std::to_string(kN + i)).data() != nullptr;
    false_hits += s->lookup(slot, "inst-" + std::to_string(i) + "x").data() != nullptr;
  }
  EXPECT_EQ(false_hits, 0u);
  const MapSlotStats st = s->slot_stats(slot);
  EXPECT_EQ(st.entries, kN);
  EXPECT_EQ(st.hits, kN);
  EXPECT_EQ(st.misses, 2 * kN);
  EXPECT_EQ(st.bytes, vb + Arena::kHeader);
  EXPECT_TRUE(s->check());

  using ms = std::chrono::duration<double, std::milli>;
  std::cout << "[ MapStore ] 100k entries: version_bytes=" << vb << " (" << vb / (1024.0 * 1024.0) << " MiB), build "
            << ms(t1 - t0).count() << " ms, 100k hit lookups " << ms(t3 - t2).count() << " ms" << std::endl;

  // A second 100k version builds beside the first (region holds two), then swaps.
  for (std::size_t i = 0; i < kN; ++i) e.values[i][1] = 'I';
  Offset v2;
  ASSERT_EQ(build(s, e, &v2), Build::Ok);
  ASSERT_TRUE(s->install(1, "instances", v2, &old));
  EXPECT_EQ(old, v);
  s->free_version(old);
  EXPECT_EQ(s->lookup(slot, "inst-99999"), e.values[99999]);
  EXPECT_EQ(s->used_bytes(), vb + Arena::kHeader);
  EXPECT_TRUE(s->check());
}

TEST(MapStoreReload, TwoHundredCyclesDoNotLeak) {
  Region r(1 << 20);
  MapStore* s = r.store;
  Entries other;
  other.add("stay", "put");
  const int keep = put(s, 2, "other", other);
  ASSERT_NE(keep, MapStore::kNoSlot);

  auto gen_entries = [](int gen, std::size_t n) {
    Entries e;
    for (std::size_t i = 0; i < n; ++i) {
      std::string v = "g" + std::to_string(1000 + gen) + "-" + std::to_string(100000 + i);
      e.add("k" + std::to_string(i), v);
    }
    return e;
  };
  // Constant-size content: used_bytes is the same after every cycle.
  std::size_t baseline = 0;
  for (int gen = 0; gen < 200; ++gen) {
    Entries e = gen_entries(gen, 300);
    Offset v, old;
    ASSERT_EQ(build(s, e, &v), Build::Ok) << gen;
    ASSERT_TRUE(s->install(1, "reload", v, &old));
    EXPECT_EQ(old == Arena::kNull, gen == 0);
    s->free_version(old);
    if (gen == 0) baseline = s->used_bytes();
    ASSERT_EQ(s->used_bytes(), baseline) << "gen " << gen;
    ASSERT_TRUE(s->check()) << "gen " << gen;
    const int slot = s->find(1, "reload");
    ASSERT_EQ(s->lookup(slot, "k17"), e.values[17]) << gen;
  }
  // Varying sizes: used_bytes is always exactly the two live versions.
  const std::size_t other_block = other.version_bytes() + Arena::kHeader;
  for (int gen = 0; gen < 200; ++gen) {
    Entries e = gen_entries(gen, 1 + static_cast<std::size_t>(gen * 37) % 900);
    Offset v, old;
    ASSERT_EQ(build(s, e, &v), Build::Ok) << gen;
    ASSERT_TRUE(s->install(1, "reload", v, &old));
    s->free_version(old);
    ASSERT_EQ(s->used_bytes(), other_block + e.version_bytes() + Arena::kHeader) << "gen " << gen;
    ASSERT_TRUE(s->check()) << "gen " << gen;
    const int slot = s->find(1, "reload");
    ASSERT_EQ(s->lookup(slot, "k0"), e.values[0]);
    ASSERT_EQ(s->slot_stats(slot).entries, e.size());
  }
  EXPECT_EQ(s->lookup(keep, "stay"), "put");
  EXPECT_EQ(s->remove_all(0), 2u);
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_TRUE(s->check());
}

// ---------------------------------------------------------------- concurrency

// Readers hold a shared lock across find + lookup + copy; the writer builds
// without it (build lock only), takes it exclusively just to install, then
// frees the old version after releasing it.
TEST(MapStoreConcurrency, ReaderSeesExactlyOneVersion) {
  constexpr int kGens = 300;
  constexpr std::size_t kKeys = 64;
  Region r(1 << 20);
  MapStore* s = r.store;
  std::shared_mutex read_lock;
  std::atomic<int> installed_gen{-1};
  std::atomic<bool> done{false};

  auto make = [&](int gen) {
    Entries e;
    // Each generation has a different size and key order, so layouts differ.
    const std::size_t extra = static_cast<std::size_t>(gen * 7) % 50;
    for (std::size_t j = 0; j < kKeys + extra; ++j) {
      const std::size_t n = kKeys + extra;  // rotate, reversed on odd generations
      const std::size_t i = (gen % 2 ? n - 1 - j : j + static_cast<std::size_t>(gen)) % n;
      const std::string key = "key-" + std::to_string(i);
      e.add(key, "v" + std::to_string(gen) + ":" + key + std::string(static_cast<std::size_t>(gen % 17), '.'));
    }
    return e;
  };
  {
    Entries e = make(0);
    Offset v, old;
    ASSERT_EQ(build(s, e, &v), Build::Ok);
    ASSERT_TRUE(s->install(1, "live", v, &old));
    installed_gen = 0;
  }

  std::atomic<long> reads{0}, bad{0}, misses{0}, regress{0};
  std::string first_bad;
  std::mutex bad_mu;
  auto reader = [&](unsigned seed) {
    int last_gen = -1;
    std::string copy;
    std::size_t i = seed;
    while (!done.load(std::memory_order_acquire)) {
      i = (i * 1103515245u + 12345u) % kKeys;
      const std::string key = "key-" + std::to_string(i);
      int gen_floor;
      bool found;
      {
        std::shared_lock<std::shared_mutex> lk(read_lock);
        gen_floor = installed_gen.load(std::memory_order_acquire);
        const int slot = s->find(1, "live");
        const std::string_view got = slot == MapStore::kNoSlot ? std::string_view{} : s->lookup(slot, key);
        found = got.data() != nullptr;
        copy.assign(got.data() ? got.data() : "", got.size());
      }
      reads.fetch_add(1, std::memory_order_relaxed);
      if (!found) {
        misses.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      // Well-formed: "v<gen>:<key><gen%17 dots>", with gen == the installed gen.
      bool ok = copy.size() > 1 && copy[0] == 'v';
      std::size_t colon = copy.find(':');
      int gen = -1;
      if (ok && colon != std::string::npos && colon > 1) {
        gen = std::stoi(copy.substr(1, colon - 1));
        ok = copy.compare(colon + 1, key.size(), key) == 0 &&
             copy.size() == colon + 1 + key.size() + static_cast<std::size_t>(gen % 17) &&
             copy.find_first_not_of('.', colon + 1 + key.size()) == std::string::npos && gen == gen_floor;
      } else {
        ok = false;
      }
      if (!ok) {
        if (bad.fetch_add(1) == 0) {
          std::lock_guard<std::mutex> g(bad_mu);
          first_bad = key + " -> " + copy + " (installed gen " + std::to_string(gen_floor) + ")";
        }
        continue;
      }
      if (gen < last_gen) regress.fetch_add(1, std::memory_order_relaxed);
      last_gen = gen;
    }
  };
  std::thread t1(reader, 1u), t2(reader, 7u);

  int writer_failed_at = 0;  // no ASSERT while the readers run
  for (int gen = 1; gen <= kGens && writer_failed_at == 0; ++gen) {
    Entries e = make(gen);
    Offset v = Arena::kNull, old = Arena::kNull;
    if (build(s, e, &v) != Build::Ok) {  // concurrent with readers
      writer_failed_at = gen;
      break;
    }
    {
      std::unique_lock<std::shared_mutex> lk(read_lock);
      if (!s->install(1, "live", v, &old)) writer_failed_at = -gen;
      installed_gen.store(gen, std::memory_order_release);
    }
    s->free_version(old);  // no reader can still hold a view into it
    if (gen % 50 == 0) std::this_thread::yield();
  }
  // Let the readers observe the final version a few times.
  const long reads_at_end = reads.load();
  while (writer_failed_at == 0 && reads.load() < reads_at_end + 100) std::this_thread::yield();
  done.store(true, std::memory_order_release);
  t1.join();
  t2.join();
  ASSERT_EQ(writer_failed_at, 0) << "build (>0) or install (<0) failed at that generation";

  EXPECT_EQ(bad.load(), 0) << first_bad;
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(regress.load(), 0);
  EXPECT_GT(reads.load(), 100);
  const int slot = s->find(1, "live");
  const MapSlotStats st = s->slot_stats(slot);
  EXPECT_EQ(static_cast<long>(st.hits), reads.load());
  EXPECT_EQ(st.misses, 0u);
  Entries last = make(kGens);
  EXPECT_EQ(s->used_bytes(), last.version_bytes() + Arena::kHeader);
  EXPECT_TRUE(s->check());
  std::cout << "[ MapStore ] concurrency: " << reads.load() << " reads across " << kGens << " swaps" << std::endl;
}

}  // namespace
