// SPI, the one way the glue runs SQL. Statements are prepared once per
// backend and kept (SPI_keepplan): the plan cache re-plans them after
// invalidations (e.g. DROP/CREATE EXTENSION). Every statement text is fully
// qualified, operators included (test/lint/search_path.py checks it).
//
// An ERROR inside SPI longjmps: the caller's frames must hold only trivially
// destructible locals (or call through pg_try). SPI_finish on the error path
// is not needed: the transaction's abort releases the connection.
#pragma once
#include "pg/common/pg.hpp"

#include <cstring>
#include <type_traits>

namespace agentcache::pg {

inline void spi_connect() {
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
}

// f() inside one SPI connection; returns what f returns. f's SPI results are
// gone when this returns: copy what must outlive it with SPI_palloc.
template <class F>
auto with_spi(F&& f) -> decltype(f()) {
  spi_connect();
  if constexpr (std::is_void_v<decltype(f())>) {
    f();
    SPI_finish();
  } else {
    auto r = f();
    SPI_finish();
    return r;
  }
}

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
inline int spi_exec_snapshot(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types, Datum* values, const char* nulls,
                             Snapshot snap, bool read_only, long tcount) {
  return SPI_execute_snapshot(kept_plan(slot, sql, nargs, types), values, nulls, snap, InvalidSnapshot, read_only, true,
                              tcount);
}

// On a fresh snapshot: what a statement run after waiting for a lock must see
// even in REPEATABLE READ / SERIALIZABLE (rows committed while it waited).
inline int spi_exec_latest(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types, Datum* values, const char* nulls,
                           bool read_only, long tcount) {
  return spi_exec_snapshot(slot, sql, nargs, types, values, nulls, GetLatestSnapshot(), read_only, tcount);
}

// Raises an internal error unless rc is `expected`.
inline void spi_check(int rc, int expected, const char* what) {
  if (rc != expected) elog(ERROR, "agentcache: %s failed: %s", what, SPI_result_code_string(rc));
}

// Column `col` (1-based) of result row `row`; *isnull set.
inline Datum spi_value(uint64 row, int col, bool* isnull) {
  return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

inline int64 spi_int64(uint64 row, int col) {
  bool isnull = false;
  Datum d = spi_value(row, col, &isnull);
  return isnull ? 0 : DatumGetInt64(d);
}

// A copy of a text column in the caller's memory context (SPI_palloc), or
// nullptr for NULL.
inline char* spi_cstring(uint64 row, int col) {
  bool isnull = false;
  Datum d = spi_value(row, col, &isnull);
  if (isnull) return nullptr;
  text* t = DatumGetTextPP(d);
  const int len = static_cast<int>(VARSIZE_ANY_EXHDR(t));
  char* out = static_cast<char*>(SPI_palloc(len + 1));
  std::memcpy(out, VARDATA_ANY(t), len);
  out[len] = '\0';
  return out;
}

}  // namespace agentcache::pg
