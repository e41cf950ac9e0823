// TTL cache: put/get/get_stale/fetch/invalidate*/clear*/configure_namespace and
// invalidate_trigger over the UNLOGGED table agentcache.entries.
//
// Reads (get, get_stale, a fetch hit) scan the primary key directly (no SPI,
// no planner). Writes go through SPI in the caller's transaction, so every
// invalidation takes effect iff the transaction commits and is visible to the
// transaction itself at once.
//
// Races are closed with transaction-scoped locks in a private advisory lock
// space (no application advisory lock can collide with it):
//  * key lock (exclusive): fetch's single flight (concurrent misses of a key
//    queue on it; the first runs the query, the others wait for its
//    transaction to end and then read the stored value, or take over if it
//    failed, was cancelled or died), and invalidate of that key (both until
//    their transaction ends); put takes it only for its call and gives it
//    back, and a fetch leader finding an uncommitted put of its key waits for
//    that transaction (key_writer);
//  * namespace lock: fetch leaders hold it shared, clear() exclusive;
//  * global lock: fetch leaders hold it shared, clear_all() exclusive.
// A fetch leader runs its query on a fresh snapshot taken after it holds the
// key lock, so a value computed from data older than a committed invalidation
// of its key is never stored.
#include "pg/args.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/maps.hpp"
#include "pg/rows.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"
#include "pg/ttl.hpp"
#include "pg/worker.hpp"
#include "agentcache/core/tag_template.hpp"
#include "agentcache/core/text.hpp"

#include <cstring>
#include <string_view>

using agentcache::pg::LWLockGuard;
using agentcache::pg::null_arg;
using agentcache::pg::sql_error;
using agentcache::pg::text_view;

namespace agentcache::ttl {

namespace {

constexpr std::size_t kMaxNamespaceBytes = 63;
constexpr std::size_t kMaxKeyBytes = 1024;
constexpr uint16 kLockSpaceKey = 0xAC03;
constexpr uint16 kLockSpaceNamespace = 0xAC04;
constexpr uint16 kLockSpaceGlobal = 0xAC05;

// ------------------------------------------------------------------ arguments

std::string_view ns_value(FunctionCallInfo fcinfo, int i) {
  std::string_view s = text_view(PG_GETARG_TEXT_PP(i));
  if (s.size() > kMaxNamespaceBytes)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "namespace is too long", "The limit is 63 bytes.");
  return s;
}

std::string_view key_value(FunctionCallInfo fcinfo, int i) {
  std::string_view s = text_view(PG_GETARG_TEXT_PP(i));
  if (s.size() > kMaxKeyBytes)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "key is too long", "The limit is 1024 bytes.");
  return s;
}

// An interval's length in microseconds (a month is 30 days), saturating
// instead of overflowing for absurdly long intervals.
int64 interval_usecs(const Interval* iv) {
  __int128 v = (static_cast<__int128>(iv->month) * DAYS_PER_MONTH + iv->day) * USECS_PER_DAY + iv->time;
  if (v > PG_INT64_MAX) return PG_INT64_MAX;
  if (v < PG_INT64_MIN) return PG_INT64_MIN;
  return static_cast<int64>(v);
}

void require_positive(const Interval* iv, const char* what) {
  if (interval_usecs(iv) <= 0) {
    char msg[96];
    pg_snprintf(msg, sizeof msg, "%s must be a positive interval", what);
    throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, msg);
  }
}

Datum text_datum(std::string_view s) {
  return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}

// ------------------------------------------------------------------ locks

uint64 key_hash(std::string_view ns, std::string_view key) {
  return core::hash_bytes(key, core::hash_bytes(ns, MyDatabaseId));
}

void lock(uint16 space, uint64 hash, LOCKMODE mode) {
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(hash >> 32), static_cast<uint32>(hash), space);
  (void)LockAcquire(&tag, mode, false, false);
}
void lock_key(std::string_view ns, std::string_view key) { lock(kLockSpaceKey, key_hash(ns, key), ExclusiveLock); }
// Gives back one acquisition of the key lock before the transaction ends (a
// lock the transaction took earlier for the same key stays held).
void unlock_key(std::string_view ns, std::string_view key) {
  const uint64 hash = key_hash(ns, key);
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(hash >> 32), static_cast<uint32>(hash), kLockSpaceKey);
  (void)LockRelease(&tag, ExclusiveLock, false);
}
void lock_namespace(std::string_view ns, LOCKMODE mode) {
  lock(kLockSpaceNamespace, core::hash_bytes(ns, MyDatabaseId), mode);
}
void lock_global(LOCKMODE mode) { lock(kLockSpaceGlobal, 0, mode); }

// ------------------------------------------------------------------ counters

using shmem::TtlNamespace;

struct NsSettings {
  bool has_ttl;
  int64 ttl_us;
  bool has_max;
  int64 max_entries;
};

// Backend-local cache of namespaces (direct-mapped): the shared counter slot
// (slots are never freed, so the pointer stays valid) and the settings read
// from agentcache.namespaces at generation `gen` of
// shmem::ttl_settings_generation(). Saves put a lock round and an SPI query.
struct LocalNs {
  Oid db = InvalidOid;  // InvalidOid: empty
  uint8 len = 0;
  char name[64];
  TtlNamespace* slot = nullptr;
  bool has_settings = false;
  uint64 gen = 0;
  NsSettings st{};
};
constexpr int kLocalNs = 64;
LocalNs g_local[kLocalNs];
bool g_ns_written = false;  // this transaction wrote agentcache.namespaces: cache nothing
bool g_ns_changed = false;  // ... and updated or deleted rows: bump the generation at commit

LocalNs& local_ns(std::string_view ns) {
  LocalNs& l = g_local[core::hash_bytes(ns, MyDatabaseId) % kLocalNs];
  if (l.db != MyDatabaseId || l.len != ns.size() || std::memcmp(l.name, ns.data(), ns.size()) != 0) {
    l = LocalNs{};
    l.db = MyDatabaseId;
    l.len = static_cast<uint8>(ns.size());
    std::memcpy(l.name, ns.data(), ns.size());
  }
  return l;
}

void forget_settings() noexcept {
  for (LocalNs& l : g_local) l.has_settings = false;
}

TtlNamespace* find_slot(std::string_view ns, bool create) noexcept {
  TtlNamespace* slots = shmem::ttl_namespaces();
  if (slots == nullptr || ns.size() > kMaxNamespaceBytes) return nullptr;
  LocalNs& local = local_ns(ns);
  if (local.slot != nullptr) return local.slot;
  const uint32 start = static_cast<uint32>(core::hash_bytes(ns, MyDatabaseId) % shmem::kTtlNamespaces);
  {
    LWLockGuard g(shmem::ttl_lock(), LW_SHARED);
    for (int i = 0; i < shmem::kTtlNamespaces; ++i) {
      TtlNamespace& s = slots[(start + i) % shmem::kTtlNamespaces];
      if (!s.used) break;
      if (s.db == MyDatabaseId && std::strlen(s.name) == ns.size() && std::memcmp(s.name, ns.data(), ns.size()) == 0)
        return local.slot = &s;
    }
  }
  if (!create) return nullptr;
  LWLockGuard g(shmem::ttl_lock(), LW_EXCLUSIVE);
  for (int i = 0; i < shmem::kTtlNamespaces; ++i) {
    TtlNamespace& s = slots[(start + i) % shmem::kTtlNamespaces];
    if (s.used) {
      if (s.db == MyDatabaseId && std::strlen(s.name) == ns.size() && std::memcmp(s.name, ns.data(), ns.size()) == 0)
        return local.slot = &s;
      continue;
    }
    s.db = MyDatabaseId;
    std::memcpy(s.name, ns.data(), ns.size());
    s.name[ns.size()] = '\0';
    s.used = true;
    return local.slot = &s;
  }
  return nullptr;  // full: this namespace goes uncounted
}

// Counts into the namespace's slot. Slots are created by writes (put,
// fetch storing, configure_namespace) and the worker's recount, never by a
// read, so probing unknown namespaces leaves no trace.
void add(std::string_view ns, pg_atomic_uint64 shmem::TtlCounters::*field, int64 n, bool create = false) noexcept {
  if (n == 0) return;
  TtlNamespace* s = find_slot(ns, create);
  if (s == nullptr) return;
  pg_atomic_uint64* a = &(s->c.*field);
  if (n > 0) {
    pg_atomic_fetch_add_u64(a, static_cast<uint64>(n));
  } else {
    // estimates never go below zero
    uint64 cur = pg_atomic_read_u64(a);
    uint64 sub = static_cast<uint64>(-n);
    while (!pg_atomic_compare_exchange_u64(a, &cur, cur > sub ? cur - sub : 0)) {
    }
  }
}

// ------------------------------------------------------------------ relations

Oid g_entries = InvalidOid, g_entries_pkey = InvalidOid, g_namespaces = InvalidOid;
// Whether agentcache.entries is as the install script made it (see direct_ok).
enum class Direct { Unknown, Yes, No };
Direct g_direct = Direct::Unknown;

void relcache_callback(Datum, Oid relid) {
  if (relid == InvalidOid || relid == g_entries || relid == g_entries_pkey || relid == g_namespaces) {
    g_entries = g_entries_pkey = g_namespaces = InvalidOid;
    g_direct = Direct::Unknown;
    forget_settings();  // the extension may have been dropped and created again
  }
}

void resolve_relations() {
  static bool registered = false;
  if (!registered) {
    CacheRegisterRelcacheCallback(relcache_callback, 0);
    registered = true;
  }
  if (g_entries != InvalidOid) return;
  Oid nsp = get_namespace_oid("agentcache", false);
  Oid rel = get_relname_relid("entries", nsp);
  Oid idx = get_relname_relid("entries_pkey", nsp);
  Oid nss = get_relname_relid("namespaces", nsp);
  if (rel == InvalidOid || idx == InvalidOid || nss == InvalidOid)
    throw sql_error(ERRCODE_UNDEFINED_TABLE, "relation agentcache.entries does not exist");
  g_entries = rel;
  g_entries_pkey = idx;
  g_namespaces = nss;
}

// ------------------------------------------------------------------ direct read

enum class Found { Miss, Fresh, Stale };
struct ReadResult {
  Found found = Found::Miss;
  Jsonb* value = nullptr;
};

// The primary-key lookup of (ns, key) under `snap`, into `slot` (which keeps
// the row, pinned, after the scan ends). True when a row was found.
bool lookup_key(Relation rel, Relation pk, Snapshot snap, Datum ns, Datum key, TupleTableSlot* slot) {
  ScanKeyData sk[2];
  ScanKeyInit(&sk[0], 1, BTEqualStrategyNumber, F_TEXTEQ, ns);
  ScanKeyInit(&sk[1], 2, BTEqualStrategyNumber, F_TEXTEQ, key);
  IndexScanDesc scan = index_beginscan(rel, pk, snap, 2, 0);
  index_rescan(scan, sk, 2, nullptr, 0);
  const bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
  index_endscan(scan);
  return found;
}

// After a lookup under a dirty snapshot found a row: the transaction
// inserting or deleting it, if one is still in progress.
TransactionId writer_of(const SnapshotData& dirty) {
  return TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
}

// Looks the key up through the primary key with `snap` (nullptr: the
// transaction's ordinary snapshot, seeing its own earlier changes). Fresh:
// not expired; Stale: expired at most `max_stale_us` ago (when >= 0).
ReadResult read_entry(std::string_view ns, std::string_view key, int64 max_stale_us, Snapshot snap) {
  resolve_relations();
  AclResult acl = pg_class_aclcheck(g_entries, GetUserId(), ACL_SELECT);
  if (acl != ACLCHECK_OK) aclcheck_error(acl, OBJECT_TABLE, "entries");
  ReadResult out;
  bool pushed = false;
  if (snap == nullptr) {
    CommandCounterIncrement();
    PushActiveSnapshot(GetTransactionSnapshot());
    UpdateActiveSnapshotCommandId();
    snap = GetActiveSnapshot();
    pushed = true;
  }
  Relation rel = table_open(g_entries, AccessShareLock);
  Relation idx = index_open(g_entries_pkey, AccessShareLock);
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  if (lookup_key(rel, idx, snap, text_datum(ns), text_datum(key), slot)) {
    bool vnull = false, enull = false;
    Datum v = slot_getattr(slot, 3, &vnull);
    Datum e = slot_getattr(slot, 5, &enull);
    const TimestampTz now = GetCurrentTimestamp();  // clock_timestamp(): expiry is judged at the call
    if (enull || DatumGetTimestampTz(e) > now) {
      out.found = Found::Fresh;
    } else if (max_stale_us >= 0 && (max_stale_us > now - DT_NOBEGIN / 2 || DatumGetTimestampTz(e) > now - max_stale_us)) {
      out.found = Found::Stale;
    }
    if (out.found != Found::Miss && !vnull)
      out.value = reinterpret_cast<Jsonb*>(PG_DETOAST_DATUM_COPY(v));
  }
  ExecDropSingleTupleTableSlot(slot);
  index_close(idx, AccessShareLock);
  table_close(rel, AccessShareLock);
  if (pushed) PopActiveSnapshot();
  return out;
}

// The transaction writing the key, if one is in progress (a put that has not
// committed yet: put gives its key lock back once the row is written, so that
// a transaction can put any number of keys); InvalidTransactionId if none.
TransactionId key_writer(std::string_view ns, std::string_view key) {
  resolve_relations();
  SnapshotData dirty;
  InitDirtySnapshot(dirty);
  Relation rel = table_open(g_entries, AccessShareLock);
  Relation idx = index_open(g_entries_pkey, AccessShareLock);
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  const TransactionId writer =
      lookup_key(rel, idx, &dirty, text_datum(ns), text_datum(key), slot) ? writer_of(dirty) : InvalidTransactionId;
  ExecDropSingleTupleTableSlot(slot);
  index_close(idx, AccessShareLock);
  table_close(rel, AccessShareLock);
  return writer;
}

// ------------------------------------------------------------------ SPI helpers

void spi_connect() {
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
}

// Runs a statement as the extension's owner (catalog of namespaces).
// Every TTL statement runs on a fresh snapshot: it follows lock waits (key,
// namespace) and must see what committed meanwhile, in any isolation level.
int spi_as_owner(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types, Datum* values, const char* nulls,
                 bool read_only) {
  Oid save_user;
  int save_sec;
  GetUserIdAndSecContext(&save_user, &save_sec);
  SetUserIdAndSecContext(maps::extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
  int rc = pg::spi_exec_latest(slot, sql, nargs, types, values, nulls, read_only, 0);
  SetUserIdAndSecContext(save_user, save_sec);
  return rc;
}

// The namespace's settings; creates it (default_ttl = agentcache.default_ttl
// at this moment) when `create` and it does not exist yet. Inside SPI.
// The namespace's settings from this backend's cache, if they are current.
bool cached_settings(std::string_view ns, NsSettings* out) {
  resolve_relations();  // registers the relcache callback that forgets cached settings
  pg_atomic_uint64* generation = shmem::ttl_settings_generation();
  if (generation == nullptr || g_ns_written) return false;
  const uint64 gen = pg_atomic_read_u64(generation);
  LocalNs& l = local_ns(ns);
  if (!l.has_settings || l.gen != gen) return false;
  *out = l.st;
  return true;
}

NsSettings ns_settings(std::string_view ns, bool create) {
  NsSettings cached;
  if (cached_settings(ns, &cached)) return cached;
  pg_atomic_uint64* generation = shmem::ttl_settings_generation();
  // read before the table: a change committed after this read bumps it past `gen`
  const uint64 gen = generation ? pg_atomic_read_u64(generation) : 0;
  const bool cacheable = generation != nullptr && !g_ns_written;
  pg_memory_barrier();
  NsSettings st{true, static_cast<int64>(guc::default_ttl_s) * USECS_PER_SEC, false, 0};
  Oid t1[1] = {TEXTOID};
  Datum v1[1] = {text_datum(ns)};
  for (int attempt = 0; attempt < 2; ++attempt) {
    static SPIPlanPtr select_plan = nullptr;
    int rc = spi_as_owner(&select_plan, "SELECT default_ttl, max_entries FROM agentcache.namespaces"
                          " WHERE namespace OPERATOR(pg_catalog.=) $1",
                          1, t1, v1, nullptr, false);
    if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: reading agentcache.namespaces failed");
    if (SPI_processed == 1) {
      bool tnull = false, mnull = false;
      Datum t = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &tnull);
      Datum m = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &mnull);
      st.has_ttl = !tnull;
      st.ttl_us = tnull ? 0 : interval_usecs(DatumGetIntervalP(t));
      st.has_max = !mnull;
      st.max_entries = mnull ? 0 : DatumGetInt64(m);
      if (cacheable && !g_ns_written) {
        LocalNs& l = local_ns(ns);
        l.st = st;
        l.gen = gen;
        l.has_settings = true;
      }
      return st;
    }
    if (!create) return st;
    Oid t2[2] = {TEXTOID, INTERVALOID};
    Interval* iv = static_cast<Interval*>(palloc0(sizeof(Interval)));
    iv->time = static_cast<int64>(guc::default_ttl_s) * USECS_PER_SEC;
    Datum v2[2] = {text_datum(ns), IntervalPGetDatum(iv)};
    static SPIPlanPtr insert_plan = nullptr;
    rc = spi_as_owner(&insert_plan, "INSERT INTO agentcache.namespaces (namespace, default_ttl) VALUES ($1, $2)"
                      " ON CONFLICT (namespace) DO NOTHING",
                      2, t2, v2, nullptr, false);
    if (rc != SPI_OK_INSERT) elog(ERROR, "agentcache: creating the namespace failed");
    find_slot(ns, true);
  }
  return st;
}

// Evicts entries of `ns` beyond `max` (nearest to expiry first, entries
// without expiry last, never `keep`). Inside SPI. Returns rows evicted.
int64 enforce_max(std::string_view ns, int64 max, std::string_view keep, bool has_keep) {
  Oid t1[1] = {TEXTOID};
  Datum v1[1] = {text_datum(ns)};
  static SPIPlanPtr count_plan = nullptr, evict_plan = nullptr;
  int rc = pg::spi_exec_latest(&count_plan, "SELECT pg_catalog.count(*) FROM agentcache.entries"
                                 " WHERE namespace OPERATOR(pg_catalog.=) $1",
                        1, t1, v1, nullptr, false, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: counting entries failed");
  bool isnull = false;
  int64 count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  if (count <= max) return 0;
  Oid t3[3] = {TEXTOID, TEXTOID, INT8OID};
  Datum v3[3] = {text_datum(ns), text_datum(keep), Int64GetDatum(count - max)};
  char nulls[3] = {' ', has_keep ? ' ' : 'n', ' '};
  rc = pg::spi_exec_latest(
      &evict_plan,
      "DELETE FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
      " SELECT ctid FROM agentcache.entries WHERE namespace OPERATOR(pg_catalog.=) $1"
      " AND ($2 IS NULL OR key OPERATOR(pg_catalog.<>) $2)"
      " ORDER BY expires_at ASC NULLS LAST LIMIT $3))",
      3, t3, v3, nulls, false, 0);
  if (rc != SPI_OK_DELETE) elog(ERROR, "agentcache: evicting entries failed");
  int64 n = static_cast<int64>(SPI_processed);
  add(ns, &shmem::TtlCounters::evictions, n);
  add(ns, &shmem::TtlCounters::entries, -n);
  return n;
}

// ------------------------------------------------------------------ direct upsert

// put's write without SPI, the planner or the executor: the primary key is
// probed, then the row updated in place (a HOT update when the tags stay) or
// inserted, with its index entries, as logical replication's apply worker
// writes rows. It needs agentcache.entries as the install script made it:
// its six columns, plain indexes (no expressions, predicates or exclusion),
// no triggers, no row-level security, no CHECK constraints. Checked once per
// relcache version; anything else (an administrator's change) goes through
// the SQL upsert.
bool direct_ok(Relation rel) {
  if (g_direct != Direct::Unknown) return g_direct == Direct::Yes;
  static const Oid kTypes[6] = {TEXTOID, TEXTOID, JSONBOID, TEXTARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
  TupleDesc desc = RelationGetDescr(rel);
  const bool ok = pg::rows::plain_table(rel, kTypes, 6) && rel->trigdesc == nullptr &&
                  (desc->constr == nullptr || desc->constr->num_check == 0);
  g_direct = ok ? Direct::Yes : Direct::No;
  return ok;
}

// Upserts the entry; false (nothing done) when the direct path does not
// apply and the SQL upsert must run. The caller holds the key lock, so no
// other put or fetch writes this key meanwhile; deleters (invalidate_tag,
// clear, sweeps) are waited for and the write is retried.
bool upsert_direct(std::string_view ns, std::string_view key, Jsonb* value, Datum tags, bool tags_null, bool expires,
                   TimestampTz expires_at, bool from_put, bool* inserted) {
  resolve_relations();
  // what the SQL upsert needs (ON CONFLICT reads the key columns), on the
  // table itself; column privileges are judged by the SQL path
  const AclMode need = ACL_SELECT | ACL_INSERT | ACL_UPDATE;
  if (!pg::rows::has_privileges(g_entries, GetUserId(), need)) return false;
  Relation rel = table_open(g_entries, RowExclusiveLock);
  if (!direct_ok(rel)) {
    table_close(rel, NoLock);
    return false;
  }
  CommandCounterIncrement();  // see this transaction's earlier changes
  Datum values[6] = {text_datum(ns),
                     text_datum(key),
                     JsonbPGetDatum(value),
                     tags_null ? PointerGetDatum(construct_empty_array(TEXTOID)) : tags,
                     TimestampTzGetDatum(expires_at),
                     TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())};  // stored_at = now()
  bool nulls[6] = {false, false, false, false, !expires, false};
  TupleTableSlot* row = table_slot_create(rel, nullptr);
  TupleTableSlot* old = table_slot_create(rel, nullptr);
  Relation pk = index_open(g_entries_pkey, RowExclusiveLock);
  for (int attempt = 0;; ++attempt) {
    if (attempt > 1000) elog(ERROR, "agentcache: put kept losing races on one key");
    CHECK_FOR_INTERRUPTS();
    // the newest version, committed or not (a dirty snapshot)
    SnapshotData dirty;
    InitDirtySnapshot(dirty);
    const bool found = lookup_key(rel, pk, &dirty, values[0], values[1], old);
    const TransactionId writer = found ? writer_of(dirty) : InvalidTransactionId;
    if (TransactionIdIsValid(writer)) {  // being deleted (or written) by another transaction
      // put waits without its key lock: that transaction may put the key again
      // (a fetch leader keeps it: its waiters must go on waiting for it)
      if (from_put) unlock_key(ns, key);
      XactLockTableWait(writer, rel, &old->tts_tid, XLTW_Update);
      if (from_put) lock_key(ns, key);
      continue;
    }
    pg::rows::store_values(row, values, nulls);
    if (!found) {
      table_tuple_insert(rel, row, GetCurrentCommandId(true), 0, nullptr);
      pg::rows::insert_index_entries(rel, row, false);
      *inserted = true;
      break;
    }
    ItemPointerData tid = old->tts_tid;
    ExecClearTuple(old);  // its buffer pin would keep the page from being pruned
    TM_FailureData tmfd;
    LockTupleMode lockmode;
    bool update_indexes = false;
    TM_Result res = table_tuple_update(rel, &tid, row, GetCurrentCommandId(true), GetLatestSnapshot(),
                                       InvalidSnapshot, true, &tmfd, &lockmode, &update_indexes);
    if (res == TM_Ok) {
      if (update_indexes) pg::rows::insert_index_entries(rel, row, true);
      *inserted = false;
      break;
    }
    if (res == TM_SelfModified) CommandCounterIncrement();
    else if (res != TM_Updated && res != TM_Deleted) elog(ERROR, "agentcache: unexpected result %d updating an entry", res);
    // deleted or updated by a transaction that committed meanwhile: look again
  }
  index_close(pk, NoLock);
  ExecDropSingleTupleTableSlot(old);
  ExecDropSingleTupleTableSlot(row);
  table_close(rel, NoLock);
  CommandCounterIncrement();  // later reads in this statement see the entry
  return true;
}

// Upserts an entry (caller's privileges) and enforces max_entries. Connects
// to SPI only when it needs it. from_put: the caller is put(), which may give
// its key lock back while it waits for another writer of the row.
void store(std::string_view ns, std::string_view key, Jsonb* value, const Interval* ttl, Datum tags, bool tags_null,
           bool from_put) {
  bool spi = false;
  NsSettings st{};
  if (!cached_settings(ns, &st)) {
    spi_connect();
    spi = true;
    st = ns_settings(ns, true);
  }
  bool expires = ttl != nullptr || st.has_ttl;
  TimestampTz expires_at = 0;
  if (ttl != nullptr) {  // PostgreSQL's own arithmetic: out of range raises 22008
    expires_at = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
                                                         TimestampTzGetDatum(GetCurrentTimestamp()),
                                                         IntervalPGetDatum(const_cast<Interval*>(ttl))));
  } else if (expires) {
    expires_at = GetCurrentTimestamp() + st.ttl_us;
  }
  bool inserted = false;
  if (!upsert_direct(ns, key, value, tags, tags_null, expires, expires_at, from_put, &inserted)) {
  if (!spi) {
    spi_connect();
    spi = true;
  }
  Oid types[5] = {TEXTOID, TEXTOID, JSONBOID, TEXTARRAYOID, TIMESTAMPTZOID};
  Datum values[5] = {text_datum(ns), text_datum(key), JsonbPGetDatum(value), tags, TimestampTzGetDatum(expires_at)};
  char nulls[5] = {' ', ' ', ' ', tags_null ? 'n' : ' ', expires ? ' ' : 'n'};
  static SPIPlanPtr upsert_plan = nullptr;
  int rc = pg::spi_exec_latest(
      &upsert_plan,
      "INSERT INTO agentcache.entries AS e (namespace, key, value, tags, expires_at)"
      " VALUES ($1, $2, $3, COALESCE($4, '{}'::pg_catalog.text[]), $5)"
      " ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, tags = EXCLUDED.tags,"
      " expires_at = EXCLUDED.expires_at, stored_at = pg_catalog.now()"
      " RETURNING (e.xmax OPERATOR(pg_catalog.=) '0'::pg_catalog.xid)",
      5, types, values, nulls, false, 0);
  if (rc != SPI_OK_INSERT_RETURNING) elog(ERROR, "agentcache: storing the entry failed");
  bool isnull = false;
  inserted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  }
  find_slot(ns, true);
  if (inserted) add(ns, &shmem::TtlCounters::entries, 1);
  add(ns, &shmem::TtlCounters::bytes, inserted ? static_cast<int64>(VARSIZE(value)) : 0);
  if (st.has_max) {
    if (!spi) {
      spi_connect();
      spi = true;
    }
    enforce_max(ns, st.max_entries, key, true);
  }
  if (spi) SPI_finish();
}


int64 delete_where(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types, Datum* values) {
  spi_connect();
  int rc = pg::spi_exec_latest(slot, sql, nargs, types, values, nullptr, false, 0);
  if (rc != SPI_OK_DELETE && rc != SPI_OK_DELETE_RETURNING) elog(ERROR, "agentcache: deleting entries failed");
  int64 n = static_cast<int64>(SPI_processed);
  // per-namespace accounting from RETURNING namespace, when asked for
  if (rc == SPI_OK_DELETE_RETURNING) {
    for (uint64 i = 0; i < SPI_processed; ++i) {
      bool isnull = false;
      text* ns = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
      add(text_view(ns), &shmem::TtlCounters::invalidations, 1);
      add(text_view(ns), &shmem::TtlCounters::entries, -1);
    }
  }
  SPI_finish();
  return n;
}

// Rejects every write on a standby / in a READ ONLY transaction (25006).
void require_writable(const char* what) { PreventCommandIfReadOnly(what); }

}  // namespace

// ------------------------------------------------------------------ worker sweep

namespace {
int g_sweeps_since_recount = 1000;

// The walk over agentcache.entries (no index on expires_at: see the install
// script) resumes where the previous sweep stopped.
BlockNumber g_sweep_next_block = 0;

void count_expired(SPITupleTable* rows, uint64 n) {
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    text* ns = DatumGetTextPP(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
    add(text_view(ns), &shmem::TtlCounters::expirations, 1);
    add(text_view(ns), &shmem::TtlCounters::entries, -1);
  }
}
}  // namespace

int64 sweep() {
  if (guc::stale_retention_s < 0) return 0;
  // 1. expired rows past stale_retention: a bounded walk in block ranges
  int64 total = worker::delete_by_walk(
      "entries",
      "DELETE FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.>=) $1 AND ctid OPERATOR(pg_catalog.<) $2"
      " AND expires_at OPERATOR(pg_catalog.<)"
      " (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $3::pg_catalog.float8))"
      " RETURNING namespace",
      guc::stale_retention_s, &g_sweep_next_block, count_expired);
  // 2. max_entries overshoot of concurrent writers; 3. re-count estimates now and then
  const bool recount = ++g_sweeps_since_recount >= 6;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  Oid nsp = get_namespace_oid("agentcache", true);
  if (nsp == InvalidOid || get_relname_relid("namespaces", nsp) == InvalidOid) {  // not installed here
    PopActiveSnapshot();
    CommitTransactionCommand();
    return total;
  }
  spi_connect();
  int rc = SPI_execute("SELECT namespace, max_entries FROM agentcache.namespaces WHERE max_entries IS NOT NULL", false,
                       0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: reading agentcache.namespaces failed");
  uint64 nns = SPI_processed;
  SPITupleTable* tt = SPI_tuptable;
  for (uint64 i = 0; i < nns; ++i) {
    bool isnull = false;
    char* ns = TextDatumGetCString(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
    int64 max = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
    total += enforce_max(ns, max, "", false);
  }
  if (recount) {
    g_sweeps_since_recount = 0;
    rc = SPI_execute("SELECT n.namespace, COALESCE(e.cnt, 0), COALESCE(e.bytes, 0) FROM agentcache.namespaces n"
                     " LEFT JOIN (SELECT namespace, pg_catalog.count(*) AS cnt,"
                     " pg_catalog.sum(pg_catalog.pg_column_size(value))::pg_catalog.int8 AS bytes"
                     " FROM agentcache.entries GROUP BY namespace) e USING (namespace)",
                     true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: counting entries failed");
    for (uint64 i = 0; i < SPI_processed; ++i) {
      bool isnull = false;
      text* ns = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
      TtlNamespace* s = find_slot(text_view(ns), true);
      if (s == nullptr) continue;
      pg_atomic_write_u64(&s->c.entries,
                          static_cast<uint64>(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull))));
      pg_atomic_write_u64(&s->c.bytes,
                          static_cast<uint64>(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull))));
    }
  }
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
  return total;
}

void reset_stats() noexcept {
  TtlNamespace* slots = shmem::ttl_namespaces();
  if (slots == nullptr) return;
  for (int i = 0; i < shmem::kTtlNamespaces; ++i) {
    for (pg_atomic_uint64* a : {&slots[i].c.hits, &slots[i].c.misses, &slots[i].c.stale_hits, &slots[i].c.evictions,
                                &slots[i].c.expirations, &slots[i].c.invalidations})
      pg_atomic_write_u64(a, 0);
  }
}

namespace {
struct Registrar {
  Registrar() { worker::register_sweep("ttl_expired", sweep); }
} g_registrar;
}  // namespace

}  // namespace agentcache::ttl

// ====================================================================== SQL functions

using namespace agentcache;
using namespace agentcache::ttl;

// put(namespace, key, value jsonb, ttl interval DEFAULT NULL, tags text[] DEFAULT '{}') RETURNS void
AGENTCACHE_FUNCTION(agentcache_put) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    if (PG_ARGISNULL(1)) null_arg("key");
    if (PG_ARGISNULL(2)) null_arg("value");
    std::string_view ns = ns_value(fcinfo, 0);
    std::string_view key = key_value(fcinfo, 1);
    const Interval* ttl = PG_ARGISNULL(3) ? nullptr : PG_GETARG_INTERVAL_P(3);
    if (ttl) require_positive(ttl, "ttl");
    require_writable("put()");
    Jsonb* value = PG_GETARG_JSONB_P(2);
    // The key lock waits out a fetch computing this key (its value is stored
    // first, then overwritten by ours). It is given back once the row is
    // written: a fetch arriving before this transaction ends waits for it on
    // the row (wait_for_writer), and a transaction may put any number of keys
    // without filling the lock table.
    lock_key(ns, key);
    store(ns, key, value, ttl, PG_ARGISNULL(4) ? Datum(0) : PG_GETARG_DATUM(4), PG_ARGISNULL(4), true);
    unlock_key(ns, key);
    PG_RETURN_VOID();
  });
}

namespace {
Datum get_impl(FunctionCallInfo fcinfo, bool stale) {
  if (PG_ARGISNULL(0)) null_arg("namespace");
  if (PG_ARGISNULL(1)) null_arg("key");
  if (stale && PG_ARGISNULL(2)) null_arg("max_stale");
  std::string_view ns = ns_value(fcinfo, 0);
  std::string_view key = key_value(fcinfo, 1);
  int64 max_stale = -1;
  if (stale) {
    max_stale = interval_usecs(PG_GETARG_INTERVAL_P(2));
    if (max_stale < 0) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_stale must not be negative");
  }
  if (RecoveryInProgress()) {  // UNLOGGED contents are not readable on a standby: a miss
    add(ns, &shmem::TtlCounters::misses, 1, true);  // a standby has no writes to create the slot
    return PointerGetDatum(nullptr);
  }
  ReadResult r = read_entry(ns, key, max_stale, nullptr);
  if (r.found == Found::Miss) {
    add(ns, &shmem::TtlCounters::misses, 1);
    return PointerGetDatum(nullptr);
  }
  add(ns, r.found == Found::Fresh ? &shmem::TtlCounters::hits : &shmem::TtlCounters::stale_hits, 1);
  return JsonbPGetDatum(r.value);
}
}  // namespace

// get(namespace text, key text) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_get) {
  return pg::boundary([&]() -> Datum {
    Datum d = get_impl(fcinfo, false);
    if (d == PointerGetDatum(nullptr)) PG_RETURN_NULL();
    return d;
  });
}

// get_stale(namespace text, key text, max_stale interval) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_get_stale) {
  return pg::boundary([&]() -> Datum {
    Datum d = get_impl(fcinfo, true);
    if (d == PointerGetDatum(nullptr)) PG_RETURN_NULL();
    return d;
  });
}

namespace {

// Runs the fetch query (caller's privileges and search_path) on a fresh
// snapshot; returns its single value converted with to_jsonb (allocated in
// the caller's memory context), or nullptr for zero rows. Inside SPI.
Jsonb* run_fetch_query(const char* query) {
  SPIPlanPtr plan = SPI_prepare(query, 0, nullptr);
  if (plan == nullptr) elog(ERROR, "agentcache: could not prepare the fetch query: %s", SPI_result_code_string(SPI_result));
  if (list_length(SPI_plan_get_plan_sources(plan)) != 1)
    throw sql_error(ERRCODE_SYNTAX_ERROR, "the fetch query must be a single statement");
  int rc = SPI_execute_snapshot(plan, nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, false, true, 2);
  if (rc < 0) elog(ERROR, "agentcache: the fetch query failed: %s", SPI_result_code_string(rc));
  if (SPI_tuptable == nullptr || SPI_tuptable->tupdesc->natts != 1)
    throw sql_error(ERRCODE_DATATYPE_MISMATCH, "the fetch query must return exactly one column");
  if (SPI_processed > 1)
    throw sql_error(ERRCODE_CARDINALITY_VIOLATION, "the fetch query returned more than one row");
  if (SPI_processed == 0) return nullptr;
  bool isnull = false;
  Datum v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
  Oid type = SPI_gettypeid(SPI_tuptable->tupdesc, 1);
  if (isnull) return nullptr;
  Jsonb* j = nullptr;
  if (type == JSONBOID) {
    j = DatumGetJsonbP(v);
  } else {
    Oid argtypes[1] = {type};
    Datum args[1] = {v};
    rc = SPI_execute_with_args("SELECT pg_catalog.to_jsonb($1)", 1, argtypes, args, nullptr, true, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "agentcache: to_jsonb failed");
    j = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  }
  // into the caller's context: SPI_finish() frees everything SPI allocated
  auto* out = static_cast<Jsonb*>(SPI_palloc(VARSIZE(j)));
  std::memcpy(out, j, VARSIZE(j));
  return out;
}

}  // namespace

// fetch(namespace, key, query text, ttl interval DEFAULT NULL, stale_if_error interval DEFAULT NULL) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_fetch) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    if (PG_ARGISNULL(1)) null_arg("key");
    if (PG_ARGISNULL(2)) null_arg("query");
    std::string_view ns = ns_value(fcinfo, 0);
    std::string_view key = key_value(fcinfo, 1);
    const Interval* ttl = PG_ARGISNULL(3) ? nullptr : PG_GETARG_INTERVAL_P(3);
    if (ttl) require_positive(ttl, "ttl");
    int64 stale_us = -1;
    if (!PG_ARGISNULL(4)) {
      stale_us = interval_usecs(PG_GETARG_INTERVAL_P(4));
      if (stale_us < 0) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "stale_if_error must not be negative");
    }
    const bool standby = RecoveryInProgress();
    if (!standby) {
      ReadResult r = read_entry(ns, key, -1, nullptr);
      if (r.found == Found::Fresh) {
        add(ns, &shmem::TtlCounters::hits, 1);
        PG_RETURN_JSONB_P(r.value);
      }
    }
    // Single flight: queue on the key. The first runs the query; the others
    // wake when its transaction ends and read what it stored.
    lock_global(ShareLock);
    lock_namespace(ns, ShareLock);
    lock_key(ns, key);
    for (;;) {
      if (standby) break;
      ReadResult r = read_entry(ns, key, -1, GetLatestSnapshot());
      if (r.found == Found::Fresh) {
        add(ns, &shmem::TtlCounters::hits, 1);
        PG_RETURN_JSONB_P(r.value);
      }
      // A put of this key has not committed yet: its value, not ours, comes
      // next. Wait for it without the key lock (that transaction may put the
      // key again), then queue again.
      TransactionId writer = key_writer(ns, key);
      if (!TransactionIdIsValid(writer)) break;
      unlock_key(ns, key);
      XactLockTableWait(writer, nullptr, nullptr, XLTW_None);
      lock_key(ns, key);
    }
    add(ns, &shmem::TtlCounters::misses, 1, standby);  // misses on a standby count too

    char* query = text_to_cstring(PG_GETARG_TEXT_PP(2));
    Jsonb* value = nullptr;
    if (stale_us < 0) {
      spi_connect();
      value = run_fetch_query(query);
      SPI_finish();
    } else {
      // stale_if_error: run the query in a subtransaction so its failure can
      // be answered with a recently expired value
      MemoryContext cxt = CurrentMemoryContext;
      ErrorData* edata = pg::in_subtransaction([&] {
        spi_connect();
        if (Jsonb* v = run_fetch_query(query)) {
          value = static_cast<Jsonb*>(MemoryContextAlloc(cxt, VARSIZE(v)));
          std::memcpy(value, v, VARSIZE(v));
        }
        SPI_finish();
      });
      if (edata != nullptr) {
        ReadResult old = standby ? ReadResult{} : read_entry(ns, key, stale_us, nullptr);
        if (old.found == Found::Miss || old.value == nullptr) throw pg::pg_error(edata);
        add(ns, &shmem::TtlCounters::stale_hits, 1);
        ereport(WARNING, (errcode(ERRCODE_WARNING),
                          errmsg("agentcache.fetch served a stale value for key \"%.*s\" in namespace \"%.*s\"",
                                 static_cast<int>(key.size() > 200 ? 200 : key.size()), key.data(),
                                 static_cast<int>(ns.size()), ns.data()),
                          errdetail("The query failed: %s", edata->message)));
        PG_RETURN_JSONB_P(old.value);  // not stored again
      }
    }
    if (value == nullptr) PG_RETURN_NULL();  // zero rows: NULL, not cached
    if (!standby && !XactReadOnly) {
      spi_connect();
      store(ns, key, value, ttl, Datum(0), true, false);
      SPI_finish();
    }
    PG_RETURN_JSONB_P(value);
  });
}

// invalidate(namespace text, key text) RETURNS boolean
AGENTCACHE_FUNCTION(agentcache_invalidate) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    if (PG_ARGISNULL(1)) null_arg("key");
    std::string_view ns = ns_value(fcinfo, 0);
    std::string_view key = key_value(fcinfo, 1);
    require_writable("invalidate()");
    lock_key(ns, key);
    Oid types[2] = {TEXTOID, TEXTOID};
    Datum values[2] = {text_datum(ns), text_datum(key)};
    static SPIPlanPtr plan = nullptr;
    int64 n = delete_where(&plan, "DELETE FROM agentcache.entries WHERE namespace OPERATOR(pg_catalog.=) $1"
                           " AND key OPERATOR(pg_catalog.=) $2 RETURNING namespace",
                           2, types, values);
    PG_RETURN_BOOL(n > 0);
  });
}

// invalidate_tag(tag text) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_invalidate_tag) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("tag");
    require_writable("invalidate_tag()");
    Oid types[1] = {TEXTOID};
    Datum values[1] = {PG_GETARG_DATUM(0)};
    static SPIPlanPtr plan = nullptr;
    PG_RETURN_INT64(delete_where(&plan, "DELETE FROM agentcache.entries WHERE tags OPERATOR(pg_catalog.@>)"
                                 " ARRAY[$1]::pg_catalog.text[] RETURNING namespace",
                                 1, types, values));
  });
}

// clear(namespace text) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_clear) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    std::string_view ns = ns_value(fcinfo, 0);
    require_writable("clear()");
    lock_namespace(ns, ExclusiveLock);
    Oid types[1] = {TEXTOID};
    Datum values[1] = {text_datum(ns)};
    static SPIPlanPtr plan = nullptr;
    PG_RETURN_INT64(delete_where(&plan, "DELETE FROM agentcache.entries WHERE namespace OPERATOR(pg_catalog.=) $1"
                                 " RETURNING namespace",
                                 1, types, values));
  });
}

// clear_all() RETURNS bigint (admin)
AGENTCACHE_FUNCTION(agentcache_clear_all) {
  return pg::boundary([&]() -> Datum {
    require_writable("clear_all()");
    lock_global(ExclusiveLock);
    static SPIPlanPtr plan = nullptr;
    PG_RETURN_INT64(delete_where(&plan, "DELETE FROM agentcache.entries RETURNING namespace", 0, nullptr, nullptr));
  });
}

// configure_namespace(namespace text, default_ttl interval, max_entries bigint DEFAULT NULL) RETURNS void
AGENTCACHE_FUNCTION(agentcache_configure_namespace) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    std::string_view ns = ns_value(fcinfo, 0);
    if (!PG_ARGISNULL(1)) require_positive(PG_GETARG_INTERVAL_P(1), "default_ttl");
    if (!PG_ARGISNULL(2) && PG_GETARG_INT64(2) <= 0)
      throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_entries must be greater than zero");
    require_writable("configure_namespace()");
    g_ns_written = true;  // the trigger says so too; from here on no settings are cached
    spi_connect();
    Oid types[3] = {TEXTOID, INTERVALOID, INT8OID};
    Datum values[3] = {text_datum(ns), PG_ARGISNULL(1) ? Datum(0) : PG_GETARG_DATUM(1),
                       PG_ARGISNULL(2) ? Datum(0) : PG_GETARG_DATUM(2)};
    char nulls[3] = {' ', PG_ARGISNULL(1) ? 'n' : ' ', PG_ARGISNULL(2) ? 'n' : ' '};
    static SPIPlanPtr plan = nullptr;
    int rc = spi_as_owner(&plan, "INSERT INTO agentcache.namespaces (namespace, default_ttl, max_entries) VALUES ($1, $2, $3)"
                          " ON CONFLICT (namespace) DO UPDATE SET default_ttl = EXCLUDED.default_ttl,"
                          " max_entries = EXCLUDED.max_entries",
                          3, types, values, nulls, false);
    if (rc != SPI_OK_INSERT) elog(ERROR, "agentcache: configuring the namespace failed");
    find_slot(ns, true);
    if (!PG_ARGISNULL(2)) enforce_max(ns, PG_GETARG_INT64(2), "", false);  // lowering the limit evicts at once
    SPI_finish();
    PG_RETURN_VOID();
  });
}

// _namespaces_changed(): the AFTER … FOR EACH STATEMENT trigger (ENABLE ALWAYS)
// on agentcache.namespaces. Stops this transaction from caching settings and,
// for an UPDATE, DELETE or TRUNCATE, bumps the settings generation when it
// commits, so every backend re-reads. Such a transaction cannot be PREPAREd:
// COMMIT PREPARED would make the change visible with no bump.
AGENTCACHE_FUNCTION(agentcache_namespaces_changed) {
  return pg::boundary([&]() -> Datum {
    if (!CALLED_AS_TRIGGER(fcinfo))
      throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "_namespaces_changed() must be called as a trigger");
    auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    g_ns_written = true;
    // A new row was cached nowhere (a backend caches only rows it found), so
    // only UPDATE, DELETE and TRUNCATE make other backends re-read.
    if (!TRIGGER_FIRED_BY_INSERT(td->tg_event)) g_ns_changed = true;
    return PointerGetDatum(nullptr);
  });
}

namespace agentcache::ttl {
namespace {
void xact_callback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_PRE_PREPARE:
      if (g_ns_changed)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot PREPARE a transaction that changed agentcache.namespaces"),
                        errdetail("Backends learn of namespace settings when the changing transaction commits in this session.")));
      break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      if (g_ns_changed) {
        if (pg_atomic_uint64* generation = shmem::ttl_settings_generation()) pg_atomic_fetch_add_u64(generation, 1);
        forget_settings();
      }
      g_ns_written = g_ns_changed = false;
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      g_ns_written = g_ns_changed = false;
      break;
    default:
      break;
  }
}
}  // namespace

void register_callbacks() { RegisterXactCallback(xact_callback, nullptr); }
}  // namespace agentcache::ttl

// invalidate_trigger(): AFTER INSERT OR UPDATE OR DELETE … FOR EACH ROW
//   EXECUTE FUNCTION agentcache.invalidate_trigger('tenant:{tenant_id}', …)
AGENTCACHE_FUNCTION(agentcache_invalidate_trigger) {
  return pg::boundary([&]() -> Datum {
    if (!CALLED_AS_TRIGGER(fcinfo))
      throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "invalidate_trigger() must be called as a trigger");
    auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
      throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                      "invalidate_trigger() must be used as a FOR EACH ROW trigger");
    if (!TRIGGER_FIRED_AFTER(td->tg_event))  // a BEFORE trigger returning NULL would cancel the row
      throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "invalidate_trigger() must be fired AFTER the change");
    TupleDesc desc = td->tg_relation->rd_att;
    HeapTuple rows[2] = {nullptr, nullptr};
    int nrows = 0;
    if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) rows[nrows++] = td->tg_trigtuple;
    if (TRIGGER_FIRED_BY_DELETE(td->tg_event)) rows[nrows++] = td->tg_trigtuple;
    if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
      rows[nrows++] = td->tg_trigtuple;
      rows[nrows++] = td->tg_newtuple;
    }
    const int ntemplates = td->tg_trigger->tgnargs;
    Datum* tags = static_cast<Datum*>(palloc(sizeof(Datum) * (ntemplates * 2 + 1)));
    int ntags = 0;
    for (int t = 0; t < ntemplates; ++t) {
      std::string error;
      auto tmpl = core::TagTemplate::parse(td->tg_trigger->tgargs[t], &error);
      if (!tmpl) {
        char msg[300];
        pg_snprintf(msg, sizeof msg, "invalid tag template \"%s\": %s", td->tg_trigger->tgargs[t], error.c_str());
        throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, msg);
      }
      for (const auto& part : tmpl->parts()) {
        if (part.is_column && SPI_fnumber(desc, part.text.c_str()) <= 0) {
          char msg[200];
          pg_snprintf(msg, sizeof msg, "column \"%s\" of tag template \"%s\" does not exist", part.text.c_str(),
                      td->tg_trigger->tgargs[t]);
          throw sql_error(ERRCODE_UNDEFINED_COLUMN, msg);
        }
      }
      for (int r = 0; r < nrows; ++r) {
        HeapTuple row = rows[r];
        // C++ strings are alive here: the calls that can raise go through pg_try
        std::optional<std::string> tag = tmpl->render([&](const std::string& col) -> std::optional<std::string> {
          const int attno = SPI_fnumber(desc, col.c_str());
          char* s = nullptr;
          pg::pg_try([&] { s = SPI_getvalue(row, desc, attno); });  // the type's text output; NULL -> nullptr
          if (s == nullptr) return std::nullopt;
          std::string v(s);
          pfree(s);
          return v;
        });
        if (!tag) continue;
        bool dup = false;
        for (int i = 0; i < ntags && !dup; ++i) dup = text_view(DatumGetTextPP(tags[i])) == *tag;
        if (!dup) pg::pg_try([&] { tags[ntags++] = text_datum(*tag); });
      }
    }
    if (ntags > 0) {
      ArrayType* arr = construct_array(tags, ntags, TEXTOID, -1, false, TYPALIGN_INT);
      Oid types[1] = {TEXTARRAYOID};
      Datum values[1] = {PointerGetDatum(arr)};
      static SPIPlanPtr plan = nullptr;
      (void)delete_where(&plan, "DELETE FROM agentcache.entries WHERE tags OPERATOR(pg_catalog.&&) $1 RETURNING namespace",
                         1, types, values);
    }
    return PointerGetDatum(nullptr);
  });
}
