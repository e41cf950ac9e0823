// The TTL tier's write path: storing entries (put, a fetch leader), evicting
// over max_entries, and deleting (invalidation, clear, the trigger).
#pragma once
#include "pg/common/spi.hpp"

#include <string_view>

namespace agentcache::ttl::write {

struct Entry {
  std::string_view ns, key;
  Jsonb* value;
  const Interval* ttl;  // nullptr: the namespace's default_ttl
  Datum tags;           // a text[] datum; 0: '{}'
};

// Upserts `e` with the caller's privileges and enforces the namespace's
// max_entries; on a fresh snapshot (it follows lock waits). Returns
// InvalidTransactionId when stored, or — with nothing written — the
// transaction that is writing the same row right now: the caller waits for
// it in the way its own locks allow (see sql.cpp and fetch.cpp) and stores
// again.
TransactionId store(const Entry& e);

// Evicts entries of `ns` beyond `max` (nearest to expiry first, entries
// without expiry last, never `keep` when given). Inside SPI. Returns rows evicted.
int64 enforce_max(std::string_view ns, int64 max, const std::string_view* keep);

// Runs a DELETE … RETURNING namespace on agentcache.entries (fresh snapshot)
// and counts each row as an invalidation of its namespace. Returns rows deleted.
int64 delete_where(pg::Statement& q, Datum* values);

}  // namespace agentcache::ttl::write
