// Direct row writes (see rows.hpp).
#include "pg/common/rows.hpp"

#include "pg/common/compat.hpp"

#include <cstring>

namespace agentcache::pg::rows {

bool plain_table(Relation rel, const Oid* types, int ntypes, bool partial_ok) {
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
    ok = ok && ii->ii_Expressions == NIL && (partial_ok || ii->ii_Predicate == NIL) && ii->ii_ExclusionOps == nullptr &&
         idx->rd_index->indimmediate;
    index_close(idx, AccessShareLock);
  }
  list_free(ids);
  return ok;
}

bool has_privileges(Oid relid, Oid roleid, AclMode need) {
  return pg_class_aclmask(relid, roleid, need, ACLMASK_ALL) == need;
}

namespace {

// Partial-index predicates, planned and compiled once per index (keyed by
// its OID: an index's predicate never changes under the same OID), in a
// context of their own; dropped whole at the next use after a relcache
// invalidation of any of those indexes (or of everything), never inside
// the callback (a caller may be evaluating one of them).
struct Predicate {
  Oid index;
  ExprState* qual;
};
MemoryContext g_pred_cxt = nullptr;
ExprContext* g_pred_econtext = nullptr;
List* g_preds = NIL;  // of Predicate*, in g_pred_cxt
bool g_preds_stale = false;
bool g_pred_callback = false;

void predicate_invalidated(Datum, Oid rel) {
  if (rel == InvalidOid) {
    g_preds_stale = true;
    return;
  }
  ListCell* lc;
  foreach (lc, g_preds)
    if (static_cast<Predicate*>(lfirst(lc))->index == rel) g_preds_stale = true;
}

ExprState* predicate(Oid index, IndexInfo* ii) {
  if (!g_pred_callback) {
    CacheRegisterRelcacheCallback(predicate_invalidated, 0);
    g_pred_callback = true;
  }
  if (g_preds_stale && g_pred_cxt != nullptr) {
    MemoryContextDelete(g_pred_cxt);  // its ExprContext too
    g_pred_cxt = nullptr;
    g_pred_econtext = nullptr;
    g_preds = NIL;
  }
  g_preds_stale = false;
  ListCell* lc;
  foreach (lc, g_preds) {
    Predicate* p = static_cast<Predicate*>(lfirst(lc));
    if (p->index == index) return p->qual;
  }
  if (g_pred_cxt == nullptr)
    g_pred_cxt = AllocSetContextCreate(CacheMemoryContext, "agentcache index predicates", ALLOCSET_SMALL_SIZES);
  MemoryContext old = MemoryContextSwitchTo(g_pred_cxt);
  Predicate* p = static_cast<Predicate*>(palloc(sizeof(Predicate)));
  p->index = index;
  p->qual = ExecInitQual(
      reinterpret_cast<List*>(expression_planner(static_cast<Expr*>(copyObjectImpl(ii->ii_Predicate)))), nullptr);
  if (g_pred_econtext == nullptr) g_pred_econtext = CreateStandaloneExprContext();
  g_preds = lappend(g_preds, p);
  MemoryContextSwitchTo(old);
  return p->qual;
}

// Whether the row in `slot` belongs in the partial index `ii` (as
// ExecInsertIndexTuples judges it: the predicate, planned, on the row).
bool in_partial_index(Oid index, IndexInfo* ii, TupleTableSlot* slot) {
  if (ii->ii_Predicate == NIL) return true;
  ExprState* qual = predicate(index, ii);
  g_pred_econtext->ecxt_scantuple = slot;
  const bool in = ExecQual(qual, g_pred_econtext);
  ResetExprContext(g_pred_econtext);
  return in;
}

// Inserts the entries of `slot` into every index that is ready for inserts
// (an index a CREATE INDEX CONCURRENTLY has not made ready yet — or left
// behind, cancelled — gets none, as the executor's ExecInsertIndexTuples
// does), a partial index only when the row satisfies its predicate. `arbiter`: this unique index is checked
// UNIQUE_CHECK_PARTIAL (no wait, no error); returns false when it reported a possible conflict.
bool insert_entries(Relation rel, TupleTableSlot* slot, bool update, Oid arbiter, bool summarizing_only) {
  bool unique = true;
  List* ids = RelationGetIndexList(rel);
  ListCell* lc;
  foreach (lc, ids) {
    Relation idx = index_open(lfirst_oid(lc), RowExclusiveLock);
    IndexInfo* ii = BuildIndexInfo(idx);
    if (ii->ii_ReadyForInserts && (!summarizing_only || compat::index_is_summarizing(ii)) &&
        in_partial_index(RelationGetRelid(idx), ii, slot)) {
      Datum values[INDEX_MAX_KEYS];
      bool isnull[INDEX_MAX_KEYS];
      FormIndexDatum(ii, slot, nullptr, values, isnull);
      const bool is_arbiter = RelationGetRelid(idx) == arbiter;
      const IndexUniqueCheck check = is_arbiter                   ? UNIQUE_CHECK_PARTIAL
                                     : idx->rd_index->indisunique ? UNIQUE_CHECK_YES
                                                                  : UNIQUE_CHECK_NO;
      const bool ok = index_insert(idx, values, isnull, &slot->tts_tid, rel, check, update, ii);
      compat::index_insert_done(idx, ii);
      if (is_arbiter && !ok) unique = false;
    }
    index_close(idx, NoLock);
  }
  list_free(ids);
  return unique;
}

}  // namespace

void insert_index_entries(Relation rel, TupleTableSlot* slot, bool update, bool summarizing_only) {
  (void)insert_entries(rel, slot, update, InvalidOid, summarizing_only);
}

bool insert_speculative(Relation rel, TupleTableSlot* slot, Oid arbiter) {
  const TransactionId xid = GetCurrentTransactionId();
  const uint32 token = SpeculativeInsertionLockAcquire(xid);
  table_tuple_insert_speculative(rel, slot, GetCurrentCommandId(true), 0, nullptr, token);
  const bool inserted = insert_entries(rel, slot, false, arbiter, false);
  table_tuple_complete_speculative(rel, slot, token, inserted);
  SpeculativeInsertionLockRelease(xid);
  return inserted;
}

bool row_security(Oid relid) { return check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED; }

void Constraints::build(Relation rel) {
  if (cxt_ != nullptr) MemoryContextDelete(cxt_);  // nobody uses the old one now: we are at the point of use
  cxt_ = AllocSetContextCreate(CacheMemoryContext, "agentcache constraints", ALLOCSET_SMALL_SIZES);
  MemoryContext old = MemoryContextSwitchTo(cxt_);
  TupleDesc desc = RelationGetDescr(rel);
  natts_ = desc->natts;
  not_null_ = static_cast<bool*>(palloc0(sizeof(bool) * (natts_ ? natts_ : 1)));
  for (int i = 0; i < natts_; ++i) not_null_[i] = TupleDescAttr(desc, i)->attnotnull;
  nchecks_ = desc->constr != nullptr ? desc->constr->num_check : 0;
  checks_ = static_cast<ExprState**>(palloc0(sizeof(ExprState*) * (nchecks_ ? nchecks_ : 1)));
  for (int i = 0; i < nchecks_; ++i) {
    Expr* e = expression_planner(static_cast<Expr*>(stringToNode(desc->constr->check[i].ccbin)));
    checks_[i] = ExecInitExpr(e, nullptr);
  }
  econtext_ = nchecks_ > 0 ? CreateStandaloneExprContext() : nullptr;
  MemoryContextSwitchTo(old);
  stale_ = false;
}

bool Constraints::satisfied(Relation rel, TupleTableSlot* slot) {
  if (stale_ || cxt_ == nullptr) build(rel);
  slot_getallattrs(slot);
  for (int i = 0; i < natts_ && i < slot->tts_nvalid; ++i)
    if (not_null_[i] && slot->tts_isnull[i]) return false;
  if (nchecks_ == 0) return true;
  econtext_->ecxt_scantuple = slot;
  bool ok = true;
  for (int i = 0; i < nchecks_ && ok; ++i) ok = ExecCheck(checks_[i], econtext_);
  ResetExprContext(econtext_);
  return ok;
}

void store_values(TupleTableSlot* slot, const Datum* values, const bool* nulls) {
  const int n = slot->tts_tupleDescriptor->natts;
  ExecClearTuple(slot);
  std::memcpy(slot->tts_values, values, sizeof(Datum) * n);
  std::memcpy(slot->tts_isnull, nulls, sizeof(bool) * n);
  ExecStoreVirtualTuple(slot);
}

}  // namespace agentcache::pg::rows
