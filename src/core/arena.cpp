// Fixed-region TLSF allocator; see arena.hpp for the interface and the block
// layout.  Pure C++17: no PostgreSQL headers, no heap, no exceptions.
//
// Size classes (block sizes, header included, always multiples of 8):
//   fl = 0:       sizes [0, 128) in 16 linear classes of 8 bytes (sl = size / 8)
//   fl = f >= 1:  sizes [2^(f+6), 2^(f+7)) in 16 classes of 2^(f+2) bytes
// Blocks are below 2^31, so fl <= 24; kFlCount = 32 leaves headroom for the
// rounded-up search key.
#include "agentcache/core/arena.hpp"

#include <cstring>
#include <new>
#include <type_traits>

namespace agentcache::core {

namespace {

constexpr std::uint32_t kFreeBit = 1u;
constexpr std::uint32_t kFlagMask = 7u;
constexpr std::uint32_t kSizeMask = ~kFlagMask;
constexpr std::uint32_t kHdr = static_cast<std::uint32_t>(Arena::kHeader);
constexpr std::uint32_t kMinBlock = kHdr + 8;  // header + room for two free-list links
constexpr int kAlignLog2 = 3;
constexpr int kLinearLog2 = Arena::kSlLog2 + kAlignLog2;  // sizes below 2^7 are linear
constexpr std::uint32_t kLinearLimit = std::uint32_t(1) << kLinearLog2;
constexpr int kFallbackScan = 16;  // blocks of the top class examined when rounding fails
constexpr std::size_t kControl = (sizeof(Arena) + Arena::kAlign - 1) & ~(Arena::kAlign - 1);

static_assert(Arena::kHeader == 8, "header is two 32-bit words");
static_assert(Arena::kAlign == (std::size_t(1) << kAlignLog2), "alignment");
static_assert(Arena::kSlCount == 16 && Arena::kFlCount == 32, "bitmaps are 32-bit words");
static_assert(std::is_trivially_copyable<Arena>::value, "Arena must be relocatable bytes");
static_assert(kControl + kHdr + kMinBlock <= Arena::kMinRegion, "control data too large");
static_assert(Arena::kMaxRegion <= (std::size_t(1) << 31), "offsets and sizes must fit 31 bits");

inline int log2_floor(std::uint32_t v) noexcept { return 31 - __builtin_clz(v); }

// Class of a block of the given size (size >= kMinBlock, or the search key).
inline void mapping(std::uint32_t size, int& fl, int& sl) noexcept {
  if (size < kLinearLimit) {
    fl = 0;
    sl = static_cast<int>(size >> kAlignLog2);
  } else {
    const int l = log2_floor(size);
    fl = l - (kLinearLog2 - 1);
    sl = static_cast<int>((size >> (l - Arena::kSlLog2)) - Arena::kSlCount);
  }
}

}  // namespace

// ---- raw word access (memcpy keeps it free of aliasing assumptions) ----

std::uint32_t Arena::load(Offset off) const noexcept {
  std::uint32_t v;
  std::memcpy(&v, ptr(off), sizeof v);
  return v;
}

void Arena::store(Offset off, std::uint32_t v) noexcept { std::memcpy(ptr(off), &v, sizeof v); }

std::uint32_t Arena::block_size(Offset b) const noexcept { return load(b) & kSizeMask; }
bool Arena::is_free(Offset b) const noexcept { return (load(b) & kFreeBit) != 0; }

void Arena::set_header(Offset b, std::uint32_t size, bool free_block) noexcept {
  store(b, size | (free_block ? kFreeBit : 0u));
}

Arena::Offset Arena::link_next(Offset b) const noexcept { return load(b + kHdr); }
Arena::Offset Arena::link_prev(Offset b) const noexcept { return load(b + kHdr + 4); }

// ---- free lists ----

void Arena::insert_free(Offset b) noexcept {
  int fl, sl;
  mapping(block_size(b), fl, sl);
  const Offset head = heads_[fl][sl];
  store(b + kHdr, head);       // next
  store(b + kHdr + 4, kNull);  // prev
  if (head != kNull) store(head + kHdr + 4, b);
  heads_[fl][sl] = b;
  sl_bitmap_[fl] |= 1u << sl;
  fl_bitmap_ |= 1u << fl;
}

void Arena::remove_free(Offset b) noexcept {
  int fl, sl;
  mapping(block_size(b), fl, sl);
  const Offset next = link_next(b);
  const Offset prev = link_prev(b);
  if (next != kNull) store(next + kHdr + 4, prev);
  if (prev != kNull) {
    store(prev + kHdr, next);
  } else {
    heads_[fl][sl] = next;
    if (next == kNull) {
      sl_bitmap_[fl] &= ~(1u << sl);
      if (sl_bitmap_[fl] == 0) fl_bitmap_ &= ~(1u << fl);
    }
  }
}

// Good fit: round the request up to the next class boundary so that the head
// of any non-empty class at or above the key is big enough (O(1)).  If that
// finds nothing, every class above the request's own class is empty, so the
// request's class is the highest non-empty one (or empty); its first
// kFallbackScan blocks are checked for one that fits.  The bound keeps
// allocate() O(1); largest_allocatable() looks at the same blocks, so it
// stays exact: allocate(n) succeeds iff n <= largest_allocatable().
Arena::Offset Arena::find_free(std::uint32_t need) const noexcept {
  std::uint32_t key = need;
  if (need >= kLinearLimit) key += (std::uint32_t(1) << (log2_floor(need) - kSlLog2)) - 1;
  int fl, sl;
  mapping(key, fl, sl);
  if (fl < kFlCount) {
    std::uint32_t slmap = sl_bitmap_[fl] & (~0u << sl);
    if (slmap == 0 && fl + 1 < kFlCount) {
      const std::uint32_t flmap = fl_bitmap_ & (~0u << (fl + 1));
      if (flmap != 0) {
        fl = __builtin_ctz(flmap);
        slmap = sl_bitmap_[fl];
      }
    }
    if (slmap != 0) return heads_[fl][__builtin_ctz(slmap)];
  }
  mapping(need, fl, sl);
  int scanned = 0;
  for (Offset b = heads_[fl][sl]; b != kNull && scanned < kFallbackScan; b = link_next(b), ++scanned) {
    if (block_size(b) >= need) return b;
  }
  return kNull;
}

// ---- public interface ----

Arena* Arena::create(void* mem, std::size_t bytes) noexcept {
  if (mem == nullptr) return nullptr;
  if (reinterpret_cast<std::uintptr_t>(mem) % kAlign != 0) return nullptr;
  if (bytes < kMinRegion) return nullptr;
  if (bytes > kMaxRegion) bytes = kMaxRegion;
  bytes &= ~(kAlign - 1);

  Arena* a = new (mem) Arena();
  a->first_block_ = static_cast<std::uint32_t>(kControl);
  a->end_ = static_cast<std::uint32_t>(bytes - kHeader);
  a->capacity_ = a->end_ - a->first_block_;

  const Offset first = a->first_block_;
  a->set_header(first, a->capacity_, true);
  a->store(first + 4, 0);
  a->store(a->end_, 0);  // sentinel: size 0, never free
  a->store(a->end_ + 4, a->capacity_);
  a->insert_free(first);
  return a;
}

Arena::Offset Arena::allocate(std::size_t n) noexcept {
  if (n > capacity_) return kNull;  // also keeps the arithmetic below in range
  if (n < 8) n = 8;
  const std::uint32_t need = static_cast<std::uint32_t>(((n + kAlign - 1) & ~(kAlign - 1)) + kHeader);
  const Offset b = find_free(need);
  if (b == kNull) return kNull;
  remove_free(b);

  std::uint32_t size = block_size(b);
  if (size - need >= kMinBlock) {
    // Split: the remainder's physical successor is in use (free blocks never
    // touch), so it goes straight onto a free list.
    const Offset rest = b + need;
    const std::uint32_t rest_size = size - need;
    set_header(rest, rest_size, true);
    store(rest + 4, need);
    store(rest + rest_size + 4, rest_size);
    insert_free(rest);
    size = need;
  }
  set_header(b, size, false);
  used_ += size;
  ++live_;
  return b + kHdr;
}

// Does a block plausibly start at b?  In range, aligned, and both boundary
// tags agree (the successor's prev-size, the predecessor's size).
bool Arena::is_block(Offset b) const noexcept {
  if (b % kAlign != 0 || b < first_block_ || b >= end_ || end_ - b < kMinBlock) return false;
  const std::uint32_t w = load(b);
  if ((w & kFlagMask & ~kFreeBit) != 0) return false;
  const std::uint32_t size = w & kSizeMask;
  if (size < kMinBlock || size > end_ - b) return false;
  if (load(b + size + 4) != size) return false;
  const std::uint32_t prev = load(b + 4);
  if (prev == 0) return b == first_block_;
  if (prev > b - first_block_) return false;
  return block_size(b - prev) == prev;
}

// Cheap plausibility test for a payload offset handed to free()/usable_size().
bool Arena::is_live_block(Offset payload) const noexcept {
  if (payload < kHdr) return false;
  const Offset b = payload - kHdr;
  return is_block(b) && !is_free(b);
}

void Arena::free(Offset off) noexcept {
  if (off == kNull) return;
  if (!is_live_block(off)) return;  // double free / stray offset: ignore rather than corrupt
  Offset b = off - kHdr;
  std::uint32_t size = block_size(b);
  used_ -= size;
  --live_;

  const std::uint32_t prev_size = load(b + 4);
  if (prev_size != 0) {
    const Offset p = b - prev_size;
    if (is_free(p)) {
      remove_free(p);
      store(b, 0);  // retire the absorbed header so a stale offset is rejected later
      b = p;
      size += prev_size;
    }
  }
  const Offset next = b + size;  // the sentinel is never free
  if (is_free(next)) {
    const std::uint32_t next_size = block_size(next);
    remove_free(next);
    store(next, 0);
    size += next_size;
  }
  set_header(b, size, true);
  store(b + size + 4, size);
  insert_free(b);
}

std::size_t Arena::usable_size(Offset off) const noexcept {
  if (!is_live_block(off)) return 0;
  return block_size(off - kHdr) - kHeader;
}

std::size_t Arena::largest_allocatable() const noexcept {
  // The largest block among those find_free() would consider for a request
  // that rounds past the top class: the first kFallbackScan of the top class.
  if (fl_bitmap_ == 0) return 0;
  const int fl = log2_floor(fl_bitmap_);
  const int sl = log2_floor(sl_bitmap_[fl]);
  std::uint32_t best = 0;
  int scanned = 0;
  for (Offset b = heads_[fl][sl]; b != kNull && scanned < kFallbackScan; b = link_next(b), ++scanned) {
    const std::uint32_t s = block_size(b);
    if (s > best) best = s;
  }
  return best - kHeader;
}

// Longer than the ~60-line guide on purpose: four independent passes
// (bitmaps, physical walk, free lists, list membership) that read top to
// bottom as the arena's invariants; split up they would need shared state
// threaded through private members only the unit tests use.
bool Arena::check() const noexcept {
  if (first_block_ != kControl || end_ % kAlign != 0 || end_ < first_block_ + kMinBlock) return false;
  if (capacity_ != end_ - first_block_ || used_ > capacity_) return false;

  // Bitmaps mirror list emptiness.
  for (int fl = 0; fl < kFlCount; ++fl) {
    if ((((fl_bitmap_ >> fl) & 1u) != 0) != (sl_bitmap_[fl] != 0)) return false;
    for (int sl = 0; sl < kSlCount; ++sl) {
      if ((((sl_bitmap_[fl] >> sl) & 1u) != 0) != (heads_[fl][sl] != kNull)) return false;
    }
  }

  // Physical walk: sizes tile [first_block_, end_), boundary tags agree, no
  // two free blocks touch, and the live totals match the counters.
  std::uint64_t total = 0, used = 0;
  std::uint32_t live = 0, nfree = 0, prev = 0;
  bool prev_free = false;
  Offset b = first_block_;
  while (b != end_) {
    if (b > end_ || end_ - b < kMinBlock) return false;
    const std::uint32_t w = load(b);
    if ((w & kFlagMask & ~kFreeBit) != 0) return false;
    const std::uint32_t size = w & kSizeMask;
    const bool fr = (w & kFreeBit) != 0;
    if (size < kMinBlock || size > end_ - b) return false;
    if (load(b + 4) != prev) return false;
    if (fr) {
      if (prev_free) return false;
      ++nfree;
    } else {
      used += size;
      ++live;
    }
    total += size;
    prev = size;
    prev_free = fr;
    b += size;
  }
  if (load(end_) != 0 || load(end_ + 4) != prev) return false;
  if (total != capacity_ || used != used_ || live != live_) return false;

  // Free lists: every node is a real free block (boundary tags agree) of the
  // list's class with a consistent back link, and there are no more nodes than
  // free blocks (so no cycles).
  std::uint32_t listed = 0;
  for (int fl = 0; fl < kFlCount; ++fl) {
    for (int sl = 0; sl < kSlCount; ++sl) {
      Offset p = kNull;
      for (Offset f = heads_[fl][sl]; f != kNull; f = link_next(f)) {
        if (++listed > nfree) return false;
        if (!is_block(f) || !is_free(f)) return false;
        int cfl, csl;
        mapping(block_size(f), cfl, csl);
        if (cfl != fl || csl != sl) return false;
        if (link_prev(f) != p) return false;
        p = f;
      }
    }
  }
  if (listed != nfree) return false;

  // Every physical free block is linked into its own class's list: it heads
  // that list or its predecessor points at it, and its successor points back.
  // With the walk and count above, lists and free blocks correspond one to one.
  for (b = first_block_; b != end_; b += block_size(b)) {
    if (!is_free(b)) continue;
    int fl, sl;
    mapping(block_size(b), fl, sl);
    const Offset before = link_prev(b);
    const Offset next = link_next(b);
    if (before == kNull) {
      if (heads_[fl][sl] != b) return false;
    } else {
      if (!is_block(before) || !is_free(before) || link_next(before) != b) return false;
    }
    if (next != kNull && (!is_block(next) || !is_free(next) || link_prev(next) != b)) return false;
  }
  return true;
}

}  // namespace agentcache::core

#include "agentcache/core/pure_check.hpp"
