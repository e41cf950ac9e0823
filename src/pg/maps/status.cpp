// What is known of each map's loads (see status.hpp).
#include "pg/maps/status.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/sweeps.hpp"

#include <cstring>

namespace agentcache::maps::status {

namespace {

Status* slot(uint32 db, const char* name, bool create) noexcept {
  Status* all = statuses();
  Status* free_slot = nullptr;
  for (uint32 i = 0; i < core::MapStore::kMaxMaps; ++i) {
    Status& st = all[i];
    if (st.used && st.db == db && std::strcmp(st.name, name) == 0) return &st;
    if (!st.used && free_slot == nullptr) free_slot = &st;
  }
  if (!create || free_slot == nullptr) return nullptr;
  std::memset(free_slot, 0, sizeof *free_slot);
  free_slot->used = true;
  free_slot->db = db;
  strlcpy(free_slot->name, name, sizeof free_slot->name);
  return free_slot;
}

}  // namespace

void record_success(uint32 db, const MapDef& d, int64 entries, bool keep_definer) noexcept {
  TimestampTz now = GetCurrentTimestamp();
  {
    pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
    Status* st = slot(db, d.name, true);
    if (st == nullptr) return;
    st->owner = d.owner;
    st->last_error[0] = '\0';
    st->last_refresh = st->last_attempt = now;
    st->entries = entries;
    if (!keep_definer) st->definer_xid = InvalidTransactionId;
  }
  pg::sweeps::note_refresh(now);
}

void record_attempt(uint32 db, const char* name) noexcept {
  pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
  Status* st = slot(db, name, false);
  if (st != nullptr) st->last_attempt = GetCurrentTimestamp();
}

void record_error(uint32 db, const MapDef& d, const char* message) noexcept {
  pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
  Status* st = slot(db, d.name, true);
  if (st == nullptr) return;
  st->owner = d.owner;
  strlcpy(st->last_error, message ? message : "error", sizeof st->last_error);
  st->last_attempt = GetCurrentTimestamp();
}

void timing(uint32 db, const char* name, TimestampTz* last_ok, TimestampTz* last_try) noexcept {
  pg::LWLockGuard g(status_lock(), LW_SHARED);
  Status* st = slot(db, name, false);
  *last_ok = st ? st->last_refresh : 0;
  *last_try = st ? st->last_attempt : 0;
}

void forget(uint32 db, const char* name) noexcept {
  pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
  Status* st = slot(db, name, false);
  if (st != nullptr) st->used = false;
}

void forget_database(uint32 db) noexcept {
  pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
  Status* all = statuses();
  for (uint32 i = 0; i < core::MapStore::kMaxMaps; ++i)
    if (all[i].used && all[i].db == db) all[i].used = false;
}

bool newer_than_installed(uint32 db, const char* name, uint64 snapshot) noexcept {
  pg::LWLockGuard g(status_lock(), LW_SHARED);
  Status* st = slot(db, name, false);
  return st == nullptr || snapshot == 0 || snapshot >= st->installed_snapshot;  // 0: order unknown
}

void note_installed(uint32 db, const char* name, uint64 snapshot) noexcept {
  pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
  Status* st = slot(db, name, true);
  if (st != nullptr) st->installed_snapshot = snapshot;
}

void mark_defined_here(uint32 db, const char* name) {
  const TransactionId xid = GetTopTransactionId();  // may assign one: before taking the lock
  pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
  Status* st = slot(db, name, true);
  if (st != nullptr) st->definer_xid = xid;
}

TransactionId definer_xid(uint32 db, const char* name) {
  pg::LWLockGuard g(status_lock(), LW_SHARED);
  Status* st = slot(db, name, false);
  return st != nullptr ? st->definer_xid : InvalidTransactionId;
}

Definer definer_state(uint32 db, const char* name) {
  const TransactionId xid = definer_xid(db, name);
  if (!TransactionIdIsValid(xid)) return Definer::None;
  if (TransactionIdIsInProgress(xid)) return Definer::Running;
  return TransactionIdDidCommit(xid) ? Definer::Committed : Definer::Aborted;
}

}  // namespace agentcache::maps::status
