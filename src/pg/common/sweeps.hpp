// Background jobs and the link to the worker that runs them.
//
// Tiers register their jobs from their init (called by _PG_init in a stated
// order); the worker (src/pg/worker) runs them, knowing no tier:
//  * a sweep runs every agentcache.sweep_interval, in its own transactions,
//    never during recovery (turn retention, expired TTL rows, dedup rows);
//  * a cycle runs on every wake-up of the worker, also during recovery, and
//    says when it wants to run next (the maps' loads and refreshes).
// Tiers wake the worker with wake_worker(). The worker's published state
// (pid, latch, starts, last sweep and refresh) lives in a region of its own,
// guarded by one LWLock.
#pragma once
#include "pg/common/pg.hpp"

#include <type_traits>

namespace agentcache::pg::sweeps {

// Returns rows affected.
using SweepFn = int64 (*)();
// `first`: the worker has just started. Returns milliseconds until it wants
// to run again.
using CycleFn = int64 (*)(bool first);

// The GUC agentcache.sweep_interval and the worker's region (preloading only).
void init();
void register_sweep(const char* name, SweepFn fn);
void register_cycle(const char* name, CycleFn fn);

extern int sweep_interval_ms;  // agentcache.sweep_interval (sighup)

// For the worker.
void run_sweeps(bool record = true);  // every sweep, then (`record`) records last_sweep
int64 run_cycles(bool first);         // every cycle; the smallest delay they asked for
void worker_started() noexcept;       // publishes MyProcPid and MyLatch
void worker_exited() noexcept;

// For tiers.
void wake_worker() noexcept;
void note_refresh(TimestampTz at) noexcept;  // health() worker.last_refresh
// DROP DATABASE / DROP EXTENSION committed: the database's walk positions go.
void forget_database(Oid db) noexcept;

struct WorkerStatus {
  pid_t pid;  // 0 when not running
  uint64 starts;
  TimestampTz started_at, last_sweep, last_refresh;
};
WorkerStatus worker_status() noexcept;  // zeros when not preloaded

// For sweeps: deletes in bounded batches, one transaction per batch. `sql` is
// a DELETE of at most $2 rows whose $1 is `arg`; it runs until a batch
// deletes fewer than the batch size or kSweepBatches batches ran (the rest
// waits for the next sweep: no long locks, no table-wide DELETE). on_rows,
// if given, sees each batch's RETURNING rows inside its transaction. Returns
// rows deleted; 0 when agentcache.<table> does not exist in this database.
constexpr int64 kSweepBatch = 1000;
constexpr int kSweepBatches = 20;
using RowsFn = void (*)(SPITupleTable*, uint64);
int64 delete_in_batches(const char* table, const char* sql, int64 arg, RowsFn on_rows);

// For sweeps of tables that keep no index on their expiry column (so that
// updates of it stay HOT): walks agentcache.<table> in block ranges, one
// transaction per range of kWalkChunkBlocks, at most kWalkBlocksPerSweep per
// call, resuming where the previous walk of that table in this database
// stopped (the position lives in shared memory: the worker and the sweepers
// of other databases resume alike) and starting over at block 0 once the end
// is reached. For each range, fn(range) runs inside the range's transaction
// and an SPI connection and returns rows affected. Returns the total; `*wrapped`
// (if given) tells whether the walk reached the table's end. 0 and no
// wrap when the table does not exist in this database.
constexpr BlockNumber kWalkChunkBlocks = 256;      // 2 MB per transaction
constexpr BlockNumber kWalkBlocksPerSweep = 4096;  // 32 MB per sweep
struct WalkRange {
  ItemPointerData lo, hi;  // the range's first tid and its end
  bool pass_start;         // the range begins at block 0
};
using RangeFn = int64 (*)(const WalkRange& range, void* ctx);
int64 walk_ranges(const char* table, RangeFn fn, void* ctx, bool* wrapped);
template <class F>
int64 walk(const char* table, F&& f, bool* wrapped = nullptr) {
  using Fn = std::remove_reference_t<F>;
  return walk_ranges(
      table, [](const WalkRange& r, void* ctx) -> int64 { return (*static_cast<Fn*>(ctx))(r); }, &f, wrapped);
}
// Runs `sql` for one range: $1 and $2 are the range's first and end tid (a
// Tid Range Scan), $3 is `arg`. DELETE (…RETURNING) or SELECT; on_rows sees
// the rows returned. Returns rows affected.
int64 exec_range(const char* sql, const WalkRange& range, int64 arg, RowsFn on_rows);

// agentcache.<table> in this database; InvalidOid when the extension (or
// the table) is not there.
Oid extension_relation(const char* table);

// Runs f() in a transaction of its own with a snapshot (the worker's unit of
// work); skipped (returns false) when agentcache.<table> does not exist here.
template <class F>
bool in_worker_transaction(const char* table, F&& f) {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  const bool present = extension_relation(table) != InvalidOid;
  if (present) f();
  PopActiveSnapshot();
  CommitTransactionCommand();
  return present;
}

}  // namespace agentcache::pg::sweeps
