// The agentcache background worker: one per cluster, connected to
// agentcache.database, restarted by the postmaster one second after it dies.
// Its loop runs every cycle (pg::sweeps::register_cycle) on each wake-up —
// first thing after it starts, with `first` set — and every sweep
// (pg::sweeps::register_sweep) when agentcache.sweep_interval has passed,
// never during recovery; between them it sleeps on its latch until a cycle
// is due, a tier wakes it (pg::sweeps::wake_worker), or the next sweep is due.
#include "pg/worker/worker.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/shmem.hpp"
#include "pg/common/sweeps.hpp"

#include <cstring>

extern "C" {
PGDLLEXPORT void agentcache_worker_main(Datum);
}

namespace agentcache::worker {

namespace {

char* g_database = nullptr;  // agentcache.database (postmaster)

void on_exit(int, Datum) { pg::sweeps::worker_exited(); }

// The worker connects as the bootstrap superuser, and InitPostgres applies
// the settings of ALTER DATABASE/ROLE … SET — which a non-superuser database
// owner controls. Before it runs anything, the worker pins its own session:
// a search_path nobody else can write to (every statement is also fully
// qualified), no timeouts, read-write READ COMMITTED transactions. Set with
// the source of a SET command, so neither those settings nor a reload of the
// configuration file override them.
void pin_session() {
  static const char* const kPinned[][2] = {
      {"search_path", "pg_catalog, pg_temp"},
      {"statement_timeout", "0"},
      {"lock_timeout", "0"},
      {"idle_in_transaction_session_timeout", "0"},
      {"idle_session_timeout", "0"},
      {"default_transaction_read_only", "off"},
      {"default_transaction_isolation", "read committed"},
      {"default_transaction_deferrable", "off"},
      {"session_replication_role", "origin"},
      {"row_security", "on"},
  };
  for (const auto& setting : kPinned) SetConfigOption(setting[0], setting[1], PGC_SUSET, PGC_S_SESSION);
}

// Milliseconds to sleep: until the earliest of the cycles' next run and the
// next sweep; during recovery at most a sweep interval (maps may be added).
long sleep_ms(int64 cycles_ms, TimestampTz next_sweep) {
  const int64 sweep_ms = (next_sweep - GetCurrentTimestamp()) / 1000;
  int64 timeout = cycles_ms < sweep_ms ? cycles_ms : sweep_ms;
  if (RecoveryInProgress() && timeout > pg::sweeps::sweep_interval_ms) timeout = pg::sweeps::sweep_interval_ms;
  return static_cast<long>(timeout < 10 ? 10 : timeout);
}

}  // namespace

void init() {
  DefineCustomStringVariable("agentcache.database", "Database the agentcache background worker connects to.", nullptr,
                             &g_database, "postgres", pg::shmem::startup_context(), 0, nullptr, nullptr, nullptr);
  if (!process_shared_preload_libraries_in_progress) return;
  BackgroundWorker w;
  std::memset(&w, 0, sizeof w);
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_ConsistentState;  // also on a hot standby
  w.bgw_restart_time = 1;
  strlcpy(w.bgw_library_name, "agentcache", sizeof w.bgw_library_name);
  strlcpy(w.bgw_function_name, "agentcache_worker_main", sizeof w.bgw_function_name);
  strlcpy(w.bgw_name, "agentcache worker", sizeof w.bgw_name);
  strlcpy(w.bgw_type, "agentcache worker", sizeof w.bgw_type);
  RegisterBackgroundWorker(&w);
}

[[noreturn]] void run() {
  bool first = true;  // first thing: every map
  TimestampTz next_sweep = 0;
  for (;;) {
    const int64 cycles_ms = pg::sweeps::run_cycles(first);
    first = false;
    if (!RecoveryInProgress() && GetCurrentTimestamp() >= next_sweep) {
      pg::sweeps::run_sweeps();
      next_sweep = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), pg::sweeps::sweep_interval_ms);
    }
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms(cycles_ms, next_sweep),
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
  }
}

}  // namespace agentcache::worker

void agentcache_worker_main(Datum) {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(agentcache::worker::g_database, nullptr, 0);
  agentcache::worker::pin_session();
  before_shmem_exit(agentcache::worker::on_exit, 0);
  agentcache::pg::sweeps::worker_started();
  agentcache::worker::run();
}
