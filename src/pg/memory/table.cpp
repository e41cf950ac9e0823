// agentcache.turns as this backend knows it (see table.hpp).
#include "pg/memory/table.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/rows.hpp"

#include <cstring>

namespace agentcache::memory::table {

namespace {

// Each is re-resolved at its next use after an invalidation; callers keep
// their own copy of what they use (an invalidation can arrive whenever a
// relation is opened).
Oid g_relid = InvalidOid;
// Whether agentcache.turns has the shape the install script gave it.
enum class Plain { Unknown, Yes, No };
Plain g_plain = Plain::Unknown;
pg::rows::Constraints g_constraints;

void relcache_callback(Datum, Oid rel) {
  if (rel == InvalidOid || rel == g_relid) {
    g_relid = InvalidOid;
    g_plain = Plain::Unknown;
    g_constraints.invalidate();
  }
}

}  // namespace

void register_callbacks() { CacheRegisterRelcacheCallback(relcache_callback, 0); }

Oid relid() {
  if (g_relid == InvalidOid) {
    const Oid nsp = get_namespace_oid("agentcache", false);
    const Oid rel = get_relname_relid("turns", nsp);
    if (rel == InvalidOid) throw pg::sql_error(ERRCODE_UNDEFINED_TABLE, "relation agentcache.turns does not exist");
    g_relid = rel;
  }
  return g_relid;
}

void require_select() {
  const AclResult r = pg_class_aclcheck(relid(), GetUserId(), ACL_SELECT);
  if (r != ACLCHECK_OK) aclcheck_error(r, OBJECT_TABLE, "turns");
}

// The installed shape: its six columns, plain indexes, and only its own
// triggers (which ignore add_turn's rows). Checked once per relcache version.
bool plain(Relation rel) {
  if (g_plain != Plain::Unknown) return g_plain == Plain::Yes;
  static const Oid kTypes[6] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
  bool ok = pg::rows::plain_table(rel, kTypes, 6);
  if (ok && rel->trigdesc != nullptr) {
    const Oid nsp = get_namespace_oid("agentcache", false);
    for (int i = 0; ok && i < rel->trigdesc->numtriggers; ++i) {
      const Trigger& t = rel->trigdesc->triggers[i];
      const char* fn = get_func_name(t.tgfoid);
      ok = fn != nullptr && std::strcmp(fn, "_turns_changed") == 0 && get_func_namespace(t.tgfoid) == nsp;
    }
  }
  g_plain = ok ? Plain::Yes : Plain::No;
  return ok;
}

bool satisfies(Relation rel, TupleTableSlot* slot) { return g_constraints.satisfied(rel, slot); }

bool row_security() { return pg::rows::row_security(relid()); }

}  // namespace agentcache::memory::table
