// Observability: stats(), health(), reset_stats(). Counters live in shared
// memory; reading them scans no table.
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/maps.hpp"
#include "pg/dedup.hpp"
#include "pg/memory.hpp"
#include "pg/ttl.hpp"
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
// timestamptz_to_str() formats into a static buffer: copy, since every
// string of a JsonbValue tree is only read when the tree is serialised.
JsonbValue jtime(TimestampTz t) { return jstring(pstrdup(timestamptz_to_str(t))); }
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
    // one row per TTL namespace of this database (counters are atomics; the
    // slot table is read under its lock, rows are emitted after)
    shmem::TtlNamespace* ttl = shmem::ttl_namespaces();
    if (ttl != nullptr) {
      struct TtlRow {
        char name[64];
        uint64 v[8];
      };
      auto* rows = static_cast<TtlRow*>(palloc(sizeof(TtlRow) * shmem::kTtlNamespaces));
      int n = 0;
      {
        pg::LWLockGuard g(shmem::ttl_lock(), LW_SHARED);
        for (int i = 0; i < shmem::kTtlNamespaces; ++i) {
          const shmem::TtlNamespace& ns = ttl[i];
          if (!ns.used || ns.db != MyDatabaseId) continue;
          TtlRow& r = rows[n++];
          std::memcpy(r.name, ns.name, sizeof r.name);
          auto* c = const_cast<shmem::TtlCounters*>(&ns.c);
          uint64 vals[8] = {pg_atomic_read_u64(&c->entries),   pg_atomic_read_u64(&c->bytes),
                            pg_atomic_read_u64(&c->hits),      pg_atomic_read_u64(&c->misses),
                            pg_atomic_read_u64(&c->stale_hits), pg_atomic_read_u64(&c->evictions),
                            pg_atomic_read_u64(&c->expirations), pg_atomic_read_u64(&c->invalidations)};
          std::memcpy(r.v, vals, sizeof vals);
        }
      }
      for (int i = 0; i < n; ++i) {
        values[0] = CStringGetTextDatum("ttl");
        values[1] = CStringGetTextDatum(rows[i].name);
        for (int k = 0; k < 8; ++k) values[2 + k] = Int64GetDatum(static_cast<int64>(rows[i].v[k]));
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
      }
    }
    // dedup: name 'claims'; hits = duplicate answers, misses = acquired,
    // stale_hits = in_progress, expirations = rows swept, entries = rows
    {
      shmem::DedupCounters* dc = shmem::dedup_counters();
      int64 rows = 0;
      if (SPI_connect() == SPI_OK_CONNECT) {
        // entries = rows (exact: the contract says rows; the table holds only
        // messages inside their window), bytes = the table's size
        if (SPI_execute("SELECT (SELECT pg_catalog.count(*) FROM agentcache.dedup),"
                        " pg_catalog.pg_table_size('agentcache.dedup'::pg_catalog.regclass)",
                        true, 1) == SPI_OK_SELECT &&
            SPI_processed == 1) {
          bool isnull = false;
          rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
          values[3] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
        } else {
          values[3] = Int64GetDatum(0);
        }
        SPI_finish();
      }
      values[0] = CStringGetTextDatum("dedup");
      values[1] = CStringGetTextDatum("claims");
      values[2] = Int64GetDatum(rows);
      values[4] = Int64GetDatum(dc ? static_cast<int64>(pg_atomic_read_u64(&dc->duplicate)) : 0);
      values[5] = Int64GetDatum(dc ? static_cast<int64>(pg_atomic_read_u64(&dc->acquired)) : 0);
      values[6] = Int64GetDatum(dc ? static_cast<int64>(pg_atomic_read_u64(&dc->in_progress)) : 0);
      values[7] = Int64GetDatum(0);
      values[8] = Int64GetDatum(dc ? static_cast<int64>(pg_atomic_read_u64(&dc->expirations)) : 0);
      values[9] = Int64GetDatum(0);
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    // one row per lookup map of this database
    core::MapStore* ms = shmem::maps();
    if (ms != nullptr) {
      struct Row {
        char name[core::MapStore::kMaxName + 1];
        core::MapSlotStats st;
      };
      Row rows[core::MapStore::kMaxMaps];
      int n = 0;
      {
        pg::LWLockGuard rd(shmem::map_read_lock(), LW_SHARED);
        for (int slot = 0; slot < static_cast<int>(core::MapStore::kMaxMaps); ++slot) {
          if (!ms->slot_used(slot) || ms->slot_db(slot) != MyDatabaseId) continue;
          std::string_view nm = ms->slot_name(slot);
          std::memcpy(rows[n].name, nm.data(), nm.size());
          rows[n].name[nm.size()] = '\0';
          rows[n].st = ms->slot_stats(slot);
          ++n;
        }
      }
      for (int i = 0; i < n; ++i) {
        values[0] = CStringGetTextDatum("map");
        values[1] = CStringGetTextDatum(rows[i].name);
        values[2] = Int64GetDatum(static_cast<int64>(rows[i].st.entries));
        values[3] = Int64GetDatum(static_cast<int64>(rows[i].st.bytes));
        values[4] = Int64GetDatum(static_cast<int64>(rows[i].st.hits));
        values[5] = Int64GetDatum(static_cast<int64>(rows[i].st.misses));
        values[6] = values[7] = values[8] = values[9] = Int64GetDatum(0);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
      }
    }
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
    // worker and maps: copied under their locks, rendered afterwards
    shmem::WorkerState w{};
    if (shmem::worker_state() != nullptr) {
      pg::LWLockGuard g(shmem::worker_lock(), LW_SHARED);
      w = *shmem::worker_state();
    }
    std::size_t map_used = 0;
    if (shmem::maps() != nullptr) {
      pg::LWLockGuard g(shmem::map_build_lock(), LW_SHARED);
      map_used = shmem::maps()->used_bytes();
    }
    const bool alive = w.pid != 0 && kill(w.pid, 0) == 0;
    begin(&st, "worker");
    kv(&st, "pid", alive ? jint(w.pid) : jnull());
    kv(&st, "alive", jbool(alive));
    kv(&st, "starts", jint(static_cast<int64>(w.starts)));
    kv(&st, "last_sweep", w.last_sweep ? jtime(w.last_sweep) : jnull());
    kv(&st, "last_refresh", w.last_refresh ? jtime(w.last_refresh) : jnull());
    pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    begin(&st, "dedup");
    kv(&st, "claims_held", jint(dedup::claims_held()));
    pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    begin(&st, "map_memory");
    kv(&st, "used", jint(static_cast<int64>(map_used)));
    kv(&st, "limit", jint(static_cast<int64>(shmem::map_memory_limit())));
    pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    begin(&st, "maps");
    for (const auto& ms : w.status) {
      if (!ms.used || ms.db != MyDatabaseId) continue;
      begin(&st, ms.name);
      kv(&st, "last_error", ms.last_error[0] ? jstring(ms.last_error) : jnull());
      kv(&st, "last_refresh", ms.last_refresh ? jtime(ms.last_refresh) : jnull());
      kv(&st, "entries", jint(ms.entries));
      pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    }
    pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    JsonbValue* res = pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
    PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
  });
}

// reset_stats() RETURNS void (revoked from PUBLIC)
AGENTCACHE_FUNCTION(agentcache_reset_stats) {
  return pg::boundary([&]() -> Datum {
    memory::reset_stats();
    maps::reset_stats();
    dedup::reset_stats();
    ttl::reset_stats();
    PG_RETURN_VOID();
  });
}
