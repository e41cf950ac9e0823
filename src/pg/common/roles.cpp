// Acting as another role (see roles.hpp).
#include "pg/common/roles.hpp"

namespace agentcache::pg {

Oid extension_owner() {
  const Oid nsp = get_namespace_oid("agentcache", false);
  HeapTuple tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
  if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for schema agentcache");
  const Oid owner = reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tup))->nspowner;
  ReleaseSysCache(tup);
  return owner;
}

}  // namespace agentcache::pg
