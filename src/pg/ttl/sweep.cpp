// The TTL tier's background sweep (registered by tier.cpp): expired rows past
// agentcache.stale_retention and, on the same walk, a re-count of the
// per-namespace estimates; then max_entries overshoot of concurrent writers.
#include "pg/ttl/sweep.hpp"

#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/spi.hpp"
#include "pg/common/sweeps.hpp"
#include "pg/ttl/namespaces.hpp"
#include "pg/ttl/state.hpp"
#include "pg/ttl/write.hpp"

namespace agentcache::ttl {

namespace {

void count_expired(SPITupleTable* rows, uint64 n) {
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    const std::string_view ns = pg::text_view(DatumGetTextPP(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull)));
    namespaces::add(ns, &Counters::expirations, 1);
    namespaces::add(ns, &Counters::entries, -1);
  }
}

// max_entries overshoot: concurrent writers may each add one past the limit.
int64 enforce_limits() {
  const int rc =
      SPI_execute("SELECT namespace, max_entries FROM agentcache.namespaces WHERE max_entries IS NOT NULL", false, 0);
  pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.namespaces");
  const uint64 n = SPI_processed;
  SPITupleTable* tt = SPI_tuptable;
  int64 total = 0;
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    char* ns = TextDatumGetCString(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
    const int64 max = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
    total += write::enforce_max(ns, max, nullptr);
  }
  return total;
}

// The re-count of the namespaces' entries/bytes estimates rides on the same
// walk: each range's remaining rows are added to the slots' pass counters,
// and when the walk reaches the end of the table the totals replace the
// estimates. Bounded work per sweep, never a whole-table scan.
void count_range(SPITupleTable* rows, uint64 n) {
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    const std::string_view ns = pg::text_view(DatumGetTextPP(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull)));
    Slot* s = namespaces::slot(ns, true);
    if (s == nullptr) continue;
    pg_atomic_fetch_add_u64(
        &s->pass_entries, static_cast<uint64>(DatumGetInt64(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull))));
    pg_atomic_fetch_add_u64(
        &s->pass_bytes, static_cast<uint64>(DatumGetInt64(SPI_getbinval(rows->vals[i], rows->tupdesc, 3, &isnull))));
  }
}

// This database's slots: start a pass (`publish` false) or publish it.
void pass_boundary(bool publish) {
  Slot* all = slots();
  if (all == nullptr) return;
  pg::LWLockGuard g(slot_lock(), LW_SHARED);
  for (int i = 0; i < kSlots; ++i) {
    Slot& s = all[i];
    if (!s.used || s.db != MyDatabaseId) continue;
    if (publish) {
      pg_atomic_write_u64(&s.c.entries, pg_atomic_read_u64(&s.pass_entries));
      pg_atomic_write_u64(&s.c.bytes, pg_atomic_read_u64(&s.pass_bytes));
    }
    pg_atomic_write_u64(&s.pass_entries, 0);
    pg_atomic_write_u64(&s.pass_bytes, 0);
  }
}

}  // namespace

int64 sweep() {
  // 1. expired rows past stale_retention (< 0: kept), and the re-count: a
  // bounded walk in block ranges (no index on expires_at). Rows another
  // transaction has locked are skipped (never a wait, never a deadlock with a
  // caller): the next pass takes them.
  bool wrapped = false;
  int64 total = pg::sweeps::walk(
      "entries",
      [&](const pg::sweeps::WalkRange& r) -> int64 {
        if (r.pass_start) pass_boundary(false);
        int64 n = 0;
        if (stale_retention_s >= 0)
          n = pg::sweeps::exec_range(
              "DELETE FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
              "SELECT ctid FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.>=) $1"
              " AND ctid OPERATOR(pg_catalog.<) $2 AND expires_at OPERATOR(pg_catalog.<)"
              " (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)"
              " pg_catalog.make_interval(secs => $3::pg_catalog.float8)) FOR UPDATE SKIP LOCKED)) RETURNING namespace",
              r, stale_retention_s, count_expired);
        pg::sweeps::exec_range(
            "SELECT namespace, pg_catalog.count(*)::pg_catalog.int8,"
            " COALESCE(pg_catalog.sum(pg_catalog.pg_column_size(value)), 0)::pg_catalog.int8 FROM agentcache.entries"
            " WHERE ctid OPERATOR(pg_catalog.>=) $1 AND ctid OPERATOR(pg_catalog.<) $2 AND $3 IS NOT NULL"
            " GROUP BY namespace",
            r, 0, count_range);
        return n;
      },
      &wrapped);
  // (an empty table has no range: its pass is empty, and zeros are published)
  if (wrapped) pass_boundary(true);
  // 2. max_entries overshoot
  pg::sweeps::in_worker_transaction("namespaces", [&] { pg::with_spi([&] { total += enforce_limits(); }); });
  return total;
}

}  // namespace agentcache::ttl
