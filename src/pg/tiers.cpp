// The list of tiers, and what goes to every tier: _reset_memory(), and the
// release of a database's shared-memory state when DROP EXTENSION or DROP
// DATABASE commits.
//
// Order: memory, ttl, dedup, maps. _PG_init initialises them in this order
// (their GUCs, shared-memory regions and background jobs: the worker sweeps
// turns, then TTL entries, then dedup rows); stats() lists their rows in it.
#include "pg/tiers.hpp"

#include "pg/common/sweeps.hpp"

#include "pg/common/boundary.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/maps/maps.hpp"
#include "pg/memory/memory.hpp"
#include "pg/ttl/ttl.hpp"

#include <boost/container/small_vector.hpp>

namespace agentcache::tiers {

const pg::Tier* const kAll[] = {&memory::kTier, &ttl::kTier, &dedup::kTier, &maps::kTier, nullptr};

namespace {

void forget(Oid db) noexcept {
  for (const pg::Tier* const* t = kAll; *t != nullptr; ++t)
    if ((*t)->forget_database != nullptr) (*t)->forget_database(db);
  pg::sweeps::forget_database(db);
}

// Databases whose state goes when this transaction commits.
boost::container::small_vector<Oid, 2> g_dropped;
object_access_hook_type g_prev_object_access = nullptr;

void object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void* arg) {
  if (g_prev_object_access) g_prev_object_access(access, class_id, object_id, sub_id, arg);
  if (access != OAT_DROP) return;
  Oid db = InvalidOid;
  if (class_id == DatabaseRelationId)
    db = object_id;
  else if (class_id == ExtensionRelationId && object_id == get_extension_oid("agentcache", true))
    db = MyDatabaseId;
  if (db != InvalidOid) g_dropped.push_back(db);
}

void xact_callback(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT)
    for (Oid db : g_dropped) forget(db);
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE) g_dropped.clear();
}

}  // namespace

void init_hooks() {
  g_prev_object_access = object_access_hook;
  object_access_hook = object_access;
  RegisterXactCallback(xact_callback, nullptr);
}

}  // namespace agentcache::tiers

// _reset_memory() RETURNS void: drops this database's shared-memory state of
// every tier (run by the install script, so DROP + CREATE EXTENSION starts
// from empty shared memory).
AGENTCACHE_FUNCTION(agentcache_reset_memory) {
  using namespace agentcache;
  return pg::boundary([&]() -> Datum {
    tiers::forget(MyDatabaseId);
    PG_RETURN_VOID();
  });
}
