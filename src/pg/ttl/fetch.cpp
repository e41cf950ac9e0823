// fetch(): read-through with single flight (see the protocol in tier.cpp).
//
// A hit returns the stored value. On a miss the caller queues on the key
// lock; the first runs the query on a fresh snapshot taken once it holds the
// lock and stores the result; the others wake when its transaction ends and
// read what it stored (or take over when it failed, was cancelled or died).
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/interval.hpp"
#include "pg/common/spi.hpp"
#include "pg/ttl/locks.hpp"
#include "pg/ttl/namespaces.hpp"
#include "pg/ttl/read.hpp"
#include "pg/ttl/state.hpp"
#include "pg/ttl/write.hpp"

#include <cstring>

using agentcache::pg::null_arg;
using agentcache::pg::sql_error;

namespace agentcache::ttl {

namespace {

// The query's single value converted with to_jsonb (copied into the caller's
// memory context), or nullptr for zero rows or NULL. Inside SPI.
[[noreturn]] void not_plain(int rc) {
  throw sql_error(ERRCODE_FEATURE_NOT_SUPPORTED, "the fetch query must be a single plain statement",
                  pg::textf(FMT_STRING("SPI refused it: {}."), SPI_result_code_string(rc)).c_str(),
                  "Transaction control and COPY cannot run inside fetch().");
}

Jsonb* run_query(const char* query) {
  SPIPlanPtr plan = SPI_prepare(query, 0, nullptr);
  if (plan == nullptr) not_plain(SPI_result);  // (errors of the statement itself are raised by SPI_prepare)
  if (list_length(SPI_plan_get_plan_sources(plan)) != 1)
    throw sql_error(ERRCODE_SYNTAX_ERROR, "the fetch query must be a single statement");
  int rc = SPI_execute_snapshot(plan, nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, false, true, 2);
  if (rc < 0) not_plain(rc);
  if (SPI_tuptable == nullptr || SPI_tuptable->tupdesc->natts != 1)
    throw sql_error(ERRCODE_DATATYPE_MISMATCH, "the fetch query must return exactly one column");
  if (SPI_processed > 1) throw sql_error(ERRCODE_CARDINALITY_VIOLATION, "the fetch query returned more than one row");
  if (SPI_processed == 0) return nullptr;
  bool isnull = false;
  Datum v = pg::spi_value(0, 1, &isnull);
  const Oid type = SPI_gettypeid(SPI_tuptable->tupdesc, 1);
  // a pseudo-type column (void, record of no known shape…) has no to_jsonb:
  // the shape is wrong, as for a second column (found by the fuzzer: 42883
  // from the conversion)
  if (get_typtype(type) == TYPTYPE_PSEUDO && type != RECORDOID)
    throw sql_error(ERRCODE_DATATYPE_MISMATCH,
                    pg::textf(FMT_STRING("the fetch query's column has type {}, which cannot be converted to jsonb"),
                              format_type_be(type))
                        .c_str());
  if (isnull) return nullptr;
  Jsonb* j = nullptr;
  if (type == JSONBOID) {
    j = DatumGetJsonbP(v);
  } else {
    Oid argtypes[1] = {type};
    Datum args[1] = {v};
    rc = SPI_execute_with_args("SELECT pg_catalog.to_jsonb($1)", 1, argtypes, args, nullptr, true, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "agentcache: to_jsonb failed");
    j = DatumGetJsonbP(pg::spi_value(0, 1, &isnull));
  }
  auto* out = static_cast<Jsonb*>(SPI_palloc(VARSIZE(j)));  // SPI_finish frees everything else
  std::memcpy(out, j, VARSIZE(j));
  return out;
}

// Queues on the key as a fetch leader (global, namespace and key locks,
// shared/shared/exclusive). Returns the value if, once it holds the key, a
// fresh value is there (another leader stored it); nullptr when this caller
// must run the query (always on a standby, where entries cannot be read). A
// put of the key not yet committed comes first: it is waited for without the
// key lock (that transaction may put the key again).
Jsonb* lead(std::string_view ns, std::string_view key, bool standby) {
  locks::lock_global(ShareLock);
  locks::lock_namespace(ns, ShareLock);
  locks::lock_key(ns, key);
  while (!standby) {
    read::Result r = read::entry(ns, key, -1, GetLatestSnapshot());
    if (r.found == read::Found::Fresh) return r.value;
    const TransactionId writer = read::writer(ns, key);
    if (!TransactionIdIsValid(writer)) return nullptr;
    locks::unlock_key(ns, key);
    XactLockTableWait(writer, nullptr, nullptr, XLTW_None);
    locks::lock_key(ns, key);
  }
  return nullptr;
}

// Runs the query; with stale_if_error (stale_us >= 0) in a subtransaction, so
// that its failure can be answered with a recently expired value: *edata then
// holds the error and nullptr is returned.
Jsonb* compute(const char* query, int64 stale_us, ErrorData** edata) {
  *edata = nullptr;
  if (stale_us < 0) return pg::with_spi([&] { return run_query(query); });
  MemoryContext cxt = CurrentMemoryContext;
  Jsonb* value = nullptr;
  *edata = pg::in_subtransaction([&] {
    pg::with_spi([&] {
      if (Jsonb* v = run_query(query)) {
        value = static_cast<Jsonb*>(MemoryContextAlloc(cxt, VARSIZE(v)));
        std::memcpy(value, v, VARSIZE(v));
      }
    });
  });
  return value;
}

// The answer to a failed query under stale_if_error: a value expired at most
// stale_us ago, with a WARNING; else the query's error. A cancel, a
// statement_timeout or any other operator intervention (class 57) is not an
// error of the query: it propagates, never becomes a stale answer.
Jsonb* stale_answer(std::string_view ns, std::string_view key, int64 stale_us, bool standby, ErrorData* edata) {
  if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION) throw pg::pg_error(edata);
  read::Result old = standby ? read::Result{} : read::entry(ns, key, stale_us, nullptr);
  if (old.found == read::Found::Miss || old.value == nullptr) throw pg::pg_error(edata);
  namespaces::add(ns, &Counters::stale_hits, 1);
  ereport(WARNING, (errcode(ERRCODE_WARNING),
                    errmsg("agentcache.fetch served a stale value for key \"%.*s\" in namespace \"%.*s\"",
                           static_cast<int>(key.size() > 200 ? 200 : key.size()), key.data(),
                           static_cast<int>(ns.size()), ns.data()),
                    errdetail("The query failed: %s", edata->message)));
  return old.value;  // not stored again
}

// Stores a leader's value; a put of the key committing meanwhile is waited
// for, keeping the key lock (the leader's waiters must go on waiting for it).
void store_as_leader(const write::Entry& e, const namespaces::Settings& st) {
  for (TransactionId w = write::store(e, st); TransactionIdIsValid(w); w = write::store(e, st))
    XactLockTableWait(w, nullptr, nullptr, XLTW_None);
}

}  // namespace

}  // namespace agentcache::ttl

using namespace agentcache;
using namespace agentcache::ttl;

// fetch(namespace, key, query text, ttl interval DEFAULT NULL, stale_if_error interval DEFAULT NULL) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_fetch) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("namespace");
    if (PG_ARGISNULL(1)) null_arg("key");
    if (PG_ARGISNULL(2)) null_arg("query");
    const std::string_view ns = pg::text_view(PG_GETARG_TEXT_PP(0));
    const std::string_view key = pg::text_view(PG_GETARG_TEXT_PP(1));
    pg::check_length(ns, kMaxNamespaceBytes, "namespace");
    pg::check_length(key, kMaxKeyBytes, "key");
    const Interval* ttl = PG_ARGISNULL(3) ? nullptr : PG_GETARG_INTERVAL_P(3);
    if (ttl) pg::positive_interval_usecs(ttl, "ttl");
    const int64 stale_us =
        PG_ARGISNULL(4) ? -1 : pg::nonnegative_interval_usecs(PG_GETARG_INTERVAL_P(4), "stale_if_error");
    const bool standby = RecoveryInProgress();
    Jsonb* hit = standby ? nullptr : read::fresh_value(ns, key);
    // a leader that will store resolves its namespace (maybe creating it)
    // before it takes any lock: see write::settings_for_store
    const bool will_store = !standby && !XactReadOnly;
    namespaces::Settings st{};
    if (hit == nullptr && will_store) st = write::settings_for_store(ns);
    if (hit == nullptr) hit = lead(ns, key, standby);
    if (hit != nullptr) {
      namespaces::count_read(ns, &Counters::hits);
      PG_RETURN_JSONB_P(hit);
    }
    namespaces::count_read(ns, &Counters::misses);  // misses on a standby count too
    ErrorData* edata = nullptr;
    Jsonb* value = compute(text_to_cstring(PG_GETARG_TEXT_PP(2)), stale_us, &edata);
    if (edata != nullptr) PG_RETURN_JSONB_P(stale_answer(ns, key, stale_us, standby, edata));
    if (value == nullptr) PG_RETURN_NULL();  // zero rows: NULL, not cached
    if (will_store) store_as_leader(write::Entry{ns, key, value, ttl, Datum(0)}, st);
    PG_RETURN_JSONB_P(value);
  });
}
