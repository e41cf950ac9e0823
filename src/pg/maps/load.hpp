// Loading maps into shared memory: running a map's query as its owner and
// installing the result beside (then instead of) the current version.
#pragma once
#include "pg/common/pg.hpp"
#include "pg/maps/state.hpp"

namespace agentcache::maps::load {

// Runs the map's query as its owner with its search_path, builds a new
// version beside the current one and installs it (readers see the old or the
// new version, never a mix), then records the success. Raises 42804 (wrong
// shape), 23505 (duplicate key), 53200 (too large) or the query's own error;
// the previous version keeps serving. Returns entries.
//
// `catalog`: the snapshot the worker read the definition with; returns -1
// (nothing installed) when a definition that snapshot does not see has
// replaced it. `defining`: called by define_map, whose mark
// (status::mark_defined_here) stays and whose query sees its own
// transaction's changes; otherwise the query reads committed data only.
int64 reload(const MapDef& d, Snapshot catalog = nullptr, bool defining = false);

// Removes one map of this database from shared memory, with its status.
void remove(const char* name);
// Drops shared-memory maps of this database that `keep` does not name,
// except those a define_map transaction built that is in progress or
// committed (the catalog snapshot may predate it).
void drop_others(const char* const* keep, int n);
// Drops every map of database `db`, with its status.
void forget_database(Oid db) noexcept;
bool loaded(uint32 db, const char* name) noexcept;

}  // namespace agentcache::maps::load
