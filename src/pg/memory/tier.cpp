// Conversation memory: agentcache.turns (durable, logged) with a write-through
// shared-memory cache of each session's newest turns.
//
// Shared memory: a core::SessionCache of kPartitions tables, each guarded by
// its own LWLock (tranche "agentcache_memory"): shared to read a session
// (and touch its LRU bit), exclusive to publish, apply or drop one.
//
// Commit protocol (the cache holds only committed turns):
//  * add_turn (write.cpp) takes the session's writer lock (LockSpace::
//    SessionWriter, transaction-scoped), inserts in the caller's transaction
//    and queues the turn in the backend's pending list (pending.cpp). The
//    trigger on agentcache.turns queues an invalidation for any other INSERT,
//    UPDATE, DELETE or TRUNCATE.
//  * At XACT_EVENT_COMMIT (after the commit is visible) the pending list is
//    applied under each partition's exclusive LWLock by noexcept core code;
//    nothing there can raise. Subtransaction aborts drop their part of the
//    list; top-level abort drops all of it; PREPARE TRANSACTION is refused.
//  * A read-through load (read.cpp) notes the key's generation before it
//    takes its snapshot, and publishes only if no commit touched the key
//    meanwhile.
//  * So a cached session holds the newest committed turn once every
//    transaction that changed it has ended — add_turn's writer lock waits
//    for the other add_turns; a transaction that changed agentcache.turns
//    otherwise is counted in Shared::sql_changes from its first queued
//    invalidation until it has ended (after apply()). add_turn takes the
//    next seq from the cache only when that count shows none in progress and
//    none begun or ended while it looked (read::newest_cached_seq); else it
//    scans the primary key.
//  * A transaction with pending changes to a session reads that session from
//    the table (ordinary visibility: it sees its own uncommitted turns), or
//    overlays its own pending add_turns on the cached committed turns.
// No LWLock is held across anything that can raise: reads copy into a
// scratch buffer sized beforehand, loads allocate before they lock.
#include "pg/common/json.hpp"
#include "pg/common/shmem.hpp"
#include "pg/common/sweeps.hpp"
#include "pg/memory/memory.hpp"
#include "pg/memory/pending.hpp"
#include "pg/memory/state.hpp"
#include "agentcache/core/tokenizer.hpp"
#include "pg/memory/table.hpp"

#include "pg/common/boundary.hpp"

namespace agentcache::memory {

int session_memory_kb = 64 * 1024;
int session_turns = 30;
int context_turns = 30;
int max_turn_bytes = 1024 * 1024;
int turn_retention_s = 0;
int token_encoding = 0;  // o200k_base
int turn_token_overhead = 4;

namespace {

struct Shared {
  LWLockPadded* locks;
  core::SessionCache* sessions;
  std::size_t bytes;
  pg_atomic_uint32 filled_in_recovery;
  pg_atomic_uint32 ever_filled_in_recovery;  // never cleared: see read::newest_cached_seq()
  // Transactions that changed agentcache.turns other than through add_turn
  // (the trigger's invalidations): bits 0-31 count those not yet ended
  // (their invalidations not yet applied), bits 32-63 those that ended.
  pg_atomic_uint64 sql_changes;
};
Shared* g_shared = nullptr;

std::size_t cache_bytes() { return static_cast<std::size_t>(session_memory_kb) * 1024; }

std::size_t cache_region() {
  return MAXALIGN(core::SessionCache::footprint(cache_bytes(), kPartitions, static_cast<std::uint32_t>(session_turns)));
}

Size region_size() { return add_size(MAXALIGN(sizeof(Shared)), cache_region()); }

bool attach(void* base, bool found, LWLockPadded* locks) {
  g_shared = static_cast<Shared*>(base);
  if (found) return true;
  g_shared->locks = locks;
  g_shared->bytes = cache_bytes();
  pg_atomic_init_u32(&g_shared->filled_in_recovery, 0);
  pg_atomic_init_u32(&g_shared->ever_filled_in_recovery, 0);
  pg_atomic_init_u64(&g_shared->sql_changes, 0);
  void* region = static_cast<char*>(base) + MAXALIGN(sizeof(Shared));
  g_shared->sessions =
      core::SessionCache::create(region, g_shared->bytes, kPartitions, static_cast<std::uint32_t>(session_turns));
  return g_shared->sessions != nullptr;
}

void define_gucs() {
  const GucContext startup = pg::shmem::startup_context();
  DefineCustomIntVariable("agentcache.session_memory", "Shared memory for the conversation-memory cache.",
                          "Takes effect at server start when agentcache is in shared_preload_libraries.",
                          &session_memory_kb, 64 * 1024, 1024, 16 * 1024 * 1024, startup, GUC_UNIT_KB, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("agentcache.session_turns", "Turns kept in shared memory per session.",
                          "Takes effect at server start when agentcache is in shared_preload_libraries.",
                          &session_turns, 30, 1, 1000, startup, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.context_turns",
                          "Turns get_context() and get_turns() return when max_turns is NULL.", nullptr, &context_turns,
                          30, 1, 100000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  static const config_enum_entry kEncodings[] = {
      {"o200k_base", static_cast<int>(core::tok::Encoding::O200kBase), false},
      {"cl100k_base", static_cast<int>(core::tok::Encoding::Cl100kBase), false},
      {nullptr, 0, false}};
  DefineCustomEnumVariable("agentcache.token_encoding", "The token encoding of max_tokens budgets.",
                           "o200k_base (GPT-4o and later) or cl100k_base (GPT-4, GPT-3.5).", &token_encoding,
                           static_cast<int>(core::tok::Encoding::O200kBase), kEncodings, PGC_USERSET, 0, nullptr,
                           nullptr, nullptr);
  DefineCustomIntVariable("agentcache.turn_token_overhead",
                          "Tokens a max_tokens budget adds per turn for the chat format (role, separators).", nullptr,
                          &turn_token_overhead, 4, 0, 100, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.max_turn_bytes", "Largest content add_turn() accepts.", nullptr, &max_turn_bytes,
                          1024 * 1024, 1024, 1024 * 1024 * 1024, PGC_USERSET, GUC_UNIT_BYTE, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.turn_retention",
                          "Turns older than this are deleted by the background worker (0: keep forever).", nullptr,
                          &turn_retention_s, 0, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
}

// The worker's sweep: turns older than agentcache.turn_retention. Cached
// copies are invalidated by the turns trigger at commit, as for any DELETE.
int64 sweep_retention() {
  if (turn_retention_s <= 0) return 0;
  return pg::sweeps::delete_in_batches(
      "turns",
      "DELETE FROM agentcache.turns WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
      " SELECT ctid FROM agentcache.turns"
      " WHERE created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)"
      " pg_catalog.make_interval(secs => $1::pg_catalog.float8)) LIMIT $2))",
      turn_retention_s, nullptr);  // OPERATOR() has one precedence: brackets
}

void init() {
  define_gucs();
  if (process_shared_preload_libraries_in_progress)
    pg::shmem::add_region(pg::shmem::Region{"agentcache_memory", region_size, static_cast<int>(kPartitions), attach});
  table::register_callbacks();
  pending::register_callbacks();
  pg::sweeps::register_sweep("turn_retention", sweep_retention);
}

core::SessionStats totals() noexcept {
  core::SessionStats st;
  core::SessionCache* cache = sessions();
  if (cache == nullptr) return st;
  for (uint32 p = 0; p < cache->partitions(); ++p) {
    pg::LWLockGuard g(partition_lock(p), LW_SHARED);
    cache->table(p).add_stats(st);
  }
  return st;
}

void collect_stats(const pg::StatsSink& sink) {
  const core::SessionStats s = totals();
  sink.row(pg::StatsRow{"session", "sessions", static_cast<int64>(s.sessions), static_cast<int64>(s.used_bytes),
                        static_cast<int64>(s.hits), static_cast<int64>(s.misses), 0, static_cast<int64>(s.evictions), 0,
                        static_cast<int64>(s.invalidations)});
}

void add_health(JsonbParseState** st) {
  namespace json = pg::json;
  const core::SessionStats s = totals();
  json::begin_object(st, "session_memory");
  json::kv(st, "used", json::integer(static_cast<int64>(s.used_bytes)));
  json::kv(st, "limit", json::integer(static_cast<int64>(g_shared ? g_shared->bytes : cache_bytes())));
  json::kv(st, "sessions", json::integer(static_cast<int64>(s.sessions)));
  json::kv(st, "turns", json::integer(static_cast<int64>(s.turns)));
  json::kv(st, "content_bytes", json::integer(static_cast<int64>(s.content_bytes)));
  json::kv(st, "meta_bytes", json::integer(static_cast<int64>(s.meta_bytes)));
  json::end_object(st);
}

void reset_stats() {
  core::SessionCache* cache = sessions();
  if (cache == nullptr) return;
  for (uint32 p = 0; p < cache->partitions(); ++p) cache->table(p).reset_counters();
}

void forget_database(Oid db) {
  core::SessionCache* cache = sessions();
  if (cache == nullptr || db == InvalidOid) return;
  for (uint32 p = 0; p < cache->partitions(); ++p) {
    pg::LWLockGuard g(partition_lock(p), LW_EXCLUSIVE);
    cache->table(p).invalidate_all(db);
  }
}

}  // namespace

core::SessionCache* sessions() noexcept { return g_shared ? g_shared->sessions : nullptr; }

void note_filled_in_recovery() noexcept {
  if (g_shared == nullptr) return;
  pg_atomic_write_u32(&g_shared->ever_filled_in_recovery, 1);
  pg_atomic_write_u32(&g_shared->filled_in_recovery, 1);
}

bool ever_filled_in_recovery() noexcept {
  return g_shared == nullptr || pg_atomic_read_u32(&g_shared->ever_filled_in_recovery) != 0;
}

void sql_change_begin() noexcept {
  if (g_shared != nullptr) (void)pg_atomic_fetch_add_u64(&g_shared->sql_changes, 1);
}

void sql_change_end() noexcept {
  if (g_shared != nullptr) (void)pg_atomic_fetch_add_u64(&g_shared->sql_changes, (uint64{1} << 32) - 1);
}

uint64 sql_change_state() noexcept {
  return g_shared != nullptr ? pg_atomic_read_u64(&g_shared->sql_changes) : 1;  // not preloaded: "in progress"
}

void forget_if_promoted() noexcept {
  if (g_shared == nullptr || pg_atomic_read_u32(&g_shared->filled_in_recovery) == 0 || RecoveryInProgress()) return;
  uint32 expected = 1;
  if (!pg_atomic_compare_exchange_u32(&g_shared->filled_in_recovery, &expected, 0)) return;  // another backend does it
  for (uint32 p = 0; p < g_shared->sessions->partitions(); ++p) {
    pg::LWLockGuard g(partition_lock(p), LW_EXCLUSIVE);
    g_shared->sessions->table(p).invalidate_all(0);
  }
}
LWLock* partition_lock(uint32 partition) noexcept { return &g_shared->locks[partition].lock; }

const pg::Tier kTier{"memory", init, collect_stats, add_health, reset_stats, forget_database};

}  // namespace agentcache::memory
