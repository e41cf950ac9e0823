// The conversation tier's SQL-callable functions and the API other glue uses
// (memory.hpp). Each entry point checks its arguments (every NULL first,
// 22004, then bad values) and goes through pg::boundary.
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/shmem.hpp"
#include "pg/memory/memory.hpp"
#include "pg/memory/pending.hpp"
#include "pg/memory/read.hpp"
#include "pg/memory/state.hpp"
#include "pg/memory/table.hpp"
#include "pg/memory/write.hpp"

using agentcache::pg::null_arg;
using agentcache::pg::sql_error;
using agentcache::pg::text_view;

namespace agentcache::memory {

void check_session_id(std::string_view key) { pg::check_length(key, kMaxSessionIdBytes, "session_id"); }

void require_add_privileges() {
  const AclResult r = pg_class_aclcheck(table::relid(), GetUserId(), ACL_INSERT | ACL_SELECT);
  if (r != ACLCHECK_OK) aclcheck_error(r, OBJECT_TABLE, "turns");
}

void check_content(const text* content) {
  const std::size_t len = VARSIZE_ANY_EXHDR(content);
  if (len > static_cast<std::size_t>(max_turn_bytes))
    throw sql_error(
        ERRCODE_PROGRAM_LIMIT_EXCEEDED, "turn content is too long",
        pg::textf(FMT_STRING("content is {} bytes; agentcache.max_turn_bytes is {}."), len, max_turn_bytes).c_str());
}

int max_turns_arg(FunctionCallInfo fcinfo, int i) {
  if (PG_ARGISNULL(i)) return context_turns;
  const int32 n = PG_GETARG_INT32(i);
  if (n <= 0) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_turns must be greater than zero");
  return n;
}

Jsonb* context(std::string_view key, uint32 want, int64 max_chars) {
  LTurns turns = read::turns(key, want);
  uint32 from = 0;
  if (max_chars >= 0)
    from = static_cast<uint32>(
        core::trim_oldest(turns.n, static_cast<uint64>(max_chars), [&](std::size_t i) { return turns.v[i].chars; }));
  Jsonb* out = read::context_json(turns.v + from, turns.n - from);
  read::shrink_scratch();
  return out;
}

namespace {
std::string_view session_arg(FunctionCallInfo fcinfo, int i) {
  std::string_view s = pg::text_arg(fcinfo, i, "session_id");
  check_session_id(s);
  return s;
}
}  // namespace

}  // namespace agentcache::memory

using namespace agentcache;
using namespace agentcache::memory;

// add_turn(session_id text, role text, content text, meta jsonb DEFAULT NULL) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_add_turn) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("session_id");
    if (PG_ARGISNULL(1)) null_arg("role");
    if (PG_ARGISNULL(2)) null_arg("content");
    std::string_view key = session_arg(fcinfo, 0);
    auto role = core::parse_role(text_view(PG_GETARG_TEXT_PP(1)));
    if (!role)
      throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid role",
                      "role must be one of user, assistant, system, tool (lowercase).");
    text* content = PG_GETARG_TEXT_PP(2);
    check_content(content);
    Jsonb* meta = PG_ARGISNULL(3) ? nullptr : PG_GETARG_JSONB_P(3);
    PreventCommandIfReadOnly("add_turn()");
    PG_RETURN_INT64(memory::add_turn(key, *role, content, meta));
  });
}

// get_context(session_id text, max_turns int DEFAULT NULL, max_chars int DEFAULT NULL) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_get_context) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    const int want = max_turns_arg(fcinfo, 1);
    int64 max_chars = -1;
    if (!PG_ARGISNULL(2)) {
      max_chars = PG_GETARG_INT32(2);
      if (max_chars < 0) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_chars must not be negative");
    }
    PG_RETURN_JSONB_P(memory::context(key, static_cast<uint32>(want), max_chars));
  });
}

// get_turns(session_id text, max_turns int DEFAULT NULL)
//   RETURNS TABLE(seq bigint, role text, content text, meta jsonb, created_at timestamptz)
AGENTCACHE_FUNCTION(agentcache_get_turns) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    const int want = max_turns_arg(fcinfo, 1);
    LTurns turns = read::turns(key, static_cast<uint32>(want));
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (uint32 i = 0; i < turns.n; ++i) {
      const LTurn& t = turns.v[i];
      Datum values[5] = {Int64GetDatum(t.seq), pg::text_datum(core::role_name(t.role)),
                         pg::text_datum({t.content, t.content_len}), PointerGetDatum(t.meta),
                         TimestampTzGetDatum(t.at)};
      bool nulls[5] = {false, false, false, t.meta == nullptr, false};
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    read::shrink_scratch();
    return Datum(0);
  });
}

// warm_session(session_id text) RETURNS integer
AGENTCACHE_FUNCTION(agentcache_warm_session) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    pg::shmem::require("warm_session()");
    table::require_select();
    PG_RETURN_INT32(read::warm(key));
  });
}

// end_session(session_id text) RETURNS boolean
AGENTCACHE_FUNCTION(agentcache_end_session) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    core::SessionCache* cache = sessions();
    if (cache == nullptr) PG_RETURN_BOOL(false);
    table::require_select();
    const uint64 hash = core::session_hash(MyDatabaseId, key);
    const uint32 p = cache->partition_of(hash);
    bool dropped;
    {
      pg::LWLockGuard g(partition_lock(p), LW_EXCLUSIVE);
      dropped = cache->table(p).drop(MyDatabaseId, hash, key);
    }
    PG_RETURN_BOOL(dropped);
  });
}

// forget_session(session_id text) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_forget_session) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    PreventCommandIfReadOnly("forget_session()");
    PG_RETURN_INT64(write::forget(key));
  });
}

// Trigger on agentcache.turns: AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW,
// and AFTER TRUNCATE FOR EACH STATEMENT. Queues invalidations applied at commit.
AGENTCACHE_FUNCTION(agentcache_turns_changed) {
  return pg::boundary([&]() -> Datum {
    TriggerData* td = pg::trigger_data(fcinfo, "_turns_changed");
    pg::require_trigger_table(td, table::relid(), "_turns_changed", "agentcache.turns");
    if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event)) {
      pending::truncate();
      return PointerGetDatum(nullptr);
    }
    if (!TRIGGER_FIRED_FOR_ROW(td->tg_event)) return PointerGetDatum(nullptr);
    if (TRIGGER_FIRED_BY_INSERT(td->tg_event) && pending::in_add_turn()) return PointerGetDatum(nullptr);
    TupleDesc desc = td->tg_relation->rd_att;
    const int attno = SPI_fnumber(desc, "session_id");
    if (attno <= 0) elog(ERROR, "agentcache.turns has no session_id column");
    auto queue = [&](HeapTuple tup) {
      bool isnull = false;
      Datum d = heap_getattr(tup, attno, desc, &isnull);
      if (!isnull) pending::invalidate(text_view(DatumGetTextPP(d)));
    };
    queue(td->tg_trigtuple);
    if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) queue(td->tg_newtuple);
    return PointerGetDatum(nullptr);
  });
}
