// The dedup tier's SQL-callable functions and the API other glue uses
// (dedup.hpp).
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/spi.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/dedup/finish.hpp"
#include "pg/dedup/state.hpp"
#include "pg/dedup/table.hpp"

#include <algorithm>

namespace agentcache::dedup {

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Acquired:
      return "acquired";
    case Outcome::InProgress:
      return "in_progress";
    case Outcome::Duplicate:
      return "duplicate";
  }
  return "in_progress";
}

void check_message_id(std::string_view id) { pg::check_length(id, kMaxMessageIdBytes, "message_id"); }

namespace {
std::string_view message_id_arg(FunctionCallInfo fcinfo, int i) {
  const std::string_view id = pg::text_arg(fcinfo, i, "message_id");
  check_message_id(id);
  return id;
}
}  // namespace

}  // namespace agentcache::dedup

using namespace agentcache;
using namespace agentcache::dedup;

// dedup_begin(message_id text, conversation_id text DEFAULT NULL, body text DEFAULT NULL,
//             within interval DEFAULT NULL, lease interval DEFAULT NULL) RETURNS text
// (0.1.0's four-argument function is the same entry point without `lease`.)
AGENTCACHE_FUNCTION(agentcache_dedup_begin) {
  return pg::boundary([&]() -> Datum {
    const std::string_view id = message_id_arg(fcinfo, 0);
    const int64 within = PG_ARGISNULL(3) ? -1 : pg::positive_interval_usecs(PG_GETARG_INTERVAL_P(3), "within");
    const int64 lease =
        PG_NARGS() < 5 || PG_ARGISNULL(4) ? -1 : pg::nonnegative_interval_usecs(PG_GETARG_INTERVAL_P(4), "lease");
    PreventCommandIfReadOnly("dedup_begin()");
    const text* conv = PG_ARGISNULL(1) ? nullptr : PG_GETARG_TEXT_PP(1);
    const text* body = PG_ARGISNULL(2) ? nullptr : PG_GETARG_TEXT_PP(2);
    const BeginResult r = dedup::begin(id, conv, body, within, lease);
    PG_RETURN_TEXT_P(cstring_to_text(outcome_name(r.outcome)));
  });
}

// dedup_complete(message_id text) RETURNS void
AGENTCACHE_FUNCTION(agentcache_dedup_complete) {
  return pg::boundary([&]() -> Datum {
    const std::string_view id = message_id_arg(fcinfo, 0);
    PreventCommandIfReadOnly("dedup_complete()");
    dedup::complete(id);
    PG_RETURN_VOID();
  });
}

// dedup_fail(message_id text, error text DEFAULT NULL) RETURNS void
AGENTCACHE_FUNCTION(agentcache_dedup_fail) {
  return pg::boundary([&]() -> Datum {
    const std::string_view id = message_id_arg(fcinfo, 0);
    PreventCommandIfReadOnly("dedup_fail()");
    dedup::finish(id, false, PG_ARGISNULL(1) ? nullptr : PG_GETARG_TEXT_PP(1));
    PG_RETURN_VOID();
  });
}

// dedup_state(message_id text) RETURNS TABLE(state text, holder_pid int, attempts int,
//   fingerprint text, error text, updated_at timestamptz, lease_expires_at timestamptz,
//   reply_seq bigint, reply_sent boolean) — 0.1.0's function: the first six columns.
// A released message (processing, no holder) has no state.
AGENTCACHE_FUNCTION(agentcache_dedup_state) {
  return pg::boundary([&]() -> Datum {
    const std::string_view id = message_id_arg(fcinfo, 0);
    table::require_current();
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    pg::with_spi([&] {
      static pg::Statement q(
          "SELECT state, holder_pid, attempts, fingerprint, error, updated_at, lease_expires_at, reply_seq, reply_sent"
          " FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1"
          " AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp())"
          " AND NOT (state OPERATOR(pg_catalog.=) 'processing' AND holder_pid IS NULL)",
          {TEXTOID});
      Datum values[1] = {pg::text_datum(id)};
      const int rc = q.exec(values, nullptr, true, 1);
      pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.dedup");
      const int ncols = std::min(rsinfo->setDesc->natts, 9);
      for (uint64 i = 0; i < SPI_processed; ++i) {
        Datum v[9];
        bool n[9];
        for (int c = 0; c < ncols; ++c) v[c] = pg::spi_value(i, c + 1, &n[c]);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
      }
    });
    return Datum(0);
  });
}

// dedup_release(message_id text) RETURNS boolean (admin): forgets the state
// row and fences a live holder. A message being processed keeps a row with
// no holder (dedup_state shows none) until its window passes: the next
// dedup_begin takes it over at once, even while the fenced holder still has
// the lock, and the fenced holder's completion finds itself no longer named.
AGENTCACHE_FUNCTION(agentcache_dedup_release) {
  return pg::boundary([&]() -> Datum {
    const std::string_view id = message_id_arg(fcinfo, 0);
    PreventCommandIfReadOnly("dedup_release()");
    table::require_current();
    const bool released = pg::with_spi([&] {
      static pg::Statement fence(
          "UPDATE agentcache.dedup SET holder_pid = NULL, holder_locked = false, lease_expires_at = NULL, attempts = 1,"
          " error = NULL,"
          " updated_at = pg_catalog.now(), expires_at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $2"
          " WHERE message_id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) 'processing'"
          " AND holder_pid IS NOT NULL",
          {TEXTOID, INTERVALOID});
      static pg::Statement forget(
          "DELETE FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1"
          " AND NOT (state OPERATOR(pg_catalog.=) 'processing' AND holder_pid IS NULL)",
          {TEXTOID});
      Datum values[2] = {
          pg::text_datum(id),
          IntervalPGetDatum(pg::make_interval_usecs(static_cast<int64>(dedup_window_s) * USECS_PER_SEC))};
      int rc = fence.exec(values, nullptr, false);
      pg::spi_check(rc, SPI_OK_UPDATE, "updating agentcache.dedup");
      if (SPI_processed > 0) return true;
      rc = forget.exec(values, nullptr, false);
      pg::spi_check(rc, SPI_OK_DELETE, "deleting from agentcache.dedup");
      return SPI_processed > 0;
    });
    PG_RETURN_BOOL(released);
  });
}

// reply_sent(message_id text) RETURNS boolean: the reply is marked sent
// (true if it was pending). Transactional.
AGENTCACHE_FUNCTION(agentcache_reply_sent) {
  return pg::boundary([&]() -> Datum {
    const std::string_view id = message_id_arg(fcinfo, 0);
    PreventCommandIfReadOnly("reply_sent()");
    const bool marked = pg::with_spi([&] {
      static pg::Statement q(
          "UPDATE agentcache.dedup SET reply_sent = true WHERE message_id OPERATOR(pg_catalog.=) $1"
          " AND reply_sent OPERATOR(pg_catalog.=) false",
          {TEXTOID});
      Datum values[1] = {pg::text_datum(id)};
      const int rc = q.exec(values, nullptr, false);
      pg::spi_check(rc, SPI_OK_UPDATE, "updating agentcache.dedup");
      return SPI_processed > 0;
    });
    PG_RETURN_BOOL(marked);
  });
}

// pending_replies(older_than interval DEFAULT '1 minute', max_rows int DEFAULT 100)
//   RETURNS TABLE(message_id text, session_id text, seq bigint, content text, meta jsonb,
//                 completed_at timestamptz)
// Completed messages whose reply is not marked sent, completed more than
// older_than ago, oldest first; locked for the caller (FOR UPDATE), skipped
// by concurrent callers (SKIP LOCKED). Row-level security and privileges
// apply as to the query itself.
AGENTCACHE_FUNCTION(agentcache_pending_replies) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) pg::null_arg("older_than");
    if (PG_ARGISNULL(1)) pg::null_arg("max_rows");
    const int64 older = pg::nonnegative_interval_usecs(PG_GETARG_INTERVAL_P(0), "older_than");
    const int32 max_rows = PG_GETARG_INT32(1);
    if (max_rows < 0) throw pg::sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_rows must not be negative");
    PreventCommandIfReadOnly("pending_replies()");
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    // completed before this time (older_than past the start of time: none)
    const __int128 cut = static_cast<__int128>(GetCurrentTimestamp()) - older;
    if (cut < MIN_TIMESTAMP || max_rows == 0) return Datum(0);
    pg::with_spi([&] {
      static pg::Statement q(
          "SELECT d.message_id, d.session_id, d.reply_seq, t.content, t.meta, d.updated_at"
          " FROM agentcache.dedup d JOIN agentcache.turns t ON t.session_id OPERATOR(pg_catalog.=) d.session_id"
          " AND t.seq OPERATOR(pg_catalog.=) d.reply_seq"
          " WHERE d.reply_sent OPERATOR(pg_catalog.=) false AND d.state OPERATOR(pg_catalog.=) 'completed'"
          " AND d.updated_at OPERATOR(pg_catalog.<=) $1"
          " AND d.expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()"
          " ORDER BY d.updated_at, d.message_id LIMIT $2 FOR UPDATE OF d SKIP LOCKED",
          {TIMESTAMPTZOID, INT4OID});
      Datum values[2] = {TimestampTzGetDatum(static_cast<TimestampTz>(cut)), Int32GetDatum(max_rows)};
      const int rc = q.exec_latest(values, nullptr, false, 0);
      pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.dedup");
      for (uint64 i = 0; i < SPI_processed; ++i) {
        Datum v[6];
        bool n[6];
        for (int c = 0; c < 6; ++c) v[c] = pg::spi_value(i, c + 1, &n[c]);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
      }
    });
    return Datum(0);
  });
}
