// agentcache.turns as this backend knows it (see table.hpp).
#include "pg/memory/table.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/rows.hpp"

#include <cstring>

namespace agentcache::memory::table {

namespace {

Oid g_relid = InvalidOid;
// Whether agentcache.turns is as the install script made it.
enum class Plain { Unknown, Yes, No };
Plain g_plain = Plain::Unknown;

void relcache_callback(Datum, Oid rel) {
  if (rel == InvalidOid || rel == g_relid) {
    g_relid = InvalidOid;
    g_plain = Plain::Unknown;
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

// As installed: its six columns, plain indexes, only its own triggers (which
// ignore add_turn's rows) and only the role CHECK (the role comes from an
// enum). Checked once per relcache version.
bool plain(Relation rel) {
  if (g_plain != Plain::Unknown) return g_plain == Plain::Yes;
  static const Oid kTypes[6] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
  TupleDesc desc = RelationGetDescr(rel);
  bool ok = pg::rows::plain_table(rel, kTypes, 6) && desc->constr != nullptr && desc->constr->num_check == 1 &&
            std::strcmp(desc->constr->check[0].ccname, "turns_role_check") == 0;
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

}  // namespace agentcache::memory::table
