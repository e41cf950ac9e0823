// The conversation tier's commit protocol, backend side (see pending.hpp and
// the protocol in tier.cpp). The list lives in backend memory; the bytes it
// points to are copied into TopTransactionContext. Nothing that can raise
// runs at XACT_EVENT_COMMIT.
#include "pg/memory/pending.hpp"

#include "pg/common/boundary.hpp"
#include "agentcache/core/text.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <cstring>

namespace agentcache::memory::pending {

namespace {

enum class OpKind : uint8 { AddTurn, Invalidate };

struct Op {  // POD; its bytes are in TopTransactionContext
  OpKind kind;
  int nest_level;
  uint64 hash;
  const char* key;
  uint32 key_len;
  LTurn turn;  // AddTurn only
  std::string_view key_view() const { return {key, key_len}; }
};

boost::container::small_vector<Op, 8> g_ops;
int g_truncate_level = 0;    // nest level of a pending TRUNCATE (0: none)
bool g_in_add_turn = false;  // add_turn's own INSERT: the trigger stays quiet
bool g_sql_counted = false;  // this transaction is counted in sql_change_state()

// The transaction changes agentcache.turns other than through add_turn:
// counted until it ends (reset(), after apply() at commit).
void count_sql_change() noexcept {
  if (g_sql_counted) return;
  sql_change_begin();
  g_sql_counted = true;
}

void reset() noexcept {
  g_ops.clear();
  g_truncate_level = 0;
  g_in_add_turn = false;
  if (g_sql_counted) {
    sql_change_end();
    g_sql_counted = false;
  }
}

char* copy_bytes(const void* p, std::size_t n) {
  char* d = static_cast<char*>(MemoryContextAlloc(TopTransactionContext, n ? n : 1));
  if (n) std::memcpy(d, p, n);
  return d;
}

Op& push(OpKind kind, std::string_view key, uint64 hash) {
  Op op{};
  op.kind = kind;
  op.nest_level = GetCurrentTransactionNestLevel();
  op.hash = hash;
  op.key = copy_bytes(key.data(), key.size());
  op.key_len = static_cast<uint32>(key.size());
  g_ops.push_back(op);
  return g_ops.back();
}

// Applies the list to shared memory. Runs at XACT_EVENT_COMMIT: must not
// raise. Only noexcept core calls and LWLock acquire/release happen here.
void apply() noexcept {
  forget_if_promoted();
  core::SessionCache* cache = sessions();
  if (cache == nullptr) return;
  const uint32 db = MyDatabaseId;
  if (g_truncate_level > 0) {
    for (uint32 p = 0; p < cache->partitions(); ++p) {
      pg::LWLockGuard g(partition_lock(p), LW_EXCLUSIVE);
      cache->table(p).invalidate_all(db);
    }
  }
  for (const Op& op : g_ops) {
    const uint32 p = cache->partition_of(op.hash);
    pg::LWLockGuard g(partition_lock(p), LW_EXCLUSIVE);
    core::SessionTable& t = cache->table(p);
    if (op.kind == OpKind::Invalidate)
      t.invalidate(db, op.hash, op.key_view());
    else
      t.apply_turn(db, op.hash, op.key_view(), turn_data(op.turn));
  }
}

void xact_callback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_PRE_PREPARE:
      if (!g_ops.empty() || g_truncate_level > 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot PREPARE a transaction that changed agentcache.turns"),
                        errdetail("The conversation cache is updated when the transaction commits in this session.")));
      break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      apply();
      reset();
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      reset();
      break;
    default:
      break;
  }
}

void subxact_callback(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  const int level = GetCurrentTransactionNestLevel();
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    g_ops.erase(std::remove_if(g_ops.begin(), g_ops.end(), [&](const Op& op) { return op.nest_level >= level; }),
                g_ops.end());
    if (g_truncate_level >= level) g_truncate_level = 0;
    g_in_add_turn = false;
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    for (Op& op : g_ops)
      if (op.nest_level >= level) op.nest_level = level - 1;
    if (g_truncate_level >= level) g_truncate_level = level - 1;
  }
}

}  // namespace

void register_callbacks() {
  RegisterXactCallback(xact_callback, nullptr);
  RegisterSubXactCallback(subxact_callback, nullptr);
}

void add_turn(std::string_view key, uint64 hash, const LTurn& turn) {
  Op& op = push(OpKind::AddTurn, key, hash);
  op.turn = turn;
  op.turn.content = copy_bytes(turn.content, turn.content_len);
  if (turn.meta) op.turn.meta = reinterpret_cast<Jsonb*>(copy_bytes(turn.meta, VARSIZE(turn.meta)));
}

void invalidate(std::string_view key) {
  count_sql_change();
  if (!g_ops.empty()) {
    const Op& last = g_ops.back();
    if (last.kind == OpKind::Invalidate && last.key_view() == key &&
        last.nest_level == GetCurrentTransactionNestLevel())
      return;  // a DELETE of a whole session queues one op, not one per row
  }
  push(OpKind::Invalidate, key, core::session_hash(MyDatabaseId, key));
}

void truncate() {
  count_sql_change();
  if (g_truncate_level == 0 || g_truncate_level > GetCurrentTransactionNestLevel())
    g_truncate_level = GetCurrentTransactionNestLevel();
}

bool in_add_turn() noexcept { return g_in_add_turn; }
void set_in_add_turn(bool on) noexcept { g_in_add_turn = on; }

bool touches(std::string_view key) noexcept {
  if (g_truncate_level > 0) return true;
  for (const Op& op : g_ops)
    if (op.key_view() == key) return true;
  return false;
}

bool adds_only(std::string_view key, uint32* count) noexcept {
  *count = 0;
  if (g_truncate_level > 0) return false;
  for (const Op& op : g_ops) {
    if (op.key_view() != key) continue;
    if (op.kind != OpKind::AddTurn) return false;
    ++*count;
  }
  return true;
}

void append_turns(std::string_view key, LTurns* out) {
  for (const Op& op : g_ops)
    if (op.kind == OpKind::AddTurn && op.key_view() == key) out->v[out->n++] = op.turn;
}

}  // namespace agentcache::memory::pending
