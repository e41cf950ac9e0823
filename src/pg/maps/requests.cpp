// Work this backend asks of the worker (see requests.hpp).
#include "pg/maps/requests.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/sweeps.hpp"

#include <boost/container/small_vector.hpp>

#include <array>
#include <cstring>

namespace agentcache::maps::requests {

namespace {

bool g_ddl = false;
// Maps named by refresh_trigger in this transaction: signalled at commit.
boost::container::small_vector<std::array<char, sizeof(Name)>, 4> g_refresh;

void push(uint32 db, const char* name) noexcept {
  Requests* q = request_queue();
  if (q == nullptr) return;
  {
    pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
    bool queued = false;
    for (int i = 0; i < q->n && !queued; ++i) queued = q->v[i].db == db && std::strcmp(q->v[i].name, name) == 0;
    if (!queued) {
      if (q->n < kMaxRequests) {
        q->v[q->n].db = db;
        strlcpy(q->v[q->n].name, name, sizeof(Name));
        ++q->n;
      } else {
        q->refresh_all = true;
      }
    }
  }
  pg::sweeps::wake_worker();
}

void reconcile() noexcept {
  Requests* q = request_queue();
  if (q == nullptr) return;
  {
    pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
    q->reconcile = true;
  }
  pg::sweeps::wake_worker();
}

// define_map/drop_map change shared memory at once and the catalog at commit.
// When such a transaction ends, the worker reconciles the two (drops maps
// the catalog lacks, loads those memory lacks): after a rollback, and after a
// commit in case its cycle ran in between and dropped a not-yet-committed map.
void xact_callback(XactEvent event, void*) {
  const bool ends = event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT;
  if (ends && g_ddl) reconcile();
  if (event == XACT_EVENT_COMMIT)
    for (const auto& name : g_refresh) push(MyDatabaseId, name.data());
  if (ends || event == XACT_EVENT_PREPARE) {
    g_ddl = false;
    g_refresh.clear();
  }
}

}  // namespace

void register_callbacks() { RegisterXactCallback(xact_callback, nullptr); }

void note_ddl() noexcept { g_ddl = true; }

void refresh_at_commit(const char* name) {
  for (const auto& queued : g_refresh)
    if (std::strcmp(queued.data(), name) == 0) return;
  std::array<char, sizeof(Name)> n{};
  strlcpy(n.data(), name, n.size());
  g_refresh.push_back(n);
}

Taken take(bool* reconcile, bool* all) {
  Requests* q = request_queue();
  Taken t{0, static_cast<Name*>(palloc(sizeof(Name) * kMaxRequests))};
  pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
  for (int i = 0; i < q->n; ++i)
    if (q->v[i].db == MyDatabaseId) std::memcpy(t.names[t.n++], q->v[i].name, sizeof(Name));
  q->n = 0;
  *reconcile = q->reconcile;
  *all = q->refresh_all;
  q->reconcile = q->refresh_all = false;
  return t;
}

void discard() noexcept {
  Requests* q = request_queue();
  if (q == nullptr) return;
  pg::LWLockGuard g(status_lock(), LW_EXCLUSIVE);
  q->n = 0;
  q->reconcile = q->refresh_all = false;
}

bool contains(const Taken& t, const char* name) {
  for (int i = 0; i < t.n; ++i)
    if (std::strcmp(t.names[i], name) == 0) return true;
  return false;
}

}  // namespace agentcache::maps::requests
