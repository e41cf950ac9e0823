// Conversation memory: agentcache.turns (durable, logged) with a write-through
// shared-memory cache of each session's newest turns.
//
// Commit protocol (the cache holds only committed turns):
//  * add_turn inserts in the caller's transaction and queues the turn in a
//    backend-local pending list (TopTransactionContext). A trigger on
//    agentcache.turns queues an invalidation for any other INSERT, UPDATE,
//    DELETE or TRUNCATE.
//  * At XACT_EVENT_COMMIT (after the commit is visible) the pending list is
//    applied under each partition's exclusive LWLock by noexcept core code;
//    nothing there can raise. Subtransaction aborts drop their part of the
//    list; top-level abort drops all of it; PREPARE TRANSACTION is refused.
//  * A read-through load notes the key's generation before it takes its
//    snapshot, and publishes only if no commit touched the key meanwhile.
//  * A transaction with pending changes to a session reads that session from
//    the table (ordinary visibility: it sees its own uncommitted turns).
#include "pg/args.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/memory.hpp"
#include "pg/rows.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"
#include "agentcache/core/jsonb_writer.hpp"

#include <cstring>
#include <string_view>

using agentcache::core::Role;
using agentcache::core::SessionTable;
using agentcache::core::TurnData;
using agentcache::core::TurnRecord;
using agentcache::pg::LWLockGuard;
using agentcache::pg::null_arg;
using agentcache::pg::sql_error;
using agentcache::pg::text_view;

namespace agentcache::memory {

namespace {

constexpr std::size_t kMaxSessionIdBytes = 256;
constexpr uint16 kLockSpaceTurns = 0xAC01;  // advisory field4 no application lock uses (they use 1 and 2)

// ------------------------------------------------------------------ helpers

std::string_view session_arg(FunctionCallInfo fcinfo, int i) {
  if (PG_ARGISNULL(i)) null_arg("session_id");
  std::string_view s = text_view(PG_GETARG_TEXT_PP(i));
  if (s.size() > kMaxSessionIdBytes) {
    char detail[128];
    pg_snprintf(detail, sizeof detail, "It is %zu bytes long; the limit is %zu.", s.size(), kMaxSessionIdBytes);
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "session_id is too long", detail);
  }
  return s;
}

// The cached copy of agentcache.turns is served without reading the table,
// so it checks what the table read would: SELECT on agentcache.turns.
Oid g_turns_relid = InvalidOid;

// Whether agentcache.turns is as the install script made it (direct inserts).
enum class Direct { Unknown, Yes, No };
Direct g_turns_direct = Direct::Unknown;

void turns_relcache_callback(Datum, Oid relid) {
  if (relid == InvalidOid || relid == g_turns_relid) {
    g_turns_relid = InvalidOid;
    g_turns_direct = Direct::Unknown;
  }
}

void resolve_turns() {
  if (g_turns_relid == InvalidOid) {
    Oid nsp = get_namespace_oid("agentcache", false);
    Oid rel = get_relname_relid("turns", nsp);
    if (rel == InvalidOid)
      throw sql_error(ERRCODE_UNDEFINED_TABLE, "relation agentcache.turns does not exist");
    g_turns_relid = rel;
  }
}

void require_turns_select() {
  resolve_turns();
  AclResult r = pg_class_aclcheck(g_turns_relid, GetUserId(), ACL_SELECT);
  if (r != ACLCHECK_OK) aclcheck_error(r, OBJECT_TABLE, "turns");
}

// A turn in backend memory (palloc'd or in the scratch buffer). POD.
struct LTurn {
  int64 seq;
  TimestampTz at;
  Role role;
  uint32 chars;
  const char* content;
  uint32 content_len;
  Jsonb* meta;  // nullptr when SQL NULL
};
struct LTurns {
  LTurn* v = nullptr;
  uint32 n = 0;
};

// ------------------------------------------------------------------ pending list

enum class OpKind : uint8 { AddTurn, Invalidate };

struct PendingOp {  // POD, in TopTransactionContext
  PendingOp* next;
  OpKind kind;
  int nest_level;
  uint64 hash;
  const char* key;
  uint32 key_len;
  int64 seq;
  TimestampTz at;
  Role role;
  const char* content;
  uint32 content_len;
  const char* meta;  // jsonb varlena bytes, nullptr when SQL NULL
  uint32 meta_len;
};

PendingOp* g_pending_head = nullptr;
PendingOp* g_pending_tail = nullptr;
int g_truncate_level = 0;   // nest level of a pending TRUNCATE (0: none)
bool g_in_add_turn = false;  // add_turn's own INSERT: the trigger stays quiet

void reset_pending() noexcept {
  g_pending_head = g_pending_tail = nullptr;
  g_truncate_level = 0;
  g_in_add_turn = false;
}

std::string_view key_of(const PendingOp* op) { return {op->key, op->key_len}; }

bool has_pending(std::string_view key) noexcept {
  if (g_truncate_level > 0) return true;
  for (PendingOp* op = g_pending_head; op; op = op->next)
    if (key_of(op) == key) return true;
  return false;
}

char* copy_bytes(const char* p, std::size_t n) {
  char* d = static_cast<char*>(MemoryContextAlloc(TopTransactionContext, n ? n : 1));
  if (n) std::memcpy(d, p, n);
  return d;
}

PendingOp* push_op(OpKind kind, std::string_view key, uint64 hash) {
  auto* op = static_cast<PendingOp*>(MemoryContextAllocZero(TopTransactionContext, sizeof(PendingOp)));
  op->kind = kind;
  op->nest_level = GetCurrentTransactionNestLevel();
  op->hash = hash;
  op->key = copy_bytes(key.data(), key.size());
  op->key_len = static_cast<uint32>(key.size());
  if (g_pending_tail) g_pending_tail->next = op; else g_pending_head = op;
  g_pending_tail = op;
  return op;
}

void queue_invalidation(std::string_view key) {
  PendingOp* last = g_pending_tail;
  if (last && last->kind == OpKind::Invalidate && key_of(last) == key &&
      last->nest_level == GetCurrentTransactionNestLevel())
    return;  // a DELETE of a whole session queues one op, not one per row
  push_op(OpKind::Invalidate, key, core::session_hash(MyDatabaseId, key));
}

// Applies the pending list to shared memory. Runs at XACT_EVENT_COMMIT: must
// not raise. Only noexcept core calls and LWLock acquire/release happen here.
void apply_pending() noexcept {
  core::SessionCache* cache = shmem::sessions();
  if (cache == nullptr) return;
  const uint32 db = MyDatabaseId;
  if (g_truncate_level > 0) {
    for (uint32 p = 0; p < cache->partitions(); ++p) {
      LWLockGuard g(shmem::session_lock(p), LW_EXCLUSIVE);
      cache->table(p).invalidate_all(db);
    }
  }
  for (PendingOp* op = g_pending_head; op; op = op->next) {
    uint32 p = cache->partition_of(op->hash);
    LWLockGuard g(shmem::session_lock(p), LW_EXCLUSIVE);
    SessionTable& t = cache->table(p);
    if (op->kind == OpKind::Invalidate) {
      t.invalidate(db, op->hash, key_of(op));
    } else {
      TurnData td;
      td.seq = op->seq;
      td.created_at = op->at;
      td.role = op->role;
      td.content = {op->content, op->content_len};
      td.has_meta = op->meta != nullptr;
      if (op->meta) td.meta = {op->meta, op->meta_len};
      t.apply_turn(db, op->hash, key_of(op), td);
    }
  }
}

void xact_callback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_PRE_PREPARE:
      if (g_pending_head || g_truncate_level > 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot PREPARE a transaction that changed agentcache.turns"),
                        errdetail("The conversation cache is updated when the transaction commits in this session.")));
      break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      apply_pending();
      reset_pending();
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      reset_pending();
      break;
    default:
      break;
  }
}

void subxact_callback(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  const int level = GetCurrentTransactionNestLevel();
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    PendingOp** link = &g_pending_head;
    g_pending_tail = nullptr;
    while (*link) {
      if ((*link)->nest_level >= level) {
        *link = (*link)->next;
      } else {
        g_pending_tail = *link;
        link = &(*link)->next;
      }
    }
    if (g_truncate_level >= level) g_truncate_level = 0;
    g_in_add_turn = false;
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    for (PendingOp* op = g_pending_head; op; op = op->next)
      if (op->nest_level >= level) op->nest_level = level - 1;
    if (g_truncate_level >= level) g_truncate_level = level - 1;
  }
}

// ------------------------------------------------------------------ direct insert

// add_turn's INSERT without SPI (see pg/rows.hpp) while agentcache.turns is as
// installed: its six columns, plain indexes, only its own triggers (which
// ignore add_turn's rows) and only the role CHECK (the role comes from an enum).
bool turns_direct_ok(Relation rel) {
  if (g_turns_direct != Direct::Unknown) return g_turns_direct == Direct::Yes;
  static const Oid kTypes[6] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
  TupleDesc desc = RelationGetDescr(rel);
  bool ok = pg::rows::plain_table(rel, kTypes, 6) && desc->constr != nullptr && desc->constr->num_check == 1 &&
            std::strcmp(desc->constr->check[0].ccname, "turns_role_check") == 0;
  if (ok && rel->trigdesc != nullptr) {
    const Oid nsp = get_namespace_oid("agentcache", false);
    for (int i = 0; ok && i < rel->trigdesc->numtriggers; ++i) {
      const Trigger& t = rel->trigdesc->triggers[i];
      const char* fn = get_func_name(t.tgfoid);
      ok = fn != nullptr && std::strcmp(fn, "_turns_changed") == 0 && get_func_namespace(t.tgfoid) == nsp;
    }
  }
  g_turns_direct = ok ? Direct::Yes : Direct::No;
  return ok;
}

// Inserts the turn with seq = the session's newest + 1 (read with a fresh
// snapshot: the caller holds the session's writer lock). False, with nothing
// done, when the SQL INSERT must run instead.
bool insert_turn_direct(std::string_view key, std::string_view role_name, text* content, Jsonb* meta, TimestampTz at,
                        int64* seq_out) {
  resolve_turns();
  if (!pg::rows::has_privileges(g_turns_relid, GetUserId(), ACL_SELECT | ACL_INSERT)) return false;
  Relation rel = table_open(g_turns_relid, RowExclusiveLock);
  if (!turns_direct_ok(rel) || !OidIsValid(RelationGetPrimaryKeyIndex(rel))) {
    table_close(rel, NoLock);
    return false;
  }
  Relation pk = index_open(RelationGetPrimaryKeyIndex(rel), RowExclusiveLock);
  CommandCounterIncrement();  // see this transaction's earlier turns
  Datum session = PointerGetDatum(cstring_to_text_with_len(key.data(), static_cast<int>(key.size())));
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  // newest seq: the primary key (session_id, seq) read backwards
  Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
  ScanKeyData sk[1];
  ScanKeyInit(&sk[0], 1, BTEqualStrategyNumber, F_TEXTEQ, session);
  sk[0].sk_collation = pk->rd_indcollation[0];  // the index's own order
  IndexScanDesc scan = index_beginscan(rel, pk, snap, 1, 0);
  index_rescan(scan, sk, 1, nullptr, 0);
  int64 seq = 1;
  if (index_getnext_slot(scan, BackwardScanDirection, slot)) {
    bool isnull = false;
    seq = DatumGetInt64(slot_getattr(slot, 2, &isnull)) + 1;
  }
  index_endscan(scan);
  UnregisterSnapshot(snap);
  Datum values[6] = {session,
                     Int64GetDatum(seq),
                     PointerGetDatum(cstring_to_text_with_len(role_name.data(), static_cast<int>(role_name.size()))),
                     PointerGetDatum(content),
                     PointerGetDatum(meta),
                     TimestampTzGetDatum(at)};
  bool nulls[6] = {false, false, false, false, meta == nullptr, false};
  pg::rows::store_values(slot, values, nulls);
  table_tuple_insert(rel, slot, GetCurrentCommandId(true), 0, nullptr);
  pg::rows::insert_index_entries(rel, slot, false);
  ExecDropSingleTupleTableSlot(slot);
  index_close(pk, NoLock);
  table_close(rel, NoLock);
  CommandCounterIncrement();
  *seq_out = seq;
  return true;
}

// ------------------------------------------------------------------ table access (SPI)

SPIPlanPtr g_read_plan = nullptr;
SPIPlanPtr g_insert_plan = nullptr;
SPIPlanPtr g_delete_plan = nullptr;


// Newest `limit` turns of a session, oldest first, copied into the caller's
// memory context. latest: read with a fresh snapshot (cache loads) instead of
// the transaction's.
LTurns table_read(std::string_view key, int64 limit, bool latest) {
  LTurns out;
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
  Oid types[2] = {TEXTOID, INT8OID};
  SPIPlanPtr plan = pg::kept_plan(&g_read_plan,
                            "SELECT seq, role, content, meta, created_at FROM agentcache.turns"
                            " WHERE session_id OPERATOR(pg_catalog.=) $1"
                            " ORDER BY seq DESC LIMIT $2",
                            2, types);
  Datum values[2] = {PointerGetDatum(cstring_to_text_with_len(key.data(), static_cast<int>(key.size()))),
                     Int64GetDatum(limit)};
  int rc = latest ? SPI_execute_snapshot(plan, values, nullptr, GetLatestSnapshot(), InvalidSnapshot, false,
                                         false, 0)
                  : SPI_execute_plan(plan, values, nullptr, false, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "agentcache: reading agentcache.turns failed: %s", SPI_result_code_string(rc));
  uint64 n = SPI_processed;
  out.n = static_cast<uint32>(n);
  out.v = static_cast<LTurn*>(SPI_palloc(sizeof(LTurn) * (n ? n : 1)));
  TupleDesc td = SPI_tuptable->tupdesc;
  for (uint64 i = 0; i < n; ++i) {
    HeapTuple tup = SPI_tuptable->vals[i];
    LTurn& t = out.v[n - 1 - i];  // query is newest first
    bool isnull = false;
    t.seq = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
    text* role = DatumGetTextPP(SPI_getbinval(tup, td, 2, &isnull));
    auto r = core::parse_role(text_view(role));
    t.role = r ? *r : Role::User;
    text* content = DatumGetTextPP(SPI_getbinval(tup, td, 3, &isnull));
    std::string_view c = isnull ? std::string_view() : text_view(content);
    char* cc = static_cast<char*>(SPI_palloc(c.size() + 1));
    std::memcpy(cc, c.data(), c.size());
    cc[c.size()] = '\0';
    t.content = cc;
    t.content_len = static_cast<uint32>(c.size());
    t.chars = core::utf8_chars(c);
    Datum m = SPI_getbinval(tup, td, 4, &isnull);
    if (isnull) {
      t.meta = nullptr;
    } else {
      Jsonb* jb = DatumGetJsonbP(m);
      t.meta = static_cast<Jsonb*>(SPI_palloc(VARSIZE(jb)));
      std::memcpy(t.meta, jb, VARSIZE(jb));
    }
    t.at = DatumGetTimestampTz(SPI_getbinval(tup, td, 5, &isnull));
  }
  SPI_finish();
  return out;
}

// ------------------------------------------------------------------ cache access

// Backend-local buffer the cached turns are copied into under the shared lock,
// so that nothing is allocated (nothing can raise) while the lock is held.
char* g_scratch = nullptr;
std::size_t g_scratch_cap = 0;
constexpr std::size_t kScratchKeep = 8 * 1024 * 1024;

void ensure_scratch(std::size_t need) {
  if (need <= g_scratch_cap) return;
  std::size_t cap = g_scratch_cap ? g_scratch_cap : 64 * 1024;
  while (cap < need) cap *= 2;
  if (g_scratch) pfree(g_scratch);
  g_scratch = nullptr;
  g_scratch_cap = 0;
  g_scratch = static_cast<char*>(MemoryContextAllocHuge(TopMemoryContext, cap));
  g_scratch_cap = cap;
}

void shrink_scratch() {
  if (g_scratch_cap > kScratchKeep) {
    pfree(g_scratch);
    g_scratch = nullptr;
    g_scratch_cap = 0;
  }
}

constexpr std::size_t align8(std::size_t n) { return (n + 7) & ~std::size_t(7); }

std::size_t copy_size(const TurnRecord& r) {
  return sizeof(TurnRecord) + align8(r.content_len) + (r.has_meta ? align8(r.meta_len) : 0);
}

enum class Probe { Hit, Miss, NeedScratch };

// Under the partition's shared lock: copy the newest `want` turns of a cached
// session into the scratch buffer (oldest first). No PostgreSQL call that can
// raise happens while the lock is held.
Probe copy_from_cache(SessionTable& t, LWLock* lock, uint32 db, uint64 hash, std::string_view key, uint32 want,
                      uint32* got, std::size_t* need, uint64* gen) noexcept {
  LWLockGuard g(lock, LW_SHARED);
  SessionTable::Offset s = t.find(db, hash, key);
  if (s == core::Arena::kNull) {
    *gen = t.generation(hash);
    return Probe::Miss;
  }
  uint32 count = t.turn_count(s);
  // The cache holds the newest min(total, capacity) turns: it can answer when
  // it has `want` of them or holds the whole session.
  if (want > count && count >= t.ring_capacity()) {
    *gen = t.generation(hash);
    return Probe::Miss;
  }
  uint32 take = want < count ? want : count;
  std::size_t bytes = 0;
  for (uint32 i = count - take; i < count; ++i) bytes += copy_size(t.turn(s, i));
  if (bytes > g_scratch_cap) {
    *need = bytes;
    return Probe::NeedScratch;
  }
  char* w = g_scratch;
  for (uint32 i = count - take; i < count; ++i) {
    const TurnRecord& r = t.turn(s, i);
    std::memcpy(w, &r, sizeof(TurnRecord));
    w += sizeof(TurnRecord);
    std::memcpy(w, r.content(), r.content_len);
    w += align8(r.content_len);
    if (r.has_meta) {
      std::memcpy(w, r.meta(), r.meta_len);
      w += align8(r.meta_len);
    }
  }
  t.touch(s);
  t.count_hit();
  *got = take;
  return Probe::Hit;
}

LTurns turns_from_scratch(uint32 n) {
  LTurns out;
  out.n = n;
  out.v = static_cast<LTurn*>(palloc(sizeof(LTurn) * (n ? n : 1)));
  const char* p = g_scratch;
  for (uint32 i = 0; i < n; ++i) {
    TurnRecord r;
    std::memcpy(&r, p, sizeof r);
    p += sizeof(TurnRecord);
    LTurn& t = out.v[i];
    t.seq = r.seq;
    t.at = r.created_at;
    t.role = static_cast<Role>(r.role);
    t.chars = r.chars;
    t.content = p;
    t.content_len = r.content_len;
    p += align8(r.content_len);
    t.meta = nullptr;
    if (r.has_meta) {
      t.meta = reinterpret_cast<Jsonb*>(const_cast<char*>(p));
      p += align8(r.meta_len);
    }
  }
  return out;
}

LTurns newest(LTurns all, uint32 want) {
  if (all.n > want) {
    all.v += all.n - want;
    all.n = want;
  }
  return all;
}

// Loads a session from the table with a fresh snapshot and publishes it
// unless a commit touched it since `gen` was read. Returns the loaded turns
// (newest `capacity`, oldest first) and whether they were published.
LTurns load_and_publish(SessionTable& t, LWLock* lock, uint32 db, uint64 hash, std::string_view key, uint64 gen,
                        bool* published) {
  LTurns all = table_read(key, t.ring_capacity(), true);
  auto* td = static_cast<TurnData*>(palloc(sizeof(TurnData) * (all.n ? all.n : 1)));
  for (uint32 i = 0; i < all.n; ++i) {
    const LTurn& l = all.v[i];
    new (&td[i]) TurnData();
    td[i].seq = l.seq;
    td[i].created_at = l.at;
    td[i].role = l.role;
    td[i].content = {l.content, l.content_len};
    td[i].has_meta = l.meta != nullptr;
    if (l.meta) td[i].meta = {reinterpret_cast<const char*>(l.meta), VARSIZE(l.meta)};
  }
  SessionTable::Publish r;
  {
    LWLockGuard g(lock, LW_EXCLUSIVE);
    r = t.publish(db, hash, key, td, all.n, gen);
  }
  *published = r == SessionTable::Publish::Published || r == SessionTable::Publish::AlreadyCached;
  return all;
}

// True when every pending change of this transaction to `key` is an
// add_turn (no direct DML, no TRUNCATE); counts them.
bool pending_adds_only(std::string_view key, uint32* count) noexcept {
  *count = 0;
  if (g_truncate_level > 0) return false;
  for (PendingOp* op = g_pending_head; op; op = op->next) {
    if (key_of(op) != key) continue;
    if (op->kind != OpKind::AddTurn) return false;
    ++*count;
  }
  return true;
}

// Committed turns from the cache followed by this transaction's own pending
// turns. add_turn holds the session's transaction-scoped lock and gave each
// pending turn max(seq)+1 over everything committed, so the pending turns are
// the newest and nobody else can add to the session until we end.
LTurns overlay_pending(LTurns committed, std::string_view key, uint32 npending, uint32 want) {
  LTurns out;
  out.v = static_cast<LTurn*>(palloc(sizeof(LTurn) * (committed.n + npending + 1)));
  std::memcpy(out.v, committed.v, sizeof(LTurn) * committed.n);
  out.n = committed.n;
  for (PendingOp* op = g_pending_head; op; op = op->next) {
    if (op->kind != OpKind::AddTurn || key_of(op) != key) continue;
    LTurn& t = out.v[out.n++];
    t.seq = op->seq;
    t.at = op->at;
    t.role = op->role;
    t.content = op->content;
    t.content_len = op->content_len;
    t.chars = core::utf8_chars({op->content, op->content_len});
    t.meta = op->meta ? reinterpret_cast<Jsonb*>(const_cast<char*>(op->meta)) : nullptr;
  }
  return newest(out, want);
}

// The newest `want` turns of a session, oldest first: from shared memory when
// it can answer (plus this transaction's own pending turns), else from the
// table (loading the session into memory when nothing of ours is pending).
LTurns read_turns(std::string_view key, uint32 want) {
  core::SessionCache* cache = shmem::sessions();
  if (cache == nullptr || RecoveryInProgress() || want > static_cast<uint32>(guc::session_turns))
    return table_read(key, want, false);
  uint32 npending = 0;
  const bool pending = has_pending(key);
  if (pending && !pending_adds_only(key, &npending)) return table_read(key, want, false);
  require_turns_select();
  const uint32 db = MyDatabaseId;
  const uint64 hash = core::session_hash(db, key);
  const uint32 p = cache->partition_of(hash);
  SessionTable& t = cache->table(p);
  LWLock* lock = shmem::session_lock(p);
  for (;;) {
    uint32 got = 0;
    std::size_t need = 0;
    uint64 gen = 0;
    Probe r = copy_from_cache(t, lock, db, hash, key, want, &got, &need, &gen);
    if (r == Probe::Hit) {
      LTurns committed = turns_from_scratch(got);
      return pending ? overlay_pending(committed, key, npending, want) : committed;
    }
    if (r == Probe::NeedScratch) {
      ensure_scratch(need);
      continue;
    }
    t.count_miss();
    // A load would see our own uncommitted rows: never publish those.
    if (pending) return table_read(key, want, false);
    bool published = false;
    return newest(load_and_publish(t, lock, db, hash, key, gen, &published), want);
  }
}

// ------------------------------------------------------------------ output

// Encodes turns straight into jsonb's binary format (core/jsonb_writer): no
// JsonbValue tree, no key sorting, one copy of each string.
Jsonb* context_json(const LTurn* v, uint32 n) {
  auto* in = static_cast<core::jsonb::Turn*>(palloc(sizeof(core::jsonb::Turn) * (n ? n : 1)));
  char* dates = static_cast<char*>(palloc(static_cast<std::size_t>(MAXDATELEN + 1) * (n ? n : 1)));
  for (uint32 i = 0; i < n; ++i) {
    const LTurn& t = v[i];
    core::jsonb::Turn& o = *new (&in[i]) core::jsonb::Turn();
    char* buf = dates + static_cast<std::size_t>(MAXDATELEN + 1) * i;
    JsonEncodeDateTime(buf, TimestampTzGetDatum(t.at), TIMESTAMPTZOID, nullptr);
    o.at = buf;
    Numeric num = int64_to_numeric(t.seq);
    o.seq = core::jsonb::Value{core::jsonb::kIsNumeric, reinterpret_cast<const char*>(num),
                               static_cast<uint32>(VARSIZE_ANY(num))};
    if (t.meta) {
      o.has_meta = true;
      o.meta = core::jsonb::from_root(reinterpret_cast<const char*>(&t.meta->root),
                                      static_cast<uint32>(VARSIZE(t.meta) - VARHDRSZ));
    }
    o.role = core::role_name(t.role);
    o.content = std::string_view(t.content, t.content_len);
  }
  std::size_t size = core::jsonb::write_context(nullptr, in, n);
  if (size == 0 || size > MaxAllocSize)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "conversation context exceeds the maximum jsonb size",
                    nullptr, "Ask for fewer turns with max_turns or max_chars.");
  char* out = static_cast<char*>(palloc(size));
  core::jsonb::write_context(out, in, n);
  SET_VARSIZE(out, size);
  return reinterpret_cast<Jsonb*>(out);
}

text* content_text(const LTurn& t) { return cstring_to_text_with_len(t.content, static_cast<int>(t.content_len)); }

}  // namespace

// ------------------------------------------------------------------ public (glue-internal)

void register_callbacks() {
  CacheRegisterRelcacheCallback(turns_relcache_callback, 0);
  RegisterXactCallback(xact_callback, nullptr);
  RegisterSubXactCallback(subxact_callback, nullptr);
}

core::SessionStats collect_stats() noexcept {
  core::SessionStats st;
  core::SessionCache* cache = shmem::sessions();
  if (cache == nullptr) return st;
  for (uint32 p = 0; p < cache->partitions(); ++p) {
    LWLockGuard g(shmem::session_lock(p), LW_SHARED);
    cache->table(p).add_stats(st);
  }
  return st;
}

void reset_db() noexcept {
  core::SessionCache* cache = shmem::sessions();
  if (cache == nullptr) return;
  for (uint32 p = 0; p < cache->partitions(); ++p) {
    LWLockGuard g(shmem::session_lock(p), LW_EXCLUSIVE);
    cache->table(p).invalidate_all(MyDatabaseId);
  }
}

void reset_stats() noexcept {
  core::SessionCache* cache = shmem::sessions();
  if (cache == nullptr) return;
  for (uint32 p = 0; p < cache->partitions(); ++p) cache->table(p).reset_counters();
}


void check_content(text* content) {
  const std::size_t len = VARSIZE_ANY_EXHDR(content);
  if (len > static_cast<std::size_t>(guc::max_turn_bytes)) {
    char detail[160];
    pg_snprintf(detail, sizeof detail, "content is %zu bytes; agentcache.max_turn_bytes is %d.", len,
                guc::max_turn_bytes);
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "turn content is too long", detail);
  }
}

int max_turns_arg(FunctionCallInfo fcinfo, int i) {
  if (PG_ARGISNULL(i)) return guc::context_turns;
  int32 n = PG_GETARG_INT32(i);
  if (n <= 0) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_turns must be greater than zero");
  return n;
}

void check_session_id(std::string_view key) {
  if (key.size() > kMaxSessionIdBytes) {
    char detail[128];
    pg_snprintf(detail, sizeof detail, "It is %zu bytes long; the limit is %zu.", key.size(), kMaxSessionIdBytes);
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "session_id is too long", detail);
  }
}

int64 add_turn(std::string_view key, core::Role role, text* content_t, Jsonb* meta) {
  const uint64 hash = core::session_hash(MyDatabaseId, key);
  // Serialise writers of one session (transaction-scoped, private lock space)
  // so that max(seq)+1 read with a fresh snapshot is unique.
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(hash >> 32), static_cast<uint32>(hash),
                       kLockSpaceTurns);
  (void)LockAcquire(&tag, ExclusiveLock, false, false);

  const TimestampTz at = GetCurrentTransactionStartTimestamp();
  const std::string_view role_name = core::role_name(role);
  int64 seq = 0;
  struct ResetFlag {  // lives only around pg_try: nothing after it may longjmp past it
    ResetFlag() { g_in_add_turn = true; }
    ~ResetFlag() { g_in_add_turn = false; }
  };
  {
    ResetFlag in_add_turn;
    pg::pg_try([&] {
      if (insert_turn_direct(key, role_name, content_t, meta, at, &seq)) return;
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
      Oid types[5] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
      SPIPlanPtr plan = pg::kept_plan(
          &g_insert_plan,
          "INSERT INTO agentcache.turns (session_id, seq, role, content, meta, created_at)"
          " SELECT $1, COALESCE(pg_catalog.max(t.seq), 0::pg_catalog.int8) OPERATOR(pg_catalog.+) 1::pg_catalog.int8,"
          " $2, $3, $4, $5 FROM agentcache.turns t WHERE t.session_id OPERATOR(pg_catalog.=) $1"
          " RETURNING seq",
          5, types);
      Datum values[5] = {PointerGetDatum(cstring_to_text_with_len(key.data(), static_cast<int>(key.size()))),
                         PointerGetDatum(cstring_to_text_with_len(role_name.data(), static_cast<int>(role_name.size()))),
                         PointerGetDatum(content_t), PointerGetDatum(meta), TimestampTzGetDatum(at)};
      char nulls[5] = {' ', ' ', ' ', meta ? ' ' : 'n', ' '};
      int rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot, false, true, 1);
      if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
        elog(ERROR, "agentcache: inserting into agentcache.turns failed: %s", SPI_result_code_string(rc));
      bool isnull = false;
      seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
      SPI_finish();
    });
  }

  std::string_view content = text_view(content_t);
  PendingOp* op = push_op(OpKind::AddTurn, key, hash);
  op->seq = seq;
  op->at = at;
  op->role = role;
  op->content = copy_bytes(content.data(), content.size());
  op->content_len = static_cast<uint32>(content.size());
  if (meta) {
    op->meta = copy_bytes(reinterpret_cast<const char*>(meta), VARSIZE(meta));
    op->meta_len = VARSIZE(meta);
  }
  return seq;
}

Jsonb* context(std::string_view key, uint32 want, int64 max_chars) {
  LTurns turns = read_turns(key, want);
  uint32 from = 0;
  if (max_chars >= 0)
    from = static_cast<uint32>(core::trim_oldest(turns.n, static_cast<uint64>(max_chars),
                                                 [&](std::size_t i) { return turns.v[i].chars; }));
  Jsonb* out = context_json(turns.v + from, turns.n - from);
  shrink_scratch();
  return out;
}

}  // namespace agentcache::memory

// ====================================================================== SQL functions

using namespace agentcache;
using namespace agentcache::memory;

// add_turn(session_id text, role text, content text, meta jsonb DEFAULT NULL) RETURNS bigint
AGENTCACHE_FUNCTION(agentcache_add_turn) {
  return pg::boundary([&]() -> Datum {
    // every NULL (22004) before any bad value (22023/54000)
    if (PG_ARGISNULL(0)) null_arg("session_id");
    if (PG_ARGISNULL(1)) null_arg("role");
    if (PG_ARGISNULL(2)) null_arg("content");
    std::string_view key = session_arg(fcinfo, 0);
    auto role = core::parse_role(text_view(PG_GETARG_TEXT_PP(1)));
    if (!role)
      throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid role",
                      "role must be one of user, assistant, system, tool (lowercase).");
    text* content_t = PG_GETARG_TEXT_PP(2);
    check_content(content_t);
    Jsonb* meta = PG_ARGISNULL(3) ? nullptr : PG_GETARG_JSONB_P(3);
    PreventCommandIfReadOnly("add_turn()");
    PG_RETURN_INT64(memory::add_turn(key, *role, content_t, meta));
  });
}

// get_context(session_id text, max_turns int DEFAULT NULL, max_chars int DEFAULT NULL) RETURNS jsonb
AGENTCACHE_FUNCTION(agentcache_get_context) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    int want = max_turns_arg(fcinfo, 1);
    int64 max_chars = -1;
    if (!PG_ARGISNULL(2)) {
      max_chars = PG_GETARG_INT32(2);
      if (max_chars < 0) throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, "max_chars must not be negative");
    }
    Jsonb* out = memory::context(key, static_cast<uint32>(want), max_chars);
    PG_RETURN_JSONB_P(out);
  });
}

// get_turns(session_id text, max_turns int DEFAULT NULL)
//   RETURNS TABLE(seq bigint, role text, content text, meta jsonb, created_at timestamptz)
AGENTCACHE_FUNCTION(agentcache_get_turns) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    int want = max_turns_arg(fcinfo, 1);
    LTurns turns = read_turns(key, static_cast<uint32>(want));
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (uint32 i = 0; i < turns.n; ++i) {
      const LTurn& t = turns.v[i];
      Datum values[5];
      bool nulls[5] = {false, false, false, false, false};
      values[0] = Int64GetDatum(t.seq);
      std::string_view role = core::role_name(t.role);
      values[1] = PointerGetDatum(cstring_to_text_with_len(role.data(), static_cast<int>(role.size())));
      values[2] = PointerGetDatum(content_text(t));
      if (t.meta) values[3] = PointerGetDatum(t.meta); else nulls[3] = true;
      values[4] = TimestampTzGetDatum(t.at);
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    shrink_scratch();
    return Datum(0);
  });
}

// warm_session(session_id text) RETURNS integer
AGENTCACHE_FUNCTION(agentcache_warm_session) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    shmem::require("warm_session()");
    require_turns_select();
    core::SessionCache* cache = shmem::sessions();
    const uint32 db = MyDatabaseId;
    const uint64 hash = core::session_hash(db, key);
    const uint32 p = cache->partition_of(hash);
    SessionTable& t = cache->table(p);
    LWLock* lock = shmem::session_lock(p);
    if (has_pending(key)) PG_RETURN_INT32(0);  // its uncommitted turns must not reach shared memory
    for (int attempt = 0; attempt < 3; ++attempt) {
      uint64 gen = 0;
      {
        LWLockGuard g(lock, LW_SHARED);
        SessionTable::Offset s = t.find(db, hash, key);
        if (s != core::Arena::kNull) PG_RETURN_INT32(static_cast<int32>(t.turn_count(s)));
        gen = t.generation(hash);
      }
      bool published = false;
      LTurns all = load_and_publish(t, lock, db, hash, key, gen, &published);
      if (published) PG_RETURN_INT32(static_cast<int32>(all.n));
    }
    PG_RETURN_INT32(0);
  });
}

// end_session(session_id text) RETURNS boolean
AGENTCACHE_FUNCTION(agentcache_end_session) {
  return pg::boundary([&]() -> Datum {
    std::string_view key = session_arg(fcinfo, 0);
    core::SessionCache* cache = shmem::sessions();
    if (cache == nullptr) PG_RETURN_BOOL(false);
    require_turns_select();
    const uint64 hash = core::session_hash(MyDatabaseId, key);
    const uint32 p = cache->partition_of(hash);
    bool dropped;
    {
      LWLockGuard g(shmem::session_lock(p), LW_EXCLUSIVE);
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
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "agentcache: SPI_connect failed");
    Oid types[1] = {TEXTOID};
    SPIPlanPtr plan = pg::kept_plan(&g_delete_plan,
                              "DELETE FROM agentcache.turns WHERE session_id OPERATOR(pg_catalog.=) $1", 1, types);
    Datum values[1] = {PointerGetDatum(cstring_to_text_with_len(key.data(), static_cast<int>(key.size())))};
    int rc = SPI_execute_plan(plan, values, nullptr, false, 0);
    if (rc != SPI_OK_DELETE) elog(ERROR, "agentcache: deleting from agentcache.turns failed");
    int64 n = static_cast<int64>(SPI_processed);
    SPI_finish();
    // The trigger queued the invalidation (applied at commit); with no rows
    // there may still be a cached empty session: queue it too.
    queue_invalidation(key);
    PG_RETURN_INT64(n);
  });
}

// Trigger on agentcache.turns: AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW,
// and AFTER TRUNCATE FOR EACH STATEMENT. Queues invalidations applied at commit.
AGENTCACHE_FUNCTION(agentcache_turns_changed) {
  return pg::boundary([&]() -> Datum {
    if (!CALLED_AS_TRIGGER(fcinfo)) throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "not called as a trigger");
    auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event)) {
      if (g_truncate_level == 0 || g_truncate_level > GetCurrentTransactionNestLevel())
        g_truncate_level = GetCurrentTransactionNestLevel();
      return PointerGetDatum(nullptr);
    }
    if (!TRIGGER_FIRED_FOR_ROW(td->tg_event)) return PointerGetDatum(nullptr);
    if (TRIGGER_FIRED_BY_INSERT(td->tg_event) && g_in_add_turn) return PointerGetDatum(nullptr);
    TupleDesc desc = td->tg_relation->rd_att;
    int attno = SPI_fnumber(desc, "session_id");
    if (attno <= 0) elog(ERROR, "agentcache.turns has no session_id column");
    auto queue = [&](HeapTuple tup) {
      bool isnull = false;
      Datum d = heap_getattr(tup, attno, desc, &isnull);
      if (!isnull) queue_invalidation(text_view(DatumGetTextPP(d)));
    };
    queue(td->tg_trigtuple);
    if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) queue(td->tg_newtuple);
    return PointerGetDatum(nullptr);
  });
}
