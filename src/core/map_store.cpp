// Prewarmed lookup maps; see include/agentcache/core/map_store.hpp.
#include "agentcache/core/map_store.hpp"

#include "agentcache/core/text.hpp"

#include <cstring>
#include <new>

namespace agentcache::core {

namespace {

constexpr std::size_t align8(std::size_t n) noexcept { return (n + 7) & ~std::size_t(7); }

// Version block layout (offsets relative to the block's payload start):
//   VersionHeader, Offset buckets[nbuckets], then entries, each
//   EntryHeader + key bytes + value bytes, 8-aligned.
struct VersionHeader {
  std::uint32_t nbuckets;  // power of two, >= 2 * count
  std::uint32_t count;
  std::uint64_t bytes;  // block size
};
struct EntryHeader {
  std::uint64_t hash;
  std::uint32_t key_len;
  std::uint32_t value_len;
};

std::uint32_t bucket_count(std::size_t n) noexcept {
  std::uint32_t b = 8;
  while (b < 2 * n) b <<= 1;
  return b;
}

std::size_t entry_bytes(const MapEntryIn& e) noexcept {
  return align8(sizeof(EntryHeader) + e.key.size() + e.value.size());
}

std::uint64_t key_hash(std::string_view key) noexcept { return hash_bytes(key, 0x6d6170); }

}  // namespace

MapStore* MapStore::create(void* mem, std::size_t bytes) noexcept {
  if (mem == nullptr || (reinterpret_cast<std::uintptr_t>(mem) & 7) != 0) return nullptr;
  std::size_t head = align8(sizeof(MapStore));
  if (bytes < head + Arena::kMinRegion) return nullptr;
  auto* s = new (mem) MapStore();
  s->arena_off_ = static_cast<std::uint32_t>(head);
  if (Arena::create(static_cast<char*>(mem) + head, bytes - head) == nullptr) return nullptr;
  return s;
}

std::size_t MapStore::version_bytes(const MapEntryIn* entries, std::size_t n) noexcept {
  std::size_t total = align8(sizeof(VersionHeader)) + align8(sizeof(Offset) * bucket_count(n));
  for (std::size_t i = 0; i < n; ++i) total += entry_bytes(entries[i]);
  return total;
}

MapStore::Build MapStore::build(const MapEntryIn* entries, std::size_t n, Offset* version, std::size_t* dup) noexcept {
  *version = Arena::kNull;
  if (n > 0x3FFFFFFF) return Build::OutOfMemory;
  const std::size_t total = version_bytes(entries, n);
  if (total > arena().capacity()) return Build::OutOfMemory;
  Offset v = arena().allocate(total);
  if (v == Arena::kNull) return Build::OutOfMemory;
  char* base = static_cast<char*>(arena().ptr(v));
  auto* h = reinterpret_cast<VersionHeader*>(base);
  h->nbuckets = bucket_count(n);
  h->count = 0;
  h->bytes = total;
  auto* buckets = reinterpret_cast<Offset*>(base + align8(sizeof(VersionHeader)));
  std::memset(buckets, 0, sizeof(Offset) * h->nbuckets);
  std::size_t pos = align8(sizeof(VersionHeader)) + align8(sizeof(Offset) * h->nbuckets);
  const std::uint32_t mask = h->nbuckets - 1;
  for (std::size_t i = 0; i < n; ++i) {
    const MapEntryIn& e = entries[i];
    std::uint64_t hash = key_hash(e.key);
    std::uint32_t b = static_cast<std::uint32_t>(hash) & mask;
    for (;; b = (b + 1) & mask) {
      if (buckets[b] == 0) break;
      auto* other = reinterpret_cast<const EntryHeader*>(base + buckets[b]);
      if (other->hash == hash && other->key_len == e.key.size() &&
          (e.key.empty() || std::memcmp(other + 1, e.key.data(), e.key.size()) == 0)) {
        arena().free(v);
        *dup = i;
        return Build::DuplicateKey;
      }
    }
    auto* eh = reinterpret_cast<EntryHeader*>(base + pos);
    eh->hash = hash;
    eh->key_len = static_cast<std::uint32_t>(e.key.size());
    eh->value_len = static_cast<std::uint32_t>(e.value.size());
    char* data = reinterpret_cast<char*>(eh + 1);
    if (!e.key.empty()) std::memcpy(data, e.key.data(), e.key.size());
    if (!e.value.empty()) std::memcpy(data + e.key.size(), e.value.data(), e.value.size());
    buckets[b] = static_cast<Offset>(pos);
    pos += entry_bytes(e);
    ++h->count;
  }
  *version = v;
  return Build::Ok;
}

void MapStore::free_version(Offset version) noexcept { arena().free(version); }

bool MapStore::install(std::uint32_t db, std::string_view name, Offset version, Offset* old) noexcept {
  *old = Arena::kNull;
  if (name.size() > kMaxName) return false;
  int s = find(db, name);
  if (s == kNoSlot) {
    for (std::uint32_t i = 0; i < kMaxMaps; ++i) {
      if (!slots_[i].used) {
        s = static_cast<int>(i);
        break;
      }
    }
    if (s == kNoSlot) return false;
    Slot& sl = slots_[s];
    sl.db = db;
    sl.name_len = static_cast<std::uint8_t>(name.size());
    if (!name.empty()) std::memcpy(sl.name, name.data(), name.size());
    sl.name[name.size()] = '\0';
    sl.hits.store(0, std::memory_order_relaxed);
    sl.misses.store(0, std::memory_order_relaxed);
    sl.version = Arena::kNull;
    sl.used = 1;
  }
  *old = slots_[s].version;
  slots_[s].version = version;
  return true;
}

bool MapStore::remove(std::uint32_t db, std::string_view name, Offset* old) noexcept {
  *old = Arena::kNull;
  int s = find(db, name);
  if (s == kNoSlot) return false;
  *old = slots_[s].version;
  slots_[s].used = 0;
  slots_[s].version = Arena::kNull;
  return true;
}

std::uint32_t MapStore::remove_all(std::uint32_t db) noexcept {
  std::uint32_t n = 0;
  for (auto& sl : slots_) {
    if (!sl.used || (db != 0 && sl.db != db)) continue;
    if (sl.version != Arena::kNull) arena().free(sl.version);
    sl.version = Arena::kNull;
    sl.used = 0;
    ++n;
  }
  return n;
}

int MapStore::find(std::uint32_t db, std::string_view name) const noexcept {
  for (std::uint32_t i = 0; i < kMaxMaps; ++i) {
    const Slot& sl = slots_[i];
    if (sl.used && sl.db == db && sl.name_len == name.size() &&
        (name.empty() || std::memcmp(sl.name, name.data(), name.size()) == 0))
      return static_cast<int>(i);
  }
  return kNoSlot;
}

std::string_view MapStore::lookup(int slot, std::string_view key) const noexcept {
  const std::string_view v = peek(slot, key);
  count(slot, v.data() != nullptr);
  return v;
}

void MapStore::count(int slot, bool hit) const noexcept {
  const Slot& sl = slots_[slot];
  (hit ? sl.hits : sl.misses).fetch_add(1, std::memory_order_relaxed);
}

std::string_view MapStore::peek(int slot, std::string_view key) const noexcept {
  const Slot& sl = slots_[slot];
  if (sl.version != Arena::kNull) {
    const char* base = static_cast<const char*>(arena().ptr(sl.version));
    auto* h = reinterpret_cast<const VersionHeader*>(base);
    auto* buckets = reinterpret_cast<const Offset*>(base + align8(sizeof(VersionHeader)));
    const std::uint64_t hash = key_hash(key);
    const std::uint32_t mask = h->nbuckets - 1;
    for (std::uint32_t b = static_cast<std::uint32_t>(hash) & mask; buckets[b] != 0; b = (b + 1) & mask) {
      auto* e = reinterpret_cast<const EntryHeader*>(base + buckets[b]);
      const char* data = reinterpret_cast<const char*>(e + 1);
      if (e->hash == hash && e->key_len == key.size() &&
          (key.empty() || std::memcmp(data, key.data(), key.size()) == 0))
        return {data + e->key_len, e->value_len};
    }
  }
  return {};
}

MapSlotStats MapStore::slot_stats(int slot) const noexcept {
  const Slot& sl = slots_[slot];
  MapSlotStats st;
  if (sl.version != Arena::kNull) {
    auto* h = static_cast<const VersionHeader*>(arena().ptr(sl.version));
    st.entries = h->count;
    st.bytes = arena().usable_size(sl.version) + Arena::kHeader;  // the whole block, unsplit remainder included
  }
  st.hits = sl.hits.load(std::memory_order_relaxed);
  st.misses = sl.misses.load(std::memory_order_relaxed);
  return st;
}

std::string_view MapStore::slot_name(int slot) const noexcept { return {slots_[slot].name, slots_[slot].name_len}; }
std::uint32_t MapStore::slot_db(int slot) const noexcept { return slots_[slot].db; }
bool MapStore::slot_used(int slot) const noexcept { return slots_[slot].used != 0; }

void MapStore::reset_counters() noexcept {
  for (auto& sl : slots_) {
    sl.hits.store(0, std::memory_order_relaxed);
    sl.misses.store(0, std::memory_order_relaxed);
  }
}

bool MapStore::check() const noexcept {
  if (!arena().check()) return false;
  std::size_t live = 0;
  for (const auto& sl : slots_) {
    if (!sl.used) {
      if (sl.version != Arena::kNull) return false;
      continue;
    }
    if (sl.version == Arena::kNull) continue;
    ++live;
    const char* base = static_cast<const char*>(arena().ptr(sl.version));
    auto* h = reinterpret_cast<const VersionHeader*>(base);
    auto* buckets = reinterpret_cast<const Offset*>(base + align8(sizeof(VersionHeader)));
    std::uint32_t filled = 0;
    for (std::uint32_t b = 0; b < h->nbuckets; ++b) filled += buckets[b] != 0;
    if (filled != h->count || h->nbuckets < 2 * h->count) return false;
  }
  return live <= arena().live_allocations();
}

}  // namespace agentcache::core

#include "agentcache/core/pure_check.hpp"
