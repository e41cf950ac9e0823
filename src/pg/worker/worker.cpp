// The agentcache background worker: one per cluster, connected to
// agentcache.database, restarted by the postmaster one second after it dies.
// The sweeps of every other database are run by short-lived sweepers
// (dynamic background workers, one database at a time): after each of its own
// sweeps the worker queues every database that accepts connections and starts
// a sweeper for the next one whenever none is running; the postmaster wakes
// it (bgw_notify_pid) when one stops. A database without the extension costs
// its sweeper a connection and a catalog lookup.
// Its loop runs every cycle (pg::sweeps::register_cycle) on each wake-up —
// first thing after it starts, with `first` set — and every sweep
// (pg::sweeps::register_sweep) when agentcache.sweep_interval has passed,
// never during recovery; between them it sleeps on its latch until a cycle
// is due, a tier wakes it (pg::sweeps::wake_worker), or the next sweep is due.
#include "pg/worker/worker.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/format.hpp"
#include "pg/common/shmem.hpp"
#include "pg/common/spi.hpp"
#include "pg/common/sweeps.hpp"

#include <cstring>

extern "C" {
PGDLLEXPORT void agentcache_worker_main(Datum);
PGDLLEXPORT void agentcache_sweeper_main(Datum);
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
  // no sweeps during recovery: the cycles' own schedule, re-checked every
  // sweep interval (a standby's catalog may gain maps)
  const int64 sweep_ms =
      RecoveryInProgress() ? pg::sweeps::sweep_interval_ms : (next_sweep - GetCurrentTimestamp()) / 1000;
  const int64 timeout = cycles_ms < sweep_ms ? cycles_ms : sweep_ms;
  return static_cast<long>(timeout < 10 ? 10 : timeout);
}

// The round of other databases' sweeps (see the top of this file).
constexpr int kMaxDatabases = 1024;
Oid g_round[kMaxDatabases];
int g_round_len = 0, g_round_next = 0;
BackgroundWorkerHandle* g_sweeper = nullptr;  // in TopMemoryContext

void queue_other_databases() {
  if (g_round_next < g_round_len) return;  // the previous round is not done
  g_round_len = g_round_next = 0;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  pg::with_spi([&] {
    Oid types[1] = {OIDOID};
    Datum values[1] = {ObjectIdGetDatum(MyDatabaseId)};
    const int rc = SPI_execute_with_args(
        "SELECT oid FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate"
        " AND oid OPERATOR(pg_catalog.<>) $1 ORDER BY oid",
        1, types, values, nullptr, true, kMaxDatabases);
    pg::spi_check(rc, SPI_OK_SELECT, "listing databases");
    for (uint64 i = 0; i < SPI_processed; ++i) {
      bool isnull = false;
      g_round[g_round_len++] = DatumGetObjectId(pg::spi_value(i, 1, &isnull));
    }
  });
  PopActiveSnapshot();
  CommitTransactionCommand();
}

// Starts the next sweeper when none runs. No free background worker slot:
// the database waits for the next round.
void advance_round() {
  if (g_sweeper != nullptr) {
    pid_t pid = 0;
    const BgwHandleStatus st = GetBackgroundWorkerPid(g_sweeper, &pid);
    if (st == BGWH_STARTED || st == BGWH_NOT_YET_STARTED) return;
    pfree(g_sweeper);
    g_sweeper = nullptr;
  }
  if (g_round_next >= g_round_len || RecoveryInProgress()) return;
  const Oid db = g_round[g_round_next++];
  BackgroundWorker w;
  std::memset(&w, 0, sizeof w);
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = BGW_NEVER_RESTART;
  strlcpy(w.bgw_library_name, "agentcache", sizeof w.bgw_library_name);
  strlcpy(w.bgw_function_name, "agentcache_sweeper_main", sizeof w.bgw_function_name);
  strlcpy(w.bgw_name, pg::textf<BGW_MAXLEN>(FMT_STRING("agentcache sweeper for database {}"), db).c_str(),
          sizeof w.bgw_name);
  strlcpy(w.bgw_type, "agentcache sweeper", sizeof w.bgw_type);
  w.bgw_main_arg = ObjectIdGetDatum(db);
  w.bgw_notify_pid = MyProcPid;
  MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
  if (!RegisterDynamicBackgroundWorker(&w, &g_sweeper)) g_sweeper = nullptr;
  MemoryContextSwitchTo(old);
  if (g_sweeper == nullptr) g_round_next = g_round_len;  // no slot: wait for the next round
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
  TimestampTz last_sweep = 0;
  for (;;) {
    const int64 cycles_ms = pg::sweeps::run_cycles(first);
    advance_round();
    first = false;
    // the next sweep is due one interval after the last one, with the
    // interval in force now: a reload that lowers it takes effect at once
    TimestampTz next_sweep = TimestampTzPlusMilliseconds(last_sweep, pg::sweeps::sweep_interval_ms);
    if (!RecoveryInProgress() && (last_sweep == 0 || GetCurrentTimestamp() >= next_sweep)) {
      pg::sweeps::run_sweeps();
      queue_other_databases();
      advance_round();
      last_sweep = GetCurrentTimestamp();
      next_sweep = TimestampTzPlusMilliseconds(last_sweep, pg::sweeps::sweep_interval_ms);
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

// A sweeper: every tier's sweep in one database, then exit.
void agentcache_sweeper_main(Datum arg) {
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
  agentcache::worker::pin_session();
  agentcache::pg::sweeps::run_sweeps(/*record=*/false);
  proc_exit(0);
}
