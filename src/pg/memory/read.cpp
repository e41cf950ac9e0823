// The conversation tier's read path (see read.hpp and the protocol in
// tier.cpp). Shared memory is read under a partition's shared LWLock into a
// backend-local scratch buffer, so that nothing is allocated (nothing can
// raise) while the lock is held.
#include "pg/memory/read.hpp"

#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/spi.hpp"
#include "pg/memory/pending.hpp"
#include "pg/memory/table.hpp"
#include "agentcache/core/jsonb_writer.hpp"

#include <cstring>

using agentcache::core::Role;
using agentcache::core::SessionTable;
using agentcache::core::TurnData;
using agentcache::core::TurnRecord;
using agentcache::pg::LWLockGuard;

namespace agentcache::memory::read {

namespace {

// ------------------------------------------------------------------ the table

// One row of the read query into `t` (palloc'd in the SPI caller's context).
void copy_row(uint64 row, LTurn& t) {
  t.seq = pg::spi_int64(row, 1);
  bool isnull = false;
  auto r = core::parse_role(pg::text_view(DatumGetTextPP(pg::spi_value(row, 2, &isnull))));
  t.role = r ? *r : Role::User;
  Datum content = pg::spi_value(row, 3, &isnull);
  std::string_view c = isnull ? std::string_view() : pg::text_view(DatumGetTextPP(content));
  char* cc = static_cast<char*>(SPI_palloc(c.size() + 1));
  std::memcpy(cc, c.data(), c.size());
  cc[c.size()] = '\0';
  t.content = cc;
  t.content_len = static_cast<uint32>(c.size());
  t.chars = core::utf8_chars(c);
  Datum m = pg::spi_value(row, 4, &isnull);
  t.meta = nullptr;
  if (!isnull) {
    Jsonb* jb = DatumGetJsonbP(m);
    t.meta = static_cast<Jsonb*>(SPI_palloc(VARSIZE(jb)));
    std::memcpy(t.meta, jb, VARSIZE(jb));
  }
  t.at = DatumGetTimestampTz(pg::spi_value(row, 5, &isnull));
  tokens_unknown(t);
}

// Newest `limit` turns of a session, oldest first, copied into the caller's
// memory context. latest: read with a fresh snapshot (cache loads) instead of
// the transaction's.
LTurns table_read(std::string_view key, int64 limit, bool latest) {
  return pg::with_spi([&] {
    static pg::Statement q(
        "SELECT seq, role, content, meta, created_at FROM agentcache.turns"
        " WHERE session_id OPERATOR(pg_catalog.=) $1 ORDER BY seq DESC LIMIT $2",
        {TEXTOID, INT8OID});
    Datum values[2] = {pg::text_datum(key), Int64GetDatum(limit)};
    const int rc = latest ? q.exec_latest(values, nullptr, false) : q.exec(values, nullptr, false);
    pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.turns");
    LTurns out;
    const uint64 n = SPI_processed;
    out.n = static_cast<uint32>(n);
    out.v = static_cast<LTurn*>(SPI_palloc(sizeof(LTurn) * (n ? n : 1)));
    for (uint64 i = 0; i < n; ++i) copy_row(i, out.v[n - 1 - i]);  // the query is newest first
    return out;
  });
}

// The session's first system turn (by seq) on the transaction's snapshot
// (latest: a fresh one, for a cache load), copied into the caller's context.
bool table_first_system(std::string_view key, bool latest, LTurn* out) {
  return pg::with_spi([&] {
    static pg::Statement q(
        "SELECT seq, role, content, meta, created_at FROM agentcache.turns"
        " WHERE session_id OPERATOR(pg_catalog.=) $1 AND role OPERATOR(pg_catalog.=) 'system' ORDER BY seq LIMIT 1",
        {TEXTOID});
    Datum values[1] = {pg::text_datum(key)};
    const int rc = latest ? q.exec_latest(values, nullptr, false) : q.exec(values, nullptr, false);
    pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.turns");
    if (SPI_processed == 0) return false;
    copy_row(0, *out);
    return true;
  });
}

// ------------------------------------------------------------------ the scratch buffer

char* g_scratch = nullptr;
std::size_t g_scratch_cap = 0;
constexpr std::size_t kScratchKeep = 8 * 1024 * 1024;

void ensure_scratch(std::size_t need) {
  if (need <= g_scratch_cap) return;
  std::size_t cap = g_scratch_cap ? g_scratch_cap : 64 * 1024;
  while (cap < need) cap *= 2;
  if (g_scratch) pfree(g_scratch);
  g_scratch = nullptr;
  g_scratch_cap = 0;
  g_scratch = static_cast<char*>(MemoryContextAllocHuge(TopMemoryContext, cap));
  g_scratch_cap = cap;
}

constexpr std::size_t align8(std::size_t n) { return (n + 7) & ~std::size_t(7); }

std::size_t copy_size(const TurnRecord& r) {
  return sizeof(TurnRecord) + align8(r.content_len) + (r.has_meta ? align8(r.meta_len) : 0);
}

// ------------------------------------------------------------------ shared memory

enum class Probe { Hit, Miss, NeedScratch };

// Where a session lives in shared memory.
struct Place {
  SessionTable* table;
  LWLock* lock;
  uint32 db;
  uint64 hash;
  std::string_view key;
};

Place place_of(core::SessionCache* cache, std::string_view key) {
  const uint32 db = MyDatabaseId;
  const uint64 hash = core::session_hash(db, key);
  const uint32 p = cache->partition_of(hash);
  return Place{&cache->table(p), partition_lock(p), db, hash, key};
}

// Under the partition's shared lock: copy the newest `want` turns of a cached
// session into the scratch buffer (oldest first). On a miss, *gen is the
// generation a load must publish against; on NeedScratch, *need the bytes.
Probe copy_from_cache(const Place& at, uint32 want, uint32* got, std::size_t* need, uint64* gen) noexcept {
  SessionTable& t = *at.table;
  LWLockGuard g(at.lock, LW_SHARED);
  SessionTable::Offset s = t.find(at.db, at.hash, at.key);
  if (s == core::Arena::kNull) {
    *gen = t.generation(at.hash);
    return Probe::Miss;
  }
  const uint32 count = t.turn_count(s);
  // The cache holds the newest min(total, capacity) turns: it can answer when
  // it has `want` of them or holds the whole session.
  if (want > count && count >= t.ring_capacity()) {
    *gen = t.generation(at.hash);
    return Probe::Miss;
  }
  const uint32 take = want < count ? want : count;
  std::size_t bytes = 0;
  for (uint32 i = count - take; i < count; ++i) bytes += copy_size(t.turn(s, i));
  if (bytes > g_scratch_cap) {
    *need = bytes;
    return Probe::NeedScratch;
  }
  char* w = g_scratch;
  for (uint32 i = count - take; i < count; ++i) {
    const TurnRecord& r = t.turn(s, i);
    std::memcpy(w, &r, sizeof(TurnRecord));
    w += sizeof(TurnRecord);
    std::memcpy(w, r.content(), r.content_len);
    w += align8(r.content_len);
    if (r.has_meta) {
      std::memcpy(w, r.meta(), r.meta_len);
      w += align8(r.meta_len);
    }
  }
  t.touch(s);
  t.count_hit();
  *got = take;
  return Probe::Hit;
}

LTurns turns_from_scratch(uint32 n) {
  LTurns out;
  out.n = n;
  out.v = static_cast<LTurn*>(palloc(sizeof(LTurn) * (n ? n : 1)));
  const char* p = g_scratch;
  for (uint32 i = 0; i < n; ++i) {
    TurnRecord r;
    std::memcpy(&r, p, sizeof r);
    p += sizeof(TurnRecord);
    LTurn& t = out.v[i];
    t.seq = r.seq;
    t.at = r.created_at;
    t.role = static_cast<Role>(r.role);
    t.chars = r.chars;
    t.content = p;
    t.content_len = r.content_len;
    t.tokens[0] = r.tokens[0];
    t.tokens[1] = r.tokens[1];
    p += align8(r.content_len);
    t.meta = nullptr;
    if (r.has_meta) {
      t.meta = reinterpret_cast<Jsonb*>(const_cast<char*>(p));
      p += align8(r.meta_len);
    }
  }
  return out;
}

// Loads a session from the table with a fresh snapshot and publishes it
// unless a commit touched it since `gen` was read. Returns the loaded turns
// (newest `capacity`, oldest first) and whether they were published.
LTurns load_and_publish(const Place& at, uint64 gen, bool* published) {
  SessionTable& t = *at.table;
  LTurns all = table_read(at.key, t.ring_capacity(), true);
  auto* td = static_cast<TurnData*>(palloc(sizeof(TurnData) * (all.n ? all.n : 1)));
  for (uint32 i = 0; i < all.n; ++i) new (&td[i]) TurnData(turn_data(all.v[i]));
  // the first system turn: among the loaded turns when they are the whole
  // session, else read (once per load)
  LTurn first{};
  bool has_first = false;
  if (all.n < t.ring_capacity()) {
    for (uint32 i = 0; i < all.n && !has_first; ++i)
      if (all.v[i].role == Role::System) {
        first = all.v[i];
        has_first = true;
      }
  } else {
    has_first = table_first_system(at.key, true, &first);
  }
  TurnData sys;
  if (has_first) sys = turn_data(first);
  SessionTable::Publish r;
  {
    LWLockGuard g(at.lock, LW_EXCLUSIVE);
    r = t.publish(at.db, at.hash, at.key, td, all.n, gen, has_first ? &sys : nullptr,
                  has_first ? SessionTable::System::Known : SessionTable::System::None);
  }
  *published = r == SessionTable::Publish::Published || r == SessionTable::Publish::AlreadyCached;
  return all;
}

// Committed turns from the cache followed by this transaction's own pending
// turns. add_turn holds the session's transaction-scoped lock and gave each
// pending turn max(seq)+1 over everything committed, so the pending turns are
// the newest and nobody else can add to the session until we end.
LTurns overlay_pending(LTurns committed, std::string_view key, uint32 npending, uint32 want) {
  LTurns out;
  out.v = static_cast<LTurn*>(palloc(sizeof(LTurn) * (committed.n + npending + 1)));
  std::memcpy(out.v, committed.v, sizeof(LTurn) * committed.n);
  out.n = committed.n;
  pending::append_turns(key, &out);
  return newest(out, want);
}

}  // namespace

LTurns turns(std::string_view key, uint32 want) {
  forget_if_promoted();
  core::SessionCache* cache = sessions();
  // Under row-level security the table is read through SQL (the policies
  // filter it) and the cache is neither read nor written: a filtered view is
  // never published, and never served to another role. In REPEATABLE READ
  // and SERIALIZABLE the transaction's snapshot decides what is visible,
  // which the cache (the latest committed turns) cannot answer.
  if (cache == nullptr || RecoveryInProgress() || want > static_cast<uint32>(session_turns) ||
      IsolationUsesXactSnapshot() || table::row_security())
    return table_read(key, want, false);
  uint32 npending = 0;
  const bool mine = pending::touches(key);
  if (mine && !pending::adds_only(key, &npending)) return table_read(key, want, false);
  table::require_select();
  const Place at = place_of(cache, key);
  for (;;) {
    uint32 got = 0;
    std::size_t need = 0;
    uint64 gen = 0;
    const Probe r = copy_from_cache(at, want, &got, &need, &gen);
    if (r == Probe::Hit) {
      LTurns committed = turns_from_scratch(got);
      return mine ? overlay_pending(committed, key, npending, want) : committed;
    }
    if (r == Probe::NeedScratch) {
      ensure_scratch(need);
      continue;
    }
    at.table->count_miss();
    // A load would see our own uncommitted rows: never publish those.
    if (mine) return table_read(key, want, false);
    bool published = false;
    return newest(load_and_publish(at, gen, &published), want);
  }
}

namespace {

// Whether the cache may answer for this session in this transaction (as
// turns() decides).
bool cache_usable(core::SessionCache* cache, std::string_view key) {
  return cache != nullptr && !RecoveryInProgress() && !IsolationUsesXactSnapshot() && !table::row_security() &&
         !pending::touches(key);
}

// The cached first system turn into *out (palloc'd copy): 1 found, 0 the
// session has none, -1 the cache cannot tell (not cached, or unknown).
int cached_first_system(const Place& at, LTurn* out) {
  std::size_t size = 0;
  int64 seq = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    char* buf = size ? static_cast<char*>(palloc(size)) : nullptr;
    {
      LWLockGuard g(at.lock, LW_SHARED);
      SessionTable::Offset s = at.table->find(at.db, at.hash, at.key);
      if (s == core::Arena::kNull) return -1;
      SessionTable::System state;
      const TurnRecord* r = at.table->system_turn(s, &state);
      if (state == SessionTable::System::None) return 0;
      if (state != SessionTable::System::Known) return -1;
      const std::size_t need = sizeof(TurnRecord) + r->content_len + (r->has_meta ? r->meta_len : 0) + 8;
      if (buf == nullptr || need > size || r->seq != seq) {
        size = need;
        seq = r->seq;
        continue;  // allocate outside the lock, then look again
      }
      TurnRecord rec;
      std::memcpy(&rec, r, sizeof rec);
      std::memcpy(buf, r->content(), r->content_len);
      const std::size_t meta_at = align8(r->content_len + 1);
      if (r->has_meta) std::memcpy(buf + meta_at, r->meta(), r->meta_len);
      out->seq = rec.seq;
      out->at = rec.created_at;
      out->role = static_cast<Role>(rec.role);
      out->chars = rec.chars;
      out->content = buf;
      out->content_len = rec.content_len;
      out->meta = rec.has_meta ? reinterpret_cast<Jsonb*>(buf + meta_at) : nullptr;
      out->tokens[0] = rec.tokens[0];
      out->tokens[1] = rec.tokens[1];
      return 1;
    }
  }
  return -1;
}

}  // namespace

Window window(std::string_view key, uint32 want, bool keep_system) {
  Window w;
  if (!keep_system) {
    w.turns = turns(key, want);
    return w;
  }
  // one more: the system turn may be among the newest, and it does not count
  // against max_turns
  LTurns all = turns(key, want + 1);
  core::SessionCache* cache = sessions();
  int found = -1;
  if (cache_usable(cache, key)) found = cached_first_system(place_of(cache, key), &w.system);
  if (found < 0) found = table_first_system(key, false, &w.system) ? 1 : 0;
  w.has_system = found == 1;
  if (w.has_system) {
    uint32 k = 0;
    for (uint32 i = 0; i < all.n; ++i)
      if (all.v[i].seq != w.system.seq) all.v[k++] = all.v[i];
    all.n = k;
  }
  w.turns = newest(all, want);
  return w;
}

void remember_tokens(std::string_view key, int encoding, const LTurn* v, uint32 n, const LTurn* system) noexcept {
  core::SessionCache* cache = sessions();
  if (cache == nullptr || n + (system ? 1 : 0) == 0) return;
  const Place at = place_of(cache, key);
  LWLockGuard g(at.lock, LW_SHARED);
  SessionTable::Offset s = at.table->find(at.db, at.hash, key);
  if (s == core::Arena::kNull) return;
  // the record must hold the very content counted (a turn changed by direct
  // DML since is another record by then, or the session was dropped)
  auto keep = [&](const TurnRecord& r, const LTurn& t) {
    if (t.tokens[encoding] == core::kTokensUnknown || r.token_count(encoding) != core::kTokensUnknown) return;
    if (r.seq != t.seq || r.content_len != t.content_len || std::memcmp(r.content(), t.content, t.content_len) != 0)
      return;
    r.set_token_count(encoding, t.tokens[encoding]);
  };
  const uint32 count = at.table->turn_count(s);
  uint32 j = 0;
  for (uint32 i = 0; i < n; ++i) {  // both in seq order
    while (j < count && at.table->turn(s, j).seq < v[i].seq) ++j;
    if (j < count) keep(at.table->turn(s, j), v[i]);
  }
  if (system != nullptr) {
    SessionTable::System state;
    const TurnRecord* r = at.table->system_turn(s, &state);
    if (r != nullptr) keep(*r, *system);
  }
}

int64 newest_cached_seq(std::string_view key, bool* known) noexcept {
  core::SessionCache* cache = sessions();
  if (cache == nullptr) return 0;
  // no change other than add_turn's in progress now, and none begun or ended
  // until after the look below
  const uint64 before = known != nullptr ? sql_change_state() : 0;
  const bool trusted =
      known != nullptr && (before & 0xFFFFFFFFu) == 0 && !RecoveryInProgress() && !ever_filled_in_recovery();
  pg_memory_barrier();
  int64 seq = 0;
  {
    const Place at = place_of(cache, key);
    LWLockGuard g(at.lock, LW_SHARED);
    const SessionTable::Offset s = at.table->find(at.db, at.hash, at.key);
    const uint32 count = s == core::Arena::kNull ? 0 : at.table->turn_count(s);
    if (count > 0) seq = at.table->turn(s, count - 1).seq;
  }
  pg_memory_barrier();
  if (known != nullptr) *known = trusted && seq > 0 && sql_change_state() == before;
  return seq;
}

int32 warm(std::string_view key) {
  forget_if_promoted();
  if (RecoveryInProgress()) note_filled_in_recovery();
  core::SessionCache* cache = sessions();
  const Place at = place_of(cache, key);
  if (pending::touches(key)) return 0;  // its uncommitted turns must not reach shared memory
  if (table::row_security()) return 0;  // a filtered read is never published
  for (int attempt = 0; attempt < 3; ++attempt) {
    uint64 gen = 0;
    {
      LWLockGuard g(at.lock, LW_SHARED);
      SessionTable::Offset s = at.table->find(at.db, at.hash, key);
      if (s != core::Arena::kNull) return static_cast<int32>(at.table->turn_count(s));
      gen = at.table->generation(at.hash);
    }
    bool published = false;
    LTurns all = load_and_publish(at, gen, &published);
    if (published) return static_cast<int32>(all.n);
  }
  return 0;
}

void shrink_scratch() {
  if (g_scratch_cap > kScratchKeep) {
    pfree(g_scratch);
    g_scratch = nullptr;
    g_scratch_cap = 0;
  }
}

// Encodes turns straight into jsonb's binary format (core/jsonb_writer): no
// JsonbValue tree, no key sorting, one copy of each string.
Jsonb* context_json(const LTurn* v, uint32 n) {
  auto* in = static_cast<core::jsonb::Turn*>(palloc(sizeof(core::jsonb::Turn) * (n ? n : 1)));
  char* dates = static_cast<char*>(palloc(static_cast<std::size_t>(MAXDATELEN + 1) * (n ? n : 1)));
  for (uint32 i = 0; i < n; ++i) {
    const LTurn& t = v[i];
    core::jsonb::Turn& o = *new (&in[i]) core::jsonb::Turn();
    char* buf = dates + static_cast<std::size_t>(MAXDATELEN + 1) * i;
    JsonEncodeDateTime(buf, TimestampTzGetDatum(t.at), TIMESTAMPTZOID, nullptr);
    o.at = buf;
    Numeric num = int64_to_numeric(t.seq);
    o.seq = core::jsonb::Value{core::jsonb::kIsNumeric, reinterpret_cast<const char*>(num),
                               static_cast<uint32>(VARSIZE_ANY(num))};
    if (t.meta) {
      o.has_meta = true;
      o.meta = core::jsonb::from_root(reinterpret_cast<const char*>(&t.meta->root),
                                      static_cast<uint32>(VARSIZE(t.meta) - VARHDRSZ));
    }
    o.role = core::role_name(t.role);
    o.content = std::string_view(t.content, t.content_len);
  }
  const std::size_t size = core::jsonb::write_context(nullptr, in, n);
  if (size == 0 || size > MaxAllocSize)
    throw pg::sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "conversation context exceeds the maximum jsonb size", nullptr,
                        "Ask for fewer turns with max_turns or max_chars.");
  char* out = static_cast<char*>(palloc(size));
  core::jsonb::write_context(out, in, n);
  SET_VARSIZE(out, size);
  return reinterpret_cast<Jsonb*>(out);
}

}  // namespace agentcache::memory::read
