// The TTL tier's read path: primary-key lookups of agentcache.entries without
// SPI or the planner (get, get_stale, fetch hits, put's probe).
#pragma once
#include "pg/common/pg.hpp"

#include <string_view>

namespace agentcache::ttl::read {

enum class Found { Miss, Fresh, Stale };
struct Result {
  Found found = Found::Miss;
  Jsonb* value = nullptr;
};

// Looks (ns, key) up with `snap` (nullptr: the transaction's ordinary
// snapshot, seeing its own earlier changes), checking SELECT on the table.
// Fresh: not expired at clock_timestamp(); Stale: expired at most
// `max_stale_us` ago (when >= 0).
Result entry(std::string_view ns, std::string_view key, int64 max_stale_us, Snapshot snap);

// The value when a fresh entry is there (transaction snapshot), else nullptr.
inline Jsonb* fresh_value(std::string_view ns, std::string_view key) {
  Result r = entry(ns, key, -1, nullptr);
  return r.found == Found::Fresh ? r.value : nullptr;
}

// The transaction writing the key right now (a put that has not committed:
// put gives its key lock back once the row is written), or
// InvalidTransactionId.
TransactionId writer(std::string_view ns, std::string_view key);

// The primary-key lookup of (ns, key) under `snap`, into `slot` (which keeps
// the row, pinned, after the scan ends). True when a row was found.
bool lookup(Relation rel, Relation pk, Snapshot snap, Datum ns, Datum key, TupleTableSlot* slot);

// After lookup() under a dirty snapshot found a row: the transaction
// inserting or deleting it, if one is still in progress.
inline TransactionId writer_of(const SnapshotData& dirty) {
  return TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
}

}  // namespace agentcache::ttl::read
