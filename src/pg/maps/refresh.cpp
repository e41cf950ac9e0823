// The worker's cycle for maps (registered by tier.cpp with pg::sweeps): it
// loads every map of agentcache.maps first thing, then on each wake-up drops
// shared-memory maps the catalog no longer has, loads the ones memory lacks,
// and refreshes those asked for (refresh_trigger) or due (their interval).
// The cycle runs in its own transaction; each map's refresh in its own
// subtransaction, so one map's failure is logged and recorded (last_error)
// without touching the others or killing the worker. During recovery (hot
// standby) it only reads.
#include "pg/maps/refresh.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/sweeps.hpp"
#include "pg/maps/catalog.hpp"
#include "pg/maps/load.hpp"
#include "pg/maps/requests.hpp"
#include "pg/maps/status.hpp"

namespace agentcache::maps {

namespace {

void refresh_one(const catalog::Entry& m) {
  int64 entries = 0;
  ErrorData* edata = pg::in_subtransaction([&] { entries = load::reload(m.def, GetActiveSnapshot()); });
  const char* error = edata ? edata->message : nullptr;
  if (!error && entries < 0) {  // redefined since the catalog was read: its rows stay
    status::record_attempt(MyDatabaseId, m.def.name);
    return;
  }
  if (error) {
    ereport(WARNING, (errmsg("agentcache: refreshing map \"%s\" failed: %s", m.def.name, error),
                      errdetail("The previous version keeps serving.")));
    status::record_error(MyDatabaseId, m.def, error);
  }
  if (!RecoveryInProgress()) catalog::record_refresh(m.def.name, error, entries);
  if (edata) FreeErrorData(edata);
}

// The later of the last success and the last attempt (0: never).
TimestampTz last_activity(const char* name) {
  TimestampTz last_ok = 0, last_try = 0;
  status::timing(MyDatabaseId, name, &last_ok, &last_try);
  return last_ok > last_try ? last_ok : last_try;
}

// Refreshes `m` if it is due; returns milliseconds until it is due next. The
// next attempt is one interval after the last activity (a failing map retries
// on its interval, never in a loop); a map not in memory retries at most
// every sweep_interval.
int64 visit(const catalog::Entry& m, bool everything, const requests::Taken& asked) {
  int64 interval_us = m.refresh_us;
  const int64 sweep_us = static_cast<int64>(pg::sweeps::sweep_interval_ms) * 1000;
  if (!load::loaded(MyDatabaseId, m.def.name) && interval_us > sweep_us) interval_us = sweep_us;
  // the next attempt is due one interval after `base`; an interval so long
  // that the time does not fit in timestamptz means never (API.md)
  const auto next_due = [&](TimestampTz base, TimestampTz* at) { return pg::plus_usecs(base, interval_us, at); };
  TimestampTz base = last_activity(m.def.name), at = 0;
  const bool due = everything || requests::contains(asked, m.def.name) || base == 0 ||
                   status::definer_state(MyDatabaseId, m.def.name) == status::Definer::Aborted ||
                   (next_due(base, &at) && GetCurrentTimestamp() >= at);
  if (due) {
    refresh_one(m);
    CHECK_FOR_INTERRUPTS();
    base = last_activity(m.def.name);
  }
  const TimestampTz now = GetCurrentTimestamp();
  if (!next_due(base ? base : now, &at)) return PG_INT64_MAX / 1000;  // never: only asked-for refreshes
  return at > now ? (at - now) / 1000 : 0;
}

void run(bool everything, int64* next_ms) {
  bool reconcile = false, all = false;
  const requests::Taken asked = requests::take(&reconcile, &all);
  everything = everything || all;
  catalog::Entry* v = nullptr;
  const int n = catalog::read_all(&v);
  auto** names = static_cast<const char**>(palloc(sizeof(char*) * (n ? n : 1)));
  for (int i = 0; i < n; ++i) names[i] = v[i].def.name;
  load::drop_others(names, n);
  for (int i = 0; i < n; ++i) {
    const int64 wait = visit(v[i], everything, asked);
    if (wait < *next_ms) *next_ms = wait;
  }
}

}  // namespace

int64 refresh_cycle(bool first) {
  int64 next_ms = 3600 * 1000;
  if (store() == nullptr) return next_ms;
  // without the extension in this database, nothing asked can be served
  if (!pg::sweeps::in_worker_transaction("maps", [&] { run(first, &next_ms); })) requests::discard();
  return next_ms;
}

}  // namespace agentcache::maps
