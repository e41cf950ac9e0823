// agentcache.entries (and agentcache.namespaces) as this backend knows them:
// OIDs re-resolved after any relcache invalidation, and whether entries is
// still exactly as the install script made it (direct writes).
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::ttl::table {

void register_callbacks();
struct Oids {
  Oid entries, entries_pkey, namespaces;
};
Oids oids();  // 42P01 when the tables do not exist here
// put's row may be written directly (see write.cpp): its six columns, plain
// indexes, no triggers, no row-level security, no CHECK constraints.
bool plain(Relation entries);

}  // namespace agentcache::ttl::table
