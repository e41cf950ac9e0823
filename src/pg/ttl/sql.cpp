// The TTL tier's SQL-callable functions (fetch() is in fetch.cpp,
// invalidate_trigger() in trigger.cpp). Each checks its arguments (every
// NULL first, 22004, then bad values) and goes through pg::boundary.
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/roles.hpp"
#include "pg/common/spi.hpp"
#include "pg/ttl/locks.hpp"
#include "pg/ttl/namespaces.hpp"
#include "pg/ttl/read.hpp"
#include "pg/ttl/state.hpp"
#include "pg/ttl/table.hpp"
#include "pg/ttl/write.hpp"

using agentcache::pg::null_arg;
using agentcache::pg::sql_error;

namespace agentcache::ttl {
namespace {

std::string_view ns_arg(FunctionCallInfo fcinfo, int i) {
  std::string_view s = pg::text_view(PG_GETARG_TEXT_PP(i));
  pg::check_length(s, kMaxNamespaceBytes, "namespace");
  return s;
}

std::string_view key_arg(FunctionCallInfo fcinfo, int i) {
  std::string_view s = pg::text_view(PG_GETARG_TEXT_PP(i));
  pg::check_length(s, kMaxKeyBytes, "key");
  return s;
}

Datum get_impl(FunctionCallInfo fcinfo, bool stale) {
  if (PG_ARGISNULL(0)) null_arg("namespace");
  if (PG_ARGISNULL(1)) null_arg("key");
  if (stale && PG_ARGISNULL(2)) null_arg("max_stale");
  const std::string_view ns = ns_arg(fcinfo, 0);
  const std::string_view key = key_arg(fcinfo, 1);
  const int64 max_stale = stale ? pg::nonnegative_interval_usecs(PG_GETARG_INTERVAL_P(2), "max_stale") : -1;
  if (RecoveryInProgress()) {  // UNLOGGED contents are not readable on a standby: a miss
    namespaces::count_read(ns, &Counters::misses);
    PG_RETURN_NULL();
  }
  const read::Result r = read::entry(ns, key, max_stale, nullptr);
  if (r.found == read::Found::Miss) {
    namespaces::count_read(ns, &Counters::misses);
    PG_RETURN_NULL();
  }
  namespaces::count_read(ns, r.found == read::Found::Fresh ? &Counters::hits : &Counters::stale_hits);
  PG_RETURN_JSONB_P(r.value);
}

}  // namespace
}  // namespace agentcache::ttl

using namespace agentcache;
using namespace agentcache::ttl;

// put(namespace, key, value jsonb, ttl interval DEFAULT NULL, tags text[] DEFAULT '{}') RETURNS void
AGENTCACHE_FUNCTION(agentcache_put) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    if (PG_ARGISNULL(1)) null_arg("key");
    if (PG_ARGISNULL(2)) null_arg("value");
    const std::string_view ns = ns_arg(fcinfo, 0);
    const std::string_view key = key_arg(fcinfo, 1);
    const Interval* ttl = PG_ARGISNULL(3) ? nullptr : PG_GETARG_INTERVAL_P(3);
    if (ttl) pg::positive_interval_usecs(ttl, "ttl");
    PreventCommandIfReadOnly("put()");
    const write::Entry e{ns, key, PG_GETARG_JSONB_P(2), ttl, PG_ARGISNULL(4) ? Datum(0) : PG_GETARG_DATUM(4)};
    // The key lock waits out a fetch computing this key (its value is stored
    // first, then overwritten by ours). It is given back once the row is
    // written: a fetch arriving before this transaction ends waits for it on
    // the row (read::writer), and a transaction may put any number of keys
    // without filling the lock table. Another transaction writing the row is
    // waited for without the key lock: it may be a put of the key again.
    const namespaces::Settings st = write::settings_for_store(ns);
    locks::lock_key(ns, key);
    for (TransactionId w = write::store(e, st); TransactionIdIsValid(w); w = write::store(e, st)) {
      locks::unlock_key(ns, key);
      XactLockTableWait(w, nullptr, nullptr, XLTW_None);
      locks::lock_key(ns, key);
    }
    locks::unlock_key(ns, key);
    PG_RETURN_VOID();
  });
}

// get(namespace text, key text) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_get) {
  return pg::boundary([&]() -> Datum { return get_impl(fcinfo, false); });
}

// get_stale(namespace text, key text, max_stale interval) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_get_stale) {
  return pg::boundary([&]() -> Datum { return get_impl(fcinfo, true); });
}

// invalidate(namespace text, key text) RETURNS boolean
AGENTCACHE_FUNCTION(agentcache_invalidate) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    if (PG_ARGISNULL(1)) null_arg("key");
    const std::string_view ns = ns_arg(fcinfo, 0);
    const std::string_view key = key_arg(fcinfo, 1);
    PreventCommandIfReadOnly("invalidate()");
    locks::lock_key(ns, key);
    static pg::Statement q(
        "DELETE FROM agentcache.entries WHERE namespace OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2"
        " RETURNING namespace",  // one row: no order to keep
        {TEXTOID, TEXTOID});
    Datum values[2] = {pg::text_datum(ns), pg::text_datum(key)};
    const int64 n = write::delete_where(q, values);
    PG_RETURN_BOOL(n > 0);
  });
}

// invalidate_tag(tag text) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_invalidate_tag) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("tag");
    PreventCommandIfReadOnly("invalidate_tag()");
    static pg::Statement q(
        "DELETE FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM agentcache.entries"
        " WHERE tags OPERATOR(pg_catalog.@>) ARRAY[$1]::pg_catalog.text[] ORDER BY namespace, key FOR UPDATE))"
        " RETURNING namespace",
        {TEXTOID});
    Datum values[1] = {PG_GETARG_DATUM(0)};
    PG_RETURN_INT64(write::delete_where(q, values));
  });
}

// clear(namespace text) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_clear) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    const std::string_view ns = ns_arg(fcinfo, 0);
    PreventCommandIfReadOnly("clear()");
    locks::lock_namespace(ns, ExclusiveLock);
    static pg::Statement q(
        "DELETE FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM agentcache.entries"
        " WHERE namespace OPERATOR(pg_catalog.=) $1 ORDER BY namespace, key FOR UPDATE)) RETURNING namespace",
        {TEXTOID});
    Datum values[1] = {pg::text_datum(ns)};
    PG_RETURN_INT64(write::delete_where(q, values));
  });
}

// clear_all() RETURNS bigint (admin)
AGENTCACHE_FUNCTION(agentcache_clear_all) {
  return pg::boundary([&]() -> Datum {
    PreventCommandIfReadOnly("clear_all()");
    locks::lock_global(ExclusiveLock);
    static pg::Statement q(
        "DELETE FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM agentcache.entries"
        " ORDER BY namespace, key FOR UPDATE)) RETURNING namespace",
        {});
    PG_RETURN_INT64(write::delete_where(q, nullptr));
  });
}

// configure_namespace(namespace text, default_ttl interval, max_entries bigint DEFAULT NULL) RETURNS void
AGENTCACHE_FUNCTION(agentcache_configure_namespace) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    const std::string_view ns = ns_arg(fcinfo, 0);
    if (!PG_ARGISNULL(1)) pg::positive_interval_usecs(PG_GETARG_INTERVAL_P(1), "default_ttl");
    if (!PG_ARGISNULL(2) && PG_GETARG_INT64(2) <= 0)
      throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_entries must be greater than zero");
    PreventCommandIfReadOnly("configure_namespace()");
    namespaces::note_write(false);  // the trigger says so too; from here on no settings are cached
    pg::with_spi([&] {
      static pg::Statement q(
          "INSERT INTO agentcache.namespaces (namespace, default_ttl, max_entries) VALUES ($1, $2, $3)"
          " ON CONFLICT (namespace) DO UPDATE SET default_ttl = EXCLUDED.default_ttl,"
          " max_entries = EXCLUDED.max_entries",
          {TEXTOID, INTERVALOID, INT8OID});
      Datum values[3] = {pg::text_datum(ns), PG_ARGISNULL(1) ? Datum(0) : PG_GETARG_DATUM(1),
                         PG_ARGISNULL(2) ? Datum(0) : PG_GETARG_DATUM(2)};
      char nulls[3] = {' ', PG_ARGISNULL(1) ? 'n' : ' ', PG_ARGISNULL(2) ? 'n' : ' '};
      const int rc = pg::as_extension_owner([&] { return q.exec_latest(values, nulls, false); });
      pg::spi_check(rc, SPI_OK_INSERT, "configuring the namespace");
      namespaces::slot(ns, true);
      if (!PG_ARGISNULL(2)) write::enforce_max(ns, PG_GETARG_INT64(2), nullptr);  // lowering the limit evicts at once
    });
    PG_RETURN_VOID();
  });
}

// _namespaces_changed(): the AFTER … FOR EACH STATEMENT trigger (ENABLE ALWAYS)
// on agentcache.namespaces. Stops this transaction from caching settings and,
// for an UPDATE, DELETE or TRUNCATE, bumps the settings generation when it
// commits, so every backend re-reads. Such a transaction cannot be PREPAREd:
// COMMIT PREPARED would make the change visible with no bump.
AGENTCACHE_FUNCTION(agentcache_namespaces_changed) {
  return pg::boundary([&]() -> Datum {
    TriggerData* td = pg::trigger_data(fcinfo, "_namespaces_changed");
    pg::require_trigger_table(td, table::oids().namespaces, "_namespaces_changed", "agentcache.namespaces");
    // A new row was cached nowhere (a backend caches only rows it found), so
    // only UPDATE, DELETE and TRUNCATE make other backends re-read.
    namespaces::note_write(!TRIGGER_FIRED_BY_INSERT(td->tg_event));
    return PointerGetDatum(nullptr);
  });
}
