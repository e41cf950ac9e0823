// The conversation tier's SQL-callable functions and the API other glue uses
// (memory.hpp). Each entry point checks its arguments (every NULL first,
// 22004, then bad values) and goes through pg::boundary.
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/shmem.hpp"
#include "pg/common/tokens.hpp"
#include "pg/memory/memory.hpp"
#include "pg/memory/pending.hpp"
#include "pg/memory/read.hpp"
#include "pg/memory/state.hpp"
#include "pg/memory/table.hpp"
#include "pg/memory/write.hpp"
#include "agentcache/core/budget.hpp"

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

void budget_args(FunctionCallInfo fcinfo, int i, Shape* s) {
  if (PG_NARGS() > i && !PG_ARGISNULL(i)) {
    s->max_tokens = PG_GETARG_INT32(i);
    if (s->max_tokens < 0) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_tokens must not be negative");
  }
  s->keep_system = PG_NARGS() > i + 1 && !PG_ARGISNULL(i + 1) && PG_GETARG_BOOL(i + 1);
  s->start_on_user = PG_NARGS() > i + 2 && !PG_ARGISNULL(i + 2) && PG_GETARG_BOOL(i + 2);
}

namespace {

// The shaped window, in output order (the kept system turn first). With
// all_tokens every returned turn has its token count (get_turns' column);
// else only the turns a token budget weighed.
LTurns shaped(std::string_view key, uint32 want, const Shape& s, bool all_tokens) {
  read::Window w = read::window(key, want, s.keep_system);
  const int enc = token_encoding;
  const auto encoding = static_cast<core::tok::Encoding>(enc);
  bool counted = false;
  auto tokens_of = [&](LTurn& t) -> uint32 {
    if (t.tokens[enc] == core::kTokensUnknown) {
      const int64 n = pg::tokens::count(encoding, {t.content, t.content_len});
      t.tokens[enc] = static_cast<uint32>(n < core::kTokensUnknown ? n : core::kTokensUnknown - 1);
      counted = true;
    }
    return t.tokens[enc];
  };
  const uint32 n = w.turns.n;
  auto* bt = static_cast<core::BudgetTurn*>(palloc(sizeof(core::BudgetTurn) * (n ? n : 1)));
  for (uint32 i = 0; i < n; ++i) bt[i] = core::BudgetTurn{w.turns.v[i].role, w.turns.v[i].chars, 0};
  core::BudgetTurn sys{core::Role::System, w.system.chars, 0};
  if (w.has_system && s.max_tokens >= 0) sys.tokens = tokens_of(w.system);
  core::Budget b;
  b.max_chars = s.max_chars;
  b.max_tokens = s.max_tokens;
  b.overhead = static_cast<uint32>(turn_token_overhead);
  b.start_on_user = s.start_on_user;
  const core::Window cw =
      core::cut(bt, n, w.has_system ? &sys : nullptr, b, [&](std::size_t i) { return tokens_of(w.turns.v[i]); });
  if (all_tokens) {
    for (std::size_t i = cw.from; i < n; ++i) (void)tokens_of(w.turns.v[i]);
    if (cw.system) (void)tokens_of(w.system);
  }
  LTurns out;
  out.v = static_cast<LTurn*>(palloc(sizeof(LTurn) * (n + 1)));
  if (cw.system) out.v[out.n++] = w.system;
  for (std::size_t i = cw.from; i < n; ++i) out.v[out.n++] = w.turns.v[i];
  if (counted) read::remember_tokens(key, enc, w.turns.v, n, w.has_system ? &w.system : nullptr);
  return out;
}

}  // namespace

Jsonb* context(std::string_view key, uint32 want, const Shape& s) {
  LTurns turns = shaped(key, want, s, false);
  Jsonb* out = read::context_json(turns.v, turns.n);
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
    Shape shape;
    if (!PG_ARGISNULL(2)) {
      shape.max_chars = PG_GETARG_INT32(2);
      if (shape.max_chars < 0) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_chars must not be negative");
    }
    budget_args(fcinfo, 3, &shape);
    PG_RETURN_JSONB_P(memory::context(key, static_cast<uint32>(want), shape));
  });
}

// get_turns(session_id text, max_turns int DEFAULT NULL, max_tokens int DEFAULT NULL,
//           keep_system boolean DEFAULT false, start_on_user boolean DEFAULT false)
//   RETURNS TABLE(seq bigint, role text, content text, meta jsonb, created_at timestamptz, tokens integer)
// (0.1.0's function: the first two arguments and five columns.)
AGENTCACHE_FUNCTION(agentcache_get_turns) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    const int want = max_turns_arg(fcinfo, 1);
    Shape shape;
    budget_args(fcinfo, 2, &shape);
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const bool with_tokens = rsinfo->setDesc->natts >= 6;
    LTurns turns =
        with_tokens ? shaped(key, static_cast<uint32>(want), shape, true) : read::turns(key, static_cast<uint32>(want));
    const int enc = token_encoding;
    for (uint32 i = 0; i < turns.n; ++i) {
      const LTurn& t = turns.v[i];
      Datum values[6] = {Int64GetDatum(t.seq),
                         pg::text_datum(core::role_name(t.role)),
                         pg::text_datum({t.content, t.content_len}),
                         PointerGetDatum(t.meta),
                         TimestampTzGetDatum(t.at),
                         Int32GetDatum(static_cast<int32>(t.tokens[enc]))};
      bool nulls[6] = {false, false, false, t.meta == nullptr, false, false};
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
