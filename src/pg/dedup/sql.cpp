// The dedup tier's SQL-callable functions and the API other glue uses
// (dedup.hpp).
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/spi.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/dedup/finish.hpp"
#include "pg/dedup/state.hpp"

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
//             within interval DEFAULT NULL) RETURNS text
AGENTCACHE_FUNCTION(agentcache_dedup_begin) {
  return pg::boundary([&]() -> Datum {
    const std::string_view id = message_id_arg(fcinfo, 0);
    const int64 within = PG_ARGISNULL(3) ? -1 : pg::positive_interval_usecs(PG_GETARG_INTERVAL_P(3), "within");
    PreventCommandIfReadOnly("dedup_begin()");
    const text* conv = PG_ARGISNULL(1) ? nullptr : PG_GETARG_TEXT_PP(1);
    const text* body = PG_ARGISNULL(2) ? nullptr : PG_GETARG_TEXT_PP(2);
    const BeginResult r = dedup::begin(id, conv, body, within);
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
//   fingerprint text, error text, updated_at timestamptz)
AGENTCACHE_FUNCTION(agentcache_dedup_state) {
  return pg::boundary([&]() -> Datum {
    const std::string_view id = message_id_arg(fcinfo, 0);
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    pg::with_spi([&] {
      static pg::Statement q(
          "SELECT state, holder_pid, attempts, fingerprint, error, updated_at FROM agentcache.dedup"
          " WHERE message_id OPERATOR(pg_catalog.=) $1"
          " AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp())",
          {TEXTOID});
      Datum values[1] = {pg::text_datum(id)};
      const int rc = q.exec(values, nullptr, true, 1);
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

// dedup_release(message_id text) RETURNS boolean (admin)
AGENTCACHE_FUNCTION(agentcache_dedup_release) {
  return pg::boundary([&]() -> Datum {
    const std::string_view id = message_id_arg(fcinfo, 0);
    PreventCommandIfReadOnly("dedup_release()");
    const bool deleted = pg::with_spi([&] {
      static pg::Statement q("DELETE FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1", {TEXTOID});
      Datum values[1] = {pg::text_datum(id)};
      const int rc = q.exec(values, nullptr, false);
      pg::spi_check(rc, SPI_OK_DELETE, "deleting from agentcache.dedup");
      return SPI_processed > 0;
    });
    PG_RETURN_BOOL(deleted);
  });
}
