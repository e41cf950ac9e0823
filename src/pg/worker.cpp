// The agentcache background worker: one per cluster, connected to
// agentcache.database. It loads every map of agentcache.maps first thing,
// then sleeps on its latch until a map is due (its refresh interval), a
// refresh_trigger commit or a rolled-back define/drop asks for it, or the
// next sweep is due. Each cycle runs in its own transaction; each map's
// refresh in its own subtransaction, so one map's failure is logged and
// recorded (last_error) without touching the others or killing the worker.
// During recovery (hot standby) it only reads: maps load, sweeps are skipped.
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/maps.hpp"
#include "pg/shmem.hpp"
#include "pg/worker.hpp"

#include <cstring>

extern "C" {
PGDLLEXPORT void agentcache_worker_main(Datum);
}

namespace agentcache::worker {

namespace {

constexpr int kMaxSweeps = 8;
struct Sweep {
  const char* name;
  SweepFn fn;
};
Sweep g_sweeps[kMaxSweeps];
int g_nsweeps = 0;

// Deletes turns older than agentcache.turn_retention. Cached copies are
// invalidated by the turns trigger at commit, as for any DELETE.
int64 sweep_turn_retention() {
  if (guc::turn_retention_s <= 0) return 0;
  return delete_in_batches("turns",
                           "DELETE FROM agentcache.turns WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
                           " SELECT ctid FROM agentcache.turns"
                           " WHERE created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)"
                           " pg_catalog.make_interval(secs => $1::pg_catalog.float8)) LIMIT $2))",
                           guc::turn_retention_s, nullptr);  // OPERATOR() has one precedence: brackets
}

struct Registrar {
  Registrar() { register_sweep("turn_retention", sweep_turn_retention); }
} g_registrar;

void on_worker_exit(int, Datum) {
  shmem::WorkerState* w = shmem::worker_state();
  if (w == nullptr) return;
  LWLockAcquire(shmem::worker_lock(), LW_EXCLUSIVE);
  if (w->pid == MyProcPid) {
    w->pid = 0;
    w->latch = nullptr;
  }
  LWLockRelease(shmem::worker_lock());
}

struct CatalogMap {
  maps::MapDef def;
  int64 refresh_ms;
};

bool extension_present() {
  Oid nsp = get_namespace_oid("agentcache", true);
  return nsp != InvalidOid && get_relname_relid("maps", nsp) != InvalidOid;
}

// Reads agentcache.maps into CurTransactionContext.
int read_catalog(CatalogMap** out) {
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
  int rc = SPI_execute(
      "SELECT name, query, owner::pg_catalog.oid, search_path,"
      " (pg_catalog.date_part('epoch', refresh) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8"
      " FROM agentcache.maps ORDER BY name",
      true, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: reading agentcache.maps failed");
  int n = static_cast<int>(SPI_processed);
  auto* v = static_cast<CatalogMap*>(SPI_palloc(sizeof(CatalogMap) * (n ? n : 1)));
  for (int i = 0; i < n; ++i) {
    HeapTuple tup = SPI_tuptable->vals[i];
    TupleDesc td = SPI_tuptable->tupdesc;
    bool isnull = false;
    auto copy = [&](int col) {
      char* s = SPI_getvalue(tup, td, col);
      char* c = static_cast<char*>(SPI_palloc(std::strlen(s) + 1));
      std::strcpy(c, s);
      return c;
    };
    v[i].def.name = copy(1);
    v[i].def.query = copy(2);
    v[i].def.owner = DatumGetObjectId(SPI_getbinval(tup, td, 3, &isnull));
    v[i].def.search_path = copy(4);
    v[i].refresh_ms = DatumGetInt64(SPI_getbinval(tup, td, 5, &isnull));
  }
  SPI_finish();
  *out = v;
  return n;
}

// Refresh requests taken at the start of a cycle (all of them: a request
// naming no map of this database is simply dropped).
struct Requests {
  int n;
  char (*names)[core::MapStore::kMaxName + 1];
};

Requests take_requests() {
  shmem::WorkerState* w = shmem::worker_state();
  Requests r{0, static_cast<char (*)[core::MapStore::kMaxName + 1]>(
                    palloc(sizeof(char[core::MapStore::kMaxName + 1]) * shmem::kMaxRefreshRequests))};
  LWLockAcquire(shmem::worker_lock(), LW_EXCLUSIVE);
  for (int i = 0; i < w->nrequests; ++i)
    if (w->requests[i].db == MyDatabaseId) strlcpy(r.names[r.n++], w->requests[i].name, sizeof r.names[0]);
  w->nrequests = 0;
  LWLockRelease(shmem::worker_lock());
  return r;
}

bool requested(const Requests& r, const char* name) {
  for (int i = 0; i < r.n; ++i)
    if (std::strcmp(r.names[i], name) == 0) return true;
  return false;
}

void refresh_one(const CatalogMap& m) {
  int64 entries = 0;
  ErrorData* edata = pg::in_subtransaction([&] { entries = maps::reload(m.def, GetActiveSnapshot()); });

  const char* error = edata ? edata->message : nullptr;
  if (!error && entries < 0) {  // redefined since the catalog was read: its rows stay
    maps::record_attempt(MyDatabaseId, m.def.name);
    return;
  }
  if (error) {
    ereport(WARNING, (errmsg("agentcache: refreshing map \"%s\" failed: %s", m.def.name, error),
                      errdetail("The previous version keeps serving.")));
    maps::record_error(MyDatabaseId, m.def.name, error);
  }
  if (!RecoveryInProgress()) {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
    Oid types[3] = {TEXTOID, TEXTOID, INT8OID};
    Datum values[3] = {CStringGetTextDatum(m.def.name), error ? CStringGetTextDatum(error) : Datum(0),
                       Int64GetDatum(entries)};
    char nulls[3] = {' ', error ? ' ' : 'n', ' '};
    int rc = error ? SPI_execute_with_args("UPDATE agentcache.maps SET last_error = $2"
                                           " WHERE name OPERATOR(pg_catalog.=) $1",
                                           2, types, values, nulls, false, 0)
                   : SPI_execute_with_args("UPDATE agentcache.maps SET last_refresh = pg_catalog.now(),"
                                           " last_error = NULL, entries = $3 WHERE name OPERATOR(pg_catalog.=) $1",
                                           3, types, values, nulls, false, 0);
    if (rc != SPI_OK_UPDATE) elog(ERROR, "agentcache: updating agentcache.maps failed");
    SPI_finish();
  }
  if (edata) FreeErrorData(edata);
}

// One pass over the maps: drops shared-memory maps the catalog no longer has,
// loads the ones memory lacks, refreshes those asked for or due (all of them
// when `everything`). Returns milliseconds until the next map is due.
int64 maps_cycle(bool everything) {
  int64 next_ms = 3600 * 1000;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, "agentcache: refreshing maps");
  Requests req = take_requests();
  if (extension_present()) {
    CatalogMap* v = nullptr;
    int n = read_catalog(&v);
    auto** names = static_cast<const char**>(palloc(sizeof(char*) * (n ? n : 1)));
    for (int i = 0; i < n; ++i) names[i] = v[i].def.name;
    maps::drop_others(names, n);
    for (int i = 0; i < n; ++i) {
      const CatalogMap& m = v[i];
      // The next attempt is one interval after the later of the last success
      // and the last attempt (a failing map retries on its interval, never in
      // a loop); a map not in memory retries at most every sweep_interval.
      TimestampTz last_ok = 0, last_try = 0;
      maps::timing(MyDatabaseId, m.def.name, &last_ok, &last_try);
      const bool in_memory = maps::loaded(MyDatabaseId, m.def.name);
      int64 interval_ms = m.refresh_ms;
      if (!in_memory && interval_ms > guc::sweep_interval_ms) interval_ms = guc::sweep_interval_ms;
      const TimestampTz base = last_ok > last_try ? last_ok : last_try;
      const TimestampTz next = TimestampTzPlusMilliseconds(base, interval_ms);
      const bool due = everything || requested(req, m.def.name) || base == 0 ||
                       maps::definer_aborted(MyDatabaseId, m.def.name) || GetCurrentTimestamp() >= next;
      if (due) {
        refresh_one(m);
        CHECK_FOR_INTERRUPTS();
        maps::timing(MyDatabaseId, m.def.name, &last_ok, &last_try);
      }
      const TimestampTz after = last_ok > last_try ? last_ok : last_try;
      int64 wait = (TimestampTzPlusMilliseconds(after ? after : GetCurrentTimestamp(), interval_ms) -
                    GetCurrentTimestamp()) / 1000;
      if (wait < next_ms) next_ms = wait;
    }
  }
  PopActiveSnapshot();
  CommitTransactionCommand();
  pgstat_report_activity(STATE_IDLE, nullptr);
  return next_ms;
}

void run_sweeps() {
  for (int i = 0; i < g_nsweeps; ++i) {
    pgstat_report_activity(STATE_RUNNING, g_sweeps[i].name);
    int64 n = g_sweeps[i].fn();
    if (n > 0) elog(DEBUG1, "agentcache: sweep %s removed " INT64_FORMAT " rows", g_sweeps[i].name, n);
  }
  pgstat_report_activity(STATE_IDLE, nullptr);
  LWLockAcquire(shmem::worker_lock(), LW_EXCLUSIVE);
  shmem::worker_state()->last_sweep = GetCurrentTimestamp();
  LWLockRelease(shmem::worker_lock());
}

// Whether a cycle is wanted now; *all: every map must be refreshed.
bool pending_work(bool* all) {
  shmem::WorkerState* w = shmem::worker_state();
  LWLockAcquire(shmem::worker_lock(), LW_EXCLUSIVE);
  *all = w->refresh_all;
  const bool reconcile = w->reconcile;
  w->reconcile = w->refresh_all = false;
  bool any = w->nrequests > 0;
  LWLockRelease(shmem::worker_lock());
  return any || reconcile || *all;
}

void wake_worker(shmem::WorkerState* w) {
  if (w->latch != nullptr) SetLatch(w->latch);
}

}  // namespace

int64 delete_in_batches(const char* table, const char* sql, int64 arg, void (*on_rows)(SPITupleTable*, uint64)) {
  int64 total = 0;
  for (int batch = 0; batch < kSweepBatches; ++batch) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Oid nsp = get_namespace_oid("agentcache", true);
    if (nsp == InvalidOid || get_relname_relid(table, nsp) == InvalidOid) {
      PopActiveSnapshot();
      CommitTransactionCommand();
      return total;
    }
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
    Oid types[2] = {INT8OID, INT8OID};
    Datum values[2] = {Int64GetDatum(arg), Int64GetDatum(kSweepBatch)};
    int rc = SPI_execute_with_args(sql, 2, types, values, nullptr, false, 0);
    if (rc != SPI_OK_DELETE && rc != SPI_OK_DELETE_RETURNING) elog(ERROR, "agentcache: sweeping %s failed", table);
    int64 n = static_cast<int64>(SPI_processed);
    if (on_rows != nullptr && rc == SPI_OK_DELETE_RETURNING) on_rows(SPI_tuptable, SPI_processed);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    total += n;
    if (n < kSweepBatch) break;
  }
  return total;
}

int64 delete_by_walk(const char* table, const char* sql, int64 arg, BlockNumber* cursor,
                     void (*on_rows)(SPITupleTable*, uint64)) {
  int64 total = 0;
  for (BlockNumber walked = 0; walked < kWalkBlocksPerSweep; walked += kWalkChunkBlocks) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Oid nsp = get_namespace_oid("agentcache", true);
    Oid relid = nsp == InvalidOid ? InvalidOid : get_relname_relid(table, nsp);
    if (relid == InvalidOid) {
      PopActiveSnapshot();
      CommitTransactionCommand();
      return total;
    }
    Relation rel = table_open(relid, AccessShareLock);
    const BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
    table_close(rel, NoLock);
    const BlockNumber from = *cursor;
    if (from < nblocks) {
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
      ItemPointerData lo, hi;
      ItemPointerSet(&lo, from, 0);
      ItemPointerSet(&hi, from + kWalkChunkBlocks, 0);
      Oid types[3] = {TIDOID, TIDOID, INT8OID};
      Datum values[3] = {PointerGetDatum(&lo), PointerGetDatum(&hi), Int64GetDatum(arg)};
      int rc = SPI_execute_with_args(sql, 3, types, values, nullptr, false, 0);
      if (rc != SPI_OK_DELETE && rc != SPI_OK_DELETE_RETURNING) elog(ERROR, "agentcache: sweeping %s failed", table);
      total += static_cast<int64>(SPI_processed);
      if (on_rows != nullptr && rc == SPI_OK_DELETE_RETURNING) on_rows(SPI_tuptable, SPI_processed);
      SPI_finish();
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
    *cursor = from + kWalkChunkBlocks;
    if (*cursor >= nblocks) {  // the end: the next sweep starts over
      *cursor = 0;
      break;
    }
  }
  return total;
}

void register_sweep(const char* name, SweepFn fn) {
  if (g_nsweeps < kMaxSweeps) g_sweeps[g_nsweeps++] = Sweep{name, fn};
}

void register_worker() {
  BackgroundWorker w;
  std::memset(&w, 0, sizeof w);
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_ConsistentState;  // also on a hot standby
  w.bgw_restart_time = 1;
  strlcpy(w.bgw_library_name, "agentcache", sizeof w.bgw_library_name);
  strlcpy(w.bgw_function_name, "agentcache_worker_main", sizeof w.bgw_function_name);
  strlcpy(w.bgw_name, "agentcache worker", sizeof w.bgw_name);
  strlcpy(w.bgw_type, "agentcache worker", sizeof w.bgw_type);
  RegisterBackgroundWorker(&w);
}

void request_refresh(uint32 db, const char* name) noexcept {
  shmem::WorkerState* w = shmem::worker_state();
  if (w == nullptr) return;
  LWLockAcquire(shmem::worker_lock(), LW_EXCLUSIVE);
  bool seen = false;
  for (int i = 0; i < w->nrequests && !seen; ++i)
    seen = w->requests[i].db == db && std::strcmp(w->requests[i].name, name) == 0;
  if (!seen) {
    if (w->nrequests < shmem::kMaxRefreshRequests) {
      w->requests[w->nrequests].db = db;
      strlcpy(w->requests[w->nrequests].name, name, sizeof w->requests[0].name);
      ++w->nrequests;
    } else {
      w->refresh_all = true;  // too many at once: refresh every map
    }
  }
  wake_worker(w);
  LWLockRelease(shmem::worker_lock());
}

void request_reconcile() noexcept {
  shmem::WorkerState* w = shmem::worker_state();
  if (w == nullptr) return;
  LWLockAcquire(shmem::worker_lock(), LW_EXCLUSIVE);
  w->reconcile = true;
  wake_worker(w);
  LWLockRelease(shmem::worker_lock());
}

}  // namespace agentcache::worker

void agentcache_worker_main(Datum) {
  using namespace agentcache;
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(guc::database, nullptr, 0);

  shmem::WorkerState* w = shmem::worker_state();
  before_shmem_exit(worker::on_worker_exit, 0);
  LWLockAcquire(shmem::worker_lock(), LW_EXCLUSIVE);
  w->pid = MyProcPid;
  w->latch = MyLatch;
  w->started_at = GetCurrentTimestamp();
  ++w->starts;
  LWLockRelease(shmem::worker_lock());

  bool everything = true;  // first thing: load every map
  TimestampTz next_sweep = 0;
  for (;;) {
    int64 next_ms = worker::maps_cycle(everything);
    everything = false;  // first thing after start: every map; later only what is due
    if (!RecoveryInProgress() && GetCurrentTimestamp() >= next_sweep) {
      worker::run_sweeps();
      next_sweep = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), guc::sweep_interval_ms);
    }
    int64 sweep_ms = (next_sweep - GetCurrentTimestamp()) / 1000;
    int64 timeout = next_ms < sweep_ms ? next_ms : sweep_ms;
    if (RecoveryInProgress() && timeout > guc::sweep_interval_ms) timeout = guc::sweep_interval_ms;  // new maps
    if (timeout < 10) timeout = 10;
    bool all = false;
    if (!worker::pending_work(&all)) {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, static_cast<long>(timeout),
                      PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
      if (ConfigReloadPending) {
        ConfigReloadPending = false;
        ProcessConfigFile(PGC_SIGHUP);
      }
      (void)worker::pending_work(&all);
    }
    everything = all;
    // a reconcile needs no reload of every map: the next cycle drops what the
    // catalog lacks and loads what memory lacks anyway
  }
}
