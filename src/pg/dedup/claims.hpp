// Claims as this backend holds them: session-level advisory locks
// (LockSpace::Claim on the message, LockSpace::Fingerprint on its
// fingerprint) that follow the transaction — taken here and released if the
// (sub)transaction aborts, or released when a completing transaction commits.
#pragma once
#include "pg/common/pg.hpp"

#include <string_view>

namespace agentcache::dedup::claims {

void register_callbacks();

LOCKTAG claim_tag(std::string_view message_id);
LOCKTAG fingerprint_tag(std::string_view fingerprint);
// SHA-256 of (conversation_id, body) as 64 hex digits (palloc'd).
char* fingerprint(const text* conversation, const text* body);

bool held(const LOCKTAG& tag);  // the lock
// Whether this session holds the claim: its lock, or taken over (below).
bool holds(const LOCKTAG& tag);
// A claim taken over from a holder whose lease ran out, who was released or
// is gone: held without the lock (a fenced holder may still have it until it
// next touches the message or ends). Forgotten if this (sub)transaction
// aborts, and when a completing transaction commits.
void take_over(const LOCKTAG& tag);
// Fenced: the claim is no longer this session's (its state row names another
// holder, or none). Its lock, if held, is given back now.
void drop(const LOCKTAG& tag);
// This transaction completed or failed the claim: it is released at commit.
bool release_pending(const LOCKTAG& tag);
// Takes the lock without waiting; false when another backend holds it. A
// lock taken is released again if this (sub)transaction aborts.
bool try_take(const LOCKTAG& tag);
// Gives back a lock try_take took in this call.
void give_back(const LOCKTAG& tag);
// Releases the lock when this transaction commits (kept if it rolls back).
void release_at_commit(const LOCKTAG& tag);
// Cancels a queued release_at_commit: a new attempt keeps the claim.
void keep(const LOCKTAG& tag);

}  // namespace agentcache::dedup::claims
