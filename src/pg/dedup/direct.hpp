// agentcache.dedup's two per-message writes without SPI, the planner or the
// executor (the way pg/common/rows.hpp writes rows): a new message's claim
// (dedup_begin, inbound) and a claim's completion or failure
// (dedup_complete, dedup_fail, outbound). Each applies only while the table
// is as installed (direct.cpp says exactly when); otherwise — or on any
// concurrent change it does not judge itself — it writes nothing and the
// caller runs the SQL statement, which applies an administrator's trigger,
// policy, constraint or index with its own error, and waits where SQL waits.
#pragma once
#include "pg/common/pg.hpp"

#include <string_view>

namespace agentcache::dedup::direct {

// The claim on a message that has no state row (the caller holds its claim
// lock): the row inserted as processing by this session, attempts 1. False
// when the message has a row, committed or not (the speculatively inserted
// row is then taken back: nothing of it is visible), or the direct path does
// not apply: the caller runs the SQL upsert.
bool insert_claim(std::string_view id, const char* fp, int64 within_us, Datum lease_end, bool no_lease);

// The outcome a claim's holder records.
struct Outcome {
  bool ok;            // completed (else failed)
  const text* error;  // dedup_fail's error, or nullptr
  bool has_reply;     // outbound(): the reply turn to keep with the message
  std::string_view session;
  int64 seq;
};
enum class Recorded { Yes, NotHolder, UseSql };
// Records the outcome when the state row (latest snapshot) names this
// session as the processing holder: Yes (*fp = its fingerprint, or nullptr);
// NotHolder when it does not (fenced: nothing written); UseSql when the
// direct path does not apply or the row is being changed by another
// transaction (the SQL UPDATE waits for it and judges the row again).
Recorded record_outcome(std::string_view id, const Outcome& o, char** fp);

}  // namespace agentcache::dedup::direct
