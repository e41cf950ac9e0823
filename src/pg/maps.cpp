// Prewarmed lookup maps: agentcache.maps (catalog) and shared-memory copies
// built by core::MapStore. lookup() reads shared memory only.
#include "pg/args.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/maps.hpp"
#include "pg/shmem.hpp"
#include "pg/worker.hpp"

#include <cstring>
#include <string_view>

using agentcache::core::MapEntryIn;
using agentcache::core::MapStore;
using agentcache::pg::LWLockGuard;
using agentcache::pg::null_arg;
using agentcache::pg::sql_error;
using agentcache::pg::text_view;

namespace agentcache::maps {

namespace {

shmem::MapStatus* status_slot(uint32 db, const char* name, bool create) noexcept {
  shmem::WorkerState* w = shmem::worker_state();
  shmem::MapStatus* free_slot = nullptr;
  for (auto& st : w->status) {
    if (st.used && st.db == db && std::strcmp(st.name, name) == 0) return &st;
    if (!st.used && free_slot == nullptr) free_slot = &st;
  }
  if (!create || free_slot == nullptr) return nullptr;
  std::memset(free_slot, 0, sizeof *free_slot);
  free_slot->used = true;
  free_slot->db = db;
  strlcpy(free_slot->name, name, sizeof free_slot->name);
  return free_slot;
}

void record_success(uint32 db, const char* name, int64 entries, bool keep_definer) noexcept {
  LWLockGuard g(shmem::worker_lock(), LW_EXCLUSIVE);
  shmem::MapStatus* st = status_slot(db, name, true);
  if (st == nullptr) return;
  st->last_error[0] = '\0';
  st->last_refresh = st->last_attempt = GetCurrentTimestamp();
  st->entries = entries;
  if (!keep_definer) st->definer_xid = InvalidTransactionId;
  shmem::worker_state()->last_refresh = st->last_refresh;
}


// The map's rows, copied out of SPI into the caller's memory context.
struct Rows {
  MapEntryIn* v;
  std::size_t n;
};

Rows run_query(const MapDef& d) {
  Oid save_user;
  int save_sec;
  GetUserIdAndSecContext(&save_user, &save_sec);
  SetUserIdAndSecContext(d.owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
  int nest = NewGUCNestLevel();
  (void)set_config_option("search_path", d.search_path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                          false);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
  int rc = SPI_execute(d.query, true, 0);
  if (rc != SPI_OK_SELECT)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("the query of map \"%s\" must be a SELECT returning (key text, value jsonb)", d.name)));
  TupleDesc td = SPI_tuptable->tupdesc;
  Oid kt = td->natts >= 1 ? TupleDescAttr(td, 0)->atttypid : InvalidOid;
  Oid vt = td->natts >= 2 ? TupleDescAttr(td, 1)->atttypid : InvalidOid;
  if (td->natts != 2 || (kt != TEXTOID && kt != VARCHAROID) || (vt != JSONBOID && vt != JSONOID))
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("the query of map \"%s\" must return exactly two columns (key text, value jsonb)", d.name),
                    errdetail("It returns %d column(s).", td->natts)));
  Rows rows;
  rows.v = static_cast<MapEntryIn*>(SPI_palloc(sizeof(MapEntryIn) * (SPI_processed ? SPI_processed : 1)));
  rows.n = 0;
  for (uint64 i = 0; i < SPI_processed; ++i) {
    HeapTuple tup = SPI_tuptable->vals[i];
    bool knull = false, vnull = false;
    Datum k = SPI_getbinval(tup, td, 1, &knull);
    if (knull) continue;  // rows with a NULL key are skipped
    Datum v = SPI_getbinval(tup, td, 2, &vnull);
    std::string_view key = text_view(DatumGetTextPP(k));
    char* kc = static_cast<char*>(SPI_palloc(key.size() + 1));
    std::memcpy(kc, key.data(), key.size());
    MapEntryIn& e = *new (&rows.v[rows.n++]) MapEntryIn();
    e.key = {kc, key.size()};
    if (!vnull) {
      if (vt == JSONOID) v = DirectFunctionCall1(jsonb_in, CStringGetDatum(TextDatumGetCString(v)));
      Jsonb* jb = DatumGetJsonbP(v);
      char* vc = static_cast<char*>(SPI_palloc(VARSIZE(jb)));
      std::memcpy(vc, jb, VARSIZE(jb));
      e.value = {vc, VARSIZE(jb)};
    }
  }
  SPI_finish();
  AtEOXact_GUC(true, nest);
  SetUserIdAndSecContext(save_user, save_sec);
  return rows;
}

MapStore* store() { return shmem::maps(); }

}  // namespace

Oid extension_owner() {
  Oid nsp = get_namespace_oid("agentcache", false);
  HeapTuple tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
  if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for schema agentcache");
  Oid owner = reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tup))->nspowner;
  ReleaseSysCache(tup);
  return owner;
}

namespace {
TransactionId definer_xid(uint32 db, const char* name);
}

int64 reload(const MapDef& d, Snapshot catalog, bool defining) {
  // The worker refreshes from a catalog it read at `catalog`. A definition
  // that snapshot does not see (still running, or committed since) has
  // installed, or is about to install, the new query's rows: the old query's
  // must not go over them. define_map marks its transaction before it
  // installs, and the mark is checked again under the build lock.
  TransactionId seen = InvalidTransactionId;
  if (catalog != nullptr) {
    seen = definer_xid(MyDatabaseId, d.name);
    if (TransactionIdIsValid(seen) && XidInMVCCSnapshot(seen, catalog) && !TransactionIdDidAbort(seen)) return -1;
  }
  Rows rows = run_query(d);
  MapStore::Offset version = core::Arena::kNull;
  std::size_t dup = 0;
  MapStore::Build r;
  {
    LWLockGuard g(shmem::map_build_lock(), LW_EXCLUSIVE);
    r = store()->build(rows.v, rows.n, &version, &dup);
  }
  if (r == MapStore::Build::DuplicateKey) {
    char msg[200];
    pg_snprintf(msg, sizeof msg, "duplicate key in map \"%s\"", d.name);
    char detail[200];
    std::string_view k = rows.v[dup].key;
    pg_snprintf(detail, sizeof detail, "Key \"%.*s\" appears more than once; the previous version keeps serving.",
                static_cast<int>(k.size() > 100 ? 100 : k.size()), k.data());
    throw sql_error(ERRCODE_UNIQUE_VIOLATION, msg, detail);
  }
  if (r == MapStore::Build::OutOfMemory) {
    char msg[200], detail[300];
    pg_snprintf(msg, sizeof msg, "map \"%s\" does not fit in agentcache.map_memory", d.name);
    pg_snprintf(detail, sizeof detail,
                "It needs %zu bytes beside the maps in use; %zu of %zu bytes are free. The previous version keeps serving.",
                MapStore::version_bytes(rows.v, rows.n), store()->capacity() - store()->used_bytes(),
                store()->capacity());
    throw sql_error(ERRCODE_OUT_OF_MEMORY, msg, detail, "Raise agentcache.map_memory (needs a restart).");
  }
  MapStore::Offset old = core::Arena::kNull;
  bool ok;
  {
    LWLockGuard b(shmem::map_build_lock(), LW_EXCLUSIVE);
    if (catalog != nullptr && definer_xid(MyDatabaseId, d.name) != seen) {
      store()->free_version(version);  // redefined meanwhile: its rows stay
      return -1;
    }
    {
      LWLockGuard rd(shmem::map_read_lock(), LW_EXCLUSIVE);
      ok = store()->install(MyDatabaseId, d.name, version, &old);
    }
    store()->free_version(ok ? old : version);
  }
  if (!ok)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "too many lookup maps",
                    "agentcache keeps at most 64 maps in shared memory.");
  // define_map's own mark stays until its transaction ends (see above)
  record_success(MyDatabaseId, d.name, static_cast<int64>(rows.n), defining);
  return static_cast<int64>(rows.n);
}

void record_attempt(uint32 db, const char* name) noexcept {
  LWLockGuard g(shmem::worker_lock(), LW_EXCLUSIVE);
  shmem::MapStatus* st = status_slot(db, name, false);
  if (st != nullptr) st->last_attempt = GetCurrentTimestamp();
}

void record_error(uint32 db, const char* name, const char* message) noexcept {
  LWLockGuard g(shmem::worker_lock(), LW_EXCLUSIVE);
  shmem::MapStatus* st = status_slot(db, name, true);
  if (st == nullptr) return;
  strlcpy(st->last_error, message ? message : "error", sizeof st->last_error);
  st->last_attempt = GetCurrentTimestamp();
}

namespace {
// A definer's transaction state. The xid is copied under the worker lock;
// its state is read afterwards (the clog lookup may do I/O and, in theory,
// raise: never with an LWLock held).
enum class Definer { None, Running, Committed, Aborted };
TransactionId definer_xid(uint32 db, const char* name) {
  LWLockGuard g(shmem::worker_lock(), LW_SHARED);
  shmem::MapStatus* st = status_slot(db, name, false);
  return st != nullptr ? st->definer_xid : InvalidTransactionId;
}
Definer definer_state(uint32 db, const char* name) {
  const TransactionId xid = definer_xid(db, name);
  if (!TransactionIdIsValid(xid)) return Definer::None;
  if (TransactionIdIsInProgress(xid)) return Definer::Running;
  return TransactionIdDidCommit(xid) ? Definer::Committed : Definer::Aborted;
}
}  // namespace

bool definer_aborted(uint32 db, const char* name) { return definer_state(db, name) == Definer::Aborted; }

void mark_defined_here(uint32 db, const char* name) {
  TransactionId xid = GetTopTransactionId();  // may assign one: before taking the lock
  LWLockGuard g(shmem::worker_lock(), LW_EXCLUSIVE);
  shmem::MapStatus* st = status_slot(db, name, true);
  if (st != nullptr) st->definer_xid = xid;
}

void forget_status(uint32 db, const char* name) noexcept {
  LWLockGuard g(shmem::worker_lock(), LW_EXCLUSIVE);
  shmem::MapStatus* st = status_slot(db, name, false);
  if (st != nullptr) st->used = false;
}

void drop_others(const char* const* keep, int n) {
  MapStore* s = store();
  char names[MapStore::kMaxMaps][MapStore::kMaxName + 1];
  int ndrop = 0;
  {
    LWLockGuard rd(shmem::map_read_lock(), LW_SHARED);
    for (int slot = 0; slot < static_cast<int>(MapStore::kMaxMaps); ++slot) {
      if (!s->slot_used(slot) || s->slot_db(slot) != MyDatabaseId) continue;
      std::string_view name = s->slot_name(slot);
      bool wanted = false;
      for (int i = 0; i < n && !wanted; ++i) wanted = name == keep[i];
      if (wanted) continue;
      std::memcpy(names[ndrop], name.data(), name.size());
      names[ndrop++][name.size()] = '\0';
    }
  }
  for (int i = 0; i < ndrop; ++i) {
    const Definer d = definer_state(MyDatabaseId, names[i]);
    if (d == Definer::Running || d == Definer::Committed) continue;  // newer than our catalog snapshot
    MapStore::Offset old = core::Arena::kNull;
    {
      LWLockGuard b(shmem::map_build_lock(), LW_EXCLUSIVE);
      {
        LWLockGuard rd(shmem::map_read_lock(), LW_EXCLUSIVE);
        s->remove(MyDatabaseId, names[i], &old);
      }
      s->free_version(old);
    }
    forget_status(MyDatabaseId, names[i]);
  }
}

void reset_db() noexcept {
  MapStore* s = store();
  if (s == nullptr) return;
  {
    LWLockGuard b(shmem::map_build_lock(), LW_EXCLUSIVE);
    LWLockGuard rd(shmem::map_read_lock(), LW_EXCLUSIVE);
    s->remove_all(MyDatabaseId);
  }
  LWLockGuard g(shmem::worker_lock(), LW_EXCLUSIVE);
  for (auto& st : shmem::worker_state()->status)
    if (st.used && st.db == MyDatabaseId) st.used = false;
}

void reset_stats() noexcept {
  if (store() != nullptr) store()->reset_counters();
}

bool loaded(uint32 db, const char* name) noexcept {
  LWLockGuard rd(shmem::map_read_lock(), LW_SHARED);
  return store()->find(db, name) != MapStore::kNoSlot;
}

void timing(uint32 db, const char* name, TimestampTz* last_ok, TimestampTz* last_try) noexcept {
  LWLockGuard g(shmem::worker_lock(), LW_SHARED);
  shmem::MapStatus* st = status_slot(db, name, false);
  *last_ok = st ? st->last_refresh : 0;
  *last_try = st ? st->last_attempt : 0;
}

}  // namespace agentcache::maps

// ====================================================================== SQL functions

using namespace agentcache;

namespace {

constexpr std::size_t kMaxKeyBytes = 64 * 1024;

std::string_view map_name_arg(FunctionCallInfo fcinfo, int i) {
  if (PG_ARGISNULL(i)) null_arg("name");
  std::string_view name = text_view(PG_GETARG_TEXT_PP(i));
  if (name.empty()) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "map name must not be empty");
  if (name.size() > MapStore::kMaxName)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "map name is too long", "The limit is 63 bytes.");
  if (std::memchr(name.data(), '\0', name.size()) != nullptr)
    throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid map name");
  return name;
}

char* cstr(std::string_view s) { return pnstrdup(s.data(), s.size()); }

// Catalog row of a map, read as the extension owner (app roles have no
// privileges on agentcache.maps).
struct CatalogRow {
  bool found;
  maps::MapDef def;
};

CatalogRow catalog_get(const char* name, bool for_update) {
  CatalogRow row{};
  Oid save_user;
  int save_sec;
  GetUserIdAndSecContext(&save_user, &save_sec);
  SetUserIdAndSecContext(maps::extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
  Oid types[1] = {TEXTOID};
  Datum values[1] = {CStringGetTextDatum(name)};
  int rc = SPI_execute_with_args(for_update ? "SELECT query, owner::pg_catalog.oid, search_path FROM agentcache.maps"
                                              " WHERE name OPERATOR(pg_catalog.=) $1 FOR UPDATE"
                                            : "SELECT query, owner::pg_catalog.oid, search_path FROM agentcache.maps"
                                              " WHERE name OPERATOR(pg_catalog.=) $1",
                                 1, types, values, nullptr, false, 1);
  if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: reading agentcache.maps failed");
  if (SPI_processed == 1) {
    HeapTuple tup = SPI_tuptable->vals[0];
    TupleDesc td = SPI_tuptable->tupdesc;
    bool isnull = false;
    row.found = true;
    char* nm = static_cast<char*>(SPI_palloc(std::strlen(name) + 1));
    std::strcpy(nm, name);
    row.def.name = nm;
    char* q = SPI_getvalue(tup, td, 1);
    char* qc = static_cast<char*>(SPI_palloc(std::strlen(q) + 1));
    std::strcpy(qc, q);
    row.def.query = qc;
    row.def.owner = DatumGetObjectId(SPI_getbinval(tup, td, 2, &isnull));
    char* sp = SPI_getvalue(tup, td, 3);
    char* spc = static_cast<char*>(SPI_palloc(std::strlen(sp) + 1));
    std::strcpy(spc, sp);
    row.def.search_path = spc;
  }
  SPI_finish();
  SetUserIdAndSecContext(save_user, save_sec);
  return row;
}

// Writes the catalog as the extension owner.
void catalog_exec(const char* sql, int nargs, Oid* types, Datum* values, const char* nulls) {
  Oid save_user;
  int save_sec;
  GetUserIdAndSecContext(&save_user, &save_sec);
  SetUserIdAndSecContext(maps::extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
  int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
  if (rc < 0) elog(ERROR, "agentcache: updating agentcache.maps failed: %s", SPI_result_code_string(rc));
  SPI_finish();
  SetUserIdAndSecContext(save_user, save_sec);
}

void require_owner(const maps::MapDef& d) {
  if (!has_privs_of_role(GetUserId(), d.owner)) {
    char msg[160];
    pg_snprintf(msg, sizeof msg, "must be owner of map \"%s\"", d.name);
    throw sql_error(ERRCODE_INSUFFICIENT_PRIVILEGE, msg);
  }
}

[[noreturn]] void unknown_map(const char* name) {
  char msg[160];
  pg_snprintf(msg, sizeof msg, "map \"%s\" does not exist", name);
  throw sql_error(ERRCODE_UNDEFINED_OBJECT, msg, nullptr, "Define it with agentcache.define_map().");
}

// define_map/drop_map change shared memory at once and the catalog at commit.
// When such a transaction ends, the worker reconciles the two (drops maps
// the catalog lacks, loads those memory lacks): after a rollback, and after a
// commit in case its cycle ran in between and dropped a not-yet-committed map.
bool g_map_ddl = false;
void map_xact_callback(XactEvent event, void*) {
  if ((event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT) && g_map_ddl) worker::request_reconcile();
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE) g_map_ddl = false;
}

// Maps named by refresh_trigger in this transaction: signalled at commit.
struct PendingRefresh {
  PendingRefresh* next;
  char name[MapStore::kMaxName + 1];
};
PendingRefresh* g_refresh = nullptr;
void refresh_xact_callback(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT)
    for (PendingRefresh* r = g_refresh; r; r = r->next) worker::request_refresh(MyDatabaseId, r->name);
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE) g_refresh = nullptr;
}
bool g_callbacks = false;
void ensure_callbacks() {
  if (g_callbacks) return;
  RegisterXactCallback(map_xact_callback, nullptr);
  RegisterXactCallback(refresh_xact_callback, nullptr);
  g_callbacks = true;
}

// Scratch for copying a value out under the read lock without allocating.
char* g_value_buf = nullptr;
std::size_t g_value_cap = 0;

// A map lookup from shared memory. missing_ok: no map (or no preload) gives
// NULL instead of 55000/42704 (inbound's route).
Datum lookup_impl(const char* what, std::string_view name, std::string_view key, bool missing_ok = false) {
  if (missing_ok && shmem::maps() == nullptr) return PointerGetDatum(nullptr);
  shmem::require(what);
  MapStore* s = shmem::maps();
  char namebuf[MapStore::kMaxName + 1];
  std::memcpy(namebuf, name.data(), name.size());
  namebuf[name.size()] = '\0';
  for (;;) {
    std::size_t need = 0;
    bool found_map = false, found_key = false;
    {
      LWLockGuard rd(shmem::map_read_lock(), LW_SHARED);
      int slot = s->find(MyDatabaseId, name);
      if (slot != MapStore::kNoSlot) {
        found_map = true;
        std::string_view v = s->lookup(slot, key);
        if (v.data() != nullptr && !v.empty()) {
          found_key = true;
          need = v.size();
          if (need <= g_value_cap) std::memcpy(g_value_buf, v.data(), v.size());
        }
      }
    }
    if (!found_map) {
      if (missing_ok) return PointerGetDatum(nullptr);
      unknown_map(namebuf);
    }
    if (!found_key) return PointerGetDatum(nullptr);
    if (need > g_value_cap) {
      if (g_value_buf) pfree(g_value_buf);
      g_value_buf = nullptr;
      g_value_cap = 0;
      g_value_buf = static_cast<char*>(MemoryContextAlloc(TopMemoryContext, need * 2));
      g_value_cap = need * 2;
      continue;  // the map may have been swapped meanwhile: look again
    }
    char* out = static_cast<char*>(palloc(need));
    std::memcpy(out, g_value_buf, need);
    return PointerGetDatum(out);
  }
}

}  // namespace

// define_map(name text, query text, refresh interval DEFAULT '1 hour') RETURNS void
AGENTCACHE_FUNCTION(agentcache_define_map) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("name");
    if (PG_ARGISNULL(1)) null_arg("query");
    if (PG_ARGISNULL(2)) null_arg("refresh");
    std::string_view name = map_name_arg(fcinfo, 0);
    char* query = text_to_cstring(PG_GETARG_TEXT_PP(1));
    Interval* refresh = PG_GETARG_INTERVAL_P(2);
    if ((static_cast<int64>(refresh->month) * DAYS_PER_MONTH + refresh->day) * USECS_PER_DAY + refresh->time <= 0)
      throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "refresh must be a positive interval");
    shmem::require("define_map()");
    PreventCommandIfReadOnly("define_map()");
    ensure_callbacks();
    char* nm = cstr(name);
    CatalogRow existing = catalog_get(nm, true);
    maps::MapDef d;
    d.name = nm;
    d.query = query;
    d.owner = existing.found ? existing.def.owner : GetUserId();  // replacing keeps the original owner
    if (existing.found) require_owner(existing.def);
    d.search_path = pstrdup(GetConfigOption("search_path", false, false));
    g_map_ddl = true;
    maps::mark_defined_here(MyDatabaseId, nm);  // before installing: see reload()
    int64 entries = maps::reload(d, nullptr, true);
    Oid types[6] = {TEXTOID, TEXTOID, INTERVALOID, OIDOID, TEXTOID, INT8OID};
    Datum values[6] = {CStringGetTextDatum(nm), CStringGetTextDatum(query), PG_GETARG_DATUM(2),
                       ObjectIdGetDatum(d.owner), CStringGetTextDatum(d.search_path), Int64GetDatum(entries)};
    catalog_exec(
        "INSERT INTO agentcache.maps AS m (name, query, refresh, owner, search_path, last_refresh, last_error, entries)"
        " VALUES ($1, $2, $3, $4::pg_catalog.regrole, $5, pg_catalog.now(), NULL, $6)"
        " ON CONFLICT (name) DO UPDATE SET query = EXCLUDED.query, refresh = EXCLUDED.refresh,"
        " search_path = EXCLUDED.search_path, last_refresh = EXCLUDED.last_refresh, last_error = NULL,"
        " entries = EXCLUDED.entries",
        6, types, values, nullptr);
    PG_RETURN_VOID();
  });
}

// lookup(name text, key text) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_lookup) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("name");
    if (PG_ARGISNULL(1)) null_arg("key");
    std::string_view name = text_view(PG_GETARG_TEXT_PP(0));
    std::string_view key = text_view(PG_GETARG_TEXT_PP(1));
    if (name.size() > MapStore::kMaxName)
      throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "map name is too long", "The limit is 63 bytes.");
    if (key.size() > kMaxKeyBytes) throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "lookup key is too long");
    Datum d = lookup_impl("lookup()", name, key);
    if (d == PointerGetDatum(nullptr)) PG_RETURN_NULL();
    return d;
  });
}

// resolve_instance(instance text) RETURNS jsonb: lookup('instances', instance)
AGENTCACHE_FUNCTION(agentcache_resolve_instance) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("instance");
    std::string_view key = text_view(PG_GETARG_TEXT_PP(0));
    if (key.size() > kMaxKeyBytes) throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "instance is too long");
    Datum d = lookup_impl("resolve_instance()", "instances", key);
    if (d == PointerGetDatum(nullptr)) PG_RETURN_NULL();
    return d;
  });
}

// refresh_map(name text) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_refresh_map) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("name");
    std::string_view name = map_name_arg(fcinfo, 0);
    shmem::require("refresh_map()");
    char* nm = cstr(name);
    CatalogRow row = catalog_get(nm, false);
    if (!row.found) unknown_map(nm);
    require_owner(row.def);
    int64 entries = maps::reload(row.def);
    if (!RecoveryInProgress() && !XactReadOnly) {
      Oid types[2] = {TEXTOID, INT8OID};
      Datum values[2] = {CStringGetTextDatum(nm), Int64GetDatum(entries)};
      catalog_exec("UPDATE agentcache.maps SET last_refresh = pg_catalog.now(), last_error = NULL, entries = $2"
                   " WHERE name OPERATOR(pg_catalog.=) $1",
                   2, types, values, nullptr);
    }
    PG_RETURN_INT64(entries);
  });
}

// drop_map(name text) RETURNS boolean
AGENTCACHE_FUNCTION(agentcache_drop_map) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("name");
    std::string_view name = map_name_arg(fcinfo, 0);
    PreventCommandIfReadOnly("drop_map()");  // works without preload: the catalog row goes
    ensure_callbacks();
    char* nm = cstr(name);
    CatalogRow row = catalog_get(nm, true);
    if (!row.found) PG_RETURN_BOOL(false);
    require_owner(row.def);
    Oid types[1] = {TEXTOID};
    Datum values[1] = {CStringGetTextDatum(nm)};
    catalog_exec("DELETE FROM agentcache.maps WHERE name OPERATOR(pg_catalog.=) $1", 1, types, values, nullptr);
    g_map_ddl = true;
    MapStore* s = shmem::maps();
    if (s == nullptr) PG_RETURN_BOOL(true);
    MapStore::Offset old = core::Arena::kNull;
    {
      LWLockGuard b(shmem::map_build_lock(), LW_EXCLUSIVE);
      {
        LWLockGuard rd(shmem::map_read_lock(), LW_EXCLUSIVE);
        s->remove(MyDatabaseId, nm, &old);
      }
      s->free_version(old);
    }
    maps::forget_status(MyDatabaseId, nm);
    PG_RETURN_BOOL(true);
  });
}

// refresh_trigger(): AFTER … EXECUTE FUNCTION agentcache.refresh_trigger('map', …)
// Row- or statement-level; asks the worker to reload the named maps when the
// transaction commits (never on rollback).
AGENTCACHE_FUNCTION(agentcache_refresh_trigger) {
  return pg::boundary([&]() -> Datum {
    if (!CALLED_AS_TRIGGER(fcinfo))
      throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "refresh_trigger() must be called as a trigger");
    auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (td->tg_trigger->tgnargs < 1)
      throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "refresh_trigger() needs the name of a map as argument");
    ensure_callbacks();
    for (int i = 0; i < td->tg_trigger->tgnargs; ++i) {
      const char* name = td->tg_trigger->tgargs[i];
      if (std::strlen(name) > MapStore::kMaxName) continue;
      bool seen = false;
      for (PendingRefresh* r = g_refresh; r && !seen; r = r->next) seen = std::strcmp(r->name, name) == 0;
      if (seen) continue;
      auto* r = static_cast<PendingRefresh*>(MemoryContextAllocZero(TopTransactionContext, sizeof(PendingRefresh)));
      strlcpy(r->name, name, sizeof r->name);
      r->next = g_refresh;
      g_refresh = r;
    }
    if (TRIGGER_FIRED_FOR_ROW(td->tg_event) && !TRIGGER_FIRED_BY_DELETE(td->tg_event))
      return PointerGetDatum(td->tg_newtuple ? td->tg_newtuple : td->tg_trigtuple);
    return PointerGetDatum(td->tg_trigtuple);
  });
}

namespace agentcache::maps {
Jsonb* route(std::string_view instance) {
  Datum d = lookup_impl("inbound()", "instances", instance, true);
  return d == PointerGetDatum(nullptr) ? nullptr : DatumGetJsonbP(d);
}
}  // namespace agentcache::maps
