// The inbound-message hot path in one round trip, above the tiers: inbound()
// = route (maps) + dedup claim + (the user turn, on the first acquisition;
// memory) + context; outbound() = completing the claim + the assistant turn,
// atomically. Locks are taken in the order claim, then session writer.
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/dedup/dedup.hpp"
#include "pg/maps/maps.hpp"
#include "pg/memory/memory.hpp"
#include "agentcache/core/jsonb_writer.hpp"

#include <cstring>

using namespace agentcache;
using agentcache::pg::null_arg;
using agentcache::pg::sql_error;
using agentcache::pg::text_view;

namespace {

// {"dedup", "route", "context"} written straight to jsonb (keys in jsonb
// order); route and context are embedded as they are, not re-encoded.
Jsonb* result_json(const char* outcome, Jsonb* route, Jsonb* context) {
  namespace jb = core::jsonb;
  std::string_view keys[3] = {"dedup", "route", "context"};
  jb::Value values[3];
  values[0] = jb::Value{jb::kIsString, outcome, static_cast<uint32>(std::strlen(outcome))};
  values[1] = route ? jb::from_root(reinterpret_cast<const char*>(&route->root), VARSIZE(route) - VARHDRSZ)
                    : jb::Value{jb::kIsNull, nullptr, 0};
  values[2] = jb::from_root(reinterpret_cast<const char*>(&context->root), VARSIZE(context) - VARHDRSZ);
  const std::size_t size = jb::write_object(nullptr, keys, values, 3);
  if (size == 0 || size > MaxAllocSize)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "inbound() result exceeds the maximum jsonb size");
  char* out = static_cast<char*>(palloc(size));
  jb::write_object(out, keys, values, 3);
  SET_VARSIZE(out, size);
  return reinterpret_cast<Jsonb*>(out);
}

}  // namespace

// inbound(instance text, message_id text, session_id text, body text, max_turns int DEFAULT NULL) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_inbound) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("instance");
    if (PG_ARGISNULL(1)) null_arg("message_id");
    if (PG_ARGISNULL(2)) null_arg("session_id");
    if (PG_ARGISNULL(3)) null_arg("body");
    std::string_view instance = text_view(PG_GETARG_TEXT_PP(0));
    std::string_view message_id = text_view(PG_GETARG_TEXT_PP(1));
    std::string_view session = text_view(PG_GETARG_TEXT_PP(2));
    text* body = PG_GETARG_TEXT_PP(3);
    dedup::check_message_id(message_id);
    memory::check_session_id(session);
    memory::check_content(body);
    const int want = memory::max_turns_arg(fcinfo, 4);
    PreventCommandIfReadOnly("inbound()");

    Jsonb* route = maps::route(instance);
    // no fingerprints here: a user may legitimately send the same words twice
    dedup::BeginResult claim = dedup::begin(message_id, nullptr, nullptr, -1);
    if (claim.outcome == dedup::Outcome::Acquired && claim.attempts == 1 && !claim.repeated)
      (void)memory::add_turn(session, core::Role::User, body, nullptr);
    Jsonb* context = memory::context(session, static_cast<uint32>(want), -1);

    PG_RETURN_JSONB_P(result_json(dedup::outcome_name(claim.outcome), route, context));
  });
}

// outbound(message_id text, session_id text, reply text, meta jsonb DEFAULT NULL) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_outbound) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) null_arg("message_id");
    if (PG_ARGISNULL(1)) null_arg("session_id");
    if (PG_ARGISNULL(2)) null_arg("reply");
    std::string_view message_id = text_view(PG_GETARG_TEXT_PP(0));
    std::string_view session = text_view(PG_GETARG_TEXT_PP(1));
    text* reply = PG_GETARG_TEXT_PP(2);
    dedup::check_message_id(message_id);
    memory::check_session_id(session);
    memory::check_content(reply);
    Jsonb* meta = PG_ARGISNULL(3) ? nullptr : PG_GETARG_JSONB_P(3);
    PreventCommandIfReadOnly("outbound()");
    // both in the caller's transaction: after a rollback neither happened;
    // privileges (42501) are judged before the claim (55000)
    memory::require_add_privileges();
    dedup::complete(message_id);  // 55000 unless the caller holds the claim
    int64 seq = memory::add_turn(session, core::Role::Assistant, reply, meta);
    PG_RETURN_INT64(seq);
  });
}
