// Direct writes of agentcache.dedup (see direct.hpp).
//
// When they apply: read committed (under REPEATABLE READ and SERIALIZABLE
// the SQL statements keep their snapshot and serialization rules); the
// caller has SELECT, INSERT and UPDATE (a claim) or SELECT and UPDATE (an
// outcome) on the table itself, as the SQL statements need; the table has
// its installed columns, no trigger, no row-level security, no expression or
// exclusion index, and its primary key on message_id; the new row satisfies
// every NOT NULL and CHECK constraint; and a claim's window is a plain
// duration (what dedup_begin stores).
#include "pg/dedup/direct.hpp"

#include "pg/common/args.hpp"
#include "pg/common/compat.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/rows.hpp"
#include "pg/dedup/state.hpp"
#include "pg/dedup/table.hpp"

#include <cstring>

namespace agentcache::dedup::direct {

namespace {

// Column numbers (0-based) of agentcache.dedup.
enum Col {
  kMessageId,
  kFingerprint,
  kState,
  kHolderPid,
  kAttempts,
  kError,
  kUpdatedAt,
  kExpiresAt,
  kClaimWindow,
  kLeaseExpiresAt,
  kHolderLocked,
  kSessionId,
  kReplySeq,
  kReplySent,
  kNCols
};

// The table and its primary key, opened for writing; closed by the destructor
// (only on the success path: an ERROR's abort closes them itself).
struct Open {
  Relation rel = nullptr;
  Relation pk = nullptr;
  void close() {
    if (pk != nullptr) index_close(pk, NoLock);
    if (rel != nullptr) table_close(rel, NoLock);
    pk = nullptr;
    rel = nullptr;
  }
};

bool open(AclMode need, Open* o) {
  if (IsolationUsesXactSnapshot()) return false;
  const Oid relid = table::relid();
  if (!pg::rows::has_privileges(relid, GetUserId(), need)) return false;
  o->rel = table_open(relid, RowExclusiveLock);
  const Oid pkid = table::plain(o->rel) ? pg::compat::primary_key_index(o->rel) : InvalidOid;
  if (OidIsValid(pkid)) {
    o->pk = index_open(pkid, RowExclusiveLock);
    const Form_pg_index ix = o->pk->rd_index;
    if (ix->indnatts == 1 && ix->indkey.values[0] == kMessageId + 1 && o->pk->rd_rel->relam == BTREE_AM_OID)
      return true;
  }
  o->close();
  return false;
}

// The message's row under `snap` into `slot`.
bool lookup(const Open& o, Snapshot snap, Datum id, TupleTableSlot* slot) {
  ScanKeyData sk[1];
  ScanKeyInit(&sk[0], 1, BTEqualStrategyNumber, F_TEXTEQ, id);
  sk[0].sk_collation = o.pk->rd_indcollation[0];
  IndexScanDesc scan = pg::compat::index_scan_begin(o.rel, o.pk, snap, 1);
  index_rescan(scan, sk, 1, nullptr, 0);
  const bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
  index_endscan(scan);
  return found;
}

bool is_text(Datum d, bool isnull, std::string_view want) {
  return !isnull && pg::text_view(DatumGetTextPP(d)) == want;
}

}  // namespace

bool insert_claim(std::string_view id, const char* fp, int64 within_us, Datum lease_end, bool no_lease) {
  Open o;
  if (!open(ACL_SELECT | ACL_INSERT | ACL_UPDATE, &o)) return false;
  CommandCounterIncrement();  // see this transaction's earlier changes
  const Datum key = pg::text_datum(id);
  TupleTableSlot* slot = table_slot_create(o.rel, nullptr);
  // No look first: almost every message is new, and the speculative
  // insertion's arbiter check is that look (a message that has a row,
  // committed or in progress, costs a taken-back tuple instead).
  Datum v[kNCols] = {};
  bool n[kNCols];
  std::memset(n, true, sizeof n);
  v[kMessageId] = key;
  n[kMessageId] = false;
  if (fp != nullptr) {
    v[kFingerprint] = CStringGetTextDatum(fp);
    n[kFingerprint] = false;
  }
  v[kState] = CStringGetTextDatum("processing");
  v[kHolderPid] = Int32GetDatum(MyProcPid);
  v[kAttempts] = Int32GetDatum(1);
  v[kUpdatedAt] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());  // now()
  v[kHolderLocked] = BoolGetDatum(true);
  n[kState] = n[kHolderPid] = n[kAttempts] = n[kUpdatedAt] = n[kHolderLocked] = false;
  if (within_us >= 0) {
    v[kClaimWindow] = IntervalPGetDatum(pg::make_interval_usecs(within_us));
    n[kClaimWindow] = false;
  }
  if (!no_lease) {
    v[kLeaseExpiresAt] = lease_end;
    n[kLeaseExpiresAt] = false;
  }
  pg::rows::store_values(slot, v, n);
  // a row of the same id — committed, or inserted by a transaction still in
  // progress (a plain INSERT that took no claim lock) — takes ours back: the
  // SQL upsert judges that row
  bool inserted = false;
  if (table::satisfies(o.rel, slot)) inserted = pg::rows::insert_speculative(o.rel, slot, RelationGetRelid(o.pk));
  ExecDropSingleTupleTableSlot(slot);
  o.close();
  if (inserted) CommandCounterIncrement();  // later statements of this transaction see it
  return inserted;
}

Recorded record_outcome(std::string_view id, const Outcome& out, char** fp) {
  Open o;
  if (!open(ACL_SELECT | ACL_UPDATE, &o)) return Recorded::UseSql;
  CommandCounterIncrement();
  TupleTableSlot* old = table_slot_create(o.rel, nullptr);
  TupleTableSlot* next = table_slot_create(o.rel, nullptr);
  Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
  Recorded result = Recorded::UseSql;
  *fp = nullptr;
  if (!lookup(o, snap, pg::text_datum(id), old)) {
    result = Recorded::NotHolder;
  } else {
    slot_getallattrs(old);
    const Datum* v = old->tts_values;
    const bool* n = old->tts_isnull;
    const bool holder =
        !n[kHolderPid] && DatumGetInt32(v[kHolderPid]) == MyProcPid && is_text(v[kState], n[kState], "processing");
    // the window: the claim's (a plain duration), else the GUC's
    bool plain_window = true;
    int64 window = static_cast<int64>(dedup_window_s) * USECS_PER_SEC;
    if (!n[kClaimWindow]) {
      const Interval* w = DatumGetIntervalP(v[kClaimWindow]);
      plain_window = w->month == 0 && w->day == 0;
      window = w->time;
    }
    if (!holder) {
      result = Recorded::NotHolder;
    } else if (plain_window) {
      Datum nv[kNCols];
      bool nn[kNCols];
      std::memcpy(nv, v, sizeof nv);
      std::memcpy(nn, n, sizeof nn);
      nv[kState] = CStringGetTextDatum(out.ok ? "completed" : "failed");
      nn[kState] = false;
      nn[kHolderPid] = nn[kLeaseExpiresAt] = true;
      nv[kError] = PointerGetDatum(out.error);
      nn[kError] = out.error == nullptr;
      nv[kUpdatedAt] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());  // now()
      nn[kUpdatedAt] = false;
      // as the SQL UPDATE: clock_timestamp() + window, or 'infinity' when
      // that would reach within a day of the end of timestamptz
      const TimestampTz now = GetCurrentTimestamp();
      nv[kExpiresAt] = TimestampTzGetDatum(window < END_TIMESTAMP - now - USECS_PER_DAY ? now + window : DT_NOEND);
      nn[kExpiresAt] = false;
      nn[kSessionId] = nn[kReplySeq] = nn[kReplySent] = !out.has_reply;
      if (out.has_reply) {
        nv[kSessionId] = pg::text_datum(out.session);
        nv[kReplySeq] = Int64GetDatum(out.seq);
        nv[kReplySent] = BoolGetDatum(false);
      }
      pg::rows::store_values(next, nv, nn);
      if (table::satisfies(o.rel, next)) {
        char* held_fp = n[kFingerprint] ? nullptr : text_to_cstring(DatumGetTextPP(v[kFingerprint]));
        ExecMaterializeSlot(next);  // its values must not point into the old row's buffer
        ItemPointerData tid = old->tts_tid;
        ExecClearTuple(old);
        TM_FailureData tmfd;
        pg::compat::IndexUpdate indexes = pg::compat::IndexUpdate::None;
        // never waits: a row another transaction is changing (a contender
        // taking it over) goes to the SQL UPDATE, which waits and re-checks
        const TM_Result res = pg::compat::tuple_update(o.rel, &tid, next, &tmfd, &indexes);
        if (res == TM_Ok) {
          if (indexes != pg::compat::IndexUpdate::None)
            pg::rows::insert_index_entries(o.rel, next, true, indexes == pg::compat::IndexUpdate::SummarizingOnly);
          *fp = held_fp;
          result = Recorded::Yes;
        }
      }
    }
  }
  UnregisterSnapshot(snap);
  ExecDropSingleTupleTableSlot(next);
  ExecDropSingleTupleTableSlot(old);
  o.close();
  if (result == Recorded::Yes) CommandCounterIncrement();
  return result;
}

}  // namespace agentcache::dedup::direct
