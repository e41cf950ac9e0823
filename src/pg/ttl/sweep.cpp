// The TTL tier's background sweep (registered by tier.cpp): expired rows past
// agentcache.stale_retention, max_entries overshoot of concurrent writers,
// and now and then a re-count of the per-namespace estimates.
#include "pg/ttl/sweep.hpp"

#include "pg/common/args.hpp"
#include "pg/common/spi.hpp"
#include "pg/common/sweeps.hpp"
#include "pg/ttl/namespaces.hpp"
#include "pg/ttl/state.hpp"
#include "pg/ttl/write.hpp"

namespace agentcache::ttl {

namespace {

int g_sweeps_since_recount = 1000;
// The walk over agentcache.entries (no index on expires_at: see the install
// script) resumes where the previous sweep stopped.
BlockNumber g_next_block = 0;

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

// Re-counts every namespace's entries and bytes estimates.
void recount() {
  const int rc = SPI_execute(
      "SELECT n.namespace, COALESCE(e.cnt, 0), COALESCE(e.bytes, 0) FROM agentcache.namespaces n"
      " LEFT JOIN (SELECT namespace, pg_catalog.count(*) AS cnt,"
      " pg_catalog.sum(pg_catalog.pg_column_size(value))::pg_catalog.int8 AS bytes"
      " FROM agentcache.entries GROUP BY namespace) e ON e.namespace OPERATOR(pg_catalog.=) n.namespace",
      true, 0);
  pg::spi_check(rc, SPI_OK_SELECT, "counting entries");
  for (uint64 i = 0; i < SPI_processed; ++i) {
    bool isnull = false;
    Slot* s = namespaces::slot(pg::text_view(DatumGetTextPP(pg::spi_value(i, 1, &isnull))), true);
    if (s == nullptr) continue;
    pg_atomic_write_u64(&s->c.entries, static_cast<uint64>(pg::spi_int64(i, 2)));
    pg_atomic_write_u64(&s->c.bytes, static_cast<uint64>(pg::spi_int64(i, 3)));
  }
}

}  // namespace

int64 sweep() {
  if (stale_retention_s < 0) return 0;
  // 1. expired rows past stale_retention: a bounded walk in block ranges
  int64 total = pg::sweeps::delete_by_walk(
      "entries",
      "DELETE FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.>=) $1 AND ctid OPERATOR(pg_catalog.<) $2"
      " AND expires_at OPERATOR(pg_catalog.<)"
      " (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $3::pg_catalog.float8))"
      " RETURNING namespace",
      stale_retention_s, &g_next_block, count_expired);
  // 2. max_entries overshoot; 3. re-count the estimates every sixth sweep
  const bool due = ++g_sweeps_since_recount >= 6;
  pg::sweeps::in_worker_transaction("namespaces", [&] {
    pg::with_spi([&] {
      total += enforce_limits();
      if (due) {
        g_sweeps_since_recount = 0;
        recount();
      }
    });
  });
  return total;
}

}  // namespace agentcache::ttl
