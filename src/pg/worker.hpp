// The background worker: loads and refreshes lookup maps, runs the periodic
// sweeps (turn retention now; later tiers register theirs here).
#pragma once
#include "pg/pg.hpp"

namespace agentcache::worker {

void register_worker();  // from _PG_init, when preloading

// Asks the worker to refresh a map (after a commit) or to reload the catalog.
void request_refresh(uint32 db, const char* name) noexcept;
void request_reconcile() noexcept;

// A periodic sweep: runs in the worker, in its own transaction, never during
// recovery. Returns rows affected.
using SweepFn = int64 (*)();
void register_sweep(const char* name, SweepFn fn);

// For sweeps: deletes in bounded batches, one transaction per batch. `sql` is
// a DELETE of at most $2 rows whose $1 is `arg`; it runs until a batch
// deletes fewer than the batch size or kSweepBatches batches ran (the rest
// waits for the next sweep: no long locks, no table-wide DELETE). on_rows,
// if given, sees each batch's RETURNING rows inside its transaction. Returns
// rows deleted; 0 when agentcache.<table> does not exist in this database.
constexpr int64 kSweepBatch = 1000;
constexpr int kSweepBatches = 20;
int64 delete_in_batches(const char* table, const char* sql, int64 arg, void (*on_rows)(SPITupleTable*, uint64));

// For sweeps of tables that keep no index on their expiry column (so that
// updates of it stay HOT): walks agentcache.<table> in block ranges, one
// transaction per range of kWalkChunkBlocks, at most kWalkBlocksPerSweep per
// call, resuming at *cursor (back to 0 once the end is reached). `sql` is a
// DELETE whose $1 and $2 are the range's first and end tid (a Tid Range Scan)
// and whose $3 is `arg`. on_rows as for delete_in_batches. Returns rows
// deleted; 0 when the table does not exist in this database.
constexpr BlockNumber kWalkChunkBlocks = 256;     // 2 MB per transaction
constexpr BlockNumber kWalkBlocksPerSweep = 4096;  // 32 MB per sweep
int64 delete_by_walk(const char* table, const char* sql, int64 arg, BlockNumber* cursor,
                     void (*on_rows)(SPITupleTable*, uint64));

}  // namespace agentcache::worker
