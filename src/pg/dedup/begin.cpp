// dedup_begin(): claiming a message, renewing a lease, taking a message over
// (see the protocol in tier.cpp).
#include "pg/common/args.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/spi.hpp"
#include "pg/dedup/claims.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/dedup/direct.hpp"
#include "pg/dedup/state.hpp"
#include "pg/dedup/table.hpp"

namespace agentcache::dedup {

namespace {

// What this call took; given back unless the outcome is Acquired.
struct Taken {
  bool claim = false;
  bool fingerprint = false;
  LOCKTAG fp_tag{};
};

// The message's state row as a contender sees it (fresh snapshot: a change
// that committed while we waited counts).
struct Row {
  bool exists = false;
  bool completed_in_window = false;  // a duplicate
  bool processing = false;
  bool has_holder = false;  // false: a released message
  int32 holder = 0;
  bool holder_locked = false;  // the holder took the claim with its lock
  bool lease_over = false;     // its lease has run out
};

Row read_row(std::string_view id) {
  static pg::Statement q(
      "SELECT state OPERATOR(pg_catalog.=) 'completed' AND expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp(),"
      " state OPERATOR(pg_catalog.=) 'processing', holder_pid,"
      " lease_expires_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp(), holder_locked"
      " FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1",
      {TEXTOID});
  Datum values[1] = {pg::text_datum(id)};
  const int rc = q.exec_latest(values, nullptr, true, 1);
  pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.dedup");
  Row r;
  if (SPI_processed != 1) return r;
  r.exists = true;
  bool isnull = false;
  Datum d = pg::spi_value(0, 1, &isnull);
  r.completed_in_window = !isnull && DatumGetBool(d);
  d = pg::spi_value(0, 2, &isnull);
  r.processing = !isnull && DatumGetBool(d);
  d = pg::spi_value(0, 3, &isnull);
  r.has_holder = !isnull;
  r.holder = isnull ? 0 : DatumGetInt32(d);
  d = pg::spi_value(0, 4, &isnull);
  r.lease_over = !isnull && DatumGetBool(d);
  d = pg::spi_value(0, 5, &isnull);
  r.holder_locked = !isnull && DatumGetBool(d);
  return r;
}

// A holder backend still running (a pid can be reused: then its lease, if
// any, still ends the claim).
bool alive(int32 pid) { return pid > 0 && BackendPidGetProc(pid) != nullptr; }

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

// The lease's end as a parameter: null when there is no lease (0) or it ends
// past the end of time.
struct LeaseEnd {
  Datum value = 0;
  char null = 'n';
};
LeaseEnd lease_end(int64 lease_us) {
  LeaseEnd e;
  TimestampTz at = 0;
  if (lease_us > 0 && pg::plus_usecs(GetCurrentTimestamp(), lease_us, &at)) {
    e.value = TimestampTzGetDatum(at);
    e.null = ' ';
  }
  return e;
}

// The holder asks again: its lease renewed, its attempts unchanged; -1 when
// the state row no longer names this session (fenced: taken over, released).
int32 renew(std::string_view id, int64 lease_us) {
  static pg::Statement q(
      "UPDATE agentcache.dedup SET lease_expires_at = $3 WHERE message_id OPERATOR(pg_catalog.=) $1"
      " AND holder_pid OPERATOR(pg_catalog.=) $2 AND state OPERATOR(pg_catalog.=) 'processing' RETURNING attempts",
      {TEXTOID, INT4OID, TIMESTAMPTZOID});
  const LeaseEnd e = lease_end(lease_us);
  Datum values[3] = {pg::text_datum(id), Int32GetDatum(MyProcPid), e.value};
  char nulls[3] = {' ', ' ', e.null};
  const int rc = q.exec_latest(values, nulls, false, 1);
  pg::spi_check(rc, SPI_OK_UPDATE_RETURNING, "renewing the claim's lease");
  if (SPI_processed != 1) return -1;
  bool isnull = false;
  return DatumGetInt32(pg::spi_value(0, 1, &isnull));
}

// Records the claim, the caller holding its lock (processing, attempts + 1,
// or 1 after the window): a previous holder that took it with the lock is
// gone, since the lock was free. Returns attempts, or -1 when the upsert's
// WHERE refuses: the message completed inside its window, or it is held
// without the lock with a running lease (or none) — by a holder that took it
// over and may be alive, or released (no holder): the caller looks closer. On a fresh snapshot: a previous holder's row
// may have committed after a REPEATABLE READ snapshot was taken (ON CONFLICT would raise 40001).
int32 record_claim(std::string_view id, const char* fp, int64 within_us, int64 lease_us) {
  static pg::Statement q(
      "INSERT INTO agentcache.dedup AS d (message_id, fingerprint, state, holder_pid, attempts, error, updated_at,"
      " expires_at, claim_window, lease_expires_at, holder_locked) VALUES ($1, $2, 'processing', $3, 1, NULL,"
      " pg_catalog.now(), NULL, $4, $5, true)"
      " ON CONFLICT (message_id) DO UPDATE SET state = 'processing', holder_pid = $3, holder_locked = true,"
      " attempts = CASE WHEN d.expires_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() THEN 1"
      " ELSE d.attempts OPERATOR(pg_catalog.+) 1 END,"
      " error = NULL, updated_at = pg_catalog.now(), expires_at = NULL,"
      " fingerprint = COALESCE($2, d.fingerprint), claim_window = $4, lease_expires_at = $5,"
      " session_id = NULL, reply_seq = NULL, reply_sent = NULL"
      " WHERE NOT (d.state OPERATOR(pg_catalog.=) 'completed'"
      " AND d.expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp())"
      " AND NOT (d.state OPERATOR(pg_catalog.=) 'processing' AND NOT d.holder_locked"
      " AND (d.holder_pid IS NULL OR d.holder_pid OPERATOR(pg_catalog.<>) $3)"
      " AND (d.lease_expires_at IS NULL OR d.lease_expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()))"
      " RETURNING attempts",
      {TEXTOID, TEXTOID, INT4OID, INTERVALOID, TIMESTAMPTZOID});
  const LeaseEnd e = lease_end(lease_us);
  // a new message (no row yet): inserted directly where that applies
  if (direct::insert_claim(id, fp, within_us, e.value, e.null == 'n')) return 1;
  Datum values[5] = {pg::text_datum(id), fp ? CStringGetTextDatum(fp) : Datum(0), Int32GetDatum(MyProcPid),
                     within_us >= 0 ? IntervalPGetDatum(pg::make_interval_usecs(within_us)) : Datum(0), e.value};
  char nulls[5] = {' ', fp ? ' ' : 'n', ' ', within_us >= 0 ? ' ' : 'n', e.null};
  const int rc = q.exec_latest(values, nulls, false, 1);
  pg::spi_check(rc, SPI_OK_INSERT_RETURNING, "recording the claim");
  if (SPI_processed == 0) return -1;
  bool isnull = false;
  return DatumGetInt32(pg::spi_value(0, 1, &isnull));
}

// Takes the message over from `from` (nullptr: a released message): the row must
// still be processing under that holder and not be locked by a transaction
// writing it (the old holder completing it right now: then it is in
// progress, never a wait). Returns attempts (1 after a release, else + 1), or
// -1 when someone else changed it first.
int32 take_over(std::string_view id, const int32* from, int64 within_us, int64 lease_us, bool locked) {
  static pg::Statement q(
      "UPDATE agentcache.dedup AS d SET holder_pid = $2, holder_locked = $6,"
      " attempts = CASE WHEN d.holder_pid IS NULL THEN 1 ELSE d.attempts OPERATOR(pg_catalog.+) 1 END,"
      " error = NULL, updated_at = pg_catalog.now(), expires_at = NULL, lease_expires_at = $4,"
      " claim_window = COALESCE($5, d.claim_window)"
      " FROM (SELECT ctid FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1"
      " AND state OPERATOR(pg_catalog.=) 'processing' AND (holder_pid OPERATOR(pg_catalog.=) $3 OR (holder_pid IS NULL AND $3 IS NULL))"
      " FOR UPDATE SKIP LOCKED) AS l"
      " WHERE d.ctid OPERATOR(pg_catalog.=) l.ctid RETURNING d.attempts",
      {TEXTOID, INT4OID, INT4OID, TIMESTAMPTZOID, INTERVALOID, BOOLOID});
  const LeaseEnd e = lease_end(lease_us);
  Datum values[6] = {pg::text_datum(id),
                     Int32GetDatum(MyProcPid),
                     from ? Int32GetDatum(*from) : Datum(0),
                     e.value,
                     within_us >= 0 ? IntervalPGetDatum(pg::make_interval_usecs(within_us)) : Datum(0),
                     BoolGetDatum(locked)};
  char nulls[6] = {' ', ' ', from ? ' ' : 'n', e.null, within_us >= 0 ? ' ' : 'n', ' '};
  const int rc = q.exec_latest(values, nulls, false, 1);
  pg::spi_check(rc, SPI_OK_UPDATE_RETURNING, "taking the claim over");
  if (SPI_processed != 1) return -1;
  bool isnull = false;
  return DatumGetInt32(pg::spi_value(0, 1, &isnull));
}

// Whether a contender may take the message over from the holder the row
// names: released (no holder), its lease over, or gone — a holder with the
// lock is gone when the caller could take the lock (`have_lock`), one
// without it when its backend is (a reused pid keeps it until its lease ends).
bool can_take_over(const Row& r, bool have_lock) {
  if (!r.processing) return false;
  if (!r.has_holder || r.lease_over) return true;
  return r.holder_locked ? have_lock : !alive(r.holder);
}

// What dedup_begin is asked, and what the caller holds already.
struct Ask {
  std::string_view id;
  LOCKTAG tag;      // the message's claim
  bool held;        // the caller held the claim before this call (its lock, or taken over)
  bool releasing;   // ... and completed or failed it earlier in this transaction
  const char* fp;   // fingerprint of (conversation, body), or nullptr
  int64 within_us;  // the window asked for; < 0: the GUC at completion
  int64 lease_us;   // the lease; 0: none
};

// A contender without the lock (another backend holds it — maybe a holder
// fenced since, which keeps it until it next touches the message or ends).
BeginResult contend_without_lock(const Ask& a) {
  const Row r = read_row(a.id);
  if (r.completed_in_window) return {Outcome::Duplicate, 0, false, false};
  if (!can_take_over(r, false)) return {Outcome::InProgress, 0, false, false};
  const int32 attempts = take_over(a.id, r.has_holder ? &r.holder : nullptr, a.within_us, a.lease_us, false);
  if (attempts < 0) return {Outcome::InProgress, 0, false, false};
  claims::take_over(a.tag);
  return {Outcome::Acquired, attempts, false, true};
}

// The decision, inside SPI.
BeginResult decide(Ask a, Taken* taken) {
  if (a.held && !a.releasing) {
    const int32 attempts = renew(a.id, a.lease_us);
    if (attempts >= 0) return {Outcome::Acquired, attempts, true, false};  // nothing stacked
    // fenced: the lock (and the fingerprint's, when the caller names it) goes back now
    claims::drop(a.tag);
    if (a.fp != nullptr && claims::held(claims::fingerprint_tag(a.fp))) claims::drop(claims::fingerprint_tag(a.fp));
    a.held = false;
  }
  if (!a.held) {
    if (!claims::try_take(a.tag)) return contend_without_lock(a);
    taken->claim = true;
  }
  // A completed message inside its window is a duplicate: checked here when
  // a fingerprint check follows (it must not see a claim of a duplicate);
  // otherwise the claim's upsert checks it in passing.
  if (a.fp != nullptr && read_row(a.id).completed_in_window) return {Outcome::Duplicate, 0, false, false};
  if (a.fp != nullptr && !a.held) {  // a held claim already holds its own fingerprint
    const Outcome o = take_fingerprint(a.id, a.fp, taken);
    if (o != Outcome::Acquired) return {o, 0, false, false};
  }
  const int32 attempts = record_claim(a.id, a.fp, a.within_us, a.lease_us);
  if (attempts >= 0) return {Outcome::Acquired, attempts, false, false};
  // refused: a duplicate, a live holder without the lock, or a gone one
  const Row r = read_row(a.id);
  if (r.completed_in_window) return {Outcome::Duplicate, 0, false, false};
  if (!can_take_over(r, true)) return {Outcome::InProgress, 0, false, false};
  const int32 again = take_over(a.id, r.has_holder ? &r.holder : nullptr, a.within_us, a.lease_us, true);
  if (again < 0) return {Outcome::InProgress, 0, false, false};
  return {Outcome::Acquired, again, false, true};
}

}  // namespace

BeginResult begin(std::string_view id, const text* conversation, const text* body, int64 within_us, int64 lease_us) {
  table::require_current();
  Ask a{id,
        claims::claim_tag(id),
        false,
        false,
        nullptr,
        within_us,
        lease_us >= 0 ? lease_us : static_cast<int64>(claim_lease_ms) * 1000};
  a.held = claims::holds(a.tag);
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
