// agentcache.entries as this backend knows it (see table.hpp).
#include "pg/ttl/table.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/rows.hpp"
#include "pg/ttl/namespaces.hpp"

namespace agentcache::ttl::table {

namespace {

// Re-resolved at their next use after an invalidation; callers keep their
// own copy of what they use (an invalidation can arrive whenever a relation
// is opened).
Oids g_oids{InvalidOid, InvalidOid, InvalidOid, InvalidAttrNumber, InvalidAttrNumber};
enum class Plain { Unknown, Yes, No };
Plain g_plain = Plain::Unknown;
pg::rows::Constraints g_constraints;

void relcache_callback(Datum, Oid rel) {
  if (rel == InvalidOid || rel == g_oids.entries || rel == g_oids.entries_pkey || rel == g_oids.namespaces) {
    g_oids = Oids{InvalidOid, InvalidOid, InvalidOid, InvalidAttrNumber, InvalidAttrNumber};
    g_plain = Plain::Unknown;
    g_constraints.invalidate();
    namespaces::forget_settings();  // the extension may have been dropped and created again
  }
}

}  // namespace

void register_callbacks() { CacheRegisterRelcacheCallback(relcache_callback, 0); }

Oids oids() {
  if (g_oids.entries != InvalidOid) return g_oids;
  const Oid nsp = get_namespace_oid("agentcache", false);
  Oids o{get_relname_relid("entries", nsp), get_relname_relid("entries_pkey", nsp),
         get_relname_relid("namespaces", nsp), InvalidAttrNumber, InvalidAttrNumber};
  if (o.entries == InvalidOid || o.entries_pkey == InvalidOid || o.namespaces == InvalidOid)
    throw pg::sql_error(ERRCODE_UNDEFINED_TABLE, "relation agentcache.entries does not exist");
  o.value = get_attnum(o.entries, "value");
  o.expires_at = get_attnum(o.entries, "expires_at");
  if (o.value == InvalidAttrNumber || o.expires_at == InvalidAttrNumber)
    throw pg::sql_error(ERRCODE_UNDEFINED_COLUMN, "agentcache.entries has no column value or expires_at");
  g_oids = o;
  return o;
}

bool plain(Relation rel) {
  if (g_plain != Plain::Unknown) return g_plain == Plain::Yes;
  static const Oid kTypes[6] = {TEXTOID, TEXTOID, JSONBOID, TEXTARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
  const bool ok = pg::rows::plain_table(rel, kTypes, 6) && rel->trigdesc == nullptr;
  g_plain = ok ? Plain::Yes : Plain::No;
  return ok;
}

bool satisfies(Relation rel, TupleTableSlot* slot) { return g_constraints.satisfied(rel, slot); }

bool row_security() { return pg::rows::row_security(oids().entries); }

}  // namespace agentcache::ttl::table
