// Claims as this backend holds them (see claims.hpp and the protocol in
// tier.cpp).
#include "pg/dedup/claims.hpp"

#include "pg/common/args.hpp"
#include "pg/common/compat.hpp"
#include "pg/common/format.hpp"
#include "pg/common/locks.hpp"
#include "pg/dedup/state.hpp"
#include "agentcache/core/text.hpp"

#include <boost/container/flat_set.hpp>
#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <cstring>

namespace agentcache::dedup::claims {

namespace {

// Claim changes that wait for the end of the (sub)transaction.
enum class Op : uint8 { TakenHere, TakenOverHere, ReleaseAtCommit };
struct Pending {
  Op op;
  int nest_level;
  LOCKTAG tag;
};
boost::container::small_vector<Pending, 8> g_pending;

bool same_tag(const LOCKTAG& a, const LOCKTAG& b) { return std::memcmp(&a, &b, sizeof(LOCKTAG)) == 0; }

// Every claim and fingerprint lock this session holds (session-level: they
// outlive transactions), to cap them and to refuse PREPARE while any is held.
struct TagLess {
  bool operator()(const LOCKTAG& a, const LOCKTAG& b) const { return std::memcmp(&a, &b, sizeof(LOCKTAG)) < 0; }
};
boost::container::flat_set<LOCKTAG, TagLess> g_held;
int g_held_claims = 0;  // of g_held, those on messages (LockSpace::Claim)
// Claims taken over: held without their lock (see take_over).
boost::container::flat_set<LOCKTAG, TagLess> g_taken_over;
bool g_exit_hook = false;

bool is_claim(const LOCKTAG& tag) { return tag.locktag_field4 == static_cast<uint16>(pg::LockSpace::Claim); }

void forget_held(const LOCKTAG& tag) noexcept {
  auto it = g_held.find(tag);
  if (it == g_held.end()) return;
  if (is_claim(tag)) --g_held_claims;
  g_held.erase(it);
  cluster_count(-1);
}

// Drops what this session no longer holds (pg_advisory_unlock_all() releases
// our locks too).
void revalidate() noexcept {
  for (auto it = g_held.begin(); it != g_held.end();) {
    if (pg::compat::lock_held_by_me(&*it, ExclusiveLock)) {
      ++it;
      continue;
    }
    if (is_claim(*it)) --g_held_claims;
    it = g_held.erase(it);
    cluster_count(-1);
  }
}

void on_exit(int, Datum) {
  cluster_count(-static_cast<int>(g_held.size()));
  g_held.clear();
  g_taken_over.clear();
  g_held_claims = 0;
}

// Room for one more lock: at most agentcache.max_claims_per_session claims
// per session, and all sessions' claims and fingerprints together at most
// half of the lock table, so claims never make another session run out of
// shared memory. 53400 otherwise.
void require_room(const LOCKTAG& tag, bool lock = true) {
  const auto claims = [] { return g_held_claims + static_cast<int>(g_taken_over.size()); };
  if (is_claim(tag) && claims() >= max_claims_per_session) revalidate();
  if (is_claim(tag) && claims() >= max_claims_per_session)
    throw pg::sql_error(
        ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
        pg::textf(FMT_STRING("this session already holds {} claims"), claims()).c_str(),
        pg::textf(FMT_STRING("agentcache.max_claims_per_session is {}."), max_claims_per_session).c_str(),
        "Complete, fail or release the claims this session holds (dedup_complete, dedup_fail, outbound); use one "
        "connection per worker.");
  const int64 cap = static_cast<int64>(max_locks_per_xact) * (MaxBackends + max_prepared_xacts) / 2;
  if (lock && cluster_count(0) >= cap)
    throw pg::sql_error(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, "too many agentcache claims are held in the cluster",
                        pg::textf(FMT_STRING("Claims may use half of the lock table: {} locks."), cap).c_str(),
                        "Complete or fail held claims, or raise max_locks_per_transaction.");
}

Pending* find(Op op, const LOCKTAG& tag) {
  for (Pending& p : g_pending)
    if (p.op == op && same_tag(p.tag, tag)) return &p;
  return nullptr;
}

void forget(Op op, const LOCKTAG& tag) {
  g_pending.erase(std::remove_if(g_pending.begin(), g_pending.end(),
                                 [&](const Pending& p) { return p.op == op && same_tag(p.tag, tag); }),
                  g_pending.end());
}

void release(const LOCKTAG& tag) noexcept {
  if (g_held.find(tag) != g_held.end()) (void)LockRelease(&tag, ExclusiveLock, true);
  forget_held(tag);
  g_taken_over.erase(tag);
}

void xact_callback(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) {
    for (const Pending& p : g_pending)
      if (p.op == Op::ReleaseAtCommit) release(p.tag);
    g_pending.clear();
  } else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
    for (const Pending& p : g_pending) {
      if (p.op == Op::TakenHere) release(p.tag);  // nothing of the claim remains
      if (p.op == Op::TakenOverHere) g_taken_over.erase(p.tag);
    }
    g_pending.clear();
  } else if (event == XACT_EVENT_PRE_PREPARE) {
    // a prepared transaction outlives this session's locks (its claims would
    // stay held, or its release never happen): refused, as for turns
    revalidate();
    if (!g_pending.empty() || !g_held.empty() || !g_taken_over.empty())
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("cannot PREPARE a transaction while this session holds or changes agentcache claims"),
                      errdetail("Claims are session-level locks; complete, fail or release them first.")));
  } else if (event == XACT_EVENT_PREPARE) {
    g_pending.clear();
  }
}

void subxact_callback(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  const int level = GetCurrentTransactionNestLevel();
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    for (const Pending& p : g_pending) {
      if (p.nest_level >= level && p.op == Op::TakenHere) release(p.tag);
      if (p.nest_level >= level && p.op == Op::TakenOverHere) g_taken_over.erase(p.tag);
    }
    g_pending.erase(
        std::remove_if(g_pending.begin(), g_pending.end(), [&](const Pending& p) { return p.nest_level >= level; }),
        g_pending.end());
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    for (Pending& p : g_pending)
      if (p.nest_level >= level) p.nest_level = level - 1;
  }
}

}  // namespace

void register_callbacks() {
  RegisterXactCallback(xact_callback, nullptr);
  RegisterSubXactCallback(subxact_callback, nullptr);
}

LOCKTAG claim_tag(std::string_view message_id) {
  return pg::advisory_tag(pg::LockSpace::Claim, core::hash_bytes(message_id, 0xDED0 ^ MyDatabaseId));
}

// A claim made with a fingerprint also holds the fingerprint (same lifetime),
// so a second message with the same (conversation, body) sees it as
// in_progress even before the first claim's row is committed.
LOCKTAG fingerprint_tag(std::string_view fp) {
  return pg::advisory_tag(pg::LockSpace::Fingerprint, core::hash_bytes(fp, 0xF1F0 ^ MyDatabaseId));
}

// Unambiguous: the conversation id's length comes first ('ab','c' != 'a','bc').
// PostgreSQL's own crypto hash.
char* fingerprint(const text* conversation, const text* body) {
  const std::string_view c = pg::text_view(conversation);
  const std::string_view b = pg::text_view(body);
  uint8 len[8];
  uint64 n = c.size();
  for (int i = 7; i >= 0; --i, n >>= 8) len[i] = static_cast<uint8>(n & 0xFF);
  pg_cryptohash_ctx* ctx = pg_cryptohash_create(PG_SHA256);
  uint8 digest[PG_SHA256_DIGEST_LENGTH];
  if (ctx == nullptr || pg_cryptohash_init(ctx) < 0 || pg_cryptohash_update(ctx, len, sizeof len) < 0 ||
      pg_cryptohash_update(ctx, reinterpret_cast<const uint8*>(c.data()), c.size()) < 0 ||
      pg_cryptohash_update(ctx, reinterpret_cast<const uint8*>(b.data()), b.size()) < 0 ||
      pg_cryptohash_final(ctx, digest, sizeof digest) < 0) {
    if (ctx) pg_cryptohash_free(ctx);
    elog(ERROR, "agentcache: could not compute the SHA-256 fingerprint");
  }
  pg_cryptohash_free(ctx);
  static const char hex[] = "0123456789abcdef";
  char* out = static_cast<char*>(palloc(PG_SHA256_DIGEST_STRING_LENGTH));
  for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0xF];
  }
  out[2 * PG_SHA256_DIGEST_LENGTH] = '\0';
  return out;
}

bool held(const LOCKTAG& tag) { return pg::compat::lock_held_by_me(&tag, ExclusiveLock); }

bool holds(const LOCKTAG& tag) { return g_taken_over.find(tag) != g_taken_over.end() || held(tag); }

void take_over(const LOCKTAG& tag) {
  require_room(tag, false);
  g_pending.reserve(g_pending.size() + 1);
  g_taken_over.reserve(g_taken_over.size() + 1);
  g_pending.push_back(Pending{Op::TakenOverHere, GetCurrentTransactionNestLevel(), tag});
  g_taken_over.insert(tag);
}

void drop(const LOCKTAG& tag) {
  g_pending.erase(
      std::remove_if(g_pending.begin(), g_pending.end(), [&](const Pending& p) { return same_tag(p.tag, tag); }),
      g_pending.end());
  release(tag);
}

bool release_pending(const LOCKTAG& tag) { return find(Op::ReleaseAtCommit, tag) != nullptr; }

bool try_take(const LOCKTAG& tag) {
  require_room(tag);
  // Room for the records first (that can fail); recording them then cannot,
  // so no lock is left that an abort would not release.
  g_pending.reserve(g_pending.size() + 1);
  g_held.reserve(g_held.size() + 1);
  if (!g_exit_hook) {
    before_shmem_exit(on_exit, 0);
    g_exit_hook = true;
  }
  if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL) return false;
  g_pending.push_back(Pending{Op::TakenHere, GetCurrentTransactionNestLevel(), tag});
  if (g_held.insert(tag).second) {
    if (is_claim(tag)) ++g_held_claims;
    cluster_count(1);
  }
  return true;
}

void give_back(const LOCKTAG& tag) {
  forget(Op::TakenHere, tag);
  release(tag);
}

void release_at_commit(const LOCKTAG& tag) {
  if (find(Op::ReleaseAtCommit, tag) != nullptr) return;  // queued once
  g_pending.push_back(Pending{Op::ReleaseAtCommit, GetCurrentTransactionNestLevel(), tag});
}

void keep(const LOCKTAG& tag) { forget(Op::ReleaseAtCommit, tag); }

}  // namespace agentcache::dedup::claims
