// dedup_begin(): claiming a message (see the protocol in tier.cpp).
#include "pg/common/args.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/spi.hpp"
#include "pg/dedup/claims.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/dedup/state.hpp"

namespace agentcache::dedup {

namespace {

// What this call took; given back unless the outcome is Acquired.
struct Taken {
  bool claim = false;
  bool fingerprint = false;
  LOCKTAG fp_tag{};
};

// Whether the message completed and is still inside its window (fresh
// snapshot: a completion that committed while we waited counts).
bool completed_in_window(std::string_view id) {
  static pg::Statement q(
      "SELECT state OPERATOR(pg_catalog.=) 'completed' AND expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()"
      " FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1",
      {TEXTOID});
  Datum values[1] = {pg::text_datum(id)};
  const int rc = q.exec_latest(values, nullptr, true, 1);
  pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.dedup");
  if (SPI_processed != 1) return false;
  bool isnull = false;
  const Datum d = pg::spi_value(0, 1, &isnull);
  return !isnull && DatumGetBool(d);
}

// Fingerprint duplicates: a message with the same (conversation, body)
// completed inside its window (Duplicate; a completion earlier in this
// transaction counts), or another live claim holds the fingerprint — of
// another backend, or of this one under another message id (InProgress).
// Otherwise the fingerprint lock is taken (Acquired).
Outcome take_fingerprint(std::string_view id, const char* fp, Taken* taken) {
  static pg::Statement q(
      "SELECT 1 FROM agentcache.dedup WHERE fingerprint OPERATOR(pg_catalog.=) $1"
      " AND message_id OPERATOR(pg_catalog.<>) $2 AND state OPERATOR(pg_catalog.=) 'completed'"
      " AND expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()",
      {TEXTOID, TEXTOID});
  Datum values[2] = {CStringGetTextDatum(fp), pg::text_datum(id)};
  const int rc = q.exec_latest(values, nullptr, true, 1);
  pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.dedup");
  if (SPI_processed > 0) return Outcome::Duplicate;  // creates no row and keeps no claim
  const LOCKTAG ft = claims::fingerprint_tag(fp);
  if (claims::held(ft) || !claims::try_take(ft)) return Outcome::InProgress;
  taken->fingerprint = true;
  taken->fp_tag = ft;
  return Outcome::Acquired;
}

// The holder asks again: its attempts, unchanged.
int32 current_attempts(std::string_view id) {
  static pg::Statement q("SELECT attempts FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1", {TEXTOID});
  Datum values[1] = {pg::text_datum(id)};
  const int rc = q.exec(values, nullptr, true, 1);
  bool isnull = true;
  if (rc == SPI_OK_SELECT && SPI_processed == 1) return DatumGetInt32(pg::spi_value(0, 1, &isnull));
  return 0;
}

// Records the claim (processing, attempts + 1, or 1 after the window);
// returns attempts, or -1 when the message completed inside its window (the
// upsert's WHERE finds it: a duplicate). On a fresh snapshot: a previous
// holder's row may have committed after a REPEATABLE READ snapshot was taken
// (ON CONFLICT would raise 40001).
int32 record_claim(std::string_view id, const char* fp, int64 within_us) {
  static pg::Statement q(
      "INSERT INTO agentcache.dedup AS d (message_id, fingerprint, state, holder_pid, attempts, error, updated_at,"
      " expires_at, claim_window) VALUES ($1, $2, 'processing', $3, 1, NULL, pg_catalog.now(), NULL, $4)"
      " ON CONFLICT (message_id) DO UPDATE SET state = 'processing', holder_pid = $3,"
      " attempts = CASE WHEN d.expires_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() THEN 1"
      " ELSE d.attempts OPERATOR(pg_catalog.+) 1 END,"
      " error = NULL, updated_at = pg_catalog.now(), expires_at = NULL,"
      " fingerprint = COALESCE($2, d.fingerprint), claim_window = $4"
      " WHERE NOT (d.state OPERATOR(pg_catalog.=) 'completed'"
      " AND d.expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp())"
      " RETURNING attempts",
      {TEXTOID, TEXTOID, INT4OID, INTERVALOID});
  Datum values[4] = {pg::text_datum(id), fp ? CStringGetTextDatum(fp) : Datum(0), Int32GetDatum(MyProcPid),
                     within_us >= 0 ? IntervalPGetDatum(pg::make_interval_usecs(within_us)) : Datum(0)};
  char nulls[4] = {' ', fp ? ' ' : 'n', ' ', within_us >= 0 ? ' ' : 'n'};
  const int rc = q.exec_latest(values, nulls, false, 1);
  pg::spi_check(rc, SPI_OK_INSERT_RETURNING, "recording the claim");
  if (SPI_processed == 0) return -1;
  bool isnull = false;
  return DatumGetInt32(pg::spi_value(0, 1, &isnull));
}

// What dedup_begin is asked, and what the caller holds already.
struct Ask {
  std::string_view id;
  LOCKTAG tag;      // the message's claim
  bool held;        // the caller held the claim before this call
  bool releasing;   // ... and completed or failed it earlier in this transaction
  const char* fp;   // fingerprint of (conversation, body), or nullptr
  int64 within_us;  // the window asked for; < 0: the GUC at completion
};

// The decision, inside SPI.
BeginResult decide(const Ask& a, Taken* taken) {
  if (!a.held) {
    // another live backend holds it — or has just completed it and not yet
    // released it at its commit
    if (!claims::try_take(a.tag))
      return {completed_in_window(a.id) ? Outcome::Duplicate : Outcome::InProgress, 0, false};
    taken->claim = true;
  }
  const bool mine = a.held && !a.releasing;
  // A completed message inside its window is a duplicate: checked here when
  // a fingerprint check follows (it must not see a claim of a duplicate);
  // otherwise the claim's upsert checks it in passing.
  if ((a.fp != nullptr || mine) && completed_in_window(a.id)) return {Outcome::Duplicate, 0, false};
  if (a.fp != nullptr && !a.held) {  // a held claim already holds its own fingerprint
    const Outcome o = take_fingerprint(a.id, a.fp, taken);
    if (o != Outcome::Acquired) return {o, 0, false};
  }
  if (mine) return {Outcome::Acquired, current_attempts(a.id), true};  // nothing stacked
  const int32 attempts = record_claim(a.id, a.fp, a.within_us);
  if (attempts < 0) return {Outcome::Duplicate, 0, false};
  return {Outcome::Acquired, attempts, false};
}

}  // namespace

BeginResult begin(std::string_view id, const text* conversation, const text* body, int64 within_us) {
  Ask a{id, claims::claim_tag(id), false, false, nullptr, within_us};
  a.held = claims::held(a.tag);
  // Completed or failed earlier in this transaction (released only at its
  // commit): asking again is a new attempt on the claim still held, unless
  // the message turns out to be a duplicate.
  a.releasing = a.held && claims::release_pending(a.tag);
  if (conversation != nullptr && body != nullptr) a.fp = claims::fingerprint(conversation, body);
  Taken taken;
  const BeginResult r = pg::with_spi([&] { return decide(a, &taken); });
  if (r.outcome != Outcome::Acquired) {
    if (taken.claim) claims::give_back(a.tag);
    if (taken.fingerprint) claims::give_back(taken.fp_tag);
  } else if (a.releasing) {  // a new attempt: keep holding the claim (and its fingerprint)
    claims::keep(a.tag);
    if (a.fp != nullptr) claims::keep(claims::fingerprint_tag(a.fp));
  }
  switch (r.outcome) {
    case Outcome::Acquired:
      count(&Counters::acquired);
      break;
    case Outcome::InProgress:
      count(&Counters::in_progress);
      break;
    case Outcome::Duplicate:
      count(&Counters::duplicate);
      break;
  }
  return r;
}

}  // namespace agentcache::dedup
