// The TTL tier's write path: storing entries (put, a fetch leader), evicting
// over max_entries, and deleting (invalidation, clear, the trigger).
#pragma once
#include "pg/common/spi.hpp"
#include "pg/ttl/namespaces.hpp"

#include <string_view>

namespace agentcache::ttl::write {

struct Entry {
  std::string_view ns, key;
  Jsonb* value;
  const Interval* ttl;  // nullptr: the namespace's default_ttl
  Datum tags;           // a text[] datum; 0: '{}'
};

// The namespace's settings, creating the namespace (as the extension owner)
// if it does not exist yet. Called before the caller takes its key lock: a
// first put of a new namespace may wait here for another transaction that is
// creating it, and must not hold a key lock that transaction may want.
namespaces::Settings settings_for_store(std::string_view ns);

// Upserts `e` with the caller's privileges and enforces the namespace's
// max_entries `st`; on a fresh snapshot (it follows lock waits). Returns
// InvalidTransactionId when stored, or — with nothing written — the
// transaction that is writing the same row right now: the caller waits for
// it in the way its own locks allow (see sql.cpp and fetch.cpp) and stores
// again.
TransactionId store(const Entry& e, const namespaces::Settings& st);

// Evicts entries of `ns` beyond `max` (nearest to expiry first, entries
// without expiry last, never `keep` when given), skipping rows another
// transaction holds (two evicting puts never wait on each other: the sweep
// catches up with what they skip). Inside SPI. Returns rows evicted.
int64 enforce_max(std::string_view ns, int64 max, const std::string_view* keep);

// Runs a DELETE … RETURNING namespace on agentcache.entries (fresh snapshot)
// and counts each row as an invalidation of its namespace. Returns rows
// deleted. A DELETE of many rows locks them first in key order (a subquery
// … ORDER BY namespace, key FOR UPDATE; LockRows runs above the Sort): every
// bulk deleter takes its row locks in one order, so clear, invalidate_tag and
// the trigger never deadlock each other. Not ctid order: a put between two
// deleters' snapshots moves a row to a new ctid, and locking follows the
// update chain, so two deleters could order the same rows differently.
int64 delete_where(pg::Statement& q, Datum* values);

}  // namespace agentcache::ttl::write
