// SPI, the one way the glue runs SQL. The extension's own statements are
// prepared once per backend and kept (pg::Statement, SPI_keepplan): the plan
// cache re-plans them after invalidations (e.g. DROP/CREATE EXTENSION). Every statement text is fully
// qualified, operators included (test/lint/search_path.py checks it).
//
// An ERROR inside SPI longjmps: the caller's frames must hold only trivially
// destructible locals (or call through pg_try). SPI_finish on the error path
// is not needed: the transaction's abort releases the connection.
#pragma once
#include "pg/common/pg.hpp"

#include <cstring>
#include <initializer_list>
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

// A statement of the extension's own: prepared on its first run in this
// backend and kept. Call sites hold one as a function-local static:
//
//   static pg::Statement q("SELECT … WHERE key OPERATOR(pg_catalog.=) $1", {TEXTOID});
//   int rc = q.exec_latest(values, nullptr, /*read_only=*/true);
class Statement {
 public:
  static constexpr int kMaxArgs = 8;
  Statement(const char* sql, std::initializer_list<Oid> types) : sql_(sql), nargs_(static_cast<int>(types.size())) {
    int i = 0;
    for (Oid t : types) types_[i++] = t;
  }
  SPIPlanPtr plan() {
    if (plan_ == nullptr) {
      SPIPlanPtr p = SPI_prepare(sql_, nargs_, types_);
      if (p == nullptr) elog(ERROR, "agentcache: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
      SPI_keepplan(p);
      plan_ = p;
    }
    return plan_;
  }
  // On the transaction's snapshot (what a plain statement would see).
  int exec(Datum* values, const char* nulls, bool read_only, long tcount = 0) {
    return SPI_execute_plan(plan(), values, nulls, read_only, tcount);
  }
  // On `snap`. For a writing statement SPI copies it and advances its command
  // id, so the transaction's own earlier changes stay visible.
  int exec_on(Snapshot snap, Datum* values, const char* nulls, bool read_only, long tcount = 0) {
    return SPI_execute_snapshot(plan(), values, nulls, snap, InvalidSnapshot, read_only, true, tcount);
  }
  // On a fresh snapshot: what a statement run after waiting for a lock must
  // see even in REPEATABLE READ / SERIALIZABLE (rows committed while it waited).
  int exec_latest(Datum* values, const char* nulls, bool read_only, long tcount = 0) {
    return exec_on(GetLatestSnapshot(), values, nulls, read_only, tcount);
  }

 private:
  const char* sql_;
  int nargs_;
  Oid types_[kMaxArgs] = {};
  SPIPlanPtr plan_ = nullptr;
};

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
