// Observability: stats(), health(), reset_stats(). Each loops over the tiers
// (src/pg/tiers.cpp); the counters live in each tier's shared memory.
#include "pg/common/boundary.hpp"
#include "pg/common/json.hpp"
#include "pg/common/shmem.hpp"
#include "pg/common/sweeps.hpp"
#include "pg/tiers.hpp"

#include <csignal>

using namespace agentcache;

namespace {

void put_row(void* ctx, const pg::StatsRow& r) {
  auto* rsinfo = static_cast<ReturnSetInfo*>(ctx);
  Datum values[10] = {CStringGetTextDatum(r.tier),   CStringGetTextDatum(r.name), Int64GetDatum(r.entries),
                      Int64GetDatum(r.bytes),        Int64GetDatum(r.hits),       Int64GetDatum(r.misses),
                      Int64GetDatum(r.stale_hits),   Int64GetDatum(r.evictions),  Int64GetDatum(r.expirations),
                      Int64GetDatum(r.invalidations)};
  bool nulls[10] = {};
  tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

// worker {pid, alive, starts, last_sweep, last_refresh}
void add_worker(JsonbParseState** st) {
  namespace json = pg::json;
  const pg::sweeps::WorkerStatus w = pg::sweeps::worker_status();
  const bool alive = w.pid != 0 && kill(w.pid, 0) == 0;
  json::begin_object(st, "worker");
  json::kv(st, "pid", alive ? json::integer(w.pid) : json::null());
  json::kv(st, "alive", json::boolean(alive));
  json::kv(st, "starts", json::integer(static_cast<int64>(w.starts)));
  json::kv(st, "last_sweep", json::time(w.last_sweep));
  json::kv(st, "last_refresh", json::time(w.last_refresh));
  json::end_object(st);
}

}  // namespace

// stats() RETURNS TABLE(tier text, name text, entries bigint, bytes bigint, hits bigint,
//   misses bigint, stale_hits bigint, evictions bigint, expirations bigint, invalidations bigint)
AGENTCACHE_FUNCTION(agentcache_stats) {
  return pg::boundary([&]() -> Datum {
    InitMaterializedSRF(fcinfo, 0);
    const pg::StatsSink sink{put_row, fcinfo->resultinfo};
    for (const pg::Tier* const* t = tiers::kAll; *t != nullptr; ++t)
      if ((*t)->collect_stats != nullptr) (*t)->collect_stats(sink);
    return Datum(0);
  });
}

// health() RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_health) {
  return pg::boundary([&]() -> Datum {
    JsonbParseState* st = nullptr;
    pushJsonbValue(&st, WJB_BEGIN_OBJECT, nullptr);
    pg::json::kv(&st, "preloaded", pg::json::boolean(pg::shmem::preloaded()));
    add_worker(&st);
    for (const pg::Tier* const* t = tiers::kAll; *t != nullptr; ++t)
      if ((*t)->add_health != nullptr) (*t)->add_health(&st);
    PG_RETURN_JSONB_P(JsonbValueToJsonb(pg::json::end_object(&st)));
  });
}

// reset_stats() RETURNS void (revoked from PUBLIC)
AGENTCACHE_FUNCTION(agentcache_reset_stats) {
  return pg::boundary([&]() -> Datum {
    for (const pg::Tier* const* t = tiers::kAll; *t != nullptr; ++t)
      if ((*t)->reset_stats != nullptr) (*t)->reset_stats();
    PG_RETURN_VOID();
  });
}
