// agentcache.maps (see catalog.hpp).
#include "pg/maps/catalog.hpp"

#include "pg/common/args.hpp"
#include "pg/common/roles.hpp"
#include "pg/common/locks.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/spi.hpp"
#include "agentcache/core/text.hpp"

#include <cstring>

namespace agentcache::maps::catalog {

namespace {

// Runs a writing statement on the catalog as the extension owner.
void exec(const char* sql, int nargs, Oid* types, Datum* values, const char* nulls) {
  pg::as_extension_owner([&] {
    pg::with_spi([&] {
      const int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
      if (rc < 0) elog(ERROR, "agentcache: updating agentcache.maps failed: %s", SPI_result_code_string(rc));
    });
  });
}

}  // namespace

bool get(const char* name, bool for_change, MapDef* out) {
  static pg::Statement read(
      "SELECT query, owner::pg_catalog.oid, search_path FROM agentcache.maps WHERE name OPERATOR(pg_catalog.=) $1",
      {TEXTOID});
  static pg::Statement lock(
      "SELECT query, owner::pg_catalog.oid, search_path FROM agentcache.maps WHERE name OPERATOR(pg_catalog.=) $1"
      " FOR UPDATE",
      {TEXTOID});
  // A definer of the same name that has not committed yet is waited for
  // first; the row is then read on a fresh snapshot, so what it left (its
  // owner) is what the caller's ownership is judged against.
  if (for_change) pg::lock_transaction(pg::LockSpace::MapName, core::hash_bytes(name, MyDatabaseId), ExclusiveLock);
  return pg::as_extension_owner([&] {
    return pg::with_spi([&] {
      Datum values[1] = {CStringGetTextDatum(name)};
      const int rc = for_change ? lock.exec_latest(values, nullptr, false, 1) : read.exec(values, nullptr, true, 1);
      pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.maps");
      if (SPI_processed != 1) return false;
      bool isnull = false;
      const std::size_t len = std::strlen(name);
      char* nm = static_cast<char*>(SPI_palloc(len + 1));
      std::memcpy(nm, name, len + 1);
      out->name = nm;
      out->query = pg::spi_cstring(0, 1);
      out->owner = DatumGetObjectId(pg::spi_value(0, 2, &isnull));
      out->search_path = pg::spi_cstring(0, 3);
      return true;
    });
  });
}

void upsert(const MapDef& d, Datum refresh, int64 entries) {
  Oid types[6] = {TEXTOID, TEXTOID, INTERVALOID, OIDOID, TEXTOID, INT8OID};
  Datum values[6] = {CStringGetTextDatum(d.name), CStringGetTextDatum(d.query),       refresh,
                     ObjectIdGetDatum(d.owner),   CStringGetTextDatum(d.search_path), Int64GetDatum(entries)};
  exec(
      "INSERT INTO agentcache.maps AS m (name, query, refresh, owner, search_path, last_refresh, last_error, entries)"
      " VALUES ($1, $2, $3, $4::pg_catalog.regrole, $5, pg_catalog.now(), NULL, $6)"
      " ON CONFLICT (name) DO UPDATE SET query = EXCLUDED.query, refresh = EXCLUDED.refresh,"
      " search_path = EXCLUDED.search_path, last_refresh = EXCLUDED.last_refresh, last_error = NULL,"
      " entries = EXCLUDED.entries",
      6, types, values, nullptr);
}

void remove(const char* name) {
  Oid types[1] = {TEXTOID};
  Datum values[1] = {CStringGetTextDatum(name)};
  exec("DELETE FROM agentcache.maps WHERE name OPERATOR(pg_catalog.=) $1", 1, types, values, nullptr);
}

// The map's row is written only when no other transaction has it locked:
// one that is dropping or redefining the map writes it itself, and waiting
// for it here (the worker, holding a lock on the source tables from the
// refresh) deadlocks with a transaction that drops the map and then its
// source table.
void record_refresh(const char* name, const char* error, int64 entries) {
  Oid types[3] = {TEXTOID, TEXTOID, INT8OID};
  Datum values[3] = {CStringGetTextDatum(name), error ? CStringGetTextDatum(error) : Datum(0), Int64GetDatum(entries)};
  char nulls[3] = {' ', error ? ' ' : 'n', ' '};
  if (error)
    exec(
        "UPDATE agentcache.maps AS m SET last_error = $2 FROM (SELECT ctid FROM agentcache.maps"
        " WHERE name OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED) AS l WHERE m.ctid OPERATOR(pg_catalog.=) l.ctid",
        3, types, values, nulls);
  else
    exec(
        "UPDATE agentcache.maps AS m SET last_refresh = pg_catalog.now(), last_error = NULL, entries = $3"
        " FROM (SELECT ctid FROM agentcache.maps WHERE name OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED) AS l"
        " WHERE m.ctid OPERATOR(pg_catalog.=) l.ctid",
        3, types, values, nulls);
}

int read_all(Entry** out) {
  return pg::with_spi([&] {
    const int rc = SPI_execute(
        "SELECT name, query, owner::pg_catalog.oid, search_path, refresh FROM agentcache.maps ORDER BY name", true, 0);
    pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.maps");
    const int n = static_cast<int>(SPI_processed);
    auto* v = static_cast<Entry*>(SPI_palloc(sizeof(Entry) * (n ? n : 1)));
    for (int i = 0; i < n; ++i) {
      bool isnull = false;
      v[i].def.name = pg::spi_cstring(i, 1);
      v[i].def.query = pg::spi_cstring(i, 2);
      v[i].def.owner = DatumGetObjectId(pg::spi_value(i, 3, &isnull));
      v[i].def.search_path = pg::spi_cstring(i, 4);
      v[i].refresh_us = pg::interval_usecs(DatumGetIntervalP(pg::spi_value(i, 5, &isnull)));
    }
    *out = v;
    return n;
  });
}

}  // namespace agentcache::maps::catalog
