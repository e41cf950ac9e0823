// The maps tier's SQL-callable functions and route() for inbound().
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/shmem.hpp"
#include "pg/maps/catalog.hpp"
#include "pg/maps/load.hpp"
#include "pg/maps/maps.hpp"
#include "pg/maps/read.hpp"
#include "pg/maps/requests.hpp"
#include "pg/maps/state.hpp"
#include "pg/maps/status.hpp"

#include <cstring>

using agentcache::core::MapStore;
using agentcache::pg::null_arg;
using agentcache::pg::sql_error;

namespace agentcache::maps {

Jsonb* route(std::string_view instance) { return read::lookup("inbound()", "instances", instance, true); }

namespace {

std::string_view name_arg(FunctionCallInfo fcinfo, int i) {
  const std::string_view name = pg::text_arg(fcinfo, i, "name");
  if (name.empty()) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "map name must not be empty");
  pg::check_length(name, MapStore::kMaxName, "map name");
  if (std::memchr(name.data(), '\0', name.size()) != nullptr)
    throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid map name");
  return name;
}

void require_owner(const MapDef& d) {
  if (!has_privs_of_role(GetUserId(), d.owner))
    throw sql_error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                    pg::textf(FMT_STRING("must be owner of map \"{}\""), d.name).c_str());
}

Datum lookup_result(FunctionCallInfo fcinfo, Jsonb* value) {
  if (value == nullptr) PG_RETURN_NULL();
  PG_RETURN_JSONB_P(value);
}

}  // namespace
}  // namespace agentcache::maps

using namespace agentcache;
using namespace agentcache::maps;

// define_map(name text, query text, refresh interval DEFAULT '1 hour') RETURNS void
AGENTCACHE_FUNCTION(agentcache_define_map) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("name");
    if (PG_ARGISNULL(1)) null_arg("query");
    if (PG_ARGISNULL(2)) null_arg("refresh");
    char* name = pg::cstr(name_arg(fcinfo, 0));
    pg::positive_interval_usecs(PG_GETARG_INTERVAL_P(2), "refresh");
    pg::shmem::require("define_map()");
    PreventCommandIfReadOnly("define_map()");
    MapDef existing{};
    const bool replacing = catalog::get(name, true, &existing);
    if (replacing) require_owner(existing);
    const MapDef d{name, text_to_cstring(PG_GETARG_TEXT_PP(1)),
                   replacing ? existing.owner : GetUserId(),  // replacing keeps the original owner
                   pstrdup(GetConfigOption("search_path", false, false))};
    requests::note_ddl();
    status::mark_defined_here(MyDatabaseId, name);  // before installing: see load::reload()
    const int64 entries = load::reload(d, nullptr, true);
    catalog::upsert(d, PG_GETARG_DATUM(2), entries);
    PG_RETURN_VOID();
  });
}

// lookup(name text, key text) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_lookup) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("name");
    if (PG_ARGISNULL(1)) null_arg("key");
    const std::string_view name = pg::text_view(PG_GETARG_TEXT_PP(0));
    const std::string_view key = pg::text_view(PG_GETARG_TEXT_PP(1));
    pg::check_length(name, MapStore::kMaxName, "map name");
    pg::check_length(key, kMaxKeyBytes, "lookup key");
    return lookup_result(fcinfo, read::lookup("lookup()", name, key, false));
  });
}

// resolve_instance(instance text) RETURNS jsonb: lookup('instances', instance)
AGENTCACHE_FUNCTION(agentcache_resolve_instance) {
  return pg::boundary([&]() -> Datum {
    const std::string_view key = pg::text_arg(fcinfo, 0, "instance");
    pg::check_length(key, kMaxKeyBytes, "instance");
    return lookup_result(fcinfo, read::lookup("resolve_instance()", "instances", key, false));
  });
}

// refresh_map(name text) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_refresh_map) {
  return pg::boundary([&]() -> Datum {
    char* name = pg::cstr(name_arg(fcinfo, 0));
    pg::shmem::require("refresh_map()");
    MapDef d{};
    if (!catalog::get(name, false, &d))
      throw sql_error(ERRCODE_UNDEFINED_OBJECT, pg::textf(FMT_STRING("map \"{}\" does not exist"), name).c_str(),
                      nullptr, "Define it with agentcache.define_map().");
    require_owner(d);
    const int64 entries = load::reload(d);
    if (!RecoveryInProgress() && !XactReadOnly) catalog::record_refresh(name, nullptr, entries);
    PG_RETURN_INT64(entries);
  });
}

// drop_map(name text) RETURNS boolean
AGENTCACHE_FUNCTION(agentcache_drop_map) {
  return pg::boundary([&]() -> Datum {
    char* name = pg::cstr(name_arg(fcinfo, 0));
    PreventCommandIfReadOnly("drop_map()");  // works without preload: the catalog row goes
    MapDef d{};
    if (!catalog::get(name, true, &d)) PG_RETURN_BOOL(false);
    require_owner(d);
    catalog::remove(name);
    requests::note_ddl();
    load::remove(name);
    PG_RETURN_BOOL(true);
  });
}

// refresh_trigger(): AFTER … EXECUTE FUNCTION agentcache.refresh_trigger('map', …)
// Row- or statement-level; asks the worker to reload the named maps when the
// transaction commits (never on rollback).
AGENTCACHE_FUNCTION(agentcache_refresh_trigger) {
  return pg::boundary([&]() -> Datum {
    TriggerData* td = pg::trigger_data(fcinfo, "refresh_trigger");
    if (td->tg_trigger->tgnargs < 1)
      throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "refresh_trigger() needs the name of a map as argument");
    for (int i = 0; i < td->tg_trigger->tgnargs; ++i) {
      const char* name = td->tg_trigger->tgargs[i];
      if (std::strlen(name) <= MapStore::kMaxName) requests::refresh_at_commit(name);
    }
    if (TRIGGER_FIRED_FOR_ROW(td->tg_event) && !TRIGGER_FIRED_BY_DELETE(td->tg_event))
      return PointerGetDatum(td->tg_newtuple ? td->tg_newtuple : td->tg_trigtuple);
    return PointerGetDatum(td->tg_trigtuple);
  });
}
