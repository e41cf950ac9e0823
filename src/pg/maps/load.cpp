// Loading maps into shared memory (see load.hpp and the protocol in tier.cpp).
#include "pg/maps/load.hpp"

#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/roles.hpp"
#include "pg/common/spi.hpp"
#include "pg/maps/status.hpp"

#include <cstring>

using agentcache::core::MapEntryIn;
using agentcache::core::MapStore;
using agentcache::pg::LWLockGuard;
using agentcache::pg::sql_error;

namespace agentcache::maps::load {

namespace {

// The map's rows, copied out of SPI into the caller's memory context.
struct Rows {
  MapEntryIn* v;
  std::size_t n;
  uint64 snapshot;  // the completion count of the snapshot the query ran on
};

void check_shape(const MapDef& d, TupleDesc td, Oid* value_type) {
  const Oid kt = td->natts >= 1 ? TupleDescAttr(td, 0)->atttypid : InvalidOid;
  const Oid vt = td->natts >= 2 ? TupleDescAttr(td, 1)->atttypid : InvalidOid;
  if (td->natts != 2 || (kt != TEXTOID && kt != VARCHAROID) || (vt != JSONBOID && vt != JSONOID))
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("the query of map \"%s\" must return exactly two columns (key text, value jsonb)", d.name),
                    errdetail("It returns %d column(s).", td->natts)));
  *value_type = vt;
}

// Copies the SPI result (rows with a NULL key are skipped).
Rows copy_rows(Oid value_type) {
  TupleDesc td = SPI_tuptable->tupdesc;
  Rows rows{static_cast<MapEntryIn*>(SPI_palloc(sizeof(MapEntryIn) * (SPI_processed ? SPI_processed : 1))), 0, 0};
  for (uint64 i = 0; i < SPI_processed; ++i) {
    HeapTuple tup = SPI_tuptable->vals[i];
    bool knull = false, vnull = false;
    Datum k = SPI_getbinval(tup, td, 1, &knull);
    if (knull) continue;
    Datum v = SPI_getbinval(tup, td, 2, &vnull);
    const std::string_view key = pg::text_view(DatumGetTextPP(k));
    char* kc = static_cast<char*>(SPI_palloc(key.size() + 1));
    std::memcpy(kc, key.data(), key.size());
    MapEntryIn& e = *new (&rows.v[rows.n++]) MapEntryIn();
    e.key = {kc, key.size()};
    if (!vnull) {
      if (value_type == JSONOID) v = DirectFunctionCall1(jsonb_in, CStringGetDatum(TextDatumGetCString(v)));
      Jsonb* jb = DatumGetJsonbP(v);
      char* vc = static_cast<char*>(SPI_palloc(VARSIZE(jb)));
      std::memcpy(vc, jb, VARSIZE(jb));
      e.value = {vc, VARSIZE(jb)};
    }
  }
  return rows;
}

// The map's stored search_path with pg_temp searched last: otherwise the
// session's temporary schema comes first implicitly, and anyone able to
// refresh the map (a member of its owner's role) could shadow its tables
// with temp tables of their own. An explicit pg_temp moves to the end too.
const char* temp_last(const char* search_path) {
  char* copy = pstrdup(search_path);
  List* names = NIL;
  if (!SplitIdentifierString(copy, ',', &names))
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid search_path of a map: %s", search_path)));
  StringInfoData out;
  initStringInfo(&out);
  ListCell* lc;
  foreach (lc, names) {
    const char* name = static_cast<const char*>(lfirst(lc));
    if (std::strncmp(name, "pg_temp", 7) == 0 && (name[7] == '\0' || name[7] == '_')) continue;
    appendStringInfo(&out, "%s, ", quote_identifier(name));
  }
  appendStringInfoString(&out, "pg_temp");
  return out.data;
}

// The order of the snapshot a load ran on: PostgreSQL's count of completed
// transactions when the snapshot was taken (a later snapshot never counts
// fewer, and sees every transaction an earlier one sees). Only a snapshot
// fresh from GetSnapshotData carries it: CopySnapshot (RegisterSnapshot,
// PushActiveSnapshot, a REPEATABLE READ transaction's snapshot) sets it to
// 0, read here as "unknown".
uint64 completion_count_of(Snapshot fresh) { return fresh->copied ? 0 : fresh->snapXactCompletionCount; }

// The query's result as the committed data stands now: a fresh snapshot that
// does not see this transaction's own uncommitted changes (its command id
// set back to the first one), so refresh_map run in a transaction that
// changed the source tables publishes what other sessions would see.
int execute_committed(const char* query, uint64* completion_count) {
  SPIPlanPtr plan = SPI_prepare(query, 0, nullptr);
  if (plan == nullptr)
    elog(ERROR, "agentcache: could not prepare a map's query: %s", SPI_result_code_string(SPI_result));
  Snapshot latest = GetLatestSnapshot();
  *completion_count = completion_count_of(latest);  // before RegisterSnapshot's copy zeroes it
  Snapshot snap = RegisterSnapshot(latest);
  snap->curcid = FirstCommandId;
  const int rc = SPI_execute_snapshot(plan, nullptr, nullptr, snap, InvalidSnapshot, true, false, 0);
  UnregisterSnapshot(snap);
  SPI_freeplan(plan);
  return rc;
}

// Runs the query as the map's owner (restricted: no owner-changing side
// effects) with the map's search_path, pg_temp last; on committed data only
// unless `own_changes` (define_map: its own transaction's rows count).
Rows run_query(const MapDef& d, bool own_changes) {
  const char* search_path = temp_last(d.search_path);
  return pg::as_role(d.owner, SECURITY_RESTRICTED_OPERATION, [&] {
    const int nest = NewGUCNestLevel();
    (void)set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    uint64 completion_count = 0;
    Rows rows = pg::with_spi([&] {
      int rc;
      if (own_changes) {
        // a fresh snapshot of this transaction (its own changes included),
        // whose completion count is known
        Snapshot snap = GetTransactionSnapshot();
        completion_count = completion_count_of(snap);
        PushActiveSnapshot(snap);
        rc = SPI_execute(d.query, true, 0);
        PopActiveSnapshot();
      } else {
        rc = execute_committed(d.query, &completion_count);
      }
      if (rc != SPI_OK_SELECT)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the query of map \"%s\" must be a SELECT returning (key text, value jsonb)", d.name)));
      Oid value_type = InvalidOid;
      check_shape(d, SPI_tuptable->tupdesc, &value_type);
      return copy_rows(value_type);
    });
    rows.snapshot = completion_count;
    AtEOXact_GUC(true, nest);
    return rows;
  });
}

[[noreturn]] void fail_build(MapStore::Build r, const MapDef& d, const Rows& rows, std::size_t dup) {
  MapStore* s = store();
  if (r == MapStore::Build::DuplicateKey) {
    const std::string_view k = rows.v[dup].key;
    throw sql_error(ERRCODE_UNIQUE_VIOLATION, pg::textf(FMT_STRING("duplicate key in map \"{}\""), d.name).c_str(),
                    pg::textf(FMT_STRING("Key \"{}\" appears more than once; the previous version keeps serving."),
                              k.substr(0, 100))
                        .c_str());
  }
  throw sql_error(
      ERRCODE_OUT_OF_MEMORY, pg::textf(FMT_STRING("map \"{}\" does not fit in agentcache.map_memory"), d.name).c_str(),
      pg::textf<300>(
          FMT_STRING(
              "It needs {} bytes beside the maps in use; {} of {} bytes are free. The previous version keeps serving."),
          MapStore::version_bytes(rows.v, rows.n), s->capacity() - s->used_bytes(), s->capacity())
          .c_str(),
      "Raise agentcache.map_memory (needs a restart).");
}

// Swaps `version` in unless the map was redefined since `seen` was read
// (catalog != nullptr: the worker); frees whichever version is not in use.
// Returns false when redefined (nothing installed). A version loaded on an
// older snapshot than the installed one's is dropped (the installed one is
// at least as fresh): versions never go back in time. define_map's version
// (a new query) always goes in.
bool install(const MapDef& d, MapStore::Offset version, bool worker, TransactionId seen, uint64 snapshot,
             bool defining) {
  MapStore* s = store();
  MapStore::Offset old = core::Arena::kNull;
  bool ok;
  {
    LWLockGuard b(build_lock(), LW_EXCLUSIVE);
    if (worker && status::definer_xid(MyDatabaseId, d.name) != seen) {
      s->free_version(version);  // redefined meanwhile: its rows stay
      return false;
    }
    if (!defining && !status::newer_than_installed(MyDatabaseId, d.name, snapshot)) {
      s->free_version(version);
      return true;
    }
    {
      LWLockGuard rd(read_lock(), LW_EXCLUSIVE);
      ok = s->install(MyDatabaseId, d.name, version, &old);
    }
    s->free_version(ok ? old : version);
    if (ok) status::note_installed(MyDatabaseId, d.name, snapshot);
  }
  if (!ok)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "too many lookup maps",
                    "agentcache keeps at most 64 maps in shared memory.");
  return true;
}

void remove_locked(const char* name) {
  MapStore* s = store();
  MapStore::Offset old = core::Arena::kNull;
  LWLockGuard b(build_lock(), LW_EXCLUSIVE);
  {
    LWLockGuard rd(read_lock(), LW_EXCLUSIVE);
    s->remove(MyDatabaseId, name, &old);
  }
  s->free_version(old);
}

}  // namespace

int64 reload(const MapDef& d, Snapshot catalog, bool defining) {
  // The worker refreshes from a catalog it read at `catalog`. A definition
  // that snapshot does not see (still running, or committed since) has
  // installed, or is about to install, the new query's rows: the old query's
  // must not go over them. define_map marks its transaction before it
  // installs, and the mark is checked again under the build lock.
  TransactionId seen = InvalidTransactionId;
  if (catalog != nullptr) {
    seen = status::definer_xid(MyDatabaseId, d.name);
    if (TransactionIdIsValid(seen) && XidInMVCCSnapshot(seen, catalog) && !TransactionIdDidAbort(seen)) return -1;
  }
  const Rows rows = run_query(d, defining);
  MapStore::Offset version = core::Arena::kNull;
  std::size_t dup = 0;
  MapStore::Build r;
  {
    LWLockGuard g(build_lock(), LW_EXCLUSIVE);
    r = store()->build(rows.v, rows.n, &version, &dup);
  }
  if (r != MapStore::Build::Ok) fail_build(r, d, rows, dup);
  if (!install(d, version, catalog != nullptr, seen, rows.snapshot, defining)) return -1;
  status::record_success(MyDatabaseId, d, static_cast<int64>(rows.n), defining);
  return static_cast<int64>(rows.n);
}

void remove(const char* name) {
  if (store() == nullptr) return;
  remove_locked(name);
  status::forget(MyDatabaseId, name);
}

void drop_others(const char* const* keep, int n) {
  MapStore* s = store();
  Name names[MapStore::kMaxMaps];
  int ndrop = 0;
  {
    LWLockGuard rd(read_lock(), LW_SHARED);
    for (int slot = 0; slot < static_cast<int>(MapStore::kMaxMaps); ++slot) {
      if (!s->slot_used(slot) || s->slot_db(slot) != MyDatabaseId) continue;
      const std::string_view name = s->slot_name(slot);
      bool wanted = false;
      for (int i = 0; i < n && !wanted; ++i) wanted = name == keep[i];
      if (wanted) continue;
      std::memcpy(names[ndrop], name.data(), name.size());
      names[ndrop++][name.size()] = '\0';
    }
  }
  for (int i = 0; i < ndrop; ++i) {
    const status::Definer d = status::definer_state(MyDatabaseId, names[i]);
    if (d == status::Definer::Running || d == status::Definer::Committed) continue;  // newer than our catalog
    remove(names[i]);
  }
}

void forget_database(Oid db) noexcept {
  MapStore* s = store();
  if (s == nullptr || db == InvalidOid) return;
  {
    LWLockGuard b(build_lock(), LW_EXCLUSIVE);
    LWLockGuard rd(read_lock(), LW_EXCLUSIVE);
    s->remove_all(db);
  }
  status::forget_database(db);
}

bool loaded(uint32 db, const char* name) noexcept {
  LWLockGuard rd(read_lock(), LW_SHARED);
  return store()->find(db, name) != MapStore::kNoSlot;
}

}  // namespace agentcache::maps::load
