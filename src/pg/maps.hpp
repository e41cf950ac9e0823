// Prewarmed lookup maps (glue): shared by the SQL functions and the worker.
#pragma once
#include "pg/pg.hpp"

#include <string_view>

namespace agentcache::maps {

struct MapDef {
  const char* name;
  const char* query;
  Oid owner;
  const char* search_path;
};

// Runs the map's query as its owner with its search_path, builds a new
// version beside the current one and installs it (readers see the old or the
// new version, never a mix), then records the success in shared memory.
// Raises 42804 (wrong shape), 23505 (duplicate key), 53200 (too large) or the
// query's own error; the previous version keeps serving. Returns entries.
// Runs the map's query and installs the result. `catalog`: the snapshot the
// worker read the definition with; returns -1 (nothing installed) when a
// definition that snapshot does not see has replaced it. `defining`: called
// by define_map, whose mark (mark_defined_here) stays.
int64 reload(const MapDef& d, Snapshot catalog = nullptr, bool defining = false);
// A refresh that found the map redefined meanwhile: retried one interval later.
void record_attempt(uint32 db, const char* name) noexcept;
// Records a failed refresh (the worker's) in shared memory.
void record_error(uint32 db, const char* name, const char* message) noexcept;
// Drops shared-memory maps of this database that `keep` does not name,
// except those a define_map transaction built that is in progress or
// committed (the catalog snapshot may predate it).
void drop_others(const char* const* keep, int n);
// True when define_map installed this map in a transaction that aborted:
// memory holds a version the catalog does not describe.
bool definer_aborted(uint32 db, const char* name);
// Marks the map as built by the current transaction (define_map).
void mark_defined_here(uint32 db, const char* name);
// Forgets a map's status (drop_map).
void forget_status(uint32 db, const char* name) noexcept;
// The extension's owner (owner of schema agentcache): catalog changes run as it.
Oid extension_owner();
bool loaded(uint32 db, const char* name) noexcept;
// Drops every map of this database from shared memory, with its status.
void reset_db() noexcept;
void reset_stats() noexcept;
// resolve_instance() for inbound(): nullptr (not an error) without preload
// or without an 'instances' map, or when the key is absent.
Jsonb* route(std::string_view instance);
// Last successful refresh and last attempt (0: never).
void timing(uint32 db, const char* name, TimestampTz* last_ok, TimestampTz* last_try) noexcept;

}  // namespace agentcache::maps
