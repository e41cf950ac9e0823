// agentcache.turns as this backend knows it: its OID (re-resolved after any
// relcache invalidation), the caller's privileges on it, and whether it is
// still exactly as the install script made it (direct inserts).
#pragma once
#include "pg/common/pg.hpp"

namespace agentcache::memory::table {

void register_callbacks();
Oid relid();  // 42P01 when agentcache.turns does not exist here
// 42501 unless the caller may SELECT agentcache.turns: the cached copy is
// served without reading the table, so it checks what the read would.
void require_select();
// Whether add_turn may insert into `rel` directly (see write.cpp): the
// table's shape, and no row-level security for the current user.
bool plain(Relation rel);
// Whether the row in `slot` satisfies the table's NOT NULL and CHECK
// constraints (else the SQL INSERT runs and raises).
bool satisfies(Relation rel, TupleTableSlot* slot);
// Row-level security applies to the current user on agentcache.turns: the
// cache is neither read nor written for this user (what a policy filters is
// never published, and never served to another role).
bool row_security();

}  // namespace agentcache::memory::table
