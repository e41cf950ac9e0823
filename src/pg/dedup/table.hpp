// agentcache.dedup as this backend knows it: its OID, re-resolved after any
// relcache invalidation.
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::dedup::table {

void register_callbacks();
Oid relid();  // 42P01 when agentcache.dedup does not exist here
// 42501 unless the caller has `need` on agentcache.dedup: checked before the
// claim is (a privilege error comes before "you do not hold the claim").
void require(AclMode need);
// 55000 while this database still has 0.1.0's agentcache.dedup (the library
// was updated, the extension not yet: ALTER EXTENSION agentcache UPDATE).
void require_current();

// For the direct writes (direct.cpp): agentcache.dedup has the shape the
// scripts gave it — its 14 columns, plain indexes (its partial ones judged
// per row), no trigger, no row-level security — checked once per relcache
// version; and a row about to be written satisfies its NOT NULL and CHECK
// constraints (an administrator's too).
bool plain(Relation rel);
bool satisfies(Relation rel, TupleTableSlot* slot);

}  // namespace agentcache::dedup::table
