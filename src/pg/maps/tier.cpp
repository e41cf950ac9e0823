// Prewarmed lookup maps: agentcache.maps (the catalog of definitions) and
// shared-memory copies built by core::MapStore. lookup() reads shared memory
// only (read.cpp); a map's query runs as its owner with its stored
// search_path (load.cpp), in define_map, refresh_map, or the worker's cycle
// (refresh.cpp), which requests.cpp wakes at the end of a transaction.
//
// Shared memory (region "agentcache_maps", three LWLocks):
//  * build lock (exclusive): building a new version beside the current one
//    and freeing old versions — one builder at a time;
//  * read lock: lookups hold it shared while they copy a value out; a swap of
//    a version (install/remove) holds it exclusive for a pointer change, so a
//    lookup sees the old or the new version, never a mix;
//  * status lock: each map's load status (last refresh, last error, the xid
//    of a define_map that installed it) and the queue of refresh requests.
// Lock order: build -> read -> status; nothing that can raise runs under any
// of them (the query runs and its rows are copied before the build lock is
// taken; a clog lookup of a definer's xid happens after the status lock is
// released).
#include "pg/common/json.hpp"
#include "pg/common/shmem.hpp"
#include "pg/common/sweeps.hpp"
#include "pg/maps/load.hpp"
#include "pg/maps/maps.hpp"
#include "pg/maps/refresh.hpp"
#include "pg/maps/requests.hpp"
#include "pg/maps/state.hpp"

#include "pg/common/boundary.hpp"

#include <cstring>

using agentcache::core::MapStore;

namespace agentcache::maps {

int map_memory_kb = 16 * 1024;

namespace {

enum LockIndex { kBuildLock, kReadLock, kStatusLock, kLocks };

struct Shared {
  LWLockPadded* locks;
  MapStore* store;
  std::size_t bytes;
  Status status[MapStore::kMaxMaps];
  Requests requests;
};
Shared* g_shared = nullptr;

std::size_t store_bytes() { return static_cast<std::size_t>(map_memory_kb) * 1024; }

Size region_size() { return add_size(MAXALIGN(sizeof(Shared)), MAXALIGN(store_bytes())); }

bool attach(void* base, bool found, LWLockPadded* locks) {
  g_shared = static_cast<Shared*>(base);
  if (found) return true;
  std::memset(g_shared, 0, sizeof(Shared));
  g_shared->locks = locks;
  g_shared->bytes = store_bytes();
  g_shared->store = MapStore::create(static_cast<char*>(base) + MAXALIGN(sizeof(Shared)), g_shared->bytes);
  return g_shared->store != nullptr;
}

void init() {
  DefineCustomIntVariable("agentcache.map_memory", "Shared memory for prewarmed lookup maps.",
                          "Takes effect at server start when agentcache is in shared_preload_libraries.",
                          &map_memory_kb, 16 * 1024, 1024, 16 * 1024 * 1024, pg::shmem::startup_context(), GUC_UNIT_KB,
                          nullptr, nullptr, nullptr);
  if (process_shared_preload_libraries_in_progress)
    pg::shmem::add_region(pg::shmem::Region{"agentcache_maps", region_size, kLocks, attach});
  requests::register_callbacks();
  pg::sweeps::register_cycle("maps_refresh", refresh_cycle);
}

// One row per map of this database, copied under the read lock.
void collect_stats(const pg::StatsSink& sink) {
  MapStore* s = store();
  if (s == nullptr) return;
  struct Copy {
    Name name;
    core::MapSlotStats st;
  };
  auto* rows = static_cast<Copy*>(palloc(sizeof(Copy) * MapStore::kMaxMaps));
  int n = 0;
  {
    pg::LWLockGuard rd(read_lock(), LW_SHARED);
    for (int slot = 0; slot < static_cast<int>(MapStore::kMaxMaps); ++slot) {
      if (!s->slot_used(slot) || s->slot_db(slot) != MyDatabaseId) continue;
      const std::string_view nm = s->slot_name(slot);
      std::memcpy(rows[n].name, nm.data(), nm.size());
      rows[n].name[nm.size()] = '\0';
      rows[n].st = s->slot_stats(slot);
      ++n;
    }
  }
  for (int i = 0; i < n; ++i) {
    const core::MapSlotStats& st = rows[i].st;
    sink.row(pg::StatsRow{"map", rows[i].name, static_cast<int64>(st.entries), static_cast<int64>(st.bytes),
                          static_cast<int64>(st.hits), static_cast<int64>(st.misses), 0, 0, 0, 0});
  }
}

// map_memory {used, limit} and maps {<name>: {last_error, last_refresh, entries}};
// a map's last_error (which may quote its query or a connection string) only
// for superusers and the map's owner (or members), null for everyone else.
void add_health(JsonbParseState** st) {
  namespace json = pg::json;
  std::size_t used = 0;
  auto* status = static_cast<Status*>(palloc0(sizeof(Status) * MapStore::kMaxMaps));
  if (g_shared != nullptr) {
    {
      pg::LWLockGuard g(build_lock(), LW_SHARED);
      used = g_shared->store->used_bytes();
    }
    pg::LWLockGuard g(status_lock(), LW_SHARED);
    std::memcpy(status, g_shared->status, sizeof(Status) * MapStore::kMaxMaps);
  }
  json::begin_object(st, "map_memory");
  json::kv(st, "used", json::integer(static_cast<int64>(used)));
  json::kv(st, "limit", json::integer(static_cast<int64>(g_shared ? g_shared->bytes : store_bytes())));
  json::end_object(st);
  json::begin_object(st, "maps");
  for (uint32 i = 0; i < MapStore::kMaxMaps; ++i) {
    const Status& m = status[i];
    if (!m.used || m.db != MyDatabaseId) continue;
    json::begin_object(st, m.name);
    const bool may_see = superuser() || (OidIsValid(m.owner) && has_privs_of_role(GetUserId(), m.owner));
    json::kv(st, "last_error", m.last_error[0] && may_see ? json::string(m.last_error) : json::null());
    json::kv(st, "last_refresh", json::time(m.last_refresh));
    json::kv(st, "entries", json::integer(m.entries));
    json::end_object(st);
  }
  json::end_object(st);
}

void reset_stats() {
  if (store() != nullptr) store()->reset_counters();
}

void forget_database(Oid db) { load::forget_database(db); }

}  // namespace

MapStore* store() noexcept { return g_shared ? g_shared->store : nullptr; }
LWLock* build_lock() noexcept { return &g_shared->locks[kBuildLock].lock; }
LWLock* read_lock() noexcept { return &g_shared->locks[kReadLock].lock; }
LWLock* status_lock() noexcept { return &g_shared->locks[kStatusLock].lock; }
Status* statuses() noexcept { return g_shared->status; }
Requests* request_queue() noexcept { return g_shared ? &g_shared->requests : nullptr; }

const pg::Tier kTier{"maps", init, collect_stats, add_health, reset_stats, forget_database};

}  // namespace agentcache::maps
