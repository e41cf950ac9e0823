// GoogleTest suite for the TLSF shared-memory arena (src/core/arena.cpp).
#include "agentcache/core/arena.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

namespace {

using agentcache::core::Arena;
using Offset = Arena::Offset;

// Block size (header included) that allocate(n) consumes when it splits.
std::size_t block_for(std::size_t n) {
  const std::size_t payload = std::max<std::size_t>(8, (n + 7) & ~std::size_t(7));
  return payload + Arena::kHeader;
}

// An 8-aligned heap buffer holding one arena.
struct Region {
  explicit Region(std::size_t bytes) : words((bytes + 7) / 8 + 1, 0), size(bytes) {
    arena = Arena::create(words.data(), bytes);
  }
  unsigned char* base() { return reinterpret_cast<unsigned char*>(words.data()); }
  std::vector<std::uint64_t> words;
  std::size_t size;
  Arena* arena;
};

std::size_t capacity_for(std::size_t bytes) {
  Region r(bytes);
  return r.arena ? r.arena->capacity() : 0;
}

// largest_allocatable() must be exact: that size fits, 8 more bytes do not.
void expect_truthful(Arena* a) {
  const std::size_t largest = a->largest_allocatable();
  if (largest == 0) {
    EXPECT_EQ(a->allocate(0), Arena::kNull);
    return;
  }
  EXPECT_EQ(a->allocate(largest + 8), Arena::kNull) << "largest=" << largest;
  const Offset off = a->allocate(largest);
  ASSERT_NE(off, Arena::kNull) << "largest=" << largest;
  EXPECT_EQ(a->usable_size(off), largest);
  a->free(off);
  EXPECT_EQ(a->largest_allocatable(), largest);
}

// Fill a live allocation's whole usable payload with one byte.
void fill(Arena* a, Offset off, unsigned char byte) { std::memset(a->ptr(off), byte, a->usable_size(off)); }

bool holds(const Arena* a, Offset off, std::size_t len, unsigned char byte) {
  const auto* p = static_cast<const unsigned char*>(a->ptr(off));
  for (std::size_t i = 0; i < len; ++i) {
    if (p[i] != byte) return false;
  }
  return true;
}

// Allocate `n` repeatedly until the arena refuses.
std::vector<Offset> allocate_until_full(Arena* a, std::size_t n) {
  std::vector<Offset> out;
  for (;;) {
    const Offset off = a->allocate(n);
    if (off == Arena::kNull) break;
    out.push_back(off);
  }
  return out;
}

// ---------------------------------------------------------------- creation

TEST(ArenaCreate, RejectsNullMemory) {
  EXPECT_EQ(Arena::create(nullptr, 1 << 20), nullptr);
  EXPECT_EQ(Arena::create(nullptr, 0), nullptr);
}

TEST(ArenaCreate, RejectsTooSmallRegion) {
  std::vector<std::uint64_t> buf(Arena::kMinRegion / 8);
  for (std::size_t bytes : {std::size_t(0), std::size_t(1), std::size_t(8), std::size_t(1024), Arena::kMinRegion - 8,
                            Arena::kMinRegion - 1}) {
    EXPECT_EQ(Arena::create(buf.data(), bytes), nullptr) << bytes;
  }
  EXPECT_NE(Arena::create(buf.data(), Arena::kMinRegion), nullptr);
}

TEST(ArenaCreate, RejectsMisalignedMemory) {
  std::vector<std::uint64_t> buf(2 * Arena::kMinRegion / 8);
  auto* base = reinterpret_cast<char*>(buf.data());
  for (int shift = 1; shift < 8; ++shift) {
    EXPECT_EQ(Arena::create(base + shift, Arena::kMinRegion), nullptr) << shift;
  }
  // 8-aligned but not 16-aligned is fine, and every payload is 8-aligned.
  Arena* a = Arena::create(base + 8, Arena::kMinRegion);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<void*>(a), static_cast<void*>(base + 8));
  const Offset off = a->allocate(24);
  ASSERT_NE(off, Arena::kNull);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a->ptr(off)) % Arena::kAlign, 0u);
  EXPECT_TRUE(a->check());
}

TEST(ArenaCreate, MinimumRegionIsUsable) {
  Region r(Arena::kMinRegion);
  Arena* a = r.arena;
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->check());
  EXPECT_GT(a->capacity(), 0u);
  EXPECT_LT(a->capacity(), Arena::kMinRegion);
  EXPECT_EQ(a->capacity() % 8, 0u);
  EXPECT_EQ(a->used_bytes(), 0u);
  EXPECT_EQ(a->free_bytes(), a->capacity());
  EXPECT_EQ(a->live_allocations(), 0u);
  EXPECT_EQ(a->largest_allocatable(), a->capacity() - Arena::kHeader);
  expect_truthful(a);
  const Offset off = a->allocate(a->largest_allocatable());
  ASSERT_NE(off, Arena::kNull);
  EXPECT_EQ(a->used_bytes(), a->capacity());
  EXPECT_EQ(a->free_bytes(), 0u);
  EXPECT_EQ(a->largest_allocatable(), 0u);
  EXPECT_EQ(a->allocate(0), Arena::kNull);
  EXPECT_TRUE(a->check());
}

TEST(ArenaCreate, OddSizesRoundDownToEightBytes) {
  const std::size_t base = capacity_for(Arena::kMinRegion);
  ASSERT_GT(base, 0u);
  for (std::size_t extra = 0; extra <= 64; ++extra) {
    const std::size_t bytes = Arena::kMinRegion + extra;
    Region r(bytes);
    ASSERT_NE(r.arena, nullptr) << bytes;
    EXPECT_EQ(r.arena->capacity(), base + (extra & ~std::size_t(7))) << bytes;
    EXPECT_TRUE(r.arena->check()) << bytes;
  }
  // capacity = region - control data - sentinel, for a range of sizes.
  for (std::size_t bytes : {std::size_t(5000), std::size_t(12345), std::size_t(65537), std::size_t(1) << 20}) {
    EXPECT_EQ(capacity_for(bytes), base + ((bytes & ~std::size_t(7)) - Arena::kMinRegion)) << bytes;
  }
}

TEST(ArenaCreate, NeverWritesOutsideRegion) {
  for (std::size_t bytes : {Arena::kMinRegion, Arena::kMinRegion + 3, std::size_t(10007), std::size_t(65536 + 5)}) {
    constexpr std::size_t kGuard = 256;
    std::vector<std::uint64_t> buf((bytes + kGuard) / 8 + 1);
    auto* raw = reinterpret_cast<unsigned char*>(buf.data());
    std::memset(raw, 0xEE, buf.size() * 8);
    Arena* a = Arena::create(raw, bytes);
    ASSERT_NE(a, nullptr);
    // Fill with mixed sizes, write every payload byte, free everything.
    std::vector<Offset> offs;
    for (std::size_t i = 0;; ++i) {
      const Offset off = a->allocate((i * 53) % 700);
      if (off == Arena::kNull) break;
      ASSERT_LE(off + a->usable_size(off), bytes);
      fill(a, off, 0x11);
      offs.push_back(off);
    }
    // Top up so the tail is used too.
    while (a->largest_allocatable() > 0) {
      const Offset off = a->allocate(a->largest_allocatable());
      ASSERT_NE(off, Arena::kNull);
      fill(a, off, 0x22);
      offs.push_back(off);
    }
    EXPECT_TRUE(a->check());
    for (Offset off : offs) a->free(off);
    EXPECT_TRUE(a->check());
    for (std::size_t i = bytes; i < buf.size() * 8; ++i) {
      ASSERT_EQ(raw[i], 0xEE) << "byte " << i << " past a region of " << bytes;
    }
  }
}

TEST(ArenaCreate, RecreateResetsState) {
  Region r(1 << 16);
  Arena* a = r.arena;
  ASSERT_NE(a, nullptr);
  const std::size_t initial = a->largest_allocatable();
  for (int i = 0; i < 50; ++i) ASSERT_NE(a->allocate(100), Arena::kNull);
  EXPECT_EQ(a->live_allocations(), 50u);
  Arena* b = Arena::create(r.base(), r.size);
  ASSERT_EQ(b, a);
  EXPECT_EQ(b->live_allocations(), 0u);
  EXPECT_EQ(b->used_bytes(), 0u);
  EXPECT_EQ(b->largest_allocatable(), initial);
  EXPECT_TRUE(b->check());
}

TEST(ArenaCreate, RelocatableByCopy) {
  // Offsets are relative to the Arena, so a byte copy of the region is a
  // working arena at its new address (as with differing shared-memory mappings).
  Region src(1 << 15);
  Arena* a = src.arena;
  ASSERT_NE(a, nullptr);
  std::vector<Offset> offs;
  for (int i = 0; i < 40; ++i) {
    const Offset off = a->allocate(static_cast<std::size_t>(i) * 17);
    ASSERT_NE(off, Arena::kNull);
    fill(a, off, static_cast<unsigned char>(i + 1));
    offs.push_back(off);
  }
  for (int i = 0; i < 40; i += 3) a->free(offs[static_cast<std::size_t>(i)]);
  const std::size_t used = a->used_bytes();

  std::vector<std::uint64_t> dst(src.words.size());
  std::memcpy(dst.data(), src.words.data(), dst.size() * 8);
  Arena* b = reinterpret_cast<Arena*>(dst.data());
  EXPECT_TRUE(b->check());
  EXPECT_EQ(b->used_bytes(), used);
  EXPECT_EQ(b->live_allocations(), a->live_allocations());
  for (int i = 0; i < 40; ++i) {
    if (i % 3 == 0) continue;
    const Offset off = offs[static_cast<std::size_t>(i)];
    EXPECT_TRUE(holds(b, off, b->usable_size(off), static_cast<unsigned char>(i + 1))) << i;
  }
  for (int i = 1; i < 40; i += 3) b->free(offs[static_cast<std::size_t>(i)]);
  EXPECT_NE(b->allocate(500), Arena::kNull);
  EXPECT_TRUE(b->check());
  // The source is untouched by work on the copy.
  EXPECT_TRUE(a->check());
  EXPECT_EQ(a->used_bytes(), used);
}

TEST(ArenaCreate, ClampsToMaxRegion) {
  const std::size_t bytes = Arena::kMaxRegion + (std::size_t(1) << 20);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) GTEST_SKIP() << "cannot reserve " << bytes << " bytes of address space";
  Arena* a = Arena::create(mem, bytes);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->capacity(), capacity_for(Arena::kMinRegion) + (Arena::kMaxRegion - Arena::kMinRegion));
  EXPECT_TRUE(a->check());
  const std::size_t largest = a->largest_allocatable();
  EXPECT_EQ(largest, a->capacity() - Arena::kHeader);
  EXPECT_EQ(a->allocate(largest + 8), Arena::kNull);
  EXPECT_EQ(a->allocate(std::numeric_limits<std::size_t>::max()), Arena::kNull);
  const Offset small = a->allocate(64);
  ASSERT_NE(small, Arena::kNull);
  const Offset big = a->allocate(a->largest_allocatable());
  ASSERT_NE(big, Arena::kNull);
  EXPECT_EQ(a->free_bytes(), 0u);
  // Touch the last payload byte: it is inside the clamped region.
  auto* last = static_cast<unsigned char*>(a->ptr(big)) + a->usable_size(big) - 1;
  EXPECT_LT(last, static_cast<unsigned char*>(mem) + Arena::kMaxRegion);
  *last = 0x5A;
  EXPECT_TRUE(a->check());
  a->free(small);
  a->free(big);
  EXPECT_EQ(a->largest_allocatable(), largest);
  EXPECT_TRUE(a->check());
  munmap(mem, bytes);
}

// ------------------------------------------------------------------ basics

TEST(ArenaBasic, AllocateAndFreeOne) {
  Region r(1 << 16);
  Arena* a = r.arena;
  const std::size_t initial = a->largest_allocatable();
  const Offset off = a->allocate(100);
  ASSERT_NE(off, Arena::kNull);
  EXPECT_EQ(a->live_allocations(), 1u);
  EXPECT_EQ(a->used_bytes(), block_for(100));
  EXPECT_EQ(a->free_bytes(), a->capacity() - block_for(100));
  EXPECT_TRUE(a->check());
  std::memset(a->ptr(off), 0xAB, 100);
  a->free(off);
  EXPECT_EQ(a->live_allocations(), 0u);
  EXPECT_EQ(a->used_bytes(), 0u);
  EXPECT_EQ(a->largest_allocatable(), initial);
  EXPECT_TRUE(a->check());
  // LIFO reuse: the same spot comes back.
  EXPECT_EQ(a->allocate(100), off);
}

TEST(ArenaBasic, OffsetsAreAlignedAndInsideRegion) {
  Region r(1 << 16);
  Arena* a = r.arena;
  std::vector<Offset> offs;
  for (std::size_t n = 0; n < 300; ++n) {
    const Offset off = a->allocate(n);
    ASSERT_NE(off, Arena::kNull) << n;
    EXPECT_NE(off, Arena::kNull);
    EXPECT_EQ(off % Arena::kAlign, 0u) << n;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a->ptr(off)) % Arena::kAlign, 0u) << n;
    EXPECT_GE(off, sizeof(Arena)) << "payload overlaps the control data";
    EXPECT_LE(off + a->usable_size(off), r.size);
    offs.push_back(off);
    if (a->largest_allocatable() < 400) break;
  }
  // No two allocations overlap.
  std::sort(offs.begin(), offs.end());
  for (std::size_t i = 1; i < offs.size(); ++i) {
    EXPECT_LE(offs[i - 1] + a->usable_size(offs[i - 1]) + Arena::kHeader, offs[i]);
  }
  EXPECT_TRUE(a->check());
}

TEST(ArenaBasic, ZeroSizeAllocationIsDistinctAndUsable) {
  Region r(Arena::kMinRegion);
  Arena* a = r.arena;
  const Offset x = a->allocate(0);
  const Offset y = a->allocate(0);
  ASSERT_NE(x, Arena::kNull);
  ASSERT_NE(y, Arena::kNull);
  EXPECT_NE(x, y);
  EXPECT_EQ(a->usable_size(x), 8u);
  EXPECT_EQ(a->used_bytes(), 32u);
  std::memset(a->ptr(x), 0x77, 8);
  std::memset(a->ptr(y), 0x66, 8);
  EXPECT_TRUE(holds(a, x, 8, 0x77));
  EXPECT_TRUE(a->check());
}

TEST(ArenaBasic, FreeNullIsNoop) {
  Region r(Arena::kMinRegion);
  Arena* a = r.arena;
  const Offset off = a->allocate(10);
  const std::size_t used = a->used_bytes();
  a->free(Arena::kNull);
  EXPECT_EQ(a->used_bytes(), used);
  EXPECT_EQ(a->live_allocations(), 1u);
  EXPECT_TRUE(a->check());
  a->free(off);
  EXPECT_EQ(a->used_bytes(), 0u);
}

TEST(ArenaBasic, UsableSizeAtLeastRequested) {
  Region r(1 << 20);
  Arena* a = r.arena;
  for (std::size_t n = 0; n <= 2048; ++n) {
    const Offset off = a->allocate(n);
    ASSERT_NE(off, Arena::kNull) << n;
    const std::size_t usable = a->usable_size(off);
    EXPECT_GE(usable, n);
    EXPECT_EQ(usable % 8, 0u);
    EXPECT_EQ(usable, block_for(n) - Arena::kHeader) << n;  // fresh tail: always split
    a->free(off);
  }
  EXPECT_EQ(a->usable_size(Arena::kNull), 0u);
  EXPECT_TRUE(a->check());
}

TEST(ArenaBasic, OverheadIsHeaderPlusRounding) {
  Region r(1 << 16);
  Arena* a = r.arena;
  struct Case {
    std::size_t n, block;
  };
  const Case cases[] = {{0, 16},  {1, 16},    {7, 16},    {8, 16},      {9, 24},      {16, 24},
                        {17, 32}, {120, 128}, {200, 208}, {1000, 1008}, {1001, 1016}, {4096, 4104}};
  for (const Case& c : cases) {
    const std::size_t before = a->used_bytes();
    const Offset off = a->allocate(c.n);
    ASSERT_NE(off, Arena::kNull) << c.n;
    EXPECT_EQ(a->used_bytes() - before, c.block) << c.n;
    EXPECT_EQ(a->usable_size(off), c.block - Arena::kHeader) << c.n;
  }
  const std::size_t before = a->used_bytes();
  const Offset off = a->allocate(200);
  EXPECT_EQ(a->used_bytes() - before, 208u);
  a->free(off);
  EXPECT_EQ(a->used_bytes(), before);
  EXPECT_TRUE(a->check());
}

TEST(ArenaBasic, LiveAllocationsCount) {
  Region r(1 << 16);
  Arena* a = r.arena;
  std::vector<Offset> offs;
  for (std::size_t i = 0; i < 100; ++i) {
    offs.push_back(a->allocate(i));
    ASSERT_NE(offs.back(), Arena::kNull);
    EXPECT_EQ(a->live_allocations(), i + 1);
  }
  for (std::size_t i = 0; i < offs.size(); ++i) {
    a->free(offs[i]);
    EXPECT_EQ(a->live_allocations(), offs.size() - i - 1);
  }
  EXPECT_TRUE(a->check());
}

TEST(ArenaBasic, SplitRemainderTooSmallIsAbsorbed) {
  Region r(1 << 16);
  Arena* a = r.arena;
  const Offset hole = a->allocate(56);  // 64-byte block
  const Offset guard = a->allocate(8);
  ASSERT_NE(guard, Arena::kNull);
  a->free(hole);
  const std::size_t base = a->used_bytes();

  // 48 bytes -> 56-byte block; the 8 left over cannot be a block: absorbed.
  const Offset x = a->allocate(48);
  EXPECT_EQ(x, hole);
  EXPECT_EQ(a->used_bytes() - base, 64u);
  EXPECT_EQ(a->usable_size(x), 56u);
  EXPECT_TRUE(a->check());
  a->free(x);

  // 40 bytes -> 48-byte block; the 16 left over is a valid free block.
  const Offset y = a->allocate(40);
  EXPECT_EQ(y, hole);
  EXPECT_EQ(a->used_bytes() - base, 48u);
  EXPECT_EQ(a->usable_size(y), 40u);
  EXPECT_TRUE(a->check());
  // The 16-byte remainder serves a zero-size request.
  const Offset z = a->allocate(0);
  EXPECT_EQ(z, hole + 48);
  EXPECT_TRUE(a->check());
}

TEST(ArenaBasic, DoubleFreeAndStrayOffsetsAreIgnored) {
  Region r(1 << 16);
  Arena* a = r.arena;
  const Offset x = a->allocate(100);
  const Offset y = a->allocate(100);
  const Offset z = a->allocate(100);
  std::memset(a->ptr(z), 0, a->usable_size(z));
  a->free(y);
  const std::size_t used = a->used_bytes();
  a->free(y);  // plain double free
  EXPECT_EQ(a->used_bytes(), used);
  EXPECT_EQ(a->live_allocations(), 2u);
  EXPECT_TRUE(a->check());
  a->free(x);  // x absorbs y
  a->free(y);  // stale offset inside a free block
  a->free(x);  // double free of the merged block's head
  EXPECT_EQ(a->live_allocations(), 1u);
  EXPECT_TRUE(a->check());
  const Offset stray[] = {1,
                          4,
                          7,
                          8,
                          16,
                          static_cast<Offset>(z + 8),
                          static_cast<Offset>(z + 3),
                          static_cast<Offset>(a->capacity()),
                          static_cast<Offset>(r.size),
                          0x7FFFFFF8u,
                          0xFFFFFFF8u};
  for (Offset off : stray) {
    EXPECT_EQ(a->usable_size(off), 0u) << off;
    a->free(off);
    EXPECT_TRUE(a->check()) << off;
  }
  EXPECT_EQ(a->live_allocations(), 1u);
  EXPECT_EQ(a->usable_size(z), 104u);
}

// --------------------------------------------------------------- integrity

TEST(ArenaIntegrity, PayloadWritesDoNotCorruptNeighbours) {
  Region r(1 << 16);
  Arena* a = r.arena;
  struct Live {
    Offset off;
    unsigned char byte;
  };
  std::vector<Live> live;
  unsigned char next_byte = 1;
  auto add = [&](std::size_t n) {
    const Offset off = a->allocate(n);
    if (off == Arena::kNull) return false;
    const unsigned char b = next_byte;
    next_byte = static_cast<unsigned char>(next_byte * 7 + 13);
    if (next_byte == 0) next_byte = 1;
    fill(a, off, b);
    live.push_back({off, b});
    return true;
  };
  auto verify = [&] {
    for (const Live& l : live) {
      ASSERT_TRUE(holds(a, l.off, a->usable_size(l.off), l.byte)) << "block at " << l.off;
    }
    ASSERT_TRUE(a->check());
  };
  for (std::size_t i = 0; add((i * 37) % 301); ++i) {
  }
  verify();
  // Free every third, refill the holes with other sizes.
  std::vector<Live> keep;
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (i % 3 == 0) {
      a->free(live[i].off);
    } else {
      keep.push_back(live[i]);
    }
  }
  live = keep;
  verify();
  for (std::size_t i = 0; add((i * 11) % 97); ++i) {
  }
  verify();
  EXPECT_LT(a->largest_allocatable(), 97u);
}

// -------------------------------------------------------------- exhaustion

TEST(ArenaExhaustion, ExhaustFreeAllAndReuse) {
  for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(8), std::size_t(24), std::size_t(100),
                        std::size_t(200), std::size_t(1000), std::size_t(4000)}) {
    Region r(1 << 17);
    Arena* a = r.arena;
    const std::size_t cap = a->capacity();
    const std::size_t initial = a->largest_allocatable();
    const std::size_t bs = block_for(n);
    std::vector<Offset> offs = allocate_until_full(a, n);
    // Exactly floor(capacity / block) blocks fit; a tail under 16 bytes is absorbed.
    EXPECT_EQ(offs.size(), cap / bs) << n;
    const std::size_t rest = cap - offs.size() * bs;
    EXPECT_EQ(a->used_bytes(), offs.size() * bs + (rest < 16 ? rest : 0)) << n;
    EXPECT_LT(a->largest_allocatable(), bs - Arena::kHeader) << n;
    EXPECT_EQ(a->allocate(n), Arena::kNull);  // stays refused
    EXPECT_TRUE(a->check()) << n;
    expect_truthful(a);
    for (Offset off : offs) a->free(off);
    EXPECT_TRUE(a->check()) << n;
    EXPECT_EQ(a->used_bytes(), 0u);
    EXPECT_EQ(a->live_allocations(), 0u);
    EXPECT_EQ(a->largest_allocatable(), initial);
    std::vector<Offset> again = allocate_until_full(a, n);
    EXPECT_EQ(again.size(), offs.size()) << n;
    EXPECT_TRUE(a->check());
  }
}

TEST(ArenaExhaustion, OversizedRequestsFail) {
  Region r(1 << 16);
  Arena* a = r.arena;
  const std::size_t cap = a->capacity();
  for (std::size_t n : {cap, cap - 7, cap + 1, std::size_t(1) << 31, std::size_t(1) << 32,
                        std::numeric_limits<std::size_t>::max(), std::numeric_limits<std::size_t>::max() - 7}) {
    EXPECT_EQ(a->allocate(n), Arena::kNull) << n;
  }
  EXPECT_EQ(a->used_bytes(), 0u);
  EXPECT_TRUE(a->check());
  EXPECT_NE(a->allocate(cap - Arena::kHeader), Arena::kNull);
}

TEST(ArenaExhaustion, MixedSizesUntilFull) {
  Region r(1 << 16);
  Arena* a = r.arena;
  std::vector<Offset> offs;
  std::size_t refused = 0;
  for (std::size_t i = 0; i < 5000; ++i) {
    const std::size_t n = (i * 7919) % 1500;
    const std::size_t largest = a->largest_allocatable();
    const Offset off = a->allocate(n);
    if (largest > 0 && n <= largest) {
      ASSERT_NE(off, Arena::kNull) << n << " <= " << largest;
      offs.push_back(off);
    } else {
      ASSERT_EQ(off, Arena::kNull) << n << " > " << largest;
      ++refused;
    }
  }
  EXPECT_GT(refused, 0u);
  EXPECT_TRUE(a->check());
  EXPECT_EQ(a->live_allocations(), offs.size());
  for (Offset off : offs) a->free(off);
  EXPECT_EQ(a->used_bytes(), 0u);
  EXPECT_TRUE(a->check());
}

// -------------------------------------------------------------- coalescing

class ArenaCoalesce : public ::testing::Test {
 protected:
  void SetUp() override {
    a = region.arena;
    ASSERT_NE(a, nullptr);
    initial = a->largest_allocatable();
    ASSERT_EQ(initial, a->capacity() - Arena::kHeader);
    for (std::size_t i = 0;; ++i) {
      const Offset off = a->allocate((i * 13) % 300);
      if (off == Arena::kNull) break;
      offs.push_back(off);
    }
    ASSERT_GT(offs.size(), 100u);
  }
  void free_in(const std::vector<std::size_t>& order) {
    for (std::size_t k = 0; k < order.size(); ++k) {
      a->free(offs[order[k]]);
      ASSERT_TRUE(a->check()) << "after freeing #" << k;
      ASSERT_EQ(a->live_allocations(), offs.size() - k - 1);
    }
    EXPECT_EQ(a->used_bytes(), 0u);
    EXPECT_EQ(a->largest_allocatable(), initial);
    EXPECT_EQ(a->largest_allocatable() + Arena::kHeader, a->capacity());  // one block again
    expect_truthful(a);
  }
  std::vector<std::size_t> iota() const {
    std::vector<std::size_t> v(offs.size());
    std::iota(v.begin(), v.end(), std::size_t(0));
    return v;
  }
  Region region{1 << 16};
  Arena* a = nullptr;
  std::size_t initial = 0;
  std::vector<Offset> offs;
};

TEST_F(ArenaCoalesce, ForwardOrder) { free_in(iota()); }

TEST_F(ArenaCoalesce, ReverseOrder) {
  auto v = iota();
  std::reverse(v.begin(), v.end());
  free_in(v);
}

TEST_F(ArenaCoalesce, EveryOtherThenRest) {
  std::vector<std::size_t> v;
  for (std::size_t i = 0; i < offs.size(); i += 2) v.push_back(i);
  for (std::size_t i = 1; i < offs.size(); i += 2) v.push_back(i);
  free_in(v);
}

TEST_F(ArenaCoalesce, OddOnesThenEvenBackwards) {
  std::vector<std::size_t> v;
  for (std::size_t i = 1; i < offs.size(); i += 2) v.push_back(i);
  for (std::size_t i = offs.size(); i-- > 0;) {
    if (i % 2 == 0) v.push_back(i);
  }
  free_in(v);
}

TEST_F(ArenaCoalesce, ShuffledOrder) {
  auto v = iota();
  std::mt19937 rng(42);
  std::shuffle(v.begin(), v.end(), rng);
  free_in(v);
}

TEST(ArenaCoalesceExact, MergesWithNextPreviousAndBoth) {
  Region r(1 << 16);
  Arena* a = r.arena;
  const Offset A = a->allocate(56);  // four 64-byte blocks in a row
  const Offset B = a->allocate(56);
  const Offset C = a->allocate(56);
  const Offset D = a->allocate(56);
  ASSERT_EQ(B, A + 64);
  ASSERT_EQ(C, B + 64);
  ASSERT_EQ(D, C + 64);
  const Offset E = a->allocate(a->largest_allocatable());  // consume the tail
  ASSERT_NE(E, Arena::kNull);
  EXPECT_EQ(a->largest_allocatable(), 0u);

  a->free(B);
  EXPECT_EQ(a->largest_allocatable(), 56u);
  a->free(C);  // C merges with free previous B
  EXPECT_EQ(a->largest_allocatable(), 120u);
  EXPECT_TRUE(a->check());
  a->free(A);  // A merges with free next B+C
  EXPECT_EQ(a->largest_allocatable(), 184u);
  EXPECT_TRUE(a->check());
  const Offset X = a->allocate(184);
  EXPECT_EQ(X, A);
  a->free(X);
  a->free(E);  // no merge: D before it is live, the sentinel follows
  EXPECT_TRUE(a->check());
  const std::size_t tail = a->largest_allocatable();
  a->free(D);  // D merges with both A+B+C and E
  EXPECT_TRUE(a->check());
  EXPECT_EQ(a->largest_allocatable(), a->capacity() - Arena::kHeader);
  EXPECT_GT(a->largest_allocatable(), tail + 184);
  EXPECT_EQ(a->used_bytes(), 0u);
}

// ------------------------------------------------------ largest_allocatable

TEST(ArenaLargest, TruthfulOnFreshArenas) {
  for (std::size_t bytes : {Arena::kMinRegion, std::size_t(5000), std::size_t(1) << 16, (std::size_t(1) << 20) + 24,
                            std::size_t(3) << 20}) {
    Region r(bytes);
    Arena* a = r.arena;
    EXPECT_EQ(a->largest_allocatable(), a->capacity() - Arena::kHeader);
    expect_truthful(a);
    EXPECT_TRUE(a->check());
  }
}

TEST(ArenaLargest, OnlyFreeBlockOffClassBoundaryIsAllocatable) {
  // A hole whose size is not a second-level class boundary is only found by
  // the exact-class fallback; it must still be allocatable in full.
  Region r(1 << 16);
  Arena* a = r.arena;
  const Offset hole = a->allocate(1000);  // 1008-byte block, class [992, 1024)
  const Offset guard = a->allocate(8);
  ASSERT_NE(guard, Arena::kNull);
  ASSERT_NE(a->allocate(a->largest_allocatable()), Arena::kNull);
  EXPECT_EQ(a->largest_allocatable(), 0u);
  a->free(hole);
  EXPECT_EQ(a->largest_allocatable(), 1000u);
  EXPECT_EQ(a->allocate(1008), Arena::kNull);
  const Offset again = a->allocate(1000);
  EXPECT_EQ(again, hole);
  EXPECT_TRUE(a->check());
}

TEST(ArenaLargest, ScansTheTopClassForAFit) {
  Region r(1 << 16);
  Arena* a = r.arena;
  const Offset big = a->allocate(1008);  // 1016-byte block
  const Offset g1 = a->allocate(8);
  const Offset small = a->allocate(1000);  // 1008-byte block, same class
  const Offset g2 = a->allocate(8);
  ASSERT_NE(g1, Arena::kNull);
  ASSERT_NE(g2, Arena::kNull);
  ASSERT_NE(a->allocate(a->largest_allocatable()), Arena::kNull);
  a->free(big);
  a->free(small);  // now heads the shared list
  EXPECT_EQ(a->largest_allocatable(), 1008u);
  expect_truthful(a);
  EXPECT_EQ(a->allocate(1008), big);
  EXPECT_EQ(a->allocate(1000), small);
  EXPECT_EQ(a->largest_allocatable(), 0u);
  EXPECT_TRUE(a->check());
}

TEST(ArenaLargest, FallbackScanIsBoundedAndStillTruthful) {
  // One 1016-byte hole followed (in list order) by 40 holes of 1008 bytes, all
  // in class [992, 1024).  Only the first 16 list entries are examined when a
  // request rounds past the top class, so the deep 1016-byte hole is not
  // offered -- and largest_allocatable() says so.
  Region r(1 << 17);
  Arena* a = r.arena;
  std::vector<Offset> holes;
  const Offset deep = a->allocate(1008);
  ASSERT_NE(a->allocate(8), Arena::kNull);
  for (int i = 0; i < 40; ++i) {
    holes.push_back(a->allocate(1000));
    ASSERT_NE(holes.back(), Arena::kNull);
    ASSERT_NE(a->allocate(8), Arena::kNull);
  }
  ASSERT_NE(a->allocate(a->largest_allocatable()), Arena::kNull);
  a->free(deep);  // freed first: ends up last in the LIFO list
  for (Offset h : holes) a->free(h);
  EXPECT_TRUE(a->check());
  EXPECT_EQ(a->largest_allocatable(), 1000u);
  expect_truthful(a);
  EXPECT_EQ(a->allocate(1008), Arena::kNull);
  // A request at the class boundary (992-byte block) is served in O(1) from
  // the head; the 16-byte remainder becomes a free block of its own.
  EXPECT_EQ(a->allocate(984), holes.back());
  EXPECT_EQ(a->largest_allocatable(), 1000u);
  // Once the shallow holes are gone the deep one is reachable.
  for (int i = 0; i < 39; ++i) ASSERT_NE(a->allocate(1000), Arena::kNull) << i;
  EXPECT_EQ(a->largest_allocatable(), 1008u);
  EXPECT_EQ(a->allocate(1008), deep);
  EXPECT_EQ(a->largest_allocatable(), 8u);  // the 16-byte remainder
  EXPECT_NE(a->allocate(8), Arena::kNull);
  EXPECT_EQ(a->largest_allocatable(), 0u);
  EXPECT_TRUE(a->check());
}

TEST(ArenaLargest, TruthfulUnderRandomStates) {
  Region r(1 << 18);
  Arena* a = r.arena;
  std::mt19937 rng(7);
  std::vector<Offset> offs;
  for (int round = 0; round < 400; ++round) {
    const int burst = static_cast<int>(rng() % 40);
    for (int i = 0; i < burst; ++i) {
      const Offset off = a->allocate(rng() % 6000);
      if (off != Arena::kNull) offs.push_back(off);
    }
    const int frees = static_cast<int>(rng() % 40);
    for (int i = 0; i < frees && !offs.empty(); ++i) {
      const std::size_t k = rng() % offs.size();
      a->free(offs[k]);
      offs[k] = offs.back();
      offs.pop_back();
    }
    expect_truthful(a);
    if (HasFailure()) return;
  }
  EXPECT_TRUE(a->check());
}

// ----------------------------------------------------------- fragmentation

TEST(ArenaFragmentation, CheckerboardThenHeal) {
  Region r(1 << 16);
  Arena* a = r.arena;
  const std::size_t initial = a->largest_allocatable();
  std::vector<Offset> offs = allocate_until_full(a, 56);  // 64-byte blocks
  ASSERT_GT(offs.size(), 100u);
  EXPECT_LT(a->largest_allocatable(), 56u);
  for (std::size_t i = 0; i < offs.size(); i += 2) a->free(offs[i]);
  EXPECT_TRUE(a->check());
  // Half the arena is free, yet only isolated 64-byte holes exist (the last
  // one may have merged with the sub-64-byte tail).
  EXPECT_GE(a->free_bytes(), a->capacity() / 2 - 64);
  EXPECT_GE(a->largest_allocatable(), 56u);
  EXPECT_LT(a->largest_allocatable(), 120u);
  EXPECT_EQ(a->allocate(120), Arena::kNull);
  expect_truthful(a);

  // Freeing block 1 joins holes 0, 1, 2 into 192 bytes.
  a->free(offs[1]);
  EXPECT_EQ(a->largest_allocatable(), 184u);
  const Offset x = a->allocate(184);
  EXPECT_EQ(x, offs[0]);
  a->free(x);
  // Freeing blocks 3 and 5 grows it to 6 * 64.
  a->free(offs[3]);
  a->free(offs[5]);
  EXPECT_EQ(a->largest_allocatable(), 7 * 64u - 8);
  EXPECT_TRUE(a->check());
  for (std::size_t i = 7; i < offs.size(); i += 2) a->free(offs[i]);
  EXPECT_EQ(a->largest_allocatable(), initial);
  EXPECT_EQ(a->used_bytes(), 0u);
  EXPECT_TRUE(a->check());
}

// ------------------------------------------------------------------- check

TEST(ArenaCheck, DetectsCorruption) {
  // Build a state with live and free blocks, then damage one word at a time in
  // a byte copy of the region; check() must notice every kind of damage.
  Region r(1 << 14);
  Arena* a = r.arena;
  const Offset x = a->allocate(40);
  const Offset y = a->allocate(40);
  const Offset z = a->allocate(40);
  const Offset w = a->allocate(40);
  ASSERT_NE(a->allocate(40), Arena::kNull);
  a->free(y);
  a->free(w);  // two free 48-byte blocks in one list: w -> y
  ASSERT_TRUE(a->check());
  (void)x;

  auto corrupted = [&](Offset at, std::uint32_t value) {
    std::vector<std::uint64_t> copy(r.words);
    Arena* c = reinterpret_cast<Arena*>(copy.data());
    EXPECT_TRUE(c->check());
    std::memcpy(c->ptr(at), &value, sizeof value);
    return c->check();
  };
  auto word = [&](Offset at) {
    std::uint32_t v;
    std::memcpy(&v, a->ptr(at), sizeof v);
    return v;
  };
  EXPECT_FALSE(corrupted(z - 8, word(z - 8) | 1u));   // live block marked free
  EXPECT_FALSE(corrupted(y - 8, word(y - 8) & ~1u));  // free block marked live
  EXPECT_FALSE(corrupted(z - 8, word(z - 8) + 8));    // size grows
  EXPECT_FALSE(corrupted(z - 8, 0));                  // size zero
  EXPECT_FALSE(corrupted(z - 4, word(z - 4) + 8));    // prev-size tag wrong
  EXPECT_FALSE(corrupted(y - 8, word(y - 8) | 2u));   // stray flag bit
  EXPECT_FALSE(corrupted(w, 0));                      // list head loses its successor
  EXPECT_FALSE(corrupted(w, w - 8));                  // list points at itself
  EXPECT_FALSE(corrupted(y + 4, 0));                  // back link broken
  EXPECT_FALSE(corrupted(w, z - 8));                  // list points at a live block
  EXPECT_TRUE(corrupted(z, 0xDEADBEEF));              // payload bytes are not metadata
}

// ------------------------------------------------------------------- large

TEST(ArenaLarge, SixtyFourMiBRegion) {
  const std::size_t bytes = std::size_t(64) << 20;
  auto region = std::make_unique<std::uint64_t[]>(bytes / 8);
  Arena* a = Arena::create(region.get(), bytes);
  ASSERT_NE(a, nullptr);
  const std::size_t cap = a->capacity();
  const std::size_t initial = a->largest_allocatable();
  EXPECT_EQ(initial, cap - Arena::kHeader);
  EXPECT_GT(cap, bytes - 4096);

  // One allocation spanning everything.
  const Offset all = a->allocate(initial);
  ASSERT_NE(all, Arena::kNull);
  EXPECT_EQ(a->free_bytes(), 0u);
  static_cast<unsigned char*>(a->ptr(all))[initial - 1] = 1;
  a->free(all);

  // 1 MiB chunks.
  const std::size_t mib = std::size_t(1) << 20;
  std::vector<Offset> chunks = allocate_until_full(a, mib);
  EXPECT_EQ(chunks.size(), cap / (mib + Arena::kHeader));
  for (std::size_t i = 0; i < chunks.size(); ++i) fill(a, chunks[i], static_cast<unsigned char>(i));
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    ASSERT_TRUE(holds(a, chunks[i], mib, static_cast<unsigned char>(i))) << i;
  }
  EXPECT_TRUE(a->check());
  for (Offset off : chunks) a->free(off);
  EXPECT_EQ(a->largest_allocatable(), initial);

  // Hundreds of thousands of small blocks, freed in random order.
  std::vector<Offset> small = allocate_until_full(a, 100);
  EXPECT_EQ(small.size(), cap / block_for(100));
  EXPECT_TRUE(a->check());
  std::mt19937 rng(99);
  std::shuffle(small.begin(), small.end(), rng);
  for (std::size_t i = 0; i < small.size() / 2; ++i) a->free(small[i]);
  EXPECT_TRUE(a->check());
  for (std::size_t i = small.size() / 2; i < small.size(); ++i) a->free(small[i]);
  EXPECT_EQ(a->used_bytes(), 0u);
  EXPECT_EQ(a->largest_allocatable(), initial);
  EXPECT_TRUE(a->check());
}

// ------------------------------------------------------------------ stress

TEST(ArenaStress, RandomizedOperations) {
  Region r(1 << 20);
  Arena* a = r.arena;
  ASSERT_NE(a, nullptr);
  const std::size_t initial = a->largest_allocatable();
  struct Live {
    Offset off;
    std::size_t n;
    unsigned char byte;
  };
  std::vector<Live> live;
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<std::size_t> size_dist(0, 4000);
  std::size_t ok = 0, refused = 0, frees = 0, peak_live = 0;
  std::size_t used_model = 0;

  auto verify_all = [&] {
    ASSERT_TRUE(a->check());
    ASSERT_EQ(a->live_allocations(), live.size());
    ASSERT_EQ(a->used_bytes(), used_model);
    std::vector<std::pair<Offset, std::size_t>> spans;
    for (const Live& l : live) {
      ASSERT_TRUE(holds(a, l.off, a->usable_size(l.off), l.byte)) << "block " << l.off;
      spans.emplace_back(l.off, a->usable_size(l.off));
    }
    std::sort(spans.begin(), spans.end());
    for (std::size_t i = 1; i < spans.size(); ++i) {
      ASSERT_LE(spans[i - 1].first + spans[i - 1].second + Arena::kHeader, spans[i].first);
    }
  };

  constexpr int kOps = 200000;
  for (int op = 0; op < kOps; ++op) {
    // Alternate phases that fill the arena to exhaustion and drain it.
    const unsigned alloc_pct = (op / 10000) % 2 == 0 ? 70u : 35u;
    if (live.empty() || rng() % 100 < alloc_pct) {
      const std::size_t n = size_dist(rng);
      const std::size_t largest = a->largest_allocatable();
      const std::size_t used_before = a->used_bytes();
      const Offset off = a->allocate(n);
      if (largest > 0 && n <= largest) {
        ASSERT_NE(off, Arena::kNull) << "op " << op << ": " << n << " <= largest " << largest;
      } else {
        ASSERT_EQ(off, Arena::kNull) << "op " << op << ": " << n << " > largest " << largest;
      }
      if (off == Arena::kNull) {
        ++refused;
        ASSERT_EQ(a->used_bytes(), used_before);
      } else {
        ++ok;
        const std::size_t usable = a->usable_size(off);
        ASSERT_GE(usable, n);
        ASSERT_LT(usable, block_for(n) - Arena::kHeader + 16);  // at most an absorbed sliver
        ASSERT_EQ(off % Arena::kAlign, 0u);
        ASSERT_EQ(a->used_bytes() - used_before, usable + Arena::kHeader);
        used_model += usable + Arena::kHeader;
        const auto byte = static_cast<unsigned char>(rng() % 255 + 1);
        fill(a, off, byte);
        live.push_back({off, n, byte});
        peak_live = std::max(peak_live, live.size());
      }
    } else {
      const std::size_t k = rng() % live.size();
      const Live l = live[k];
      const std::size_t usable = a->usable_size(l.off);
      ASSERT_TRUE(holds(a, l.off, usable, l.byte)) << "op " << op << " block " << l.off;
      a->free(l.off);
      used_model -= usable + Arena::kHeader;
      ASSERT_EQ(a->used_bytes(), used_model);
      live[k] = live.back();
      live.pop_back();
      ++frees;
    }
    if (op % 1000 == 999) {
      verify_all();
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_GT(refused, 100u) << "exhaustion was never reached";
  EXPECT_GT(ok, 50000u);
  EXPECT_GT(frees, 50000u);
  EXPECT_GT(peak_live, 200u);
  for (const Live& l : live) a->free(l.off);
  EXPECT_TRUE(a->check());
  EXPECT_EQ(a->used_bytes(), 0u);
  EXPECT_EQ(a->live_allocations(), 0u);
  EXPECT_EQ(a->largest_allocatable(), initial);
}

}  // namespace
