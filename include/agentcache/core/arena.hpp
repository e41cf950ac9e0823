// Fixed-region allocator (TLSF: two-level segregated fit) for shared memory.
//
// The Arena object lives at the start of the region it manages; every
// reference into it is a 32-bit byte offset from the Arena's own address, so
// the same bytes work at any mapping address.  Not thread-safe: the caller
// holds the lock that protects the region.  Nothing here throws or allocates
// from the heap; failure is reported by returning kNull.
#pragma once
#include "agentcache/core/pure.hpp"

#include <cstddef>
#include <cstdint>

namespace agentcache::core {

class Arena {
 public:
  using Offset = std::uint32_t;
  static constexpr Offset kNull = 0;         // never a valid allocation
  static constexpr std::size_t kAlign = 8;   // every payload is 8-byte aligned
  static constexpr std::size_t kHeader = 8;  // bytes of bookkeeping per live allocation
  static constexpr std::size_t kMinRegion = 4096;
  static constexpr std::size_t kMaxRegion = std::size_t(1) << 31;  // 2 GiB

  // Initialise an arena in place over [mem, mem+bytes). mem must be 8-aligned,
  // bytes in [kMinRegion, kMaxRegion] (larger regions are clamped to kMaxRegion).
  // Returns nullptr if the region is unusable.
  static Arena* create(void* mem, std::size_t bytes) noexcept;

  // Allocate n payload bytes (n may be 0). Returns kNull when no free block fits.
  Offset allocate(std::size_t n) noexcept;
  // Free an allocation returned by allocate(); kNull is ignored. Coalesces with
  // free physical neighbours.
  void free(Offset off) noexcept;

  void* ptr(Offset off) noexcept { return reinterpret_cast<char*>(this) + off; }
  const void* ptr(Offset off) const noexcept { return reinterpret_cast<const char*>(this) + off; }
  template <class T>
  T* as(Offset off) noexcept {
    return static_cast<T*>(ptr(off));
  }
  template <class T>
  const T* as(Offset off) const noexcept {
    return static_cast<const T*>(ptr(off));
  }

  // Usable payload bytes of a live allocation (>= the n asked for).
  std::size_t usable_size(Offset off) const noexcept;
  // Bytes handed out, counting each live block whole (header + payload + rounding).
  std::size_t used_bytes() const noexcept { return used_; }
  // Bytes available to blocks (region minus the Arena's own control data).
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t free_bytes() const noexcept { return capacity_ - used_; }
  std::size_t live_allocations() const noexcept { return live_; }
  // Payload size of the largest allocation that would currently succeed.
  std::size_t largest_allocatable() const noexcept;
  // Walks every block and free list; true if all invariants hold (tests).
  bool check() const noexcept;

  // Implementation constants (public for tests).
  static constexpr int kSlLog2 = 4;  // 16 second-level lists
  static constexpr int kSlCount = 1 << kSlLog2;
  static constexpr int kFlCount = 32;

 private:
  Arena() = default;

  // Block layout (offsets relative to this Arena): a block at offset b has an
  // 8-byte header -- word b+0 = block size (header included, multiple of 8)
  // with bit 0 set when the block is free; word b+4 = size of the previous
  // physical block (0 for the first block).  The payload starts at b+8.  A free
  // block keeps its free-list links in its payload: next at b+8, prev at b+12
  // (offsets of block headers, kNull = end of list).  A zero-size, never-free
  // sentinel header sits at end_ so the last block has a physical successor.
  std::uint32_t load(Offset off) const noexcept;
  void store(Offset off, std::uint32_t v) noexcept;
  std::uint32_t block_size(Offset b) const noexcept;
  bool is_free(Offset b) const noexcept;
  void set_header(Offset b, std::uint32_t size, bool free_block) noexcept;
  Offset link_next(Offset b) const noexcept;
  Offset link_prev(Offset b) const noexcept;
  void insert_free(Offset b) noexcept;
  void remove_free(Offset b) noexcept;
  Offset find_free(std::uint32_t need) const noexcept;
  bool is_block(Offset b) const noexcept;
  bool is_live_block(Offset payload) const noexcept;

  // control data
  std::uint32_t capacity_ = 0;              // bytes from first_block_ to the sentinel (sum of all block sizes)
  std::uint32_t used_ = 0;                  // sum of sizes of live (allocated) blocks
  std::uint32_t live_ = 0;                  // number of live allocations
  std::uint32_t first_block_ = 0;           // offset of the first physical block
  std::uint32_t end_ = 0;                   // offset of the sentinel header (one past the last block)
  std::uint32_t fl_bitmap_ = 0;             // bit f set <=> sl_bitmap_[f] != 0
  std::uint32_t sl_bitmap_[kFlCount] = {};  // bit s of [f] set <=> heads_[f][s] != kNull
  Offset heads_[kFlCount][kSlCount] = {};   // free-list heads per (first, second) level class
};

}  // namespace agentcache::core
