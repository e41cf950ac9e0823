// agentcache.entries (and agentcache.namespaces) as this backend knows them:
// OIDs re-resolved after any relcache invalidation, and whether entries is
// still exactly as the install script made it (direct writes).
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::ttl::table {

void register_callbacks();
struct Oids {
  Oid entries, entries_pkey, namespaces;
  AttrNumber value, expires_at;  // entries' columns, by name (a column dropped and added again moves)
};
Oids oids();  // 42P01 when the tables do not exist here
// put's row may be written directly (see write.cpp): its six columns, plain
// indexes, no triggers, no row-level security.
bool plain(Relation entries);
// Whether the row in `slot` satisfies the table's NOT NULL and CHECK
// constraints (else the SQL upsert runs and raises).
bool satisfies(Relation entries, TupleTableSlot* slot);
// Row-level security applies to the current user on agentcache.entries:
// reads go through SQL, so the policies filter them.
bool row_security();

}  // namespace agentcache::ttl::table
