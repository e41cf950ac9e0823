// agentcache.dedup as this backend knows it (see table.hpp).
#include "pg/dedup/table.hpp"

#include "pg/common/boundary.hpp"

namespace agentcache::dedup::table {

namespace {
Oid g_relid = InvalidOid;
void relcache_callback(Datum, Oid rel) {
  if (rel == InvalidOid || rel == g_relid) g_relid = InvalidOid;
}
}  // namespace

void register_callbacks() { CacheRegisterRelcacheCallback(relcache_callback, 0); }

Oid relid() {
  if (g_relid == InvalidOid) {
    const Oid rel = get_relname_relid("dedup", get_namespace_oid("agentcache", false));
    if (rel == InvalidOid) throw pg::sql_error(ERRCODE_UNDEFINED_TABLE, "relation agentcache.dedup does not exist");
    g_relid = rel;
  }
  return g_relid;
}

void require(AclMode need) {
  const AclResult r = pg_class_aclcheck(relid(), GetUserId(), need);
  if (r != ACLCHECK_OK) aclcheck_error(r, OBJECT_TABLE, "dedup");
}

}  // namespace agentcache::dedup::table
