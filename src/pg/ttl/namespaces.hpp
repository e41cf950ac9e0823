// A TTL namespace as this backend knows it: its counter slot in shared
// memory, and its settings from agentcache.namespaces, cached per backend and
// re-read when the shared settings generation moves (any committed change of
// agentcache.namespaces bumps it, see the trigger in sql.cpp).
#pragma once
#include "pg/common/pg.hpp"
#include "pg/ttl/state.hpp"

#include <string_view>

namespace agentcache::ttl::namespaces {

void register_callbacks();

struct Settings {
  bool has_ttl;  // false: entries never expire
  int64 ttl_us;
  bool has_max;  // false: no max_entries
  int64 max_entries;
};

// The settings when this backend's copy is current; false otherwise.
bool cached_settings(std::string_view ns, Settings* out);
// The settings, read (as the extension owner) when not cached; creates the
// namespace (default_ttl = agentcache.default_ttl now) when `create` and it
// does not exist. Inside SPI.
Settings settings(std::string_view ns, bool create);
// configure_namespace() or the trigger saw this transaction write the
// catalog: nothing is cached until it ends. `changed`: rows were updated or
// deleted, so other backends must re-read at commit.
void note_write(bool changed);
// The relcache saw agentcache.namespaces change (e.g. the extension was
// dropped and created again): forget every cached setting.
void forget_settings() noexcept;

// Counts `n` into the namespace's `field`. Slots are created by writes
// (create = true: put, fetch storing, configure_namespace, the recount),
// never by a read, so probing unknown namespaces leaves no trace.
void add(std::string_view ns, pg_atomic_uint64 Counters::*field, int64 n, bool create = false) noexcept;
// A read's count (hits, misses): into the namespace's slot, which a read
// creates only when the namespace exists in agentcache.namespaces (after a
// restart or crash, or on a standby, reads count at once; a probe of an
// unknown namespace still leaves no trace). May run SQL (not noexcept).
void count_read(std::string_view ns, pg_atomic_uint64 Counters::*field);
// The namespace's slot (nullptr when full, not preloaded, or absent and not `create`).
Slot* slot(std::string_view ns, bool create) noexcept;

}  // namespace agentcache::ttl::namespaces
