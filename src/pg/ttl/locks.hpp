// The TTL tier's transaction-scoped locks (spaces in pg/common/locks.hpp).
// Order: global, then namespace, then key.
#pragma once
#include "pg/common/locks.hpp"
#include "agentcache/core/text.hpp"

#include <string_view>

namespace agentcache::ttl::locks {

inline uint64 key_hash(std::string_view ns, std::string_view key) {
  return core::hash_bytes(key, core::hash_bytes(ns, MyDatabaseId));
}
inline void lock_key(std::string_view ns, std::string_view key) {
  pg::lock_transaction(pg::LockSpace::TtlKey, key_hash(ns, key), ExclusiveLock);
}
// Gives back one acquisition of the key lock before the transaction ends (a
// lock the transaction took earlier for the same key stays held).
inline void unlock_key(std::string_view ns, std::string_view key) {
  pg::unlock_transaction(pg::LockSpace::TtlKey, key_hash(ns, key), ExclusiveLock);
}
inline void lock_namespace(std::string_view ns, LOCKMODE mode) {
  pg::lock_transaction(pg::LockSpace::TtlNamespace, core::hash_bytes(ns, MyDatabaseId), mode);
}
inline void lock_global(LOCKMODE mode) { pg::lock_transaction(pg::LockSpace::TtlGlobal, 0, mode); }

}  // namespace agentcache::ttl::locks
