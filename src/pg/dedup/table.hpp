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

}  // namespace agentcache::dedup::table
