// dedup_complete() / dedup_fail() / outbound()'s completion: ending a claim
// the caller holds, fenced when it no longer does (see the protocol in
// tier.cpp).
#include "pg/dedup/finish.hpp"

#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/spi.hpp"
#include "pg/dedup/claims.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/dedup/direct.hpp"
#include "pg/dedup/state.hpp"
#include "pg/dedup/table.hpp"

namespace agentcache::dedup {

namespace {

// A reply to record with the completion: the assistant turn outbound() added.
struct Reply {
  std::string_view session;
  int64 seq;
};

// Writes the outcome if the state row still names this session as the
// holder; the window is fixed now: completion time + (the claim's window,
// else the GUC). Returns false when it does not (fenced), else sets *fp to
// the claim's fingerprint (nullptr when none).
bool record_outcome(std::string_view id, bool ok, const text* error, const Reply* reply, char** fp) {
  static pg::Statement update(
      "UPDATE agentcache.dedup SET state = $2, holder_pid = NULL, lease_expires_at = NULL, error = $3,"
      " updated_at = pg_catalog.now(),"
      " expires_at = CASE WHEN COALESCE(claim_window, $4) OPERATOR(pg_catalog.<) $5"
      " THEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) COALESCE(claim_window, $4)"
      " ELSE 'infinity'::pg_catalog.timestamptz END,"
      " session_id = $7, reply_seq = $8, reply_sent = CASE WHEN $8 IS NULL THEN NULL ELSE false END"
      " WHERE message_id OPERATOR(pg_catalog.=) $1 AND holder_pid OPERATOR(pg_catalog.=) $6"
      " AND state OPERATOR(pg_catalog.=) 'processing' RETURNING fingerprint",
      {TEXTOID, TEXTOID, TEXTOID, INTERVALOID, INTERVALOID, INT4OID, TEXTOID, INT8OID});
  // windows (stored as time-only intervals) that reach past the end of
  // timestamptz end "never": 'infinity' (with a day's margin for the clock)
  Datum values[8] = {pg::text_datum(id),
                     CStringGetTextDatum(ok ? "completed" : "failed"),
                     error ? PointerGetDatum(error) : Datum(0),
                     IntervalPGetDatum(pg::make_interval_usecs(static_cast<int64>(dedup_window_s) * USECS_PER_SEC)),
                     IntervalPGetDatum(pg::make_interval_usecs(END_TIMESTAMP - GetCurrentTimestamp() - USECS_PER_DAY)),
                     Int32GetDatum(MyProcPid),
                     reply ? pg::text_datum(reply->session) : Datum(0),
                     reply ? Int64GetDatum(reply->seq) : Datum(0)};
  char nulls[8] = {' ', ' ', error ? ' ' : 'n', ' ', ' ', ' ', reply ? ' ' : 'n', reply ? ' ' : 'n'};
  const int rc = update.exec_latest(values, nulls, false, 1);
  pg::spi_check(rc, SPI_OK_UPDATE_RETURNING, "updating agentcache.dedup");
  if (SPI_processed != 1) return false;
  *fp = pg::spi_cstring(0, 1);
  return true;
}

// The fingerprint a fenced claim may still hold.
char* fingerprint_of(std::string_view id) {
  static pg::Statement q("SELECT fingerprint FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1",
                         {TEXTOID});
  Datum values[1] = {pg::text_datum(id)};
  const int rc = q.exec(values, nullptr, true, 1);
  pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.dedup");
  return SPI_processed == 1 ? pg::spi_cstring(0, 1) : nullptr;
}

void not_held(std::string_view id) {
  throw pg::sql_error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                      pg::textf<320>(FMT_STRING("this session does not hold the claim on message \"{}\""), id).c_str(),
                      nullptr, "Call agentcache.dedup_begin() first, in this database session.");
}

void end_claim(std::string_view id, bool ok, const text* error, const Reply* reply) {
  const LOCKTAG tag = claims::claim_tag(id);
  if (!claims::holds(tag)) not_held(id);
  char* fp = nullptr;
  const direct::Outcome out{ok, error, reply != nullptr, reply ? reply->session : std::string_view(),
                            reply ? reply->seq : 0};
  const direct::Recorded d = direct::record_outcome(id, out, &fp);
  const bool recorded = d == direct::Recorded::UseSql
                            ? pg::with_spi([&] { return record_outcome(id, ok, error, reply, &fp); })
                            : d == direct::Recorded::Yes;
  if (!recorded) {
    // fenced: its lock (and fingerprint) go back now; nothing was written
    const char* held_fp = pg::with_spi([&] { return fingerprint_of(id); });
    claims::drop(tag);
    if (held_fp != nullptr) {
      const LOCKTAG ft = claims::fingerprint_tag(held_fp);
      if (claims::held(ft)) claims::drop(ft);
    }
    throw pg::sql_error(
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        pg::textf<320>(FMT_STRING("this session no longer holds the claim on message \"{}\""), id).c_str(),
        "The claim was taken over by another session after its lease ran out, or released by an administrator.",
        "Do not send this reply: the message is being (or was) processed elsewhere.");
  }
  if (fp != nullptr) {
    const LOCKTAG ft = claims::fingerprint_tag(fp);
    if (claims::held(ft)) claims::release_at_commit(ft);
  }
  claims::release_at_commit(tag);
}

}  // namespace

void finish(std::string_view id, bool ok, const text* error) {
  table::require(ACL_SELECT | ACL_UPDATE);
  end_claim(id, ok, error, nullptr);
}

void complete(std::string_view id) { finish(id, true, nullptr); }

void require_claim(std::string_view id) {
  table::require(ACL_SELECT | ACL_UPDATE);
  if (!claims::holds(claims::claim_tag(id))) not_held(id);
}

void complete_with_reply(std::string_view id, std::string_view session, int64 seq) {
  const Reply reply{session, seq};
  end_claim(id, true, nullptr, &reply);
}

}  // namespace agentcache::dedup
