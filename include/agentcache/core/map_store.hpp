// Prewarmed lookup maps: immutable versions in a fixed region, swapped whole.
//
// A MapStore owns an Arena and a table of map slots, each naming (database,
// map name) and pointing to the map's current Version: one arena block
// holding an open-addressing hash table and every entry (key and value
// bytes). A reload builds a complete new Version beside the old one, installs
// it with a pointer swap, then frees the old one, so a reader sees one
// version or the other, never a mix, and never waits for a reload.
//
// Locking (glue: two LWLocks):
//  * the build lock, held exclusively by whoever builds, installs, removes
//    or frees (serialises writers and guards the arena allocator);
//  * the read lock: readers hold it shared while they find a slot and copy a
//    value; install() and remove() need it exclusively (a short pointer
//    swap). Readers never touch the allocator, so building under the build
//    lock alone runs concurrently with them.
#pragma once
#include "agentcache/core/pure.hpp"
#include "agentcache/core/arena.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace agentcache::core {

struct MapEntryIn {
  std::string_view key;
  std::string_view value;  // opaque bytes (the glue stores a jsonb datum)
};

struct MapSlotStats {
  std::uint64_t entries = 0, bytes = 0, hits = 0, misses = 0;
};

class MapStore {
 public:
  using Offset = Arena::Offset;
  static constexpr std::uint32_t kMaxMaps = 64;
  static constexpr std::size_t kMaxName = 63;
  static constexpr int kNoSlot = -1;

  static MapStore* create(void* mem, std::size_t bytes) noexcept;

  // --- build lock ------------------------------------------------------------
  enum class Build { Ok, OutOfMemory, DuplicateKey };
  // Builds a version of n entries. On DuplicateKey, *dup is the index of the
  // second occurrence. Nothing is allocated unless it returns Ok.
  Build build(const MapEntryIn* entries, std::size_t n, Offset* version, std::size_t* dup) noexcept;
  // Frees a version that is no longer installed.
  void free_version(Offset version) noexcept;

  // --- build lock + read lock exclusive --------------------------------------
  // Makes `version` the current version of (db, name), creating the slot if
  // needed (false when all kMaxMaps slots are taken or the name is too long).
  // *old receives the replaced version (kNull if none) for free_version().
  bool install(std::uint32_t db, std::string_view name, Offset version, Offset* old) noexcept;
  // Removes the slot; *old receives its version. False if there was none.
  bool remove(std::uint32_t db, std::string_view name, Offset* old) noexcept;
  // Removes every slot of a database (db 0: all); their versions are freed.
  std::uint32_t remove_all(std::uint32_t db) noexcept;

  // --- read lock shared ------------------------------------------------------
  int find(std::uint32_t db, std::string_view name) const noexcept;
  // The value of `key` in the slot's current version, or {nullptr, 0} when
  // absent. Counts a hit or a miss.
  std::string_view lookup(int slot, std::string_view key) const noexcept;
  // The same without counting: a caller that may have to look again (its
  // buffer was too small) counts once, with count().
  std::string_view peek(int slot, std::string_view key) const noexcept;
  void count(int slot, bool hit) const noexcept;
  MapSlotStats slot_stats(int slot) const noexcept;
  std::string_view slot_name(int slot) const noexcept;
  std::uint32_t slot_db(int slot) const noexcept;
  bool slot_used(int slot) const noexcept;
  std::size_t used_bytes() const noexcept { return arena().used_bytes(); }
  std::size_t capacity() const noexcept { return arena().capacity(); }
  void reset_counters() noexcept;

  // Bytes a version of these entries needs (tests and error messages).
  static std::size_t version_bytes(const MapEntryIn* entries, std::size_t n) noexcept;
  bool check() const noexcept;

 private:
  struct Slot {
    std::uint32_t db;
    std::uint8_t used;
    std::uint8_t name_len;
    char name[kMaxName + 1];
    Offset version;
    mutable std::atomic<std::uint64_t> hits, misses;
  };
  MapStore() = default;
  Arena& arena() noexcept { return *reinterpret_cast<Arena*>(reinterpret_cast<char*>(this) + arena_off_); }
  const Arena& arena() const noexcept {
    return *reinterpret_cast<const Arena*>(reinterpret_cast<const char*>(this) + arena_off_);
  }
  std::uint32_t arena_off_ = 0;
  Slot slots_[kMaxMaps] = {};
};

}  // namespace agentcache::core
