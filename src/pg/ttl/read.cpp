// The TTL tier's read path (see read.hpp).
#include "pg/ttl/read.hpp"

#include "pg/common/compat.hpp"
#include "pg/common/args.hpp"
#include "pg/common/spi.hpp"

#include <cstring>
#include "pg/ttl/table.hpp"

namespace agentcache::ttl::read {

namespace {
Found judge(TimestampTz expires_at, bool never, int64 max_stale_us) {
  const TimestampTz now = GetCurrentTimestamp();  // clock_timestamp(): expiry is judged at the call
  if (never || expires_at > now) return Found::Fresh;
  if (max_stale_us >= 0 && (max_stale_us > now - DT_NOBEGIN / 2 || expires_at > now - max_stale_us))
    return Found::Stale;
  return Found::Miss;
}
// entry() through SQL, so that row-level security policies filter it.
Result entry_sql(std::string_view ns, std::string_view key, int64 max_stale_us, Snapshot snap) {
  static pg::Statement q(
      "SELECT value, expires_at FROM agentcache.entries"
      " WHERE namespace OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2",
      {TEXTOID, TEXTOID});
  return pg::with_spi([&] {
    Datum values[2] = {pg::text_datum(ns), pg::text_datum(key)};
    const int rc = snap ? q.exec_on(snap, values, nullptr, true, 1) : q.exec(values, nullptr, false, 1);
    pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.entries");
    Result out;
    if (SPI_processed == 0) return out;
    bool vnull = false, enull = false;
    const Datum v = pg::spi_value(0, 1, &vnull);
    const Datum e = pg::spi_value(0, 2, &enull);
    out.found = judge(enull ? 0 : DatumGetTimestampTz(e), enull, max_stale_us);
    if (out.found != Found::Miss && !vnull) {
      Jsonb* j = DatumGetJsonbP(v);
      out.value = static_cast<Jsonb*>(SPI_palloc(VARSIZE(j)));
      std::memcpy(out.value, j, VARSIZE(j));
    }
    return out;
  });
}

}  // namespace

bool lookup(Relation rel, Relation pk, Snapshot snap, Datum ns, Datum key, TupleTableSlot* slot) {
  ScanKeyData sk[2];
  ScanKeyInit(&sk[0], 1, BTEqualStrategyNumber, F_TEXTEQ, ns);
  ScanKeyInit(&sk[1], 2, BTEqualStrategyNumber, F_TEXTEQ, key);
  IndexScanDesc scan = pg::compat::index_scan_begin(rel, pk, snap, 2);
  index_rescan(scan, sk, 2, nullptr, 0);
  const bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
  index_endscan(scan);
  return found;
}

Result entry(std::string_view ns, std::string_view key, int64 max_stale_us, Snapshot snap) {
  const table::Oids o = table::oids();
  const AclResult acl = pg_class_aclcheck(o.entries, GetUserId(), ACL_SELECT);
  if (acl != ACLCHECK_OK) aclcheck_error(acl, OBJECT_TABLE, "entries");
  if (table::row_security()) return entry_sql(ns, key, max_stale_us, snap);
  Result out;
  bool pushed = false;
  if (snap == nullptr) {
    CommandCounterIncrement();
    PushActiveSnapshot(GetTransactionSnapshot());
    UpdateActiveSnapshotCommandId();
    snap = GetActiveSnapshot();
    pushed = true;
  }
  Relation rel = table_open(o.entries, AccessShareLock);
  Relation idx = index_open(o.entries_pkey, AccessShareLock);
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  if (lookup(rel, idx, snap, pg::text_datum(ns), pg::text_datum(key), slot)) {
    bool vnull = false, enull = false;
    Datum v = slot_getattr(slot, o.value, &vnull);
    Datum e = slot_getattr(slot, o.expires_at, &enull);
    out.found = judge(enull ? 0 : DatumGetTimestampTz(e), enull, max_stale_us);
    if (out.found != Found::Miss && !vnull) out.value = reinterpret_cast<Jsonb*>(PG_DETOAST_DATUM_COPY(v));
  }
  ExecDropSingleTupleTableSlot(slot);
  index_close(idx, AccessShareLock);
  table_close(rel, AccessShareLock);
  if (pushed) PopActiveSnapshot();
  return out;
}

TransactionId writer(std::string_view ns, std::string_view key) {
  const table::Oids o = table::oids();
  SnapshotData dirty;
  InitDirtySnapshot(dirty);
  Relation rel = table_open(o.entries, AccessShareLock);
  Relation idx = index_open(o.entries_pkey, AccessShareLock);
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  const TransactionId w =
      lookup(rel, idx, &dirty, pg::text_datum(ns), pg::text_datum(key), slot) ? writer_of(dirty) : InvalidTransactionId;
  ExecDropSingleTupleTableSlot(slot);
  index_close(idx, AccessShareLock);
  table_close(rel, AccessShareLock);
  return w;
}

}  // namespace agentcache::ttl::read
