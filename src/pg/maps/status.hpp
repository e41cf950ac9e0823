// What is known of each map's loads (shared memory, under status_lock()).
#pragma once
#include "pg/common/pg.hpp"
#include "pg/maps/state.hpp"

namespace agentcache::maps::status {

// A load installed `entries` rows. `keep_definer`: define_map's own mark
// stays until its transaction ends.
void record_success(uint32 db, const MapDef& d, int64 entries, bool keep_definer) noexcept;
// A refresh that found the map redefined meanwhile: retried one interval later.
void record_attempt(uint32 db, const char* name) noexcept;
// A failed refresh (the worker's).
void record_error(uint32 db, const MapDef& d, const char* message) noexcept;
// Last successful refresh and last attempt (0: never).
void timing(uint32 db, const char* name, TimestampTz* last_ok, TimestampTz* last_try) noexcept;
void forget(uint32 db, const char* name) noexcept;
void forget_database(uint32 db) noexcept;

// Whether a load on a snapshot with completion count `snapshot` may replace
// the installed version (it is not older; 0, an unknown order, always may),
// and the record that it did.
// Called under the build lock.
bool newer_than_installed(uint32 db, const char* name, uint64 snapshot) noexcept;
void note_installed(uint32 db, const char* name, uint64 snapshot) noexcept;

// define_map's transaction, recorded before it installs its version.
void mark_defined_here(uint32 db, const char* name);
TransactionId definer_xid(uint32 db, const char* name);
enum class Definer { None, Running, Committed, Aborted };
// Read after the xid is copied out (the clog lookup may do I/O: never with
// an LWLock held).
Definer definer_state(uint32 db, const char* name);

}  // namespace agentcache::maps::status
