// Direct row writes (see rows.hpp).
#include "pg/common/rows.hpp"

#include <cstring>

namespace agentcache::pg::rows {

bool plain_table(Relation rel, const Oid* types, int ntypes) {
  TupleDesc desc = RelationGetDescr(rel);
  if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relrowsecurity || desc->natts != ntypes) return false;
  if (desc->constr != nullptr && desc->constr->has_generated_stored) return false;
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute a = TupleDescAttr(desc, i);
    if (a->attisdropped || a->atttypid != types[i]) return false;
  }
  bool ok = true;
  List* ids = RelationGetIndexList(rel);
  ListCell* lc;
  foreach (lc, ids) {
    Relation idx = index_open(lfirst_oid(lc), AccessShareLock);
    IndexInfo* ii = BuildIndexInfo(idx);
    ok = ok && ii->ii_Expressions == NIL && ii->ii_Predicate == NIL && ii->ii_ExclusionOps == nullptr &&
         idx->rd_index->indimmediate;
    index_close(idx, AccessShareLock);
  }
  list_free(ids);
  return ok;
}

bool has_privileges(Oid relid, Oid roleid, AclMode need) {
  return pg_class_aclmask(relid, roleid, need, ACLMASK_ALL) == need;
}

void insert_index_entries(Relation rel, TupleTableSlot* slot, bool update) {
  List* ids = RelationGetIndexList(rel);
  ListCell* lc;
  foreach (lc, ids) {
    Relation idx = index_open(lfirst_oid(lc), RowExclusiveLock);
    IndexInfo* ii = BuildIndexInfo(idx);
    Datum values[INDEX_MAX_KEYS];
    bool isnull[INDEX_MAX_KEYS];
    FormIndexDatum(ii, slot, nullptr, values, isnull);
    (void)index_insert(idx, values, isnull, &slot->tts_tid, rel,
                       idx->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, update, ii);
    index_close(idx, NoLock);
  }
  list_free(ids);
}

void store_values(TupleTableSlot* slot, const Datum* values, const bool* nulls) {
  const int n = slot->tts_tupleDescriptor->natts;
  ExecClearTuple(slot);
  std::memcpy(slot->tts_values, values, sizeof(Datum) * n);
  std::memcpy(slot->tts_isnull, nulls, sizeof(bool) * n);
  ExecStoreVirtualTuple(slot);
}

}  // namespace agentcache::pg::rows
