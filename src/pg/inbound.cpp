// The inbound-message hot path in one round trip, above the tiers: inbound()
// = route (maps) + dedup claim + (the user turn, on the first acquisition;
// memory) + context (+ the stored reply of a duplicate); outbound() = the
// assistant turn + completing the claim with it as the unsent reply,
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

core::jsonb::Value embedded(Jsonb* j) {
  namespace jb = core::jsonb;
  return j ? jb::from_root(reinterpret_cast<const char*>(&j->root), VARSIZE(j) - VARHDRSZ)
           : jb::Value{jb::kIsNull, nullptr, 0};
}

// {"dedup", "route", "context"} — and "reply" for a duplicate — written
// straight to jsonb (keys in jsonb order: by length, then bytes); route,
// reply and context are embedded as they are, not re-encoded.
Jsonb* result_json(const char* outcome, Jsonb* route, Jsonb* context, bool with_reply, Jsonb* reply) {
  namespace jb = core::jsonb;
  std::string_view keys[4];
  jb::Value values[4];
  int n = 0;
  keys[n] = "dedup";
  values[n++] = jb::Value{jb::kIsString, outcome, static_cast<uint32>(std::strlen(outcome))};
  if (with_reply) {
    keys[n] = "reply";
    values[n++] = embedded(reply);
  }
  keys[n] = "route";
  values[n++] = embedded(route);
  keys[n] = "context";
  values[n++] = embedded(context);
  const std::size_t size = jb::write_object(nullptr, keys, values, n);
  if (size == 0 || size > MaxAllocSize)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "inbound() result exceeds the maximum jsonb size");
  char* out = static_cast<char*>(palloc(size));
  jb::write_object(out, keys, values, n);
  SET_VARSIZE(out, size);
  return reinterpret_cast<Jsonb*>(out);
}

}  // namespace

// inbound(instance text, message_id text, session_id text, body text, max_turns int DEFAULT NULL,
//         max_tokens int DEFAULT NULL, keep_system boolean DEFAULT false, start_on_user boolean DEFAULT false)
//   RETURNS jsonb (0.1.0's function: the first five arguments)
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
    memory::Shape shape;
    memory::budget_args(fcinfo, 5, &shape);
    PreventCommandIfReadOnly("inbound()");

    Jsonb* route = maps::route(instance);
    // no fingerprints here: a user may legitimately send the same words twice
    // the session's lease (agentcache.claim_lease); a message taken over
    // from a stuck or gone holder has its user turn already
    dedup::BeginResult claim = dedup::begin(message_id, nullptr, nullptr, -1, -1);
    if (claim.outcome == dedup::Outcome::Acquired && claim.attempts == 1 && !claim.repeated && !claim.taken_over)
      (void)memory::add_turn(session, core::Role::User, body, nullptr);
    const bool duplicate = claim.outcome == dedup::Outcome::Duplicate;
    Jsonb* reply = duplicate ? dedup::unsent_reply(message_id) : nullptr;
    Jsonb* context = memory::context(session, static_cast<uint32>(want), shape);

    PG_RETURN_JSONB_P(result_json(dedup::outcome_name(claim.outcome), route, context, duplicate, reply));
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
    // all in the caller's transaction: after a rollback none happened;
    // privileges (42501) are judged before the claim (55000)
    memory::require_add_privileges();
    dedup::require_claim(message_id);  // 55000 unless the caller holds the claim
    const int64 seq = memory::add_turn(session, core::Role::Assistant, reply, meta);
    // the completion with its unsent reply; 55000 when the holder was fenced
    // meanwhile (taken over, released): the error rolls the turn back
    dedup::complete_with_reply(message_id, session, seq);
    PG_RETURN_INT64(seq);
  });
}
