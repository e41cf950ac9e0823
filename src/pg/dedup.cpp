// Message deduplication.
//
// A claim is a session-level lock on (database, hash(message_id)) in the
// advisory lock space 0xAC06, which no application advisory lock can use
// (pg_advisory_lock uses 1 and 2): it is freed the moment its backend exits
// or crashes, so no TTL is guessed anywhere. Claims follow the transaction:
// a claim taken by dedup_begin is released if that transaction rolls back;
// dedup_complete/dedup_fail release it when their transaction commits (if it
// rolls back, the caller still holds it). The outcome is durable in the logged
// table agentcache.dedup, so a completed message stays a duplicate across
// crashes and restarts until its window passes.
#include "pg/args.hpp"
#include "pg/boundary.hpp"
#include "pg/dedup.hpp"
#include "pg/guc.hpp"
#include "pg/maps.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"
#include "pg/worker.hpp"
#include "agentcache/core/text.hpp"

extern "C" {
#include "common/cryptohash.h"
#include "common/sha2.h"
}

#include <cstring>

using agentcache::pg::null_arg;
using agentcache::pg::sql_error;
using agentcache::pg::text_view;

namespace agentcache::dedup {

namespace {

constexpr std::size_t kMaxMessageIdBytes = 256;
constexpr uint16 kLockSpaceClaims = 0xAC06;
constexpr uint16 kLockSpaceFingerprints = 0xAC07;

LOCKTAG claim_tag(std::string_view message_id) {
  uint64 h = core::hash_bytes(message_id, 0xDED0 ^ MyDatabaseId);
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(h >> 32), static_cast<uint32>(h), kLockSpaceClaims);
  return tag;
}

// A claim made with a fingerprint also holds the fingerprint (same lifetime),
// so a second message with the same (conversation, body) sees it as
// in_progress even before the first claim's row is committed.
LOCKTAG fingerprint_tag(std::string_view fp) {
  uint64 h = core::hash_bytes(fp, 0xF1F0 ^ MyDatabaseId);
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(h >> 32), static_cast<uint32>(h),
                       kLockSpaceFingerprints);
  return tag;
}

// Claim changes that wait for the end of the (sub)transaction.
enum class ClaimOp : uint8 { TakenHere, ReleaseAtCommit };
struct PendingClaim {  // POD in TopTransactionContext
  PendingClaim* next;
  ClaimOp op;
  int nest_level;
  LOCKTAG tag;
};
PendingClaim* g_claims = nullptr;

bool same_tag(const LOCKTAG& a, const LOCKTAG& b) { return std::memcmp(&a, &b, sizeof(LOCKTAG)) == 0; }

PendingClaim* find_claim(ClaimOp op, const LOCKTAG& tag) {
  for (PendingClaim* c = g_claims; c; c = c->next)
    if (c->op == op && same_tag(c->tag, tag)) return c;
  return nullptr;
}

// A claim record, allocated (which can raise) before the session-level lock
// it records is taken; linking it cannot fail, so no lock goes unrecorded.
PendingClaim* new_claim(ClaimOp op, const LOCKTAG& tag) {
  auto* c = static_cast<PendingClaim*>(MemoryContextAllocZero(TopTransactionContext, sizeof(PendingClaim)));
  c->op = op;
  c->nest_level = GetCurrentTransactionNestLevel();
  c->tag = tag;
  return c;
}

void link_claim(PendingClaim* c) noexcept {
  c->next = g_claims;
  g_claims = c;
}

void push_claim(ClaimOp op, const LOCKTAG& tag) {
  if (op == ClaimOp::ReleaseAtCommit && find_claim(op, tag) != nullptr) return;  // queued once
  link_claim(new_claim(op, tag));
}

void drop_claim(PendingClaim* victim) {
  for (PendingClaim** link = &g_claims; *link; link = &(*link)->next) {
    if (*link == victim) {
      *link = victim->next;
      return;
    }
  }
}

void release(const LOCKTAG& tag) noexcept { (void)LockRelease(&tag, ExclusiveLock, true); }

// Gives back a lock this dedup_begin call took (its pending entry goes too,
// so an abort does not release it a second time).
void release_taken(const LOCKTAG& tag) {
  if (PendingClaim* c = find_claim(ClaimOp::TakenHere, tag)) drop_claim(c);
  release(tag);
}

void xact_callback(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) {
    for (PendingClaim* c = g_claims; c; c = c->next)
      if (c->op == ClaimOp::ReleaseAtCommit) release(c->tag);
    g_claims = nullptr;
  } else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
    for (PendingClaim* c = g_claims; c; c = c->next)
      if (c->op == ClaimOp::TakenHere) release(c->tag);  // nothing of the claim remains
    g_claims = nullptr;
  } else if (event == XACT_EVENT_PREPARE) {
    g_claims = nullptr;
  }
}

void subxact_callback(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  const int level = GetCurrentTransactionNestLevel();
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    PendingClaim** link = &g_claims;
    while (*link) {
      if ((*link)->nest_level >= level) {
        if ((*link)->op == ClaimOp::TakenHere) release((*link)->tag);
        *link = (*link)->next;
      } else {
        link = &(*link)->next;
      }
    }
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    for (PendingClaim* c = g_claims; c; c = c->next)
      if (c->nest_level >= level) c->nest_level = level - 1;
  }
}

void count(pg_atomic_uint64 shmem::DedupCounters::*field) noexcept {
  shmem::DedupCounters* c = shmem::dedup_counters();
  if (c != nullptr) pg_atomic_fetch_add_u64(&(c->*field), 1);
}

Datum text_datum(std::string_view s) {
  return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}

// SHA-256 of (conversation_id, body), unambiguous: the conversation id's
// length comes first ('ab','c' != 'a','bc'). PostgreSQL's own crypto hash.
char* fingerprint(const text* conversation, const text* body) {
  std::string_view c = text_view(const_cast<text*>(conversation));
  std::string_view b = text_view(const_cast<text*>(body));
  uint8 len[8];
  uint64 n = c.size();
  for (int i = 7; i >= 0; --i, n >>= 8) len[i] = static_cast<uint8>(n & 0xFF);
  pg_cryptohash_ctx* ctx = pg_cryptohash_create(PG_SHA256);
  uint8 digest[PG_SHA256_DIGEST_LENGTH];
  if (ctx == nullptr || pg_cryptohash_init(ctx) < 0 || pg_cryptohash_update(ctx, len, sizeof len) < 0 ||
      pg_cryptohash_update(ctx, reinterpret_cast<const uint8*>(c.data()), c.size()) < 0 ||
      pg_cryptohash_update(ctx, reinterpret_cast<const uint8*>(b.data()), b.size()) < 0 ||
      pg_cryptohash_final(ctx, digest, sizeof digest) < 0) {
    if (ctx) pg_cryptohash_free(ctx);
    elog(ERROR, "agentcache: could not compute the SHA-256 fingerprint");
  }
  pg_cryptohash_free(ctx);
  static const char hex[] = "0123456789abcdef";
  char* out = static_cast<char*>(palloc(PG_SHA256_DIGEST_STRING_LENGTH));
  for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0xF];
  }
  out[2 * PG_SHA256_DIGEST_LENGTH] = '\0';
  return out;
}

void spi_connect() {
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
}

// Is the row's message completed (or failed) and still inside its window?
struct RowState {
  bool exists;
  bool completed_in_window;
};

RowState read_row(std::string_view message_id) {
  Oid types[1] = {TEXTOID};
  Datum values[1] = {text_datum(message_id)};
  static SPIPlanPtr plan = nullptr;
  int rc = pg::spi_exec_snapshot(
      &plan,
      "SELECT state OPERATOR(pg_catalog.=) 'completed' AND expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()"
      " FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1",
      1, types, values, nullptr, GetLatestSnapshot(), true, 1);
  if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: reading agentcache.dedup failed");
  RowState st{SPI_processed == 1, false};
  if (st.exists) {
    bool isnull = false;
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    st.completed_in_window = !isnull && DatumGetBool(d);
  }
  return st;
}

}  // namespace

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Acquired: return "acquired";
    case Outcome::InProgress: return "in_progress";
    case Outcome::Duplicate: return "duplicate";
  }
  return "in_progress";
}

void check_message_id(std::string_view id) {
  if (id.size() > kMaxMessageIdBytes)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "message_id is too long", "The limit is 256 bytes.");
}

void register_callbacks() {
  RegisterXactCallback(xact_callback, nullptr);
  RegisterSubXactCallback(subxact_callback, nullptr);
}

BeginResult begin(std::string_view message_id, const text* conversation, const text* body, int64 within_us) {
  BeginResult r{Outcome::InProgress, 0, false};
  LOCKTAG tag = claim_tag(message_id);
  const bool already_held = LockHeldByMe(&tag, ExclusiveLock);
  // Completed or failed earlier in this transaction (released only at its
  // commit): asking again is a new attempt on the claim still held, unless
  // the message turns out to be a duplicate.
  PendingClaim* pending_release = already_held ? find_claim(ClaimOp::ReleaseAtCommit, tag) : nullptr;
  const bool mine = already_held && pending_release == nullptr;
  char* fp = (conversation != nullptr && body != nullptr) ? fingerprint(conversation, body) : nullptr;
  spi_connect();
  if (!already_held) {
    PendingClaim* taken = new_claim(ClaimOp::TakenHere, tag);
    LockAcquireResult lr = LockAcquire(&tag, ExclusiveLock, true, true);
    if (lr == LOCKACQUIRE_NOT_AVAIL) {
      // another live backend holds it — or has just completed it and not yet
      // released it at its commit
      RowState st = read_row(message_id);
      SPI_finish();
      r.outcome = st.completed_in_window ? Outcome::Duplicate : Outcome::InProgress;
      count(r.outcome == Outcome::Duplicate ? &shmem::DedupCounters::duplicate : &shmem::DedupCounters::in_progress);
      return r;
    }
    link_claim(taken);
  }
  // We hold the claim. A completed message inside its window is a duplicate:
  // checked here when a fingerprint check follows (it must not see a claim of
  // a duplicate); otherwise the claim's upsert below checks it in passing.
  if (fp != nullptr || mine) {
    RowState st = read_row(message_id);
    if (st.completed_in_window) {
      SPI_finish();
      if (!already_held) release_taken(tag);
      r.outcome = Outcome::Duplicate;
      count(&shmem::DedupCounters::duplicate);
      return r;
    }
  }
  LOCKTAG fp_taken{};
  bool fp_taken_here = false;
  // Fingerprint duplicates: a message with the same (conversation, body)
  // completed inside its window (duplicate; a completion earlier in this
  // transaction counts), or another live claim holds the fingerprint — of
  // another backend, or of this one under another message id (in_progress).
  if (fp != nullptr && !already_held) {  // a held claim already holds its own fingerprint
    Oid types[2] = {TEXTOID, TEXTOID};
    Datum values[2] = {CStringGetTextDatum(fp), text_datum(message_id)};
    static SPIPlanPtr plan = nullptr;
    int rc = pg::spi_exec_snapshot(
        &plan,
        "SELECT 1 FROM agentcache.dedup WHERE fingerprint OPERATOR(pg_catalog.=) $1"
        " AND message_id OPERATOR(pg_catalog.<>) $2 AND state OPERATOR(pg_catalog.=) 'completed'"
        " AND expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()",
        2, types, values, nullptr, GetLatestSnapshot(), true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: reading agentcache.dedup failed");
    Outcome o = Outcome::Acquired;
    LOCKTAG ft = fingerprint_tag(fp);
    if (SPI_processed > 0) {
      o = Outcome::Duplicate;  // creates no row and keeps no claim
    } else {
      PendingClaim* taken = new_claim(ClaimOp::TakenHere, ft);
      if (LockHeldByMe(&ft, ExclusiveLock) || LockAcquire(&ft, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL) {
        o = Outcome::InProgress;
      } else {
        link_claim(taken);
        fp_taken = ft;
        fp_taken_here = true;
      }
    }
    if (o != Outcome::Acquired) {
      SPI_finish();
      if (!already_held) release_taken(tag);
      r.outcome = o;
      count(o == Outcome::Duplicate ? &shmem::DedupCounters::duplicate : &shmem::DedupCounters::in_progress);
      return r;
    }
  }
  if (mine) {
    // the holder asks again: acquired, attempts unchanged, nothing stacked
    Oid types[1] = {TEXTOID};
    Datum values[1] = {text_datum(message_id)};
    static SPIPlanPtr plan = nullptr;
    int rc = pg::spi_exec(&plan, "SELECT attempts FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1",
                          1, types, values, nullptr, true, 1);
    bool isnull = true;
    if (rc == SPI_OK_SELECT && SPI_processed == 1)
      r.attempts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    SPI_finish();
    r.outcome = Outcome::Acquired;
    r.repeated = true;
    count(&shmem::DedupCounters::acquired);
    return r;
  }
  Interval* within = nullptr;
  if (within_us >= 0) {
    within = static_cast<Interval*>(palloc0(sizeof(Interval)));
    within->time = within_us;
  }
  Oid types[4] = {TEXTOID, TEXTOID, INT4OID, INTERVALOID};
  Datum values[4] = {text_datum(message_id), fp ? CStringGetTextDatum(fp) : Datum(0), Int32GetDatum(MyProcPid),
                     within ? IntervalPGetDatum(within) : Datum(0)};
  char nulls[4] = {' ', fp ? ' ' : 'n', ' ', within ? ' ' : 'n'};
  // on a fresh snapshot: a previous holder's row may have committed after
  // a REPEATABLE READ snapshot was taken (ON CONFLICT would raise 40001)
  static SPIPlanPtr upsert_plan = nullptr;
  int rc = pg::spi_exec_latest(
      &upsert_plan,
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
  if (rc != SPI_OK_INSERT_RETURNING) elog(ERROR, "agentcache: recording the claim failed");
  if (SPI_processed == 0) {  // the message completed inside its window: a duplicate
    SPI_finish();
    if (!already_held) release_taken(tag);
    if (fp_taken_here) release_taken(fp_taken);
    r.outcome = Outcome::Duplicate;
    count(&shmem::DedupCounters::duplicate);
    return r;
  }
  if (pending_release != nullptr) {  // a new attempt: keep holding the claim (and its fingerprint)
    drop_claim(pending_release);
    if (fp != nullptr)
      if (PendingClaim* f = find_claim(ClaimOp::ReleaseAtCommit, fingerprint_tag(fp))) drop_claim(f);
  }
  bool isnull = false;
  r.attempts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  SPI_finish();
  r.outcome = Outcome::Acquired;
  count(&shmem::DedupCounters::acquired);
  return r;
}

namespace {
// Ends a claim held by the caller: completed or failed, released at commit.
void finish(std::string_view message_id, bool ok, const text* error) {
  LOCKTAG tag = claim_tag(message_id);
  if (!LockHeldByMe(&tag, ExclusiveLock)) {
    char msg[320];
    pg_snprintf(msg, sizeof msg, "this session does not hold the claim on message \"%.*s\"",
                static_cast<int>(message_id.size()), message_id.data());
    throw sql_error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, msg, nullptr,
                    "Call agentcache.dedup_begin() first, in this database session.");
  }
  spi_connect();
  Oid types[4] = {TEXTOID, TEXTOID, TEXTOID, INTERVALOID};
  Interval* guc = static_cast<Interval*>(palloc0(sizeof(Interval)));
  guc->time = static_cast<int64>(guc::dedup_window_s) * USECS_PER_SEC;
  Datum values[4] = {text_datum(message_id), CStringGetTextDatum(ok ? "completed" : "failed"),
                     error ? PointerGetDatum(error) : Datum(0), IntervalPGetDatum(guc)};
  char nulls[4] = {' ', ' ', error ? ' ' : 'n', ' '};
  // the window is fixed now: completion time + (the claim's window, else the GUC)
  static SPIPlanPtr update_plan = nullptr;
  int rc = pg::spi_exec(
      &update_plan,
      "UPDATE agentcache.dedup SET state = $2, holder_pid = NULL, error = $3, updated_at = pg_catalog.now(),"
      " expires_at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) COALESCE(claim_window, $4)"
      " WHERE message_id OPERATOR(pg_catalog.=) $1 RETURNING fingerprint",
      4, types, values, nulls, false, 0);
  if (rc != SPI_OK_UPDATE_RETURNING) elog(ERROR, "agentcache: updating agentcache.dedup failed");
  if (SPI_processed == 1) {
    char* fp = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    if (fp != nullptr) {
      LOCKTAG ft = fingerprint_tag(fp);
      if (LockHeldByMe(&ft, ExclusiveLock)) push_claim(ClaimOp::ReleaseAtCommit, ft);
    }
  }
  if (SPI_processed == 0) {
    // the state row was removed by dedup_release while we held the claim
    rc = SPI_execute_with_args(
        "INSERT INTO agentcache.dedup (message_id, state, attempts, error, updated_at, expires_at)"
        " VALUES ($1, $2, 1, $3, pg_catalog.now(), pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $4)",
        4, types, values, nulls, false, 0);
    if (rc != SPI_OK_INSERT) elog(ERROR, "agentcache: updating agentcache.dedup failed");
  }
  SPI_finish();
  push_claim(ClaimOp::ReleaseAtCommit, tag);
}
}  // namespace

void complete(std::string_view message_id) { finish(message_id, true, nullptr); }

// agentcache.dedup keeps no index on expires_at (dedup_complete sets it: a
// HOT update that way); the sweep walks the table in block ranges.
BlockNumber g_sweep_next_block = 0;

int64 sweep() {
  int64 n = worker::delete_by_walk(
      "dedup",
      "DELETE FROM agentcache.dedup WHERE ctid OPERATOR(pg_catalog.>=) $1 AND ctid OPERATOR(pg_catalog.<) $2"
      " AND expires_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp()",
      0, &g_sweep_next_block, nullptr);
  if (shmem::dedup_counters() != nullptr && n > 0)
    pg_atomic_fetch_add_u64(&shmem::dedup_counters()->expirations, static_cast<uint64>(n));
  return n;
}

int64 claims_held() {
  spi_connect();
  Oid types[1] = {INT4OID};
  // pg_locks.objsubid is a smallint: our lock space 0xAC06 shows as negative
  Datum values[1] = {Int32GetDatum(static_cast<int16>(kLockSpaceClaims))};
  int rc = SPI_execute_with_args(
      "SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks WHERE locktype OPERATOR(pg_catalog.=) 'advisory'"
      " AND objsubid OPERATOR(pg_catalog.=) $1 AND granted",
      1, types, values, nullptr, true, 0);
  int64 n = 0;
  if (rc == SPI_OK_SELECT && SPI_processed == 1) {
    bool isnull = false;
    n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  }
  SPI_finish();
  return n;
}

void reset_stats() noexcept {
  shmem::DedupCounters* c = shmem::dedup_counters();
  if (c == nullptr) return;
  for (pg_atomic_uint64* a : {&c->acquired, &c->in_progress, &c->duplicate, &c->expirations})
    pg_atomic_write_u64(a, 0);
}

namespace {
struct Registrar {
  Registrar() { worker::register_sweep("dedup_expired", sweep); }
} g_registrar;
}  // namespace

}  // namespace agentcache::dedup

// ====================================================================== SQL functions

using namespace agentcache;

namespace {
std::string_view message_id_arg(FunctionCallInfo fcinfo, int i) {
  if (PG_ARGISNULL(i)) null_arg("message_id");
  std::string_view id = text_view(PG_GETARG_TEXT_PP(i));
  dedup::check_message_id(id);
  return id;
}
}  // namespace

// dedup_begin(message_id text, conversation_id text DEFAULT NULL, body text DEFAULT NULL,
//             within interval DEFAULT NULL) RETURNS text
AGENTCACHE_FUNCTION(agentcache_dedup_begin) {
  return pg::boundary([&]() -> Datum {
    std::string_view id = message_id_arg(fcinfo, 0);
    int64 within = -1;
    if (!PG_ARGISNULL(3)) {
      const Interval* iv = PG_GETARG_INTERVAL_P(3);
      within = (static_cast<int64>(iv->month) * DAYS_PER_MONTH + iv->day) * USECS_PER_DAY + iv->time;
      if (within <= 0) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "within must be a positive interval");
    }
    PreventCommandIfReadOnly("dedup_begin()");
    const text* conv = PG_ARGISNULL(1) ? nullptr : PG_GETARG_TEXT_PP(1);
    const text* body = PG_ARGISNULL(2) ? nullptr : PG_GETARG_TEXT_PP(2);
    dedup::BeginResult r = dedup::begin(id, conv, body, within);
    PG_RETURN_TEXT_P(cstring_to_text(dedup::outcome_name(r.outcome)));
  });
}

// dedup_complete(message_id text) RETURNS void
AGENTCACHE_FUNCTION(agentcache_dedup_complete) {
  return pg::boundary([&]() -> Datum {
    std::string_view id = message_id_arg(fcinfo, 0);
    PreventCommandIfReadOnly("dedup_complete()");
    dedup::complete(id);
    PG_RETURN_VOID();
  });
}

// dedup_fail(message_id text, error text DEFAULT NULL) RETURNS void
AGENTCACHE_FUNCTION(agentcache_dedup_fail) {
  return pg::boundary([&]() -> Datum {
    std::string_view id = message_id_arg(fcinfo, 0);
    PreventCommandIfReadOnly("dedup_fail()");
    dedup::finish(id, false, PG_ARGISNULL(1) ? nullptr : PG_GETARG_TEXT_PP(1));
    PG_RETURN_VOID();
  });
}

// dedup_state(message_id text) RETURNS TABLE(state text, holder_pid int, attempts int,
//   fingerprint text, error text, updated_at timestamptz)
AGENTCACHE_FUNCTION(agentcache_dedup_state) {
  return pg::boundary([&]() -> Datum {
    std::string_view id = message_id_arg(fcinfo, 0);
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
    Oid types[1] = {TEXTOID};
    Datum values[1] = {PointerGetDatum(cstring_to_text_with_len(id.data(), static_cast<int>(id.size())))};
    int rc = SPI_execute_with_args(
        "SELECT state, holder_pid, attempts, fingerprint, error, updated_at FROM agentcache.dedup"
        " WHERE message_id OPERATOR(pg_catalog.=) $1"
        " AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp())",
        1, types, values, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: reading agentcache.dedup failed");
    for (uint64 i = 0; i < SPI_processed; ++i) {
      Datum v[6];
      bool n[6];
      for (int c = 0; c < 6; ++c) v[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1, &n[c]);
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
    }
    SPI_finish();
    return Datum(0);
  });
}

// dedup_release(message_id text) RETURNS boolean (admin)
AGENTCACHE_FUNCTION(agentcache_dedup_release) {
  return pg::boundary([&]() -> Datum {
    std::string_view id = message_id_arg(fcinfo, 0);
    PreventCommandIfReadOnly("dedup_release()");
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
    Oid types[1] = {TEXTOID};
    Datum values[1] = {PointerGetDatum(cstring_to_text_with_len(id.data(), static_cast<int>(id.size())))};
    int rc = SPI_execute_with_args("DELETE FROM agentcache.dedup WHERE message_id OPERATOR(pg_catalog.=) $1", 1, types,
                                   values, nullptr, false, 0);
    if (rc != SPI_OK_DELETE) elog(ERROR, "agentcache: deleting from agentcache.dedup failed");
    bool deleted = SPI_processed > 0;
    SPI_finish();
    PG_RETURN_BOOL(deleted);
  });
}
