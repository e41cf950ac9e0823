// Conversation-memory cache core; see include/agentcache/core/session_cache.hpp.
#include "agentcache/core/session_cache.hpp"

#include <cstring>
#include <new>

namespace agentcache::core {

namespace {
constexpr std::size_t align8(std::size_t n) noexcept { return (n + 7) & ~std::size_t(7); }
constexpr std::size_t kBytesPerBucket = 512;
}  // namespace

struct SessionTable::Session {
  std::uint64_t hash;
  std::uint32_t db;
  Offset next;  // hash-bucket chain
  Offset lru_prev;
  Offset lru_next;
  std::uint16_t key_len;
  std::uint16_t count;  // turns cached
  std::uint16_t start;  // ring index of the oldest turn
  std::atomic<std::uint8_t> referenced;
  std::uint8_t system_state;  // SessionTable::System
  Offset system;              // the first system turn's record when Known
  std::uint32_t pad;
  // followed by Offset ring[ring_capacity] and char key[key_len]
  Offset* ring() noexcept { return reinterpret_cast<Offset*>(this + 1); }
  const Offset* ring() const noexcept { return reinterpret_cast<const Offset*>(this + 1); }
};
static_assert(sizeof(SessionTable::Session) == 40, "session header layout");
static_assert(std::atomic<std::uint8_t>::is_always_lock_free, "atomics in shared memory must be lock-free");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "atomics in shared memory must be lock-free");
static_assert(sizeof(TurnRecord) == 40, "turn header layout");

// ---------------------------------------------------------------- layout

std::size_t SessionTable::footprint(std::size_t arena_bytes, std::uint32_t) noexcept {
  std::size_t nb = arena_bytes / kBytesPerBucket;
  if (nb < 64) nb = 64;
  return align8(sizeof(SessionTable)) + align8(nb * sizeof(Offset)) + align8(arena_bytes);
}

SessionTable* SessionTable::create(void* mem, std::size_t bytes, std::uint32_t ring_capacity) noexcept {
  if (mem == nullptr || (reinterpret_cast<std::uintptr_t>(mem) & 7) != 0 || ring_capacity == 0 ||
      ring_capacity > 0xFFFF)
    return nullptr;
  std::size_t head = align8(sizeof(SessionTable));
  if (bytes < head + Arena::kMinRegion + 64 * sizeof(Offset)) return nullptr;
  std::size_t nb = (bytes - head) / kBytesPerBucket;
  if (nb < 64) nb = 64;
  std::size_t buckets_bytes = align8(nb * sizeof(Offset));
  if (bytes < head + buckets_bytes + Arena::kMinRegion) return nullptr;
  std::size_t arena_bytes = (bytes - head - buckets_bytes) & ~std::size_t(7);
  if (arena_bytes > Arena::kMaxRegion) arena_bytes = Arena::kMaxRegion;

  auto* t = new (mem) SessionTable();
  t->ring_capacity_ = ring_capacity;
  t->nbuckets_ = static_cast<std::uint32_t>(nb);
  t->buckets_off_ = static_cast<std::uint32_t>(head);
  t->arena_off_ = static_cast<std::uint32_t>(head + buckets_bytes);
  std::memset(static_cast<char*>(mem) + head, 0, buckets_bytes);
  if (Arena::create(static_cast<char*>(mem) + t->arena_off_, arena_bytes) == nullptr) return nullptr;
  return t;
}

Arena* SessionTable::arena_ptr() noexcept {
  return reinterpret_cast<Arena*>(reinterpret_cast<char*>(this) + arena_off_);
}
const Arena* SessionTable::arena_ptr() const noexcept {
  return reinterpret_cast<const Arena*>(reinterpret_cast<const char*>(this) + arena_off_);
}
SessionTable::Session* SessionTable::sess(Offset s) noexcept { return arena_ptr()->as<Session>(s); }
const SessionTable::Session* SessionTable::sess(Offset s) const noexcept { return arena_ptr()->as<Session>(s); }
SessionTable::Offset* SessionTable::bucket(std::uint64_t hash) noexcept {
  return reinterpret_cast<Offset*>(reinterpret_cast<char*>(this) + buckets_off_) + (hash % nbuckets_);
}
const SessionTable::Offset* SessionTable::bucket(std::uint64_t hash) const noexcept {
  return reinterpret_cast<const Offset*>(reinterpret_cast<const char*>(this) + buckets_off_) + (hash % nbuckets_);
}
SessionTable::Offset SessionTable::lru_next(Offset s) const noexcept { return sess(s)->lru_next; }

std::string_view SessionTable::key_of(Offset s) const noexcept {
  const Session* p = sess(s);
  return {reinterpret_cast<const char*>(p->ring() + ring_capacity_), p->key_len};
}

// ---------------------------------------------------------------- reads

SessionTable::Offset SessionTable::find(std::uint32_t db, std::uint64_t hash, std::string_view key) const noexcept {
  for (Offset s = *bucket(hash); s != Arena::kNull; s = sess(s)->next) {
    const Session* p = sess(s);
    if (p->hash == hash && p->db == db && p->key_len == key.size() && key_of(s) == key) return s;
  }
  return Arena::kNull;
}

void SessionTable::touch(Offset s) const noexcept {
  // The flag is the only field a shared-lock holder writes; relaxed is enough
  // because eviction runs under the exclusive lock, which orders it.
  auto& flag = const_cast<Session*>(sess(s))->referenced;
  if (flag.load(std::memory_order_relaxed) == 0) flag.store(1, std::memory_order_relaxed);
}

std::uint32_t SessionTable::turn_count(Offset s) const noexcept { return sess(s)->count; }

const TurnRecord& SessionTable::turn(Offset s, std::uint32_t i) const noexcept {
  const Session* p = sess(s);
  return *arena_ptr()->as<TurnRecord>(p->ring()[(p->start + i) % ring_capacity_]);
}

const TurnRecord* SessionTable::system_turn(Offset s, System* state) const noexcept {
  const Session* p = sess(s);
  *state = static_cast<System>(p->system_state);
  return *state == System::Known ? arena_ptr()->as<TurnRecord>(p->system) : nullptr;
}

std::uint64_t SessionTable::generation(std::uint64_t hash) const noexcept { return gens_[(hash >> 20) % kGenStripes]; }

// ---------------------------------------------------------------- LRU

void SessionTable::lru_unlink(Offset s) noexcept {
  Session* p = sess(s);
  if (p->lru_prev != Arena::kNull)
    sess(p->lru_prev)->lru_next = p->lru_next;
  else
    lru_head_ = p->lru_next;
  if (p->lru_next != Arena::kNull)
    sess(p->lru_next)->lru_prev = p->lru_prev;
  else
    lru_tail_ = p->lru_prev;
  p->lru_prev = p->lru_next = Arena::kNull;
}

void SessionTable::lru_push_front(Offset s) noexcept {
  Session* p = sess(s);
  p->lru_prev = Arena::kNull;
  p->lru_next = lru_head_;
  if (lru_head_ != Arena::kNull)
    sess(lru_head_)->lru_prev = s;
  else
    lru_tail_ = s;
  lru_head_ = s;
}

void SessionTable::free_turns(Offset s) noexcept {
  Session* p = sess(s);
  for (std::uint32_t i = 0; i < p->count; ++i) {
    Offset r = p->ring()[(p->start + i) % ring_capacity_];
    content_bytes_ -= arena_ptr()->as<TurnRecord>(r)->content_len;
    meta_bytes_ -= arena_ptr()->as<TurnRecord>(r)->meta_len;
    arena_ptr()->free(r);
  }
  turns_ -= p->count;
  p->count = 0;
  p->start = 0;
}

void SessionTable::free_system(Offset s) noexcept {
  Session* p = sess(s);
  if (p->system_state == static_cast<std::uint8_t>(System::Known)) arena_ptr()->free(p->system);
  p->system = Arena::kNull;
  p->system_state = static_cast<std::uint8_t>(System::Unknown);
}

// A system turn of a cached session: the first one (by seq) is kept apart.
void SessionTable::note_system(Offset s, const TurnData& t) noexcept {
  Session* p = sess(s);
  const auto state = static_cast<System>(p->system_state);
  if (state == System::Unknown) return;
  if (state == System::Known && arena_ptr()->as<TurnRecord>(p->system)->seq <= t.seq) return;
  const Offset r = store_turn(t, s);
  p = sess(s);
  if (r != Arena::kNull) --turns_;  // not a ring turn
  if (r != Arena::kNull) {
    content_bytes_ -= arena_ptr()->as<TurnRecord>(r)->content_len;
    meta_bytes_ -= arena_ptr()->as<TurnRecord>(r)->meta_len;
  }
  free_system(s);
  p = sess(s);
  if (r != Arena::kNull) {
    p->system = r;
    p->system_state = static_cast<std::uint8_t>(System::Known);
  }
}

void SessionTable::unlink_and_free(Offset s) noexcept {
  Session* p = sess(s);
  Offset* link = bucket(p->hash);
  while (*link != s) link = &sess(*link)->next;
  *link = p->next;
  lru_unlink(s);
  free_turns(s);
  free_system(s);
  p->~Session();
  arena_ptr()->free(s);
  --sessions_;
}

// Evicts the least recently used session other than `protect`, giving
// sessions read since they were last placed a second chance.
bool SessionTable::evict_one(Offset protect) noexcept {
  std::uint64_t budget = 2 * sessions_ + 2;
  Offset s = lru_tail_;
  while (s != Arena::kNull && budget-- > 0) {
    Session* p = sess(s);
    Offset prev = p->lru_prev;
    if (s == protect) {
      s = prev;
      continue;
    }
    if (p->referenced.load(std::memory_order_relaxed) != 0) {
      p->referenced.store(0, std::memory_order_relaxed);
      lru_unlink(s);
      lru_push_front(s);
      s = prev != Arena::kNull ? prev : lru_tail_;
      continue;
    }
    unlink_and_free(s);
    evictions_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  return false;
}

SessionTable::Offset SessionTable::allocate(std::size_t n, Offset protect) noexcept {
  // A block that could not fit in the empty arena must not flush every other
  // session on its way to failing.
  if (n + Arena::kHeader > arena_ptr()->capacity()) return Arena::kNull;
  for (;;) {
    Offset off = arena_ptr()->allocate(n);
    if (off != Arena::kNull) return off;
    if (!evict_one(protect)) return Arena::kNull;
  }
}

SessionTable::Offset SessionTable::store_turn(const TurnData& t, Offset protect) noexcept {
  std::size_t meta_len = t.has_meta ? t.meta.size() : 0;
  std::size_t need = sizeof(TurnRecord) + t.content.size() + meta_len;
  if (t.content.size() > 0xFFFFFFFFu || meta_len > 0xFFFFFFFFu || need > Arena::kMaxRegion) return Arena::kNull;
  Offset r = allocate(need, protect);
  if (r == Arena::kNull) return r;
  auto* rec = arena_ptr()->as<TurnRecord>(r);
  rec->seq = t.seq;
  rec->created_at = t.created_at;
  rec->content_len = static_cast<std::uint32_t>(t.content.size());
  rec->chars = utf8_chars(t.content);
  rec->meta_len = static_cast<std::uint32_t>(meta_len);
  rec->role = static_cast<std::uint8_t>(t.role);
  rec->has_meta = t.has_meta ? 1 : 0;
  rec->tokens[0] = rec->tokens[1] = kTokensUnknown;
  if (!t.content.empty()) std::memcpy(const_cast<char*>(rec->content()), t.content.data(), t.content.size());
  if (meta_len) std::memcpy(const_cast<char*>(rec->meta()), t.meta.data(), meta_len);
  content_bytes_ += rec->content_len;
  meta_bytes_ += rec->meta_len;
  ++turns_;
  return r;
}

// ---------------------------------------------------------------- writes

SessionTable::Publish SessionTable::publish(std::uint32_t db, std::uint64_t hash, std::string_view key,
                                            const TurnData* turns, std::uint32_t n, std::uint64_t seen_gen,
                                            const TurnData* system, System sys) noexcept {
  if (generation(hash) != seen_gen) return Publish::Stale;
  if (find(db, hash, key) != Arena::kNull) return Publish::AlreadyCached;
  if (key.size() > 0xFFFF) return Publish::NoRoom;
  if (n > ring_capacity_) {
    turns += n - ring_capacity_;
    n = ring_capacity_;
  }
  Offset s = allocate(sizeof(Session) + sizeof(Offset) * ring_capacity_ + key.size(), Arena::kNull);
  if (s == Arena::kNull) return Publish::NoRoom;
  auto* p = new (arena_ptr()->ptr(s)) Session{};
  p->hash = hash;
  p->db = db;
  p->key_len = static_cast<std::uint16_t>(key.size());
  p->referenced.store(0, std::memory_order_relaxed);
  p->system = Arena::kNull;
  p->system_state = static_cast<std::uint8_t>(System::Unknown);
  std::memcpy(reinterpret_cast<char*>(p->ring() + ring_capacity_), key.data(), key.size());
  Offset* head = bucket(hash);
  p->next = *head;
  *head = s;
  lru_push_front(s);
  ++sessions_;
  for (std::uint32_t i = 0; i < n; ++i) {
    Offset r = store_turn(turns[i], s);
    if (r == Arena::kNull) {
      unlink_and_free(s);
      return Publish::NoRoom;
    }
    p = sess(s);
    p->ring()[p->count] = r;
    ++p->count;
  }
  if (sys == System::None) {
    sess(s)->system_state = static_cast<std::uint8_t>(System::None);
  } else if (sys == System::Known && system != nullptr) {
    sess(s)->system_state = static_cast<std::uint8_t>(System::None);  // note_system stores it (or leaves Unknown)
    note_system(s, *system);
    if (sess(s)->system_state == static_cast<std::uint8_t>(System::None))
      sess(s)->system_state = static_cast<std::uint8_t>(System::Unknown);
  }
  return Publish::Published;
}

bool SessionTable::apply_turn(std::uint32_t db, std::uint64_t hash, std::string_view key, const TurnData& t) noexcept {
  bump(hash);
  Offset s = find(db, hash, key);
  if (s == Arena::kNull) return false;
  if (t.role == Role::System) note_system(s, t);
  Session* p = sess(s);
  const std::uint32_t cap = ring_capacity_;
  std::uint32_t idx = p->count;
  while (idx > 0 && turn(s, idx - 1).seq > t.seq) --idx;
  if (idx > 0 && turn(s, idx - 1).seq == t.seq) return true;  // already there (loaded after commit)
  if (p->count == cap && idx == 0) return true;               // older than every cached turn
  if (p->count == cap) {  // the oldest leaves first, so the new turn may reuse its space
    Offset old = p->ring()[p->start];
    content_bytes_ -= arena_ptr()->as<TurnRecord>(old)->content_len;
    meta_bytes_ -= arena_ptr()->as<TurnRecord>(old)->meta_len;
    --turns_;
    arena_ptr()->free(old);
    p->start = static_cast<std::uint16_t>((p->start + 1) % cap);
    --p->count;
    --idx;
  }
  Offset r = store_turn(t, s);
  if (r == Arena::kNull) {
    unlink_and_free(s);
    return false;
  }
  p = sess(s);
  for (std::uint32_t j = p->count; j > idx; --j) p->ring()[(p->start + j) % cap] = p->ring()[(p->start + j - 1) % cap];
  p->ring()[(p->start + idx) % cap] = r;
  ++p->count;
  lru_unlink(s);
  lru_push_front(s);
  return true;
}

bool SessionTable::invalidate(std::uint32_t db, std::uint64_t hash, std::string_view key) noexcept {
  bump(hash);
  if (!drop(db, hash, key)) return false;
  invalidations_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool SessionTable::drop(std::uint32_t db, std::uint64_t hash, std::string_view key) noexcept {
  Offset s = find(db, hash, key);
  if (s == Arena::kNull) return false;
  unlink_and_free(s);
  return true;
}

std::uint64_t SessionTable::invalidate_all(std::uint32_t db) noexcept {
  for (auto& g : gens_) ++g;
  std::uint64_t n = 0;
  Offset s = lru_head_;
  while (s != Arena::kNull) {
    Offset next = sess(s)->lru_next;
    if (db == 0 || sess(s)->db == db) {
      unlink_and_free(s);
      ++n;
    }
    s = next;
  }
  invalidations_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

// ---------------------------------------------------------------- stats

void SessionTable::reset_counters() noexcept {
  hits_.store(0, std::memory_order_relaxed);
  misses_.store(0, std::memory_order_relaxed);
  evictions_.store(0, std::memory_order_relaxed);
  invalidations_.store(0, std::memory_order_relaxed);
}

void SessionTable::add_stats(SessionStats& st) const noexcept {
  st.sessions += sessions_;
  st.turns += turns_;
  st.used_bytes += arena_ptr()->used_bytes();
  st.content_bytes += content_bytes_;
  st.meta_bytes += meta_bytes_;
  st.capacity += arena_ptr()->capacity();
  st.hits += hits_.load(std::memory_order_relaxed);
  st.misses += misses_.load(std::memory_order_relaxed);
  st.evictions += evictions_.load(std::memory_order_relaxed);
  st.invalidations += invalidations_.load(std::memory_order_relaxed);
}

bool SessionTable::check() const noexcept {
  if (!arena_ptr()->check()) return false;
  std::uint64_t n = 0, turns = 0, content = 0, meta = 0;
  Offset prev = Arena::kNull;
  for (Offset s = lru_head_; s != Arena::kNull; s = sess(s)->lru_next) {
    const Session* p = sess(s);
    if (p->lru_prev != prev) return false;
    if (p->count > ring_capacity_) return false;
    if (find(p->db, p->hash, key_of(s)) != s) return false;
    for (std::uint32_t i = 0; i < p->count; ++i) {
      if (i > 0 && turn(s, i - 1).seq >= turn(s, i).seq) return false;
      content += turn(s, i).content_len;
      meta += turn(s, i).meta_len;
    }
    turns += p->count;
    ++n;
    prev = s;
  }
  return prev == lru_tail_ && n == sessions_ && turns == turns_ && content == content_bytes_ && meta == meta_bytes_;
}

// ---------------------------------------------------------------- cache

std::size_t SessionCache::footprint(std::size_t total_bytes, std::uint32_t, std::uint32_t) noexcept {
  return align8(sizeof(SessionCache)) + align8(total_bytes);
}

SessionCache* SessionCache::create(void* mem, std::size_t total_bytes, std::uint32_t partitions,
                                   std::uint32_t ring_capacity) noexcept {
  if (mem == nullptr || partitions == 0 || partitions > kMaxPartitions) return nullptr;
  auto* c = new (mem) SessionCache();
  c->partitions_ = partitions;
  c->region_bytes_ = footprint(total_bytes, partitions, ring_capacity);
  std::size_t per = (align8(total_bytes) / partitions) & ~std::size_t(7);
  std::size_t off = align8(sizeof(SessionCache));
  for (std::uint32_t i = 0; i < partitions; ++i) {
    c->table_off_[i] = off;
    if (SessionTable::create(static_cast<char*>(mem) + off, per, ring_capacity) == nullptr) return nullptr;
    off += per;
  }
  return c;
}

SessionTable& SessionCache::table(std::uint32_t p) noexcept {
  return *reinterpret_cast<SessionTable*>(reinterpret_cast<char*>(this) + table_off_[p]);
}
const SessionTable& SessionCache::table(std::uint32_t p) const noexcept {
  return *reinterpret_cast<const SessionTable*>(reinterpret_cast<const char*>(this) + table_off_[p]);
}

}  // namespace agentcache::core

#include "agentcache/core/pure_check.hpp"
