// agentcache.dedup as this backend knows it (see table.hpp).
#include "pg/dedup/table.hpp"

#include "pg/common/boundary.hpp"

namespace agentcache::dedup::table {

namespace {
Oid g_relid = InvalidOid;
int g_current = -1;  // the table has 0.2.0's columns (-1: not looked yet)
void relcache_callback(Datum, Oid rel) {
  if (rel == InvalidOid || rel == g_relid) {
    g_relid = InvalidOid;
    g_current = -1;
  }
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

void require_current() {
  const Oid rel = relid();
  if (g_current < 0) g_current = get_attnum(rel, "lease_expires_at") != InvalidAttrNumber ? 1 : 0;
  if (g_current == 0)
    throw pg::sql_error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "agentcache's message deduplication needs the extension updated to this library's version",
                        "The installed library is " AGENTCACHE_VERSION
                        "; this database's agentcache.dedup is older (no claim leases).",
                        "Run ALTER EXTENSION agentcache UPDATE in this database.");
}

void require(AclMode need) {
  require_current();
  const AclResult r = pg_class_aclcheck(relid(), GetUserId(), need);
  if (r != ACLCHECK_OK) aclcheck_error(r, OBJECT_TABLE, "dedup");
}

}  // namespace agentcache::dedup::table
