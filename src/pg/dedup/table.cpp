// agentcache.dedup as this backend knows it (see table.hpp).
#include "pg/dedup/table.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/rows.hpp"

namespace agentcache::dedup::table {

namespace {
Oid g_relid = InvalidOid;
int g_current = -1;  // the table has 0.2.0's columns (-1: not looked yet)
enum class Plain { Unknown, Yes, No };
Plain g_plain = Plain::Unknown;
pg::rows::Constraints g_constraints;
void relcache_callback(Datum, Oid rel) {
  if (rel == InvalidOid || rel == g_relid) {
    g_relid = InvalidOid;
    g_current = -1;
    g_plain = Plain::Unknown;
    g_constraints.invalidate();
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

bool plain(Relation rel) {
  if (g_plain != Plain::Unknown) return g_plain == Plain::Yes;
  // message_id, fingerprint, state, holder_pid, attempts, error, updated_at,
  // expires_at, claim_window, lease_expires_at, holder_locked, session_id,
  // reply_seq, reply_sent
  static const Oid kTypes[14] = {TEXTOID,        TEXTOID,     TEXTOID,        INT4OID, INT4OID, TEXTOID, TIMESTAMPTZOID,
                                 TIMESTAMPTZOID, INTERVALOID, TIMESTAMPTZOID, BOOLOID, TEXTOID, INT8OID, BOOLOID};
  const bool ok = pg::rows::plain_table(rel, kTypes, 14, true) && rel->trigdesc == nullptr;
  g_plain = ok ? Plain::Yes : Plain::No;
  return ok;
}

bool satisfies(Relation rel, TupleTableSlot* slot) { return g_constraints.satisfied(rel, slot); }

}  // namespace agentcache::dedup::table
