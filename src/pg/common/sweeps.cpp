// Background jobs and the worker link (see sweeps.hpp).
#include "pg/common/sweeps.hpp"

#include "pg/common/shmem.hpp"
#include "pg/common/spi.hpp"

#include <cstring>

namespace agentcache::pg::sweeps {

int sweep_interval_ms = 10 * 1000;

namespace {

constexpr int kMaxJobs = 8;
struct Sweep {
  const char* name;
  SweepFn fn;
};
struct Cycle {
  const char* name;
  CycleFn fn;
};
Sweep g_sweeps[kMaxJobs];
int g_nsweeps = 0;
Cycle g_cycles[kMaxJobs];
int g_ncycles = 0;

// Where a walk (walk_ranges) of a table of a database stopped.
constexpr int kCursors = 64;
struct WalkCursor {
  Oid db;  // InvalidOid: free
  char table[16];
  BlockNumber block;
};

// The worker's published state and the walks' positions, guarded by `lock`.
struct Link {
  LWLock* lock;
  pid_t pid;  // 0 when not running
  Latch* latch;
  uint64 starts;
  TimestampTz started_at, last_sweep, last_refresh;
  WalkCursor cursors[kCursors];
};
Link* g_link = nullptr;

Size link_size() { return sizeof(Link); }

bool link_attach(void* base, bool found, LWLockPadded* locks) {
  g_link = static_cast<Link*>(base);
  if (!found) {
    *g_link = Link{};
    g_link->lock = &locks[0].lock;
  }
  return true;
}

}  // namespace

void init() {
  DefineCustomIntVariable("agentcache.sweep_interval", "How often the background worker sweeps expired rows.", nullptr,
                          &sweep_interval_ms, 10 * 1000, 100, 24 * 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
                          nullptr, nullptr);
  if (process_shared_preload_libraries_in_progress)
    shmem::add_region(shmem::Region{"agentcache_worker", link_size, 1, link_attach});
}

void register_sweep(const char* name, SweepFn fn) {
  if (g_nsweeps >= kMaxJobs) elog(ERROR, "agentcache: too many sweeps");
  g_sweeps[g_nsweeps++] = Sweep{name, fn};
}

void register_cycle(const char* name, CycleFn fn) {
  if (g_ncycles >= kMaxJobs) elog(ERROR, "agentcache: too many worker cycles");
  g_cycles[g_ncycles++] = Cycle{name, fn};
}

void run_sweeps(bool record) {
  for (int i = 0; i < g_nsweeps; ++i) {
    pgstat_report_activity(STATE_RUNNING, g_sweeps[i].name);
    const int64 n = g_sweeps[i].fn();
    if (n > 0) elog(DEBUG1, "agentcache: sweep %s removed " INT64_FORMAT " rows", g_sweeps[i].name, n);
  }
  pgstat_report_activity(STATE_IDLE, nullptr);
  if (!record) return;
  LWLockAcquire(g_link->lock, LW_EXCLUSIVE);
  g_link->last_sweep = GetCurrentTimestamp();
  LWLockRelease(g_link->lock);
}

int64 run_cycles(bool first) {
  int64 next_ms = 3600 * 1000;
  for (int i = 0; i < g_ncycles; ++i) {
    pgstat_report_activity(STATE_RUNNING, g_cycles[i].name);
    const int64 ms = g_cycles[i].fn(first);
    if (ms < next_ms) next_ms = ms;
  }
  pgstat_report_activity(STATE_IDLE, nullptr);
  return next_ms;
}

void worker_started() noexcept {
  LWLockAcquire(g_link->lock, LW_EXCLUSIVE);
  g_link->pid = MyProcPid;
  g_link->latch = MyLatch;
  g_link->started_at = GetCurrentTimestamp();
  ++g_link->starts;
  LWLockRelease(g_link->lock);
}

void worker_exited() noexcept {
  if (g_link == nullptr) return;
  LWLockAcquire(g_link->lock, LW_EXCLUSIVE);
  if (g_link->pid == MyProcPid) {
    g_link->pid = 0;
    g_link->latch = nullptr;
  }
  LWLockRelease(g_link->lock);
}

void wake_worker() noexcept {
  if (g_link == nullptr) return;
  LWLockAcquire(g_link->lock, LW_SHARED);
  if (g_link->latch != nullptr) SetLatch(g_link->latch);
  LWLockRelease(g_link->lock);
}

void note_refresh(TimestampTz at) noexcept {
  if (g_link == nullptr) return;
  LWLockAcquire(g_link->lock, LW_EXCLUSIVE);
  g_link->last_refresh = at;
  LWLockRelease(g_link->lock);
}

void forget_database(Oid db) noexcept {
  if (g_link == nullptr) return;
  LWLockAcquire(g_link->lock, LW_EXCLUSIVE);
  for (WalkCursor& c : g_link->cursors)
    if (c.db == db) c = WalkCursor{};
  LWLockRelease(g_link->lock);
}

WorkerStatus worker_status() noexcept {
  WorkerStatus st{};
  if (g_link == nullptr) return st;
  LWLockAcquire(g_link->lock, LW_SHARED);
  st = WorkerStatus{g_link->pid, g_link->starts, g_link->started_at, g_link->last_sweep, g_link->last_refresh};
  LWLockRelease(g_link->lock);
  return st;
}

Oid extension_relation(const char* table) {
  const Oid nsp = get_namespace_oid("agentcache", true);
  return nsp == InvalidOid ? InvalidOid : get_relname_relid(table, nsp);
}

int64 delete_in_batches(const char* table, const char* sql, int64 arg, RowsFn on_rows) {
  int64 total = 0;
  for (int batch = 0; batch < kSweepBatches; ++batch) {
    int64 n = 0;
    const bool present = in_worker_transaction(table, [&] {
      with_spi([&] {
        Oid types[2] = {INT8OID, INT8OID};
        Datum values[2] = {Int64GetDatum(arg), Int64GetDatum(kSweepBatch)};
        const int rc = SPI_execute_with_args(sql, 2, types, values, nullptr, false, 0);
        if (rc != SPI_OK_DELETE && rc != SPI_OK_DELETE_RETURNING) elog(ERROR, "agentcache: sweeping %s failed", table);
        n = static_cast<int64>(SPI_processed);
        if (on_rows != nullptr && rc == SPI_OK_DELETE_RETURNING) on_rows(SPI_tuptable, SPI_processed);
      });
    });
    total += n;
    if (!present || n < kSweepBatch) break;
  }
  return total;
}

namespace {

// Walk positions, per (database, table), in the worker's region.
BlockNumber* cursor_of(const char* table) {
  const char* name = table;
  LWLockAcquire(g_link->lock, LW_EXCLUSIVE);
  WalkCursor* free_one = nullptr;
  for (WalkCursor& c : g_link->cursors) {
    if (c.db == MyDatabaseId && std::strncmp(c.table, name, sizeof c.table) == 0) {
      LWLockRelease(g_link->lock);
      return &c.block;
    }
    if (free_one == nullptr && c.db == InvalidOid) free_one = &c;
  }
  // full: take the slot the database's id hashes to (a walk then restarts at 0)
  WalkCursor& c = free_one ? *free_one : g_link->cursors[MyDatabaseId % kCursors];
  c.db = MyDatabaseId;
  strlcpy(c.table, name, sizeof c.table);
  c.block = 0;
  LWLockRelease(g_link->lock);
  return &c.block;
}

}  // namespace

int64 walk_ranges(const char* table, RangeFn fn, void* ctx, bool* wrapped) {
  if (wrapped) *wrapped = false;
  // only this process walks this (database, table): the worker for its
  // database, one sweeper at a time for any other
  // (a database without the table takes no position)
  BlockNumber* cursor = nullptr;
  int64 total = 0;
  for (BlockNumber walked = 0; walked < kWalkBlocksPerSweep; walked += kWalkChunkBlocks) {
    BlockNumber nblocks = 0;
    BlockNumber from = 0;
    const bool present = in_worker_transaction(table, [&] {
      if (cursor == nullptr) cursor = cursor_of(table);
      from = *cursor;
      Relation rel = table_open(extension_relation(table), AccessShareLock);
      nblocks = RelationGetNumberOfBlocks(rel);
      table_close(rel, NoLock);
      if (from >= nblocks) return;
      WalkRange r{};
      ItemPointerSet(&r.lo, from, 0);
      ItemPointerSet(&r.hi, from + kWalkChunkBlocks, 0);
      r.pass_start = from == 0;
      with_spi([&] { total += fn(r, ctx); });
    });
    if (!present) break;
    *cursor = from + kWalkChunkBlocks;
    if (*cursor >= nblocks) {  // the end: the next sweep starts over
      *cursor = 0;
      if (wrapped) *wrapped = true;
      break;
    }
  }
  return total;
}

int64 exec_range(const char* sql, const WalkRange& range, int64 arg, RowsFn on_rows) {
  Oid types[3] = {TIDOID, TIDOID, INT8OID};
  Datum values[3] = {PointerGetDatum(&range.lo), PointerGetDatum(&range.hi), Int64GetDatum(arg)};
  const int rc = SPI_execute_with_args(sql, 3, types, values, nullptr, false, 0);
  if (rc != SPI_OK_SELECT && rc != SPI_OK_DELETE && rc != SPI_OK_DELETE_RETURNING)
    elog(ERROR, "agentcache: a sweep's statement failed: %s", SPI_result_code_string(rc));
  if (on_rows != nullptr && SPI_tuptable != nullptr) on_rows(SPI_tuptable, SPI_processed);
  return static_cast<int64>(SPI_processed);
}

}  // namespace agentcache::pg::sweeps
