// The conversation tier's write path (see write.hpp and the protocol in
// tier.cpp). add_turn holds the session's writer lock (LockSpace::
// SessionWriter, transaction-scoped) so that max(seq)+1 — from the cache
// when it knows it, else read with a fresh snapshot — is unique; it inserts
// directly while agentcache.turns is as installed, through SQL otherwise.
#include "pg/memory/write.hpp"

#include "pg/memory/memory.hpp"

#include "pg/common/compat.hpp"
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/locks.hpp"
#include "pg/common/rows.hpp"
#include "pg/common/spi.hpp"
#include "pg/memory/pending.hpp"
#include "pg/memory/read.hpp"
#include "pg/memory/state.hpp"
#include "pg/memory/table.hpp"

namespace agentcache::memory::write {

namespace {

// The session's newest seq + 1, read backwards from the primary key
// (session_id, seq) in the index's own collation, on a fresh snapshot.
// With `from` (> 0: the newest seq the session cache holds, a hint) the scan
// starts with the key seq >= from, which ends it at the newest turn instead
// of walking all of the session's entries on the leaf page; when nothing is
// found that way (turns deleted since), it looks again without the bound.
int64 next_seq(Relation rel, Relation pk, Datum session, int64 from, TupleTableSlot* slot) {
  Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
  int64 seq = 0;  // when the session has no turn: seq 1
  bool found = false;
  for (int pass = from > 0 ? 0 : 1; pass < 2 && !found; ++pass) {
    ScanKeyData sk[2];
    ScanKeyInit(&sk[0], 1, BTEqualStrategyNumber, F_TEXTEQ, session);
    sk[0].sk_collation = pk->rd_indcollation[0];
    const int nkeys = pass == 0 ? 2 : 1;
    if (pass == 0) ScanKeyInit(&sk[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(from));
    IndexScanDesc scan = pg::compat::index_scan_begin(rel, pk, snap, nkeys);
    index_rescan(scan, sk, nkeys, nullptr, 0);
    found = index_getnext_slot(scan, BackwardScanDirection, slot);
    if (found) {
      bool isnull = false;
      seq = DatumGetInt64(slot_getattr(slot, 2, &isnull));
    }
    index_endscan(scan);
  }
  UnregisterSnapshot(snap);
  return seq + 1;
}

// The primary key is (session_id, seq), as installed: the scans above key on
// its two columns.
bool pk_is_session_seq(Relation pk) {
  const Form_pg_index ix = pk->rd_index;
  return ix->indnkeyatts == 2 && ix->indkey.values[0] == 1 && ix->indkey.values[1] == 2 &&
         pk->rd_rel->relam == BTREE_AM_OID;
}

// The turn's row without SPI (see pg/common/rows.hpp) while agentcache.turns
// has its installed shape, the caller has the privileges the INSERT would
// need, and the row satisfies the table's constraints. False, with nothing
// written, when the SQL INSERT must run instead.
bool insert_direct(std::string_view key, const LTurn& t, int64* seq_out) {
  const Oid relid = table::relid();
  if (!pg::rows::has_privileges(relid, GetUserId(), ACL_SELECT | ACL_INSERT)) return false;
  Relation rel = table_open(relid, RowExclusiveLock);
  if (!table::plain(rel) || !OidIsValid(pg::compat::primary_key_index(rel))) {
    table_close(rel, NoLock);
    return false;
  }
  Relation pk = index_open(pg::compat::primary_key_index(rel), RowExclusiveLock);
  if (!pk_is_session_seq(pk)) {
    index_close(pk, NoLock);
    table_close(rel, NoLock);
    return false;
  }
  CommandCounterIncrement();  // see this transaction's earlier turns
  const Datum session = pg::text_datum(key);
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  // The writer lock is held: the cache knows the newest seq unless this
  // transaction or an unapplied change elsewhere touched the session.
  bool known = false;
  const int64 cached = read::newest_cached_seq(key, pending::touches(key) ? nullptr : &known);
  const int64 seq = known ? cached + 1 : next_seq(rel, pk, session, cached, slot);
  const std::string_view role = core::role_name(t.role);
  Datum values[6] = {session,
                     Int64GetDatum(seq),
                     pg::text_datum(role),
                     pg::text_datum({t.content, t.content_len}),
                     PointerGetDatum(t.meta),
                     TimestampTzGetDatum(t.at)};
  bool nulls[6] = {false, false, false, false, t.meta == nullptr, false};
  pg::rows::store_values(slot, values, nulls);
  const bool ok = table::satisfies(rel, slot);  // else the INSERT raises the constraint's error
  if (ok) {
    table_tuple_insert(rel, slot, GetCurrentCommandId(true), 0, nullptr);
    pg::rows::insert_index_entries(rel, slot, false);
  }
  ExecDropSingleTupleTableSlot(slot);
  index_close(pk, NoLock);
  table_close(rel, NoLock);
  if (!ok) return false;
  CommandCounterIncrement();
  *seq_out = seq;
  return true;
}

// The same through SQL: an administrator's trigger, policy or index applies.
int64 insert_sql(std::string_view key, text* content, const LTurn& t) {
  return pg::with_spi([&] {
    static pg::Statement q(
        "INSERT INTO agentcache.turns (session_id, seq, role, content, meta, created_at)"
        " SELECT $1, COALESCE(pg_catalog.max(t.seq), 0::pg_catalog.int8) OPERATOR(pg_catalog.+) 1::pg_catalog.int8,"
        " $2, $3, $4, $5 FROM agentcache.turns t WHERE t.session_id OPERATOR(pg_catalog.=) $1"
        " RETURNING seq",
        {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID});
    Datum values[5] = {pg::text_datum(key), pg::text_datum(core::role_name(t.role)), PointerGetDatum(content),
                       PointerGetDatum(t.meta), TimestampTzGetDatum(t.at)};
    char nulls[5] = {' ', ' ', ' ', t.meta ? ' ' : 'n', ' '};
    const int rc = q.exec_latest(values, nulls, false, 1);
    if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
      elog(ERROR, "agentcache: inserting into agentcache.turns failed: %s", SPI_result_code_string(rc));
    return pg::spi_int64(0, 1);
  });
}

}  // namespace

}  // namespace agentcache::memory::write

namespace agentcache::memory {

int64 add_turn(std::string_view key, core::Role role, text* content, Jsonb* meta) {
  const uint64 hash = core::session_hash(MyDatabaseId, key);
  pg::lock_transaction(pg::LockSpace::SessionWriter, hash, ExclusiveLock);
  LTurn t{};
  tokens_unknown(t);
  t.at = GetCurrentTransactionStartTimestamp();
  t.role = role;
  const std::string_view c = pg::text_view(content);
  t.content = c.data();
  t.content_len = static_cast<uint32>(c.size());
  t.chars = core::utf8_chars(c);
  t.meta = meta;
  // The trigger on agentcache.turns stays quiet for our own INSERT. If the
  // insert raises, the (sub)transaction's abort clears the flag.
  pending::set_in_add_turn(true);
  int64 seq = 0;
  if (!write::insert_direct(key, t, &seq)) seq = write::insert_sql(key, content, t);
  pending::set_in_add_turn(false);
  t.seq = seq;
  pending::add_turn(key, hash, t);
  return seq;
}

}  // namespace agentcache::memory

namespace agentcache::memory::write {

int64 forget(std::string_view key) {
  const int64 n = pg::with_spi([&] {
    static pg::Statement q("DELETE FROM agentcache.turns WHERE session_id OPERATOR(pg_catalog.=) $1", {TEXTOID});
    Datum values[1] = {pg::text_datum(key)};
    const int rc = q.exec(values, nullptr, false);
    pg::spi_check(rc, SPI_OK_DELETE, "deleting from agentcache.turns");
    return static_cast<int64>(SPI_processed);
  });
  // The trigger queued the invalidation (applied at commit); with no rows
  // there may still be a cached empty session: queue it too.
  pending::invalidate(key);
  return n;
}

}  // namespace agentcache::memory::write
