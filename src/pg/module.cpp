// Module entry: the magic block, _PG_init, GUCs and hook installation.
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/dedup.hpp"
#include "pg/memory.hpp"
#include "pg/shmem.hpp"
#include "pg/worker.hpp"
#include "pg/ttl.hpp"

extern "C" {
PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

namespace agentcache::guc {
int session_memory_kb = 64 * 1024;
int session_turns = 30;
int context_turns = 30;
int max_turn_bytes = 1024 * 1024;
int map_memory_kb = 16 * 1024;
char* database = nullptr;
int sweep_interval_ms = 10 * 1000;
int turn_retention_s = 0;
int default_ttl_s = 5 * 60;
int stale_retention_s = 15 * 60;
int dedup_window_s = 10 * 60;
}  // namespace agentcache::guc

void _PG_init(void) {
  using namespace agentcache;
  // Shared-memory sizes can only be PGC_POSTMASTER while preloading (PostgreSQL
  // refuses to create postmaster variables later). Loaded on demand, the
  // library still defines them, read-mostly, so SHOW works; they have no effect
  // without shared_preload_libraries.
  const GucContext startup_ctx = process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP;
  DefineCustomIntVariable("agentcache.session_memory",
                          "Shared memory for the conversation-memory cache.",
                          "Takes effect at server start when agentcache is in shared_preload_libraries.",
                          &guc::session_memory_kb, 64 * 1024, 1024, 16 * 1024 * 1024, startup_ctx, GUC_UNIT_KB,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.session_turns", "Turns kept in shared memory per session.",
                          "Takes effect at server start when agentcache is in shared_preload_libraries.",
                          &guc::session_turns, 30, 1, 1000, startup_ctx, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.context_turns",
                          "Turns get_context() and get_turns() return when max_turns is NULL.", nullptr,
                          &guc::context_turns, 30, 1, 100000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.max_turn_bytes", "Largest content add_turn() accepts.", nullptr,
                          &guc::max_turn_bytes, 1024 * 1024, 1024, 1024 * 1024 * 1024, PGC_USERSET,
                          GUC_UNIT_BYTE, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.map_memory", "Shared memory for prewarmed lookup maps.",
                          "Takes effect at server start when agentcache is in shared_preload_libraries.",
                          &guc::map_memory_kb, 16 * 1024, 1024, 16 * 1024 * 1024, startup_ctx, GUC_UNIT_KB,
                          nullptr, nullptr, nullptr);
  DefineCustomStringVariable("agentcache.database", "Database the agentcache background worker connects to.",
                             nullptr, &guc::database, "postgres", startup_ctx, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.sweep_interval", "How often the background worker sweeps expired rows.",
                          nullptr, &guc::sweep_interval_ms, 10 * 1000, 100, 24 * 3600 * 1000, PGC_SIGHUP,
                          GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.turn_retention",
                          "Turns older than this are deleted by the background worker (0: keep forever).", nullptr,
                          &guc::turn_retention_s, 0, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.default_ttl",
                          "TTL a namespace created by its first put() gets as its default_ttl.", nullptr,
                          &guc::default_ttl_s, 5 * 60, 1, INT_MAX, PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("agentcache.stale_retention",
                          "How long expired TTL entries are kept for get_stale() and stale_if_error.", nullptr,
                          &guc::stale_retention_s, 15 * 60, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("agentcache.dedup_window",
                          "How long a completed message stays a duplicate (when dedup_begin gave no window).", nullptr,
                          &guc::dedup_window_s, 10 * 60, 1, INT_MAX, PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
  MarkGUCPrefixReserved("agentcache");

  if (process_shared_preload_libraries_in_progress) {
    shmem::install_hooks();
    worker::register_worker();
  }
  memory::register_callbacks();
  dedup::register_callbacks();
  ttl::register_callbacks();
}
