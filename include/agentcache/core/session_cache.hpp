// Conversation-memory cache: sessions of the newest N turns, in a fixed region.
//
// A SessionCache is laid out in one contiguous region (PostgreSQL shared
// memory in production, a std::vector in tests) as `partitions` independent
// SessionTables. Each table owns a hash table of sessions, an LRU list, its
// own Arena for session and turn records, and an array of generation
// counters. The caller guards each table with its own lock (glue: one LWLock
// per partition): const member functions and touch() need a shared lock,
// everything else an exclusive one.
//
// Invariant (maintained by the glue's commit protocol): a cached session holds
// exactly the newest min(total, ring capacity) committed turns of its
// session, ordered by seq.
#pragma once
#include "agentcache/core/pure.hpp"
#include "agentcache/core/arena.hpp"
#include "agentcache/core/text.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace agentcache::core {

// One turn as handed to the cache.
struct TurnData {
  std::int64_t seq = 0;
  std::int64_t created_at = 0;  // PostgreSQL TimestampTz (microseconds since 2000-01-01)
  Role role = Role::User;
  std::string_view content;
  bool has_meta = false;
  std::string_view meta;  // opaque bytes (the glue stores a jsonb datum)
};

// A turn's token count not computed yet (TurnRecord::tokens).
constexpr std::uint32_t kTokensUnknown = 0xFFFFFFFFu;

// A turn as stored: header followed by content bytes, then meta bytes.
struct TurnRecord {
  std::int64_t seq;
  std::int64_t created_at;
  std::uint32_t content_len;
  std::uint32_t chars;  // code points of content
  std::uint32_t meta_len;
  std::uint8_t role;
  std::uint8_t has_meta;
  // Content tokens per encoding (tok::Encoding), kTokensUnknown until first
  // needed: computed once by a reader and stored with an atomic store (under
  // a shared lock; every reader computes the same value).
  std::uint32_t tokens[2];
  std::uint32_t token_count(int encoding) const noexcept {
    return __atomic_load_n(&tokens[encoding], __ATOMIC_RELAXED);
  }
  void set_token_count(int encoding, std::uint32_t n) const noexcept {
    __atomic_store_n(const_cast<std::uint32_t*>(&tokens[encoding]), n, __ATOMIC_RELAXED);
  }
  const char* content() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  const char* meta() const noexcept { return content() + content_len; }
  std::string_view content_view() const noexcept { return {content(), content_len}; }
  std::string_view meta_view() const noexcept { return {meta(), meta_len}; }
};

struct SessionStats {
  std::uint64_t sessions = 0;
  std::uint64_t turns = 0;
  std::uint64_t used_bytes = 0;     // arena bytes in live blocks
  std::uint64_t content_bytes = 0;  // sum of content_len of cached turns
  std::uint64_t meta_bytes = 0;     // sum of meta_len of cached turns
  std::uint64_t capacity = 0;       // arena bytes available
  std::uint64_t hits = 0, misses = 0, evictions = 0, invalidations = 0;
};

class SessionTable {
 public:
  using Offset = Arena::Offset;
  static constexpr int kGenStripes = 64;

  struct Session;  // defined in session_cache.cpp

  // Bytes a table needs for `arena_bytes` of arena (header + buckets + arena).
  static std::size_t footprint(std::size_t arena_bytes, std::uint32_t ring_capacity) noexcept;
  static SessionTable* create(void* mem, std::size_t bytes, std::uint32_t ring_capacity) noexcept;

  // --- shared lock ---------------------------------------------------------
  Offset find(std::uint32_t db, std::uint64_t hash, std::string_view key) const noexcept;
  // Second-chance mark for the LRU (atomic; allowed under a shared lock).
  void touch(Offset s) const noexcept;
  std::uint32_t turn_count(Offset s) const noexcept;
  // i-th cached turn of a session, 0 = oldest.
  const TurnRecord& turn(Offset s, std::uint32_t i) const noexcept;
  // The session's first system turn (by seq), kept apart from the ring (it
  // may be older than every cached turn): *state says whether it is known.
  enum class System : std::uint8_t { Unknown = 0, None = 1, Known = 2 };
  const TurnRecord* system_turn(Offset s, System* state) const noexcept;
  std::uint64_t generation(std::uint64_t hash) const noexcept;
  std::uint32_t ring_capacity() const noexcept { return ring_capacity_; }

  // --- exclusive lock ------------------------------------------------------
  enum class Publish { Published, AlreadyCached, Stale, NoRoom };
  // Cache a session loaded from the table (turns oldest first, at most
  // ring_capacity) unless the key's generation moved since `seen_gen`.
  // `system`: the session's first system turn when `sys` is Known (None: it
  // has none; Unknown: not looked up).
  Publish publish(std::uint32_t db, std::uint64_t hash, std::string_view key, const TurnData* turns, std::uint32_t n,
                  std::uint64_t seen_gen, const TurnData* system = nullptr, System sys = System::Unknown) noexcept;
  // A committed turn: bumps the generation; if the session is cached, inserts
  // the turn in seq order (an existing seq is left as is; a turn older than a
  // full ring's oldest is ignored) and, for a system turn, keeps it as the
  // session's first system turn when it is (an Unknown one stays unknown).
  // If it cannot be stored the session is dropped. Returns true if the
  // session is (still) cached.
  bool apply_turn(std::uint32_t db, std::uint64_t hash, std::string_view key, const TurnData& t) noexcept;
  // A committed change of unknown shape: bumps the generation and drops the
  // session. Returns true if it was cached.
  bool invalidate(std::uint32_t db, std::uint64_t hash, std::string_view key) noexcept;
  // Drops the session without bumping the generation (end_session).
  bool drop(std::uint32_t db, std::uint64_t hash, std::string_view key) noexcept;
  // Every session of a database (db == 0: all): dropped, every generation bumped.
  std::uint64_t invalidate_all(std::uint32_t db) noexcept;

  // --- statistics (atomic counters; any lock) ------------------------------
  void count_hit() noexcept { hits_.fetch_add(1, std::memory_order_relaxed); }
  void count_miss() noexcept { misses_.fetch_add(1, std::memory_order_relaxed); }
  void reset_counters() noexcept;
  void add_stats(SessionStats& st) const noexcept;  // shared lock

  // Sessions in LRU order, most recent first (tests / debugging; shared lock).
  template <class F>
  void for_each_lru(F f) const {
    for (Offset s = lru_head_; s != Arena::kNull; s = lru_next(s)) f(s);
  }
  std::string_view key_of(Offset s) const noexcept;
  const Arena& arena() const noexcept { return *arena_ptr(); }
  bool check() const noexcept;  // invariants (tests)

 private:
  SessionTable() = default;
  Arena* arena_ptr() noexcept;
  const Arena* arena_ptr() const noexcept;
  Session* sess(Offset s) noexcept;
  const Session* sess(Offset s) const noexcept;
  Offset* bucket(std::uint64_t hash) noexcept;
  const Offset* bucket(std::uint64_t hash) const noexcept;
  Offset lru_next(Offset s) const noexcept;
  Offset allocate(std::size_t n, Offset protect) noexcept;  // evicts LRU sessions as needed
  bool evict_one(Offset protect) noexcept;
  void unlink_and_free(Offset s) noexcept;
  void lru_unlink(Offset s) noexcept;
  void lru_push_front(Offset s) noexcept;
  void bump(std::uint64_t hash) noexcept { ++gens_[(hash >> 20) % kGenStripes]; }
  Offset store_turn(const TurnData& t, Offset protect) noexcept;
  void note_system(Offset s, const TurnData& t) noexcept;
  void free_system(Offset s) noexcept;
  void free_turns(Offset s) noexcept;

  std::uint32_t ring_capacity_ = 0;
  std::uint32_t nbuckets_ = 0;
  std::uint32_t buckets_off_ = 0;  // from this
  std::uint32_t arena_off_ = 0;    // from this
  Offset lru_head_ = Arena::kNull, lru_tail_ = Arena::kNull;
  std::uint64_t sessions_ = 0, turns_ = 0, content_bytes_ = 0, meta_bytes_ = 0;
  std::uint64_t gens_[kGenStripes] = {};
  std::atomic<std::uint64_t> hits_{0}, misses_{0}, evictions_{0}, invalidations_{0};
};

// The whole tier: `partitions` tables side by side in one region.
class SessionCache {
 public:
  static constexpr std::uint32_t kMaxPartitions = 64;
  // Region bytes for a cache whose tables together get `total_bytes`.
  static std::size_t footprint(std::size_t total_bytes, std::uint32_t partitions, std::uint32_t ring_capacity) noexcept;
  static SessionCache* create(void* mem, std::size_t total_bytes, std::uint32_t partitions,
                              std::uint32_t ring_capacity) noexcept;

  std::uint32_t partitions() const noexcept { return partitions_; }
  std::uint32_t partition_of(std::uint64_t hash) const noexcept {
    return static_cast<std::uint32_t>((hash >> 40) % partitions_);
  }
  SessionTable& table(std::uint32_t p) noexcept;
  const SessionTable& table(std::uint32_t p) const noexcept;
  std::size_t region_bytes() const noexcept { return region_bytes_; }

 private:
  SessionCache() = default;
  std::uint32_t partitions_ = 0;
  std::uint64_t region_bytes_ = 0;
  std::uint64_t table_off_[kMaxPartitions] = {};
};

}  // namespace agentcache::core
