// agentcache.maps, the catalog of map definitions. App roles have no
// privileges on it: it is read and written as the extension's owner.
#pragma once
#include "pg/common/pg.hpp"
#include "pg/maps/state.hpp"

namespace agentcache::maps::catalog {

// One map's row (copied into the caller's memory context); false when absent.
// for_change (define_map, drop_map): the name is locked for the caller's
// transaction first (LockSpace::MapName, waiting for another definer of it to
// end), then its row is read on a fresh snapshot and locked.
bool get(const char* name, bool for_change, MapDef* out);

// Inserts or replaces a definition (define_map), keeping the stored owner.
void upsert(const MapDef& d, Datum refresh, int64 entries);
void remove(const char* name);
// A load's outcome: success (error nullptr) or the error message.
void record_refresh(const char* name, const char* error, int64 entries);

// Every definition, with its refresh interval in microseconds (the worker's
// cycle); in CurTransactionContext.
struct Entry {
  MapDef def;
  int64 refresh_us;  // saturating (API.md: a refresh past the end of time is never)
};
int read_all(Entry** out);

}  // namespace agentcache::maps::catalog
