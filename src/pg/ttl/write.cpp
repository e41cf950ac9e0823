// The TTL tier's write path (see write.hpp and the protocol in tier.cpp).
#include "pg/ttl/write.hpp"

#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/compat.hpp"
#include "pg/common/rows.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/spi.hpp"
#include "pg/ttl/namespaces.hpp"
#include "pg/ttl/read.hpp"
#include "pg/ttl/table.hpp"

namespace agentcache::ttl::write {

namespace {

using namespaces::Settings;

// The row to write, as datums.
struct Row {
  Datum values[6];
  bool nulls[6];
};

Row make_row(const Entry& e, bool expires, TimestampTz expires_at) {
  Row r{{pg::text_datum(e.ns), pg::text_datum(e.key), JsonbPGetDatum(e.value),
         e.tags ? e.tags : PointerGetDatum(construct_empty_array(TEXTOID)), TimestampTzGetDatum(expires_at),
         TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())},  // stored_at = now()
        {false, false, false, false, !expires, false}};
  return r;
}

enum class Direct { Inserted, Updated, Blocked, NotApplicable };

// The upsert without SPI, the planner or the executor: the primary key is
// probed (a dirty snapshot: committed or not), then the row updated in place
// (a HOT update when the tags stay) or inserted, with its index entries, as
// logical replication's apply worker writes rows. Only while agentcache.
// entries is as installed and the caller has what the SQL upsert needs (ON
// CONFLICT reads the key columns) on the table itself; column privileges are
// judged by the SQL path. *blocker: the transaction writing the row when
// Blocked.
Direct upsert_direct(Row& row, TransactionId* blocker) {
  const table::Oids o = table::oids();
  if (!pg::rows::has_privileges(o.entries, GetUserId(), ACL_SELECT | ACL_INSERT | ACL_UPDATE))
    return Direct::NotApplicable;
  Relation rel = table_open(o.entries, RowExclusiveLock);
  if (!table::plain(rel)) {
    table_close(rel, NoLock);
    return Direct::NotApplicable;
  }
  TupleTableSlot* next = table_slot_create(rel, nullptr);
  pg::rows::store_values(next, row.values, row.nulls);
  if (!table::satisfies(rel, next)) {  // the upsert raises the constraint's error
    ExecDropSingleTupleTableSlot(next);
    table_close(rel, NoLock);
    return Direct::NotApplicable;
  }
  CommandCounterIncrement();  // see this transaction's earlier changes
  TupleTableSlot* old = table_slot_create(rel, nullptr);
  Relation pk = index_open(o.entries_pkey, RowExclusiveLock);
  Direct result = Direct::Blocked;
  for (int attempt = 0; result == Direct::Blocked; ++attempt) {
    if (attempt > 1000) elog(ERROR, "agentcache: put kept losing races on one key");
    CHECK_FOR_INTERRUPTS();
    SnapshotData dirty;
    InitDirtySnapshot(dirty);
    const bool found = read::lookup(rel, pk, &dirty, row.values[0], row.values[1], old);
    *blocker = found ? read::writer_of(dirty) : InvalidTransactionId;
    if (TransactionIdIsValid(*blocker)) break;  // being deleted (or written) by another transaction
    pg::rows::store_values(next, row.values, row.nulls);
    if (!found) {
      // a key inserted meanwhile by a plain INSERT: look again (update it, or wait for its writer)
      if (pg::rows::insert_speculative(rel, next, o.entries_pkey)) result = Direct::Inserted;
      continue;
    }
    ItemPointerData tid = old->tts_tid;
    ExecClearTuple(old);  // its buffer pin would keep the page from being pruned
    TM_FailureData tmfd;
    pg::compat::IndexUpdate indexes = pg::compat::IndexUpdate::None;
    // never waits here, with the caller's key lock held: a row another
    // transaction is changing comes back to the caller as a blocker
    const TM_Result res = pg::compat::tuple_update(rel, &tid, next, &tmfd, &indexes);
    if (res == TM_Ok) {
      if (indexes != pg::compat::IndexUpdate::None)
        pg::rows::insert_index_entries(rel, next, true, indexes == pg::compat::IndexUpdate::SummarizingOnly);
      result = Direct::Updated;
    } else if (res == TM_SelfModified) {
      CommandCounterIncrement();
    } else if (res == TM_BeingModified) {
      *blocker = tmfd.xmax;
      break;
    } else if (res != TM_Updated && res != TM_Deleted) {
      elog(ERROR, "agentcache: unexpected result %d updating an entry", res);
    }  // else deleted or updated by a transaction that committed meanwhile: look again
  }
  index_close(pk, NoLock);
  ExecDropSingleTupleTableSlot(old);
  ExecDropSingleTupleTableSlot(next);
  table_close(rel, NoLock);
  CommandCounterIncrement();  // later reads in this statement see the entry
  return result;
}

// The same through SQL: an administrator's trigger, policy or constraint
// applies. Returns true when the row was inserted (not updated).
bool upsert_sql(const Entry& e, bool expires, TimestampTz expires_at) {
  static pg::Statement q(
      "INSERT INTO agentcache.entries AS e (namespace, key, value, tags, expires_at)"
      " VALUES ($1, $2, $3, COALESCE($4, '{}'::pg_catalog.text[]), $5)"
      " ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, tags = EXCLUDED.tags,"
      " expires_at = EXCLUDED.expires_at, stored_at = pg_catalog.now()"
      " RETURNING (e.xmax OPERATOR(pg_catalog.=) '0'::pg_catalog.xid)",
      {TEXTOID, TEXTOID, JSONBOID, TEXTARRAYOID, TIMESTAMPTZOID});
  return pg::with_spi([&] {
    Datum values[5] = {pg::text_datum(e.ns), pg::text_datum(e.key), JsonbPGetDatum(e.value), e.tags,
                       TimestampTzGetDatum(expires_at)};
    char nulls[5] = {' ', ' ', ' ', e.tags ? ' ' : 'n', expires ? ' ' : 'n'};
    const int rc = q.exec_latest(values, nulls, false);
    pg::spi_check(rc, SPI_OK_INSERT_RETURNING, "storing the entry");
    bool isnull = false;
    return DatumGetBool(pg::spi_value(0, 1, &isnull));
  });
}

// When the entry expires: its own ttl (PostgreSQL's calendar arithmetic),
// else the namespace's default; false: never — also when the time would lie
// past the end of timestamptz (API.md: clamped to "never").
bool expiry(const Entry& e, const Settings& st, TimestampTz* at) {
  *at = 0;
  if (e.ttl != nullptr) return pg::plus_interval(GetCurrentTimestamp(), e.ttl, at);
  return st.has_ttl && pg::plus_usecs(GetCurrentTimestamp(), st.ttl_us, at);
}

}  // namespace

Settings settings_for_store(std::string_view ns) {
  Settings st{};
  if (!namespaces::cached_settings(ns, &st)) st = pg::with_spi([&] { return namespaces::settings(ns, true); });
  return st;
}

TransactionId store(const Entry& e, const Settings& st) {
  TimestampTz expires_at = 0;
  const bool expires = expiry(e, st, &expires_at);
  Row row = make_row(e, expires, expires_at);
  TransactionId blocker = InvalidTransactionId;
  bool inserted = false;
  switch (upsert_direct(row, &blocker)) {
    case Direct::Blocked:
      return blocker;
    case Direct::Inserted:
      inserted = true;
      break;
    case Direct::Updated:
      break;
    case Direct::NotApplicable:
      inserted = upsert_sql(e, expires, expires_at);
      break;
  }
  namespaces::slot(e.ns, true);
  if (inserted) {
    namespaces::add(e.ns, &Counters::entries, 1);
    namespaces::add(e.ns, &Counters::bytes, static_cast<int64>(VARSIZE(e.value)));
  }
  if (st.has_max) pg::with_spi([&] { enforce_max(e.ns, st.max_entries, &e.key); });
  return InvalidTransactionId;
}

int64 enforce_max(std::string_view ns, int64 max, const std::string_view* keep) {
  static pg::Statement count(
      "SELECT pg_catalog.count(*) FROM agentcache.entries WHERE namespace OPERATOR(pg_catalog.=) $1", {TEXTOID});
  static pg::Statement evict(
      "DELETE FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
      " SELECT ctid FROM agentcache.entries WHERE namespace OPERATOR(pg_catalog.=) $1"
      " AND ($2 IS NULL OR key OPERATOR(pg_catalog.<>) $2)"
      " ORDER BY expires_at ASC NULLS LAST LIMIT $3 FOR UPDATE SKIP LOCKED))",
      {TEXTOID, TEXTOID, INT8OID});
  Datum v1[1] = {pg::text_datum(ns)};
  int rc = count.exec_latest(v1, nullptr, false);
  pg::spi_check(rc, SPI_OK_SELECT, "counting entries");
  const int64 n_entries = pg::spi_int64(0, 1);
  if (n_entries <= max) return 0;
  Datum v3[3] = {pg::text_datum(ns), keep ? pg::text_datum(*keep) : Datum(0), Int64GetDatum(n_entries - max)};
  char nulls[3] = {' ', keep ? ' ' : 'n', ' '};
  rc = evict.exec_latest(v3, nulls, false);
  pg::spi_check(rc, SPI_OK_DELETE, "evicting entries");
  const int64 n = static_cast<int64>(SPI_processed);
  namespaces::add(ns, &Counters::evictions, n);
  namespaces::add(ns, &Counters::entries, -n);
  return n;
}

int64 delete_where(pg::Statement& q, Datum* values) {
  return pg::with_spi([&] {
    const int rc = q.exec_latest(values, nullptr, false);
    pg::spi_check(rc, SPI_OK_DELETE_RETURNING, "deleting entries");
    for (uint64 i = 0; i < SPI_processed; ++i) {
      bool isnull = false;
      const std::string_view ns = pg::text_view(DatumGetTextPP(pg::spi_value(i, 1, &isnull)));
      namespaces::add(ns, &Counters::invalidations, 1);
      namespaces::add(ns, &Counters::entries, -1);
    }
    return static_cast<int64>(SPI_processed);
  });
}

}  // namespace agentcache::ttl::write
