// Observability: stats(), health(), reset_stats(). Counters live in shared
// memory; reading them scans no table.
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/memory.hpp"
#include "pg/shmem.hpp"

#include <cstring>

using namespace agentcache;

namespace {

JsonbValue jstring(const char* s) {
  JsonbValue v;
  v.type = jbvString;
  v.val.string.val = const_cast<char*>(s);
  v.val.string.len = static_cast<int>(std::strlen(s));
  return v;
}
JsonbValue jint(int64 n) {
  JsonbValue v;
  v.type = jbvNumeric;
  v.val.numeric = int64_to_numeric(n);
  return v;
}
JsonbValue jbool(bool b) {
  JsonbValue v;
  v.type = jbvBool;
  v.val.boolean = b;
  return v;
}
JsonbValue jnull() {
  JsonbValue v;
  v.type = jbvNull;
  return v;
}
void kv(JsonbParseState** st, const char* key, JsonbValue val) {
  JsonbValue k = jstring(key);
  pushJsonbValue(st, WJB_KEY, &k);
  pushJsonbValue(st, WJB_VALUE, &val);
}
void begin(JsonbParseState** st, const char* key) {
  JsonbValue k = jstring(key);
  pushJsonbValue(st, WJB_KEY, &k);
  pushJsonbValue(st, WJB_BEGIN_OBJECT, nullptr);
}

}  // namespace

// stats() RETURNS TABLE(tier text, name text, entries bigint, bytes bigint, hits bigint,
//   misses bigint, stale_hits bigint, evictions bigint, expirations bigint, invalidations bigint)
AGENTCACHE_FUNCTION(agentcache_stats) {
  return pg::boundary([&]() -> Datum {
    core::SessionStats s = memory::collect_stats();
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    Datum values[10];
    bool nulls[10] = {};
    values[0] = CStringGetTextDatum("session");
    values[1] = CStringGetTextDatum("sessions");
    values[2] = Int64GetDatum(static_cast<int64>(s.sessions));
    values[3] = Int64GetDatum(static_cast<int64>(s.used_bytes));
    values[4] = Int64GetDatum(static_cast<int64>(s.hits));
    values[5] = Int64GetDatum(static_cast<int64>(s.misses));
    values[6] = Int64GetDatum(0);
    values[7] = Int64GetDatum(static_cast<int64>(s.evictions));
    values[8] = Int64GetDatum(0);
    values[9] = Int64GetDatum(static_cast<int64>(s.invalidations));
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    return Datum(0);
  });
}

// health() RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_health) {
  return pg::boundary([&]() -> Datum {
    core::SessionStats s = memory::collect_stats();
    const bool pre = shmem::preloaded() && shmem::sessions() != nullptr;
    JsonbParseState* st = nullptr;
    pushJsonbValue(&st, WJB_BEGIN_OBJECT, nullptr);
    kv(&st, "preloaded", jbool(pre));
    begin(&st, "session_memory");
    kv(&st, "used", jint(static_cast<int64>(s.used_bytes)));
    kv(&st, "limit", jint(static_cast<int64>(shmem::session_memory_limit())));
    kv(&st, "sessions", jint(static_cast<int64>(s.sessions)));
    kv(&st, "turns", jint(static_cast<int64>(s.turns)));
    kv(&st, "content_bytes", jint(static_cast<int64>(s.content_bytes)));
    kv(&st, "meta_bytes", jint(static_cast<int64>(s.meta_bytes)));
    pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    // The background worker and lookup maps arrive with a later tier; until
    // then health() reports them as absent rather than omitting the keys.
    begin(&st, "worker");
    kv(&st, "pid", jnull());
    kv(&st, "alive", jbool(false));
    kv(&st, "last_sweep", jnull());
    kv(&st, "last_refresh", jnull());
    pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    begin(&st, "map_memory");
    kv(&st, "used", jint(0));
    kv(&st, "limit", jint(0));
    pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    JsonbValue* res = pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
  });
}

// reset_stats() RETURNS void (revoked from PUBLIC)
AGENTCACHE_FUNCTION(agentcache_reset_stats) {
  return pg::boundary([&]() -> Datum {
    memory::reset_stats();
    PG_RETURN_VOID();
  });
}
