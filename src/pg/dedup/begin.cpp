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
  static SPIPlanPtr plan = nullptr;
  Oid types[1] = {TEXTOID};
  Datum values[1] = {pg::text_datum(id)};
  const int rc = pg::spi_exec_snapshot(
      &plan,
      "SELECT state OPERATOR(pg_catalog.=) 'completed' AND expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()"
      " FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1",
      1, types, values, nullptr, GetLatestSnapshot(), true, 1);
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
  static SPIPlanPtr plan = nullptr;
  Oid types[2] = {TEXTOID, TEXTOID};
  Datum values[2] = {CStringGetTextDatum(fp), pg::text_datum(id)};
  const int rc =
      pg::spi_exec_snapshot(&plan,
                            "SELECT 1 FROM agentcache.dedup WHERE fingerprint OPERATOR(pg_catalog.=) $1"
                            " AND message_id OPERATOR(pg_catalog.<>) $2 AND state OPERATOR(pg_catalog.=) 'completed'"
                            " AND expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()",
                            2, types, values, nullptr, GetLatestSnapshot(), true, 1);
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
  static SPIPlanPtr plan = nullptr;
  Oid types[1] = {TEXTOID};
  Datum values[1] = {pg::text_datum(id)};
  const int rc = pg::spi_exec(&plan, "SELECT attempts FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1",
                              1, types, values, nullptr, true, 1);
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
  static SPIPlanPtr plan = nullptr;
  Oid types[4] = {TEXTOID, TEXTOID, INT4OID, INTERVALOID};
  Datum values[4] = {pg::text_datum(id), fp ? CStringGetTextDatum(fp) : Datum(0), Int32GetDatum(MyProcPid),
                     within_us >= 0 ? IntervalPGetDatum(pg::make_interval_usecs(within_us)) : Datum(0)};
  char nulls[4] = {' ', fp ? ' ' : 'n', ' ', within_us >= 0 ? ' ' : 'n'};
  const int rc = pg::spi_exec_latest(
      &plan,
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
      4, types, values, nulls, false, 1);
  pg::spi_check(rc, SPI_OK_INSERT_RETURNING, "recording the claim");
  if (SPI_processed == 0) return -1;
  bool isnull = false;
  return DatumGetInt32(pg::spi_value(0, 1, &isnull));
}

// The decision, inside SPI. `held`: the caller held the claim before this
// call; `releasing`: it completed or failed it earlier in this transaction.
BeginResult decide(std::string_view id, const LOCKTAG& tag, bool held, bool releasing, const char* fp, int64 within_us,
                   Taken* taken) {
  if (!held) {
    // another live backend holds it — or has just completed it and not yet
    // released it at its commit
    if (!claims::try_take(tag)) return {completed_in_window(id) ? Outcome::Duplicate : Outcome::InProgress, 0, false};
    taken->claim = true;
  }
  const bool mine = held && !releasing;
  // A completed message inside its window is a duplicate: checked here when
  // a fingerprint check follows (it must not see a claim of a duplicate);
  // otherwise the claim's upsert checks it in passing.
  if ((fp != nullptr || mine) && completed_in_window(id)) return {Outcome::Duplicate, 0, false};
  if (fp != nullptr && !held) {  // a held claim already holds its own fingerprint
    const Outcome o = take_fingerprint(id, fp, taken);
    if (o != Outcome::Acquired) return {o, 0, false};
  }
  if (mine) return {Outcome::Acquired, current_attempts(id), true};  // nothing stacked
  const int32 attempts = record_claim(id, fp, within_us);
  if (attempts < 0) return {Outcome::Duplicate, 0, false};
  return {Outcome::Acquired, attempts, false};
}

}  // namespace

BeginResult begin(std::string_view id, const text* conversation, const text* body, int64 within_us) {
  const LOCKTAG tag = claims::claim_tag(id);
  const bool held = claims::held(tag);
  // Completed or failed earlier in this transaction (released only at its
  // commit): asking again is a new attempt on the claim still held, unless
  // the message turns out to be a duplicate.
  const bool releasing = held && claims::release_pending(tag);
  const char* fp = (conversation != nullptr && body != nullptr) ? claims::fingerprint(conversation, body) : nullptr;
  Taken taken;
  const BeginResult r = pg::with_spi([&] { return decide(id, tag, held, releasing, fp, within_us, &taken); });
  if (r.outcome != Outcome::Acquired) {
    if (taken.claim) claims::give_back(tag);
    if (taken.fingerprint) claims::give_back(taken.fp_tag);
  } else if (releasing) {  // a new attempt: keep holding the claim (and its fingerprint)
    claims::keep(tag);
    if (fp != nullptr) claims::keep(claims::fingerprint_tag(fp));
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
