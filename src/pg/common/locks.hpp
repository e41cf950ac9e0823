// The one registry of agentcache's advisory lock spaces.
//
// Every heavyweight lock agentcache takes is an advisory LOCKTAG on
// (MyDatabaseId, hash >> 32, hash, space). PostgreSQL's pg_advisory_lock()
// family uses field4 = 1 (bigint key) and 2 (two int4 keys), so no
// application lock can collide with these spaces. pg_locks shows field4 as
// objsubid, a smallint: 0xAC06 appears there as -21498.
//
// | space  | tier   | held by                        | mode      | scope        |
// |--------|--------|--------------------------------|-----------|--------------|
// | 0xAC01 | memory | add_turn (one writer/session)  | Exclusive | transaction  |
// | 0xAC02 | -      | unused (reserved)              |           |              |
// | 0xAC03 | ttl    | fetch leader, invalidate, put  | Exclusive | transaction* |
// | 0xAC04 | ttl    | fetch leaders / clear()        | Share/Excl| transaction  |
// | 0xAC05 | ttl    | fetch leaders / clear_all()    | Share/Excl| transaction  |
// | 0xAC06 | dedup  | a claim on a message           | Exclusive | session      |
// | 0xAC07 | dedup  | a claim's fingerprint          | Exclusive | session      |
// | 0xAC08 | maps   | define_map/drop_map of a name  | Exclusive | transaction  |
// (*) put gives its key lock back before it returns.
//
// Lock order, for every path that takes more than one: TtlGlobal before
// TtlNamespace before TtlKey; Claim before Fingerprint. No path takes locks
// of two tiers' spaces at once except inbound/outbound (Claim, then
// SessionWriter), and nothing takes them in the other order. Waits for
// another transaction never happen with a TtlKey lock held by put: a new
// namespace's row is created before it (a first put may wait there for
// another creator), a row being changed is waited for after giving it back,
// and the direct update never waits (table_tuple_update with wait = false).
// Row locks of bulk deletes (clear, invalidate_tag, the invalidate trigger,
// clear_all) are taken in ctid order; eviction skips locked rows.
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::pg {

enum class LockSpace : uint16 {
  SessionWriter = 0xAC01,
  TtlKey = 0xAC03,
  TtlNamespace = 0xAC04,
  TtlGlobal = 0xAC05,
  Claim = 0xAC06,
  Fingerprint = 0xAC07,
  MapName = 0xAC08,
};

inline LOCKTAG advisory_tag(LockSpace space, uint64 hash) {
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(hash >> 32), static_cast<uint32>(hash),
                       static_cast<uint16>(space));
  return tag;
}

// Waits for and takes a transaction-scoped lock.
inline void lock_transaction(LockSpace space, uint64 hash, LOCKMODE mode) {
  LOCKTAG tag = advisory_tag(space, hash);
  (void)LockAcquire(&tag, mode, false, false);
}

// Gives back one acquisition of a transaction-scoped lock before the
// transaction ends.
inline void unlock_transaction(LockSpace space, uint64 hash, LOCKMODE mode) {
  LOCKTAG tag = advisory_tag(space, hash);
  (void)LockRelease(&tag, mode, false);
}

}  // namespace agentcache::pg
