// Message deduplication.
//
// A claim is a session-level lock on (database, hash(message_id)) in the
// advisory lock space LockSpace::Claim, which no application advisory lock
// can use (pg/common/locks.hpp): it is freed the moment its backend exits or
// crashes, so no TTL is guessed anywhere. A claim made with a fingerprint of
// (conversation_id, body) also holds LockSpace::Fingerprint on it (taken
// after the claim, always in that order). Claims follow the transaction
// (claims.cpp): a claim taken by dedup_begin is released if that transaction
// rolls back; dedup_complete/dedup_fail release it when their transaction
// commits (if it rolls back, the caller still holds it). The outcome is
// durable in the logged table agentcache.dedup, so a completed message stays
// a duplicate across crashes and restarts until its window passes.
//
// Leases and fencing (0.2.0). The state row names the holder (holder_pid)
// and is the truth about who holds a message; the lock says whether a holder
// that took the claim with it (holder_locked) is alive. Every claim has a
// lease (lease_expires_at; none when 0). A contender that cannot take the lock
// reads the row: a processing message whose lease ran out, whose holder was
// released (no holder) or — for a holder without the lock — whose backend is
// gone is taken over by a compare-and-set UPDATE on the holder, which skips a
// row another transaction is writing (SKIP LOCKED: the old holder completing
// it right now wins, never a wait). The new holder holds the claim without
// its lock (claims::take_over). The holder's own dedup_begin renews its lease
// only while the row still names it. Completion (dedup_complete, dedup_fail,
// outbound) writes the row only WHERE it still names the caller: otherwise
// the caller is fenced — 55000, nothing written, its lock (and fingerprint)
// given back at once. dedup_release of a processing message leaves the row
// without a holder (a "released" row, which dedup_state and stats() do not
// show, swept after the window), so the fenced holder finds itself no longer
// named even while it still has the lock.
//
// Reply outbox: outbound() adds the assistant turn and completes the claim
// recording the turn's (session_id, reply_seq) with reply_sent = false;
// reply_sent() sets it true; pending_replies() reads the partial index
// dedup_pending_replies (reply_sent = false) with FOR UPDATE SKIP LOCKED.
//
// Direct writes (direct.cpp): the two writes every message makes — the
// claim of a message that has no row yet, and the holder's completion or
// failure — go to the table through the access method (no SPI, planner or
// executor) while agentcache.dedup is as installed and the isolation level
// is read committed; the completion never waits there (a row another
// transaction is writing goes to the SQL UPDATE, which waits and re-checks
// the holder). Renewal, takeover, release and every other case run SQL.
//
// Shared memory (region "agentcache_dedup"): four atomic counters, no lock.
#include "pg/common/json.hpp"
#include "pg/common/shmem.hpp"
#include "pg/common/spi.hpp"
#include "pg/common/sweeps.hpp"
#include "pg/common/locks.hpp"
#include "pg/dedup/claims.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/dedup/state.hpp"
#include "pg/dedup/table.hpp"

namespace agentcache::dedup {

int dedup_window_s = 10 * 60;
int max_claims_per_session = 1000;
int claim_lease_ms = 5 * 60 * 1000;

namespace {

struct Shared {
  Counters counters;
  pg_atomic_uint64 locks_held;  // claims and fingerprints, every session
};
Shared* g_shared = nullptr;
Counters* g_counters = nullptr;

Size region_size() { return sizeof(Shared); }

bool attach(void* base, bool found, LWLockPadded*) {
  g_shared = static_cast<Shared*>(base);
  g_counters = &g_shared->counters;
  if (!found)
    for (pg_atomic_uint64* a : {&g_counters->acquired, &g_counters->in_progress, &g_counters->duplicate,
                                &g_counters->expirations, &g_shared->locks_held})
      pg_atomic_init_u64(a, 0);
  return true;
}

// agentcache.dedup keeps no index on expires_at (dedup_complete sets it: a
// HOT update that way); the sweep walks the table in block ranges, skipping
// rows another transaction has locked (a claim being renewed): never a wait.
int64 sweep() {
  const int64 n = pg::sweeps::walk("dedup", [](const pg::sweeps::WalkRange& r) {
    return pg::sweeps::exec_range(
        "DELETE FROM agentcache.dedup WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
        "SELECT ctid FROM agentcache.dedup WHERE ctid OPERATOR(pg_catalog.>=) $1 AND ctid OPERATOR(pg_catalog.<) $2"
        " AND expires_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() AND $3 IS NOT NULL"
        " FOR UPDATE SKIP LOCKED))",
        r, 0, nullptr);
  });
  if (n > 0) count(&Counters::expirations, static_cast<uint64>(n));
  return n;
}

void init() {
  DefineCustomIntVariable("agentcache.dedup_window",
                          "How long a completed message stays a duplicate (when dedup_begin gave no window).", nullptr,
                          &dedup_window_s, 10 * 60, 1, INT_MAX, PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.max_claims_per_session",
                          "Claims one session may hold at once (dedup_begin/inbound beyond it raise 53400).", nullptr,
                          &max_claims_per_session, 1000, 1, INT_MAX, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.claim_lease",
                          "Lease of a claim taken in this session: past it, another session takes the message over "
                          "(0: no lease; the claim still dies with its backend).",
                          nullptr, &claim_lease_ms, 5 * 60 * 1000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr,
                          nullptr, nullptr);
  if (process_shared_preload_libraries_in_progress)
    pg::shmem::add_region(pg::shmem::Region{"agentcache_dedup", region_size, 0, attach});
  claims::register_callbacks();
  table::register_callbacks();
  pg::sweeps::register_sweep("dedup_expired", sweep);
}

int64 counter(pg_atomic_uint64 Counters::*field) {
  return g_counters ? static_cast<int64>(pg_atomic_read_u64(&(g_counters->*field))) : 0;
}

// name 'claims'; entries = rows (a released message's row is none), counted exactly while the table holds at
// most kExactRows of them, else the planner's estimate (pg_class.reltuples):
// stats() reads a bounded number of rows however big the table grows.
// bytes = the table's size.
constexpr int64 kExactRows = 1000;
void collect_stats(const pg::StatsSink& sink) {
  int64 rows = 0, bytes = 0;
  pg::with_spi([&] {
    static pg::Statement q(
        "SELECT (SELECT pg_catalog.count(*) FROM (SELECT FROM agentcache.dedup"
        "   WHERE NOT (state OPERATOR(pg_catalog.=) 'processing' AND holder_pid IS NULL) LIMIT $1) d),"
        " (SELECT CASE WHEN c.reltuples OPERATOR(pg_catalog.>) 0 THEN c.reltuples::pg_catalog.int8 ELSE 0 END"
        "   FROM pg_catalog.pg_class c"
        "   WHERE c.oid OPERATOR(pg_catalog.=) 'agentcache.dedup'::pg_catalog.regclass),"
        " pg_catalog.pg_table_size('agentcache.dedup'::pg_catalog.regclass)",
        {INT8OID});
    Datum values[1] = {Int64GetDatum(kExactRows + 1)};
    if (q.exec(values, nullptr, true, 1) == SPI_OK_SELECT && SPI_processed == 1) {
      rows = pg::spi_int64(0, 1);
      if (rows > kExactRows) {
        const int64 estimate = pg::spi_int64(0, 2);
        if (estimate > rows) rows = estimate;
      }
      bytes = pg::spi_int64(0, 3);
    }
  });
  sink.row(pg::StatsRow{"dedup", "claims", rows, bytes, counter(&Counters::duplicate), counter(&Counters::acquired),
                        counter(&Counters::in_progress), 0, counter(&Counters::expirations), 0});
}

// Claims held in the whole cluster, from the lock table (pg_locks shows
// field4 as a smallint: our space appears negative).
void add_health(JsonbParseState** st) {
  const int64 held = pg::with_spi([&] {
    Oid types[1] = {INT4OID};
    Datum values[1] = {Int32GetDatum(static_cast<int16>(pg::LockSpace::Claim))};
    const int rc = SPI_execute_with_args(
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks WHERE locktype OPERATOR(pg_catalog.=) 'advisory'"
        " AND objsubid OPERATOR(pg_catalog.=) $1 AND granted",
        1, types, values, nullptr, true, 0);
    return rc == SPI_OK_SELECT && SPI_processed == 1 ? pg::spi_int64(0, 1) : int64{0};
  });
  pg::json::begin_object(st, "dedup");
  pg::json::kv(st, "claims_held", pg::json::integer(held));
  pg::json::end_object(st);
}

void reset_stats() {
  if (g_counters == nullptr) return;
  for (pg_atomic_uint64* a :
       {&g_counters->acquired, &g_counters->in_progress, &g_counters->duplicate, &g_counters->expirations})
    pg_atomic_write_u64(a, 0);
}

}  // namespace

Counters* counters() noexcept { return g_counters; }

int64 cluster_count(int delta) noexcept {
  if (g_shared == nullptr) return 0;
  if (delta == 0) return static_cast<int64>(pg_atomic_read_u64(&g_shared->locks_held));
  const uint64 v = delta > 0 ? pg_atomic_add_fetch_u64(&g_shared->locks_held, static_cast<uint64>(delta))
                             : pg_atomic_sub_fetch_u64(&g_shared->locks_held, static_cast<uint64>(-delta));
  return static_cast<int64>(v);
}

void count(pg_atomic_uint64 Counters::*field, uint64 n) noexcept {
  if (g_counters != nullptr) pg_atomic_fetch_add_u64(&(g_counters->*field), n);
}

const pg::Tier kTier{"dedup", init, collect_stats, add_health, reset_stats, nullptr};

}  // namespace agentcache::dedup
