// Every difference between the PostgreSQL majors agentcache supports (15, 17
// and 18) that the glue meets, behind small inline functions and macros: the
// only file that tests PG_VERSION_NUM (test/lint/layers.py checks it). The
// rest of the glue calls these and reads the same on every major.
//
//   what                          15                      17                    18
//   module magic block            PG_MODULE_MAGIC         PG_MODULE_MAGIC       PG_MODULE_MAGIC_EXT (name, version)
//   table_tuple_update's index    bool *update_indexes    TU_UpdateIndexes      TU_UpdateIndexes
//     report                                              (16: None/All/Summarizing)
//   summarizing (BRIN) indexes    —                       ii_Summarizing        ii_Summarizing
//   LockHeldByMe                  (tag, mode)             (tag, mode, orstronger) (tag, mode, orstronger)
//   infinite intervals            not a value             'infinity' valid      'infinity' valid
//                                                         (INTERVAL_NOT_FINITE)
//   index_beginscan               (heap, index, snapshot, nkeys, norderbys)     18: + IndexScanInstrumentation*
//   RelationGetPrimaryKeyIndex    (rel)                   (rel)                 (rel, deferrable_ok)
//   after index_insert            nothing to do           index_insert_cleanup  index_insert_cleanup
//                                                         (BRIN keeps its revmap pinned in ii_AmCache until then)
// Exported symbols: 17 and 18 build with -fvisibility=hidden, so every
// function PostgreSQL looks up by name is declared PGDLLEXPORT (SQL functions
// by PG_FUNCTION_INFO_V1, _PG_init and the worker entry points explicitly).
#pragma once
#include "pg/common/pg.hpp"

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "agentcache supports PostgreSQL 15, 17 and 18"
#endif
#if PG_VERSION_NUM >= 160000 && PG_VERSION_NUM < 170000
#error "agentcache is not built or tested against PostgreSQL 16 (no Debian release ships it)"
#endif

// The module's magic block (one per shared library; module.cpp). 18 records
// the module's name and version, shown by pg_get_loaded_modules().
#if PG_VERSION_NUM >= 180000
#define AGENTCACHE_MODULE_MAGIC(name_, version_) PG_MODULE_MAGIC_EXT(.name = name_, .version = version_)
#else
#define AGENTCACHE_MODULE_MAGIC(name_, version_) PG_MODULE_MAGIC
#endif

namespace agentcache::pg::compat {

// Which index entries a direct table_tuple_update needs afterwards.
enum class IndexUpdate { None, All, SummarizingOnly };

// table_tuple_update without waiting (wait = false), the caller's command id
// and the latest snapshot as crosscheck-free; reports which indexes need the
// new version's entries (15: all or none; 16+: or only the summarizing ones of
// a HOT update).
inline TM_Result tuple_update(Relation rel, ItemPointer tid, TupleTableSlot* slot, TM_FailureData* tmfd,
                              IndexUpdate* indexes) {
  LockTupleMode lockmode;
#if PG_VERSION_NUM >= 160000
  TU_UpdateIndexes update = TU_None;
  const TM_Result res = table_tuple_update(rel, tid, slot, GetCurrentCommandId(true), GetLatestSnapshot(),
                                           InvalidSnapshot, false, tmfd, &lockmode, &update);
  *indexes = update == TU_All           ? IndexUpdate::All
             : update == TU_Summarizing ? IndexUpdate::SummarizingOnly
                                        : IndexUpdate::None;
#else
  bool update = false;
  const TM_Result res = table_tuple_update(rel, tid, slot, GetCurrentCommandId(true), GetLatestSnapshot(),
                                           InvalidSnapshot, false, tmfd, &lockmode, &update);
  *indexes = update ? IndexUpdate::All : IndexUpdate::None;
#endif
  return res;
}

// Whether an index is summarizing (BRIN): a HOT update still inserts into it.
inline bool index_is_summarizing(const IndexInfo* ii) {
#if PG_VERSION_NUM >= 160000
  return ii->ii_Summarizing;
#else
  (void)ii;
  return false;
#endif
}

// Whether this backend holds exactly `mode` on `tag`.
inline bool lock_held_by_me(const LOCKTAG* tag, LOCKMODE mode) {
#if PG_VERSION_NUM >= 170000
  return LockHeldByMe(tag, mode, false);
#else
  return LockHeldByMe(tag, mode);
#endif
}

// 'infinity' / '-infinity' intervals exist from 17 on; before, no interval is.
inline bool interval_is_infinite(const Interval* iv, bool* negative) {
#if PG_VERSION_NUM >= 170000
  if (INTERVAL_IS_NOBEGIN(iv)) {
    *negative = true;
    return true;
  }
  if (INTERVAL_IS_NOEND(iv)) {
    *negative = false;
    return true;
  }
#else
  (void)iv;
#endif
  *negative = false;
  return false;
}

// Frees what an index AM cached in `ii` across index_insert calls (17+: BRIN
// keeps buffer pins there, released by its aminsertcleanup; the executor
// calls this in ExecCloseIndices). Before 17 each insert cleaned up after itself.
inline void index_insert_done(Relation index, IndexInfo* ii) {
#if PG_VERSION_NUM >= 170000
  index_insert_cleanup(index, ii);
#else
  (void)index;
  (void)ii;
#endif
}

// An index scan of `index` on `heap` (no instrumentation: 18 can count the
// scan's work for EXPLAIN, which a direct read has no use for).
inline IndexScanDesc index_scan_begin(Relation heap, Relation index, Snapshot snapshot, int nkeys) {
#if PG_VERSION_NUM >= 180000
  return index_beginscan(heap, index, snapshot, nullptr, nkeys, 0);
#else
  return index_beginscan(heap, index, snapshot, nkeys, 0);
#endif
}

// The table's primary key index, InvalidOid when it has none or (as before
// 18, where a deferrable one was never returned) when it is deferrable.
inline Oid primary_key_index(Relation rel) {
#if PG_VERSION_NUM >= 180000
  return RelationGetPrimaryKeyIndex(rel, false);
#else
  return RelationGetPrimaryKeyIndex(rel);
#endif
}

}  // namespace agentcache::pg::compat
