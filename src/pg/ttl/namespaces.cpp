// A TTL namespace as this backend knows it (see namespaces.hpp).
#include "pg/ttl/namespaces.hpp"

#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/roles.hpp"
#include "pg/common/spi.hpp"
#include "agentcache/core/text.hpp"

#include <cstring>

namespace agentcache::ttl::namespaces {

namespace {

// Backend-local, direct-mapped: the shared counter slot and the settings read
// at generation `gen`. Saves put a lock round and an SPI query.
struct Local {
  Oid db = InvalidOid;  // InvalidOid: empty
  uint8 len = 0;
  char name[64];
  Slot* slot = nullptr;
  bool has_settings = false;
  uint64 gen = 0;
  Settings st{};
};
constexpr int kLocal = 64;
Local g_local[kLocal];
bool g_written = false;  // this transaction wrote agentcache.namespaces: cache nothing
bool g_changed = false;  // ... and updated or deleted rows: bump the generation at commit

Local& local(std::string_view ns) {
  Local& l = g_local[core::hash_bytes(ns, MyDatabaseId) % kLocal];
  if (l.db != MyDatabaseId || l.len != ns.size() || std::memcmp(l.name, ns.data(), ns.size()) != 0) {
    l = Local{};
    l.db = MyDatabaseId;
    l.len = static_cast<uint8>(ns.size());
    std::memcpy(l.name, ns.data(), ns.size());
  }
  return l;
}

bool same_name(const Slot& s, std::string_view ns) {
  return s.db == MyDatabaseId && std::strlen(s.name) == ns.size() && std::memcmp(s.name, ns.data(), ns.size()) == 0;
}

void xact_callback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_PRE_PREPARE:
      if (g_changed)
        ereport(
            ERROR,
            (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
             errmsg("cannot PREPARE a transaction that changed agentcache.namespaces"),
             errdetail("Backends learn of namespace settings when the changing transaction commits in this session.")));
      break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      if (g_changed) {
        if (pg_atomic_uint64* generation = settings_generation()) pg_atomic_fetch_add_u64(generation, 1);
        forget_settings();
      }
      g_written = g_changed = false;
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      g_written = g_changed = false;
      break;
    default:
      break;
  }
}

// Reads the row as the extension owner (app roles have no privileges on the
// catalog); on a fresh snapshot, like every TTL statement.
bool read_row(std::string_view ns, Settings* st) {
  static pg::Statement q(
      "SELECT default_ttl, max_entries FROM agentcache.namespaces WHERE namespace OPERATOR(pg_catalog.=) $1",
      {TEXTOID});
  Datum values[1] = {pg::text_datum(ns)};
  const int rc = pg::as_extension_owner([&] { return q.exec_latest(values, nullptr, false); });
  pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.namespaces");
  if (SPI_processed != 1) return false;
  bool tnull = false, mnull = false;
  Datum t = pg::spi_value(0, 1, &tnull);
  Datum m = pg::spi_value(0, 2, &mnull);
  st->has_ttl = !tnull;
  st->ttl_us = tnull ? 0 : pg::interval_usecs(DatumGetIntervalP(t));
  st->has_max = !mnull;
  st->max_entries = mnull ? 0 : DatumGetInt64(m);
  return true;
}

void create_row(std::string_view ns) {
  static pg::Statement q(
      "INSERT INTO agentcache.namespaces (namespace, default_ttl) VALUES ($1, $2) ON CONFLICT (namespace) DO NOTHING",
      {TEXTOID, INTERVALOID});
  Datum values[2] = {pg::text_datum(ns),
                     IntervalPGetDatum(pg::make_interval_usecs(static_cast<int64>(default_ttl_s) * USECS_PER_SEC))};
  const int rc = pg::as_extension_owner([&] { return q.exec_latest(values, nullptr, false); });
  pg::spi_check(rc, SPI_OK_INSERT, "creating the namespace");
}

}  // namespace

void register_callbacks() { RegisterXactCallback(xact_callback, nullptr); }

bool cached_settings(std::string_view ns, Settings* out) {
  pg_atomic_uint64* generation = settings_generation();
  if (generation == nullptr || g_written) return false;
  const uint64 gen = pg_atomic_read_u64(generation);
  Local& l = local(ns);
  if (!l.has_settings || l.gen != gen) return false;
  *out = l.st;
  return true;
}

Settings settings(std::string_view ns, bool create) {
  Settings cached;
  if (cached_settings(ns, &cached)) return cached;
  pg_atomic_uint64* generation = settings_generation();
  // read before the table: a change committed after this read bumps it past `gen`
  const uint64 gen = generation ? pg_atomic_read_u64(generation) : 0;
  const bool cacheable = generation != nullptr && !g_written;
  pg_memory_barrier();
  Settings st{true, static_cast<int64>(default_ttl_s) * USECS_PER_SEC, false, 0};
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (read_row(ns, &st)) {
      if (cacheable && !g_written) {
        Local& l = local(ns);
        l.st = st;
        l.gen = gen;
        l.has_settings = true;
      }
      return st;
    }
    if (!create) return st;
    create_row(ns);  // its counter slot comes with its first stored entry
  }
  return st;
}

void note_write(bool changed) {
  g_written = true;
  if (changed) g_changed = true;
}

void forget_settings() noexcept {
  for (Local& l : g_local) l.has_settings = false;
}

// Slots form an open-addressed table probed from the name's hash. A slot of a
// dropped database is a tombstone (used, db = InvalidOid): lookups go on past
// it, a new namespace takes the first one on its path.
Slot* slot(std::string_view ns, bool create) noexcept {
  Slot* all = slots();
  if (all == nullptr || ns.size() > kMaxNamespaceBytes) return nullptr;
  Local& l = local(ns);
  if (l.slot != nullptr && l.slot->used && same_name(*l.slot, ns)) return l.slot;  // (its database may be gone)
  l.slot = nullptr;
  const uint32 start = static_cast<uint32>(core::hash_bytes(ns, MyDatabaseId) % kSlots);
  {
    pg::LWLockGuard g(slot_lock(), LW_SHARED);
    for (int i = 0; i < kSlots; ++i) {
      Slot& s = all[(start + i) % kSlots];
      if (!s.used) break;
      if (same_name(s, ns)) return l.slot = &s;
    }
  }
  if (!create) return nullptr;
  pg::LWLockGuard g(slot_lock(), LW_EXCLUSIVE);
  Slot* free_slot = nullptr;
  for (int i = 0; i < kSlots; ++i) {
    Slot& s = all[(start + i) % kSlots];
    if (s.used && same_name(s, ns)) return l.slot = &s;
    if (s.used && s.db != InvalidOid) continue;
    if (free_slot == nullptr) free_slot = &s;  // a tombstone, or the end of the path
    if (!s.used) break;
  }
  if (free_slot == nullptr) return nullptr;  // full: this namespace goes uncounted
  for (pg_atomic_uint64* a :
       {&free_slot->c.hits, &free_slot->c.misses, &free_slot->c.stale_hits, &free_slot->c.evictions,
        &free_slot->c.expirations, &free_slot->c.invalidations, &free_slot->c.entries, &free_slot->c.bytes,
        &free_slot->pass_entries, &free_slot->pass_bytes})
    pg_atomic_write_u64(a, 0);
  free_slot->db = MyDatabaseId;
  std::memcpy(free_slot->name, ns.data(), ns.size());
  free_slot->name[ns.size()] = '\0';
  free_slot->used = true;
  return l.slot = free_slot;
}

void count_read(std::string_view ns, pg_atomic_uint64 Counters::*field) {
  if (slots() == nullptr) return;
  Slot* s = slot(ns, false);
  if (s == nullptr) {
    Settings st;
    const bool known = cached_settings(ns, &st) || pg::with_spi([&] { return read_row(ns, &st); });
    if (known) s = slot(ns, true);
  }
  if (s != nullptr) pg_atomic_fetch_add_u64(&(s->c.*field), 1);
}

void add(std::string_view ns, pg_atomic_uint64 Counters::*field, int64 n, bool create) noexcept {
  if (n == 0) return;
  Slot* s = slot(ns, create);
  if (s == nullptr) return;
  pg_atomic_uint64* a = &(s->c.*field);
  if (n > 0) {
    pg_atomic_fetch_add_u64(a, static_cast<uint64>(n));
    return;
  }
  // estimates never go below zero
  uint64 cur = pg_atomic_read_u64(a);
  const uint64 sub = static_cast<uint64>(-n);
  while (!pg_atomic_compare_exchange_u64(a, &cur, cur > sub ? cur - sub : 0)) {
  }
}

}  // namespace agentcache::ttl::namespaces
