// Writing rows of the extension's own tables without SPI, the planner or the
// executor, the way logical replication's apply worker writes them: the heap
// tuple through the table AM, then an entry in every index. Used on the hot
// paths (put, add_turn) only while the table is exactly as the install script
// made it; callers check that with the predicates below and fall back to SQL
// otherwise (an administrator's trigger, policy or index then still applies).
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::pg::rows {

// The columns are exactly `types` (none dropped, none generated), row-level
// security is off, and every index is plain: no expressions, no predicate,
// no exclusion, checked immediately.
bool plain_table(Relation rel, const Oid* types, int ntypes);

// `roleid` holds every privilege in `need` on the table itself.
bool has_privileges(Oid relid, Oid roleid, AclMode need);

// Index entries for the row just stored from `slot` (an insert, or an update
// that was not HOT: `update` is then a hint that the key did not change).
void insert_index_entries(Relation rel, TupleTableSlot* slot, bool update);

// Fills `slot` with `values`/`nulls` (one per column) as a virtual tuple.
void store_values(TupleTableSlot* slot, const Datum* values, const bool* nulls);

}  // namespace agentcache::pg::rows
