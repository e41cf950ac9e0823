// dedup_complete() / dedup_fail(): ending a claim the caller holds (see the
// protocol in tier.cpp).
#include "pg/dedup/finish.hpp"

#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/spi.hpp"
#include "pg/dedup/claims.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/dedup/state.hpp"
#include "pg/dedup/table.hpp"

namespace agentcache::dedup {

namespace {

// Writes the outcome; the window is fixed now: completion time + (the
// claim's window, else the GUC). Returns the claim's fingerprint (nullptr
// when none). A state row removed by dedup_release while we held the claim
// is written again.
char* record_outcome(std::string_view id, bool ok, const text* error) {
  static pg::Statement update(
      "UPDATE agentcache.dedup SET state = $2, holder_pid = NULL, error = $3, updated_at = pg_catalog.now(),"
      " expires_at = CASE WHEN COALESCE(claim_window, $4) OPERATOR(pg_catalog.<) $5"
      " THEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) COALESCE(claim_window, $4)"
      " ELSE 'infinity'::pg_catalog.timestamptz END"
      " WHERE message_id OPERATOR(pg_catalog.=) $1 RETURNING fingerprint",
      {TEXTOID, TEXTOID, TEXTOID, INTERVALOID, INTERVALOID});
  static pg::Statement insert(
      "INSERT INTO agentcache.dedup (message_id, state, attempts, error, updated_at, expires_at)"
      " VALUES ($1, $2, 1, $3, pg_catalog.now(), pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $4)",
      {TEXTOID, TEXTOID, TEXTOID, INTERVALOID});
  // windows (stored as time-only intervals) that reach past the end of
  // timestamptz end "never": 'infinity' (with a day's margin for the clock)
  Datum values[5] = {pg::text_datum(id), CStringGetTextDatum(ok ? "completed" : "failed"),
                     error ? PointerGetDatum(error) : Datum(0),
                     IntervalPGetDatum(pg::make_interval_usecs(static_cast<int64>(dedup_window_s) * USECS_PER_SEC)),
                     IntervalPGetDatum(pg::make_interval_usecs(END_TIMESTAMP - GetCurrentTimestamp() - USECS_PER_DAY))};
  char nulls[5] = {' ', ' ', error ? ' ' : 'n', ' ', ' '};
  int rc = update.exec(values, nulls, false);
  pg::spi_check(rc, SPI_OK_UPDATE_RETURNING, "updating agentcache.dedup");
  if (SPI_processed == 1) return pg::spi_cstring(0, 1);
  rc = insert.exec(values, nulls, false);
  pg::spi_check(rc, SPI_OK_INSERT, "updating agentcache.dedup");
  return nullptr;
}

}  // namespace

void finish(std::string_view id, bool ok, const text* error) {
  table::require(ACL_SELECT | ACL_UPDATE);
  const LOCKTAG tag = claims::claim_tag(id);
  if (!claims::held(tag))
    throw pg::sql_error(
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        pg::textf<320>(FMT_STRING("this session does not hold the claim on message \"{}\""), id).c_str(), nullptr,
        "Call agentcache.dedup_begin() first, in this database session.");
  const char* fp = pg::with_spi([&] { return record_outcome(id, ok, error); });
  if (fp != nullptr) {
    const LOCKTAG ft = claims::fingerprint_tag(fp);
    if (claims::held(ft)) claims::release_at_commit(ft);
  }
  claims::release_at_commit(tag);
}

void complete(std::string_view id) { finish(id, true, nullptr); }

}  // namespace agentcache::dedup
