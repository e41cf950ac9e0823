// SPI statements prepared once per backend and kept (SPI_keepplan). The plan
// cache re-plans them after invalidations (e.g. DROP/CREATE EXTENSION).
#pragma once
#include "pg/pg.hpp"

namespace agentcache::pg {

inline SPIPlanPtr kept_plan(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types) {
  if (*slot == nullptr) {
    SPIPlanPtr p = SPI_prepare(sql, nargs, types);
    if (p == nullptr) elog(ERROR, "agentcache: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    SPI_keepplan(p);
    *slot = p;
  }
  return *slot;
}

// SPI_execute_with_args() without re-planning on every call: `slot` is a
// static SPIPlanPtr owned by the call site.
inline int spi_exec(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types, Datum* values, const char* nulls,
                    bool read_only, long tcount) {
  return SPI_execute_plan(kept_plan(slot, sql, nargs, types), values, nulls, read_only, tcount);
}

// The same on a given snapshot (e.g. GetLatestSnapshot()). For a writing
// statement SPI copies it and advances its command id, so the transaction's
// own earlier changes stay visible.
inline int spi_exec_snapshot(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types, Datum* values,
                             const char* nulls, Snapshot snap, bool read_only, long tcount) {
  return SPI_execute_snapshot(kept_plan(slot, sql, nargs, types), values, nulls, snap, InvalidSnapshot, read_only,
                              true, tcount);
}

// On a fresh snapshot: what a statement run after waiting for a lock must see
// even in REPEATABLE READ / SERIALIZABLE (rows committed while it waited).
inline int spi_exec_latest(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types, Datum* values,
                           const char* nulls, bool read_only, long tcount) {
  return spi_exec_snapshot(slot, sql, nargs, types, values, nulls, GetLatestSnapshot(), read_only, tcount);
}

}  // namespace agentcache::pg
